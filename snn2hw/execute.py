"""Run a compiled program on model-shaped data and get model-shaped, time-aligned results.

Hardware runs each population ``offset`` steps behind the float reference (one step per
synaptic hop) and holds neurons in its own order. This module hides both: inputs are
(B, T, *input_shape) arrays as the float reference takes them, outputs are
(B, T, *shape) arrays whose step t matches the reference's step t. Sigma-delta layers
compiled from a NIR graph have offset 0 (the reference models their hops) and return
their payloads in the reference's units (divided by the layer's payload scale). Graded
input ports take integer payloads within their message width (a one-line error
otherwise; the emulator itself would saturate them).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from snn2hw_emulator.kernels import GRADED_MODELS, STATE_VARS
from snn2hw_emulator.program import Program
from snn2hw_emulator.result import RunResult
from snn2hw_emulator.xylo_program import XyloProgram

from snn2hw import devices, sdnn
from snn2hw.backends.image import io_map
from snn2hw.errors import DeviceError, UserInputError
from snn2hw.iomap import AlignedResult, IoMap, Output, Population

#: model-shaped input: (B, T, *shape) per input node, or one array for one input
ModelInputs = Mapping[str, np.ndarray] | np.ndarray


def _port_arrays(program: Program, io: IoMap, inputs: ModelInputs
                 ) -> tuple[dict[str, np.ndarray], int, int]:
    ports = io.ports
    if not isinstance(inputs, Mapping):
        if len(ports) != 1:
            raise UserInputError(f"the program has {len(ports)} inputs; pass a dict")
        inputs = {next(iter(ports)): inputs}
    arrays = {}
    batch = steps = None
    for name, perm in ports.items():
        if name not in inputs:
            raise UserInputError(f"no data for input '{name}'")
        x = np.asarray(inputs[name])
        if x.ndim < 3:
            raise UserInputError(f"input '{name}' has shape {x.shape}; expected (batch, time, "
                                 "*shape)")
        flat = x.reshape(x.shape[0], x.shape[1], -1)
        if flat.shape[2] != len(perm):
            raise UserInputError(f"input '{name}' has {flat.shape[2]} values per step; the "
                                 f"program expects {len(perm)}")
        bits = next((p.message_bits for p in program.ports if p.name == name), 0)
        graded = bits > 0
        if graded:
            sdnn.check_payloads(name, flat, bits)
        if not graded and not np.all((flat == 0) | (flat == 1)):
            raise UserInputError(f"input '{name}' is not binary spikes (0/1)",
                                 hint="Encode the data as spikes first (rate or latency code).")
        arrays[name] = flat[:, :, np.asarray(perm)].astype(np.int64)
        batch, steps = flat.shape[0], flat.shape[1]
    return arrays, int(batch), int(steps)


def _check_recorded(res: RunResult, io: IoMap, device: str) -> None:
    """The device returned every group the program's populations and outputs read."""
    need = [("spikes", g) for info in io.populations.values() for g in info.groups]
    need += [("v" if info.readout else "spikes", g) for info in io.outputs.values()
             for g in info.groups]
    lacking = [(var, g) for var, g in need if g not in (getattr(res, var, None) or {})]
    if lacking:
        var, g = lacking[0]
        raise DeviceError(f"device '{device}' returned no {var} for group '{g}' "
                          f"({len(lacking)} group/variable pair(s) missing)",
                          hint="The device's runner must record every group it was asked for.")


def states(program: devices.AnyProgram) -> tuple[str, ...]:
    """spikes and every state variable some group of the program has (u, v for LIF; sigma,
    act, residue, error for sigma-delta groups: emulator/kernels.py STATE_VARS; a Xylo
    program's v, i_syn and i_syn2)."""
    if isinstance(program, XyloProgram):
        return program.recordable()

    have = {v for g in program.groups for v in STATE_VARS[g.model]}
    return ("spikes", *(v for v in ("u", "v", "sigma", "act", "residue", "error")
                        if v in have))


def run(program: devices.AnyProgram, inputs: ModelInputs, *, device: str = "emulator",
        mode: str = "batch", record_v: bool = False, record_states: bool = False,
        accelerator: str = "cpu") -> AlignedResult:
    """Run on ``device`` ("emulator" or "lava") for T + latency steps; return aligned data
    (``raw``: the device's own result, with every state variable its groups have,
    :func:`states`, when ``record_states``)."""
    if isinstance(program, XyloProgram):      # Xylo: snn2hw/xylo/execute.py
        from snn2hw.xylo import execute as xylo_execute

        return xylo_execute.run(program, inputs, device=device, mode=mode,
                                record_v=record_v, record_states=record_states)
    io = io_map(program)
    arrays, batch, steps = _port_arrays(program, io, inputs)
    latency = io.latency
    padded = {k: np.concatenate([v, np.zeros((batch, latency, v.shape[2]), v.dtype)], axis=1)
              for k, v in arrays.items()}
    record = ("spikes", "v") if (record_v or io.readout) else ("spikes",)
    record = states(program) if record_states else record
    res = devices.run(program, padded, device=device, steps=steps + latency, record=record,
                      mode=mode, accelerator=accelerator)
    _check_recorded(res, io, device)

    graded = {g.name for g in program.groups if g.model in GRADED_MODELS}

    def gather(info: Population | Output, source: dict[str, np.ndarray],
               scale: tuple[float, ...] | None) -> np.ndarray:
        off = info.offset
        parts = []
        for k, g in enumerate(info.groups):
            if info.payload_scale is not None:  # a sigma-delta layer from NIR: its units
                parts.append(source[g][:, off:off + steps] / info.payload_scale[k])
                continue
            part = source[g][:, off:off + steps].astype(
                float if scale else (np.int32 if g in graded else np.int8))   # payloads
            parts.append(part / scale[k] if scale else part)
        out = np.concatenate(parts, axis=2)
        ordered = np.empty_like(out)
        ordered[:, :, np.asarray(info.index)] = out
        return ordered

    outputs = {name: gather(info, res.v if info.readout else res.spikes,
                            info.scale if info.readout else None)
               for name, info in io.outputs.items()}
    spikes = {pop: gather(info, res.spikes, None) for pop, info in io.populations.items()}
    return AlignedResult(outputs, spikes, res.saturation, res.cost, res, padded)


__all__ = ["AlignedResult", "ModelInputs", "run", "states"]
