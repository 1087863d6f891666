"""Run a compiled Xylo program on model-shaped data and get model-shaped, time-aligned
results (execute.AlignedResult), as snn2hw.execute does for the Loihi family.

Inputs are event counts (B, T, *input_shape): 0/1 spikes, or up to 15 events per channel
and step (Xylo's input channels take several). A population runs ``offset`` steps behind
the float reference (docs/xylo.md: input is delivered in its step, every later hop one
step late), so the run is ``latency`` steps longer and each population is read from its
offset on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from snn2hw.backends.image import IO_KEY
from snn2hw.errors import UserInputError


def io_map(program: Any) -> dict[str, Any]:
    return json.loads(str(program.metadata[IO_KEY]))


def _events(io: dict[str, Any], inputs: Any) -> tuple[str, np.ndarray]:
    (name, perm), = io["ports"].items()
    if isinstance(inputs, Mapping):
        if name not in inputs:
            raise UserInputError(f"no data for input '{name}'")
        inputs = inputs[name]
    x = np.asarray(inputs)
    if x.ndim < 3:
        raise UserInputError(f"input '{name}' has shape {x.shape}; expected (batch, time, "
                             "*shape)")
    flat = x.reshape(x.shape[0], x.shape[1], -1)
    if flat.shape[2] != len(perm):
        raise UserInputError(f"input '{name}' has {flat.shape[2]} values per step; the "
                             f"program expects {len(perm)}")
    if flat.size and (not np.all(flat == np.round(flat)) or flat.min() < 0):
        raise UserInputError(f"input '{name}' must hold event counts (non-negative integers)",
                             hint="Encode the data as spikes first (rate or latency code).")
    return name, flat[:, :, np.asarray(perm)].astype(np.int64)


def run(program: Any, inputs: Any, *, device: str = "emulator", mode: str = "batch",
        record_v: bool = False, record_states: bool = False) -> Any:
    """Run on ``device`` ("emulator" or "xylosim") for T + latency steps; aligned data."""
    from snn2hw.execute import AlignedResult
    from snn2hw.runio import run_on_device

    io = io_map(program)
    name, x = _events(io, inputs)
    batch, steps = x.shape[:2]
    latency = int(io["latency"])
    padded = np.concatenate([x, np.zeros((batch, latency, x.shape[2]), np.int64)], axis=1)
    record = program.recordable() if record_states else \
        (("spikes", "v") if record_v else ("spikes",))
    res = run_on_device(program, {name: padded}, device=device, steps=steps + latency,
                        record=record, mode=mode, progress=False)

    def gather(info: dict[str, Any]) -> np.ndarray:
        off = int(info["offset"])
        return res.spikes[info["group"]][:, off:off + steps, np.asarray(info["rows"])]

    pops = io["populations"]
    outputs = {out: gather(pops[info["population"]]) for out, info in io["outputs"].items()}
    spikes = {pop: gather(info) for pop, info in pops.items()}
    return AlignedResult(outputs, spikes, res.saturation or {}, res.cost, res,
                         {name: padded})
