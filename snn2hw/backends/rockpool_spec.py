"""A Xylo program as the specification Rockpool's ``XyloSim.from_specification`` (and
``config_from_specification``) takes, written as ``.npz`` and ``.json``.

Keys (Rockpool 3.0, ``devices/xylo/syns61201/xylo_sim.py:170-191``): ``weights_in``
(Nin, Nhidden, Nsyn) int8, ``weights_rec`` (Nhidden, Nhidden, Nsyn), ``weights_out``
(Nhidden, Nout), ``dash_mem``, ``dash_syn``, ``dash_syn_2`` (Nhidden; zeros with one
synapse), ``dash_mem_out``, ``dash_syn_out`` (Nout), ``threshold``, ``threshold_out``,
``bias``, ``bias_out``, ``weight_shift_in``/``_rec``/``_out``, ``aliases`` (a list per
hidden neuron, empty or one target), ``dt`` (seconds). A Rockpool user loads it with::

    spec = dict(np.load("OUT/xylo_spec.npz"))            # or json.load(...)
    spec["aliases"] = [[int(a)] if a >= 0 else [] for a in spec["aliases"]]
    XyloSim.from_specification(**spec)

(in the .npz, ``aliases`` is one int per hidden neuron, -1 for none; the .json holds
Rockpool's list of lists). Output weights cover every hidden neuron (OEN = Nhidden).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from snn2hw_emulator.xylo_program import XyloProgram

from snn2hw.errors import UserInputError

ARRAY_KEYS = ("weights_in", "weights_rec", "weights_out", "dash_mem", "dash_syn",
              "dash_syn_2", "dash_mem_out", "dash_syn_out", "threshold", "threshold_out",
              "bias", "bias_out")
SHIFT_KEYS = ("weight_shift_in", "weight_shift_rec", "weight_shift_out")


def specification(program: XyloProgram, dt: float) -> dict[str, Any]:
    """Rockpool's specification dict (numpy arrays; ``aliases`` as Rockpool's lists)."""
    a = program.arrays()
    ds = a["dash_syn"]
    spec: dict[str, Any] = {
        "weights_in": a["weights_in"].astype(np.int8),
        "weights_rec": a["weights_rec"].astype(np.int8),
        "weights_out": a["weights_out"].astype(np.int8), "dash_mem": a["dash_mem"],
        "dash_syn": ds[:, 0], "dash_syn_2": ds[:, 1] if ds.shape[1] > 1 else np.zeros_like(
            ds[:, 0]), "dash_mem_out": a["dash_mem_out"], "dash_syn_out": a["dash_syn_out"],
        "threshold": a["threshold"], "threshold_out": a["threshold_out"], "bias": a["bias"],
        "bias_out": a["bias_out"],
        "aliases": [[int(x)] if x >= 0 else [] for x in a["aliases"]], "dt": float(dt)}
    spec.update({k: int(getattr(program, k)) for k in SHIFT_KEYS})
    return spec


def write(program: XyloProgram, dt: float, npz: Path, js: Path) -> None:
    """Both files (the caller writes into a folder it replaces atomically)."""
    spec = specification(program, dt)
    flat = {k: v for k, v in spec.items() if k != "aliases"}
    flat["aliases"] = np.array([a[0] if a else -1 for a in spec["aliases"]], np.int64)
    with open(npz, "wb") as fh:
        np.savez_compressed(fh, **flat)
    js.write_text(json.dumps({k: (v.tolist() if isinstance(v, np.ndarray) else v)
                              for k, v in spec.items()}, indent=0))


def read(path: str | Path) -> dict[str, Any]:
    """A specification from either file, as :func:`specification` returns it."""
    path = Path(path)
    try:
        if path.suffix == ".json":
            raw = json.loads(path.read_text())
            spec = {k: np.asarray(v) if k in ARRAY_KEYS else v for k, v in raw.items()}
        else:
            with np.load(path, allow_pickle=False) as z:
                spec = {k: z[k] for k in z.files}
            spec["aliases"] = [[int(a)] if a >= 0 else [] for a in spec["aliases"]]
            spec.update({k: int(spec[k]) for k in SHIFT_KEYS} | {"dt": float(spec["dt"])})
    except (OSError, ValueError, KeyError) as exc:
        raise UserInputError(f"'{path}' is not a Xylo specification ({exc})",
                             hint="Use the xylo_spec.npz/.json snn2hw compile writes.") from None
    return spec
