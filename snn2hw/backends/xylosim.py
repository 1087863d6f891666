"""Run a Xylo program on SynSense's bit-accurate simulator, xylosim (``xylosim.v2``).

The layer is built straight from the program's integers (no Rockpool: its Xylo package
needs SynSense's ``samna``), the way Rockpool's ``XyloSim.from_specification`` builds it:
one ``XyloSynapse`` per non-zero weight, per source in index order. Each sample starts
from a reset layer. Results have the emulator's shapes (xylo_result.XyloResult).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from snn2hw_emulator.xylo_program import HIDDEN, OUTPUT, XyloProgram
from snn2hw_emulator.xylo_result import XyloResult, check_inputs

from snn2hw.errors import Snn2hwError

#: pip's name for the extra that installs xylosim (pyproject.toml).
EXTRA = "xylo"


class XylosimMissing(Snn2hwError):
    """xylosim is not installed."""

    code = "device"


def module() -> Any:
    try:
        from xylosim import v2
    except ImportError as exc:
        raise XylosimMissing(f"xylosim is not installed ({exc})",
                             hint=f"pip install 'snn2hw[{EXTRA}]' (xylosim 0.1.3 builds "
                                  "its C++ extension with g++).") from None
    return v2


class Layer:
    """A ``xylosim.v2.XyloLayer`` for a program. The synapse objects are kept here: the
    C++ layer holds raw pointers to them (it crashes once Python frees them)."""

    def __init__(self, program: XyloProgram) -> None:
        v2 = module()
        a = program.arrays()
        self.synapses = (_synapses(v2, a["weights_in"]), _synapses(v2, a["weights_rec"]),
                         _synapses(v2, a["weights_out"][:, :, None]))
        ns = program.n_syn
        self.layer = v2.XyloLayer(
            *self.synapses, [[int(t)] if t >= 0 else [] for t in a["aliases"]],
            a["threshold"].tolist(), a["threshold_out"].tolist(),
            bool(np.any(a["bias"]) or np.any(a["bias_out"])), a["bias"].tolist(),
            a["bias_out"].tolist(), program.weight_shift_in, program.weight_shift_rec,
            program.weight_shift_out, a["dash_mem"].tolist(), a["dash_mem_out"].tolist(),
            a["dash_syn"].reshape(-1, ns).tolist(), [[int(d)] for d in a["dash_syn_out"]],
            "snn2hw")
        self.n_syn = ns

    def run(self, events: np.ndarray) -> dict[str, np.ndarray]:
        """One sample (T, n_in) from reset: counts, V, I_syn (T, n) of both populations."""
        lay = self.layer
        lay.reset_all()
        out = np.asarray(lay.evolve(np.minimum(events, 255).astype(int).tolist()), np.int64)
        t = events.shape[0]

        def cols(rec: list) -> np.ndarray:
            return np.asarray(rec, np.int64).reshape(len(rec), t).T

        res = {"spikes_h": np.asarray(lay.rec_recurrent_spikes, np.int64).reshape(t, -1),
               "spikes_o": out.reshape(t, -1), "v_h": cols(lay.rec_v_mem),
               "v_o": cols(lay.rec_v_mem_out), "i_h": cols(lay.rec_i_syn),
               "i_o": cols(lay.rec_i_syn_out)}
        if self.n_syn == 2:
            res["i2_h"] = cols(lay.rec_i_syn2)
        return res


def _synapses(v2: Any, w: np.ndarray) -> list[list[Any]]:
    """Per source: XyloSynapse(post, syn, weight) for every non-zero weight."""
    out = []
    for row in w:
        posts, syns = np.nonzero(row)
        out.append([v2.XyloSynapse(int(p), int(s), int(row[p, s])) for p, s in
                    zip(posts, syns)])
    return out


def run(program: XyloProgram, inputs: Any, steps: int | None = None,
        record: Sequence[str] = ("spikes",)) -> XyloResult:
    """Every sample of ``inputs`` (B, T_in, n_in) through xylosim for ``steps`` steps."""
    data, steps = check_inputs(program, inputs, steps)
    b = data.shape[0]
    x = np.zeros((b, steps, program.n_in), np.int64)
    x[:, :min(steps, data.shape[1])] = data[:, :steps]
    layer = Layer(program)
    runs = [layer.run(x[i]) for i in range(b)]

    def stack(key: str, dtype: type) -> np.ndarray:
        n = program.n_hidden if key.endswith("_h") else program.n_out
        if not runs:
            return np.zeros((0, steps, n), dtype)
        return np.stack([r[key] for r in runs]).astype(dtype)

    keep = set(record) | {"spikes"}
    spikes = {HIDDEN: stack("spikes_h", np.int8), OUTPUT: stack("spikes_o", np.int8)}
    v = {HIDDEN: stack("v_h", np.int16), OUTPUT: stack("v_o", np.int16)}
    i1 = {HIDDEN: stack("i_h", np.int16), OUTPUT: stack("i_o", np.int16)}
    i2 = {HIDDEN: stack("i2_h", np.int16)} if program.n_syn == 2 else {}
    # xylosim does not report saturation: the emulator's counts are the only ones
    return XyloResult(spikes, v if "v" in keep else {}, i1 if "i_syn" in keep else {},
                      i2 if "i_syn2" in keep else {}, {OUTPUT: spikes[OUTPUT]}, {})
