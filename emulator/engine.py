"""The vectorised engine: runs a program image on batches of input spikes.

Numerics are those of kernels.py (tested against it and against Lava). Three modes
give identical results:

* ``batch``: every sample at once; where no cycle runs through several groups, each
  block once for all steps (timebatch.py: one product over batch x time, only the
  neuron recurrence stepping), otherwise as ``step``.
* ``step``: every sample at once, one matrix product per block and step. Products are
  done in float32/float64 BLAS only where the sum is provably exact (|partial sums| <
  2^24 resp. 2^53), else in int64.
* ``event``: one sample at a time, summing only the weight columns of inputs that
  spiked (cost proportional to spikes: the single-stream, event-driven mode).

The pieces live below this module: synapse blocks (synapses.py), neuron updates
(neurons.py), results (result.py), the vectorised kernel operations (vector.py); the
batch mode's engines (timebatch.py, torchengine.py) use the same pieces.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np
from snn2hw_emulator import cost as costmod
from snn2hw_emulator.errors import InputError
from snn2hw_emulator.image import target_of, validate
from snn2hw_emulator.inputs import check_inputs
from snn2hw_emulator.kernels import GRADED_MODELS, SD_STATE, STATE_VARS
from snn2hw_emulator.neurons import State, lif_update, step_group
from snn2hw_emulator.program import Program
from snn2hw_emulator.result import RECORDABLE, Result, RunResult, concatenate
from snn2hw_emulator.synapses import accumulate, effective_weights, prepared
from snn2hw_emulator.torchengine import ACCELERATORS
from snn2hw_emulator.vector import floor_shift, wrap32
from snn2hw_emulator.xylo_program import is_xylo

MODES = ("batch", "step", "event")
_VALIDATED: weakref.WeakSet[Program] = weakref.WeakSet()
# the pieces callers reach through this module (engine.Result, engine.lif_update, ...)
__all__ = ["ACCELERATORS", "MODES", "RECORDABLE", "Result", "RunResult", "check_inputs",
           "concatenate", "effective_weights", "floor_shift", "lif_update", "run", "wrap32"]


def run(program: Program, inputs: Any, *, steps: int | None = None,
        record: Sequence[str] = ("spikes",), mode: str = "batch", cost: bool = True,
        accelerator: str = "cpu") -> RunResult:
    """Run ``program`` on ``inputs`` (port -> (B, T_in, size) ints) for ``steps`` steps
    (default T_in; later steps get no input). Step t is index t-1 on the time axis. A Xylo
    program runs on xylo_engine (its own variables: spikes, v, i_syn, i_syn2).
    ``accelerator`` other than "cpu": batch mode in torch on that device (torchengine)."""
    if is_xylo(program):
        from snn2hw_emulator import xylo_engine

        if accelerator != "cpu":
            raise InputError(f"a Xylo program runs on the CPU only (accelerator "
                             f"'{accelerator}')", hint="Run it without --accelerator.")
        return xylo_engine.run_program(program, inputs, steps=steps, record=record,
                                       mode=mode, cost=cost)
    if mode not in MODES:
        raise InputError(f"unknown mode '{mode}'", hint=f"Use one of {', '.join(MODES)}.")
    if accelerator != "cpu" and mode != "batch":
        raise InputError(f"mode '{mode}' runs on the CPU only (accelerator '{accelerator}')",
                         hint="Use mode 'batch' with an accelerator.")
    bad = sorted(set(record) - set(RECORDABLE))
    if bad:
        raise InputError(f"cannot record '{bad[0]}'",
                         hint=f"Record any of {', '.join(RECORDABLE)}.")
    if program not in _VALIDATED:           # a program object is checked once, not per run
        validate(program)
        _VALIDATED.add(program)
    data, batch, steps = check_inputs(program, inputs, steps)
    if accelerator != "cpu":
        from snn2hw_emulator import torchengine

        return torchengine.run(program, data, batch, steps, record, cost, accelerator)
    if mode == "batch":
        from snn2hw_emulator import timebatch

        groups = timebatch.order(program)
        if groups is not None:
            return timebatch.run(program, data, batch, steps, record, cost, groups)
    target = target_of(program)
    blocks = prepared(program)
    into: dict[str, list[int]] = {g.name: [] for g in program.groups}
    for i, blk in enumerate(blocks):
        into[blk.spec.target].append(i)
    shapes = {p.name: p.shape for p in program.ports} | {g.name: g.shape for g in program.groups}
    payload = {p.name: (2 ** (p.message_bits - 1) if p.message_bits else 1) for p in
               program.ports} | {g.name: 2**31 if g.model in GRADED_MODELS else 1
                                 for g in program.groups}
    st = State(program, batch, target.numeric)
    buffers = [np.zeros((batch, blk.spec.weights.shape[0] if blk.spec.kind != "conv"
                         else int(np.prod(shapes[blk.spec.target])), blk.depth), np.int64)
               for blk in blocks]
    rec = {var: {g.name: np.zeros((batch, steps, g.size), np.int8 if var == "spikes" and
                                  g.model not in GRADED_MODELS else np.int32)
                 for g in program.groups if var == "spikes" or
                 var in STATE_VARS[g.model]}
           for var in RECORDABLE if var in record or var == "spikes"}
    sat = {g.name: {"v_clip": 0, "u_wrap": 0, "first_step": 0} for g in program.groups}
    counter = costmod.Counter(program, target, batch, steps, blocks) if cost else None
    spikes: dict[str, np.ndarray] = {}
    for t in range(1, steps + 1):
        for g in program.groups:
            a = np.zeros((batch, g.size), np.int64)
            for i in into[g.name]:
                a = wrap32(a + buffers[i][:, :, 0])
            spikes[g.name] = step_group(g, st, a, t, sat[g.name], counter, rec)
        for i, blk in enumerate(blocks):
            src_name = blk.spec.source
            if src_name in data:
                col = t - 1
                src = (data[src_name][:, col] if col < data[src_name].shape[1]
                       else np.zeros((batch, data[src_name].shape[2]), np.int64))
            else:
                src = spikes[src_name]
            buf = buffers[i]
            buf[:, :, 0] = 0
            buf = np.roll(buf, -1, axis=2) if blk.depth > 1 else buf
            for k, act in accumulate(blk, src, mode, shapes, payload[src_name]):
                buf[:, :, k] += act
            buffers[i] = buf
            if counter is not None:
                counter.synapses(i, t, src)
    outputs = {o.name: rec["spikes"][o.group] for o in program.outputs}
    report = counter.report() if counter is not None else None
    return Result(rec["spikes"], rec.get("u", {}), rec.get("v", {}), outputs, sat, report,
                  **{var: rec.get(var, {}) for var in SD_STATE})
