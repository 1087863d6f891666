"""Run a compiled Xylo program on model-shaped data and get model-shaped, time-aligned
results (execute.AlignedResult), as snn2hw.execute does for the Loihi family.

Inputs are event counts (B, T, *input_shape): 0/1 spikes, or up to 15 events per channel
and step (Xylo's input channels take several). A population runs ``offset`` steps behind
the float reference (docs/xylo.md: input is delivered in its step, every later hop one
step late), so the run is ``latency`` steps longer and each population is read from its
offset on.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from snn2hw_emulator.xylo_program import XyloProgram

from snn2hw import devices
from snn2hw.errors import UserInputError
from snn2hw.iomap import AlignedResult, XyloIoMap, XyloPopulation, read_json

#: model-shaped input: (B, T, *shape) for the one input node, by name or as the array
Events = Mapping[str, np.ndarray] | np.ndarray


def io_map(program: XyloProgram) -> XyloIoMap:
    return XyloIoMap.from_json(read_json(program.metadata))


def _events(io: XyloIoMap, inputs: Events) -> tuple[str, np.ndarray]:
    (name, perm), = io.ports.items()
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


def run(program: XyloProgram, inputs: Events, *, device: str = "emulator",
        mode: str = "batch", record_v: bool = False, record_states: bool = False
        ) -> AlignedResult:
    """Run on ``device`` ("emulator" or "xylosim") for T + latency steps; aligned data."""
    io = io_map(program)
    name, x = _events(io, inputs)
    batch, steps = x.shape[:2]
    latency = io.latency
    padded = np.concatenate([x, np.zeros((batch, latency, x.shape[2]), np.int64)], axis=1)
    record = program.recordable() if record_states else \
        (("spikes", "v") if record_v else ("spikes",))
    res = devices.run(program, {name: padded}, device=device, steps=steps + latency,
                      record=record, mode=mode)

    def gather(info: XyloPopulation) -> np.ndarray:
        off = info.offset
        return res.spikes[info.group][:, off:off + steps, np.asarray(info.rows)]

    pops = io.populations
    outputs = {out: gather(pops[info.population]) for out, info in io.outputs.items()}
    spikes = {pop: gather(info) for pop, info in pops.items()}
    return AlignedResult(outputs, spikes, res.saturation or {}, res.cost, res,
                         {name: padded})
