"""The time-batched engine in torch: the same numbers on a CUDA GPU or on the CPU.

``engine.run(..., accelerator="cuda")`` (or ``"cpu-torch"``: the same code on the CPU,
how it is tested on machines without a GPU) runs here. The program is cut into stages:
each group on its own where timebatch.order finds no cycle through several groups
(a group may feed itself), else one stage of all groups. A block from an earlier stage
is evaluated once for all steps (one product over batch x time rows); the stage's own
blocks and its neuron updates step in time, every sample at once, as engine.run's step
mode does (an activation from step t reaches its target at step t + 1 + delay). The
arithmetic is torchops.py's: int64 tensors, and float products only where a bound
proves them exact, so results, recordings, saturation and cost counts equal the CPU
engines' (tests/test_torchengine.py, on the CPU; the same tests marked ``gpu`` run on
CUDA where there is one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from snn2hw_emulator import torchops as ops
from snn2hw_emulator.errors import InputError
from snn2hw_emulator.kernels import GRADED_MODELS
from snn2hw_emulator.synapses import device_cache, prepared
from snn2hw_emulator.torchblocks import Blocks, activation

#: where batch mode runs: numpy/numba ("cpu"), or torch here on the CPU ("cpu-torch") or
#: a CUDA GPU ("cuda", "cuda:N")
ACCELERATORS = ("cpu", "cpu-torch", "cuda")


def device(accelerator: str) -> tuple[Any, Any]:
    """(torch, torch.device) for ``accelerator`` ("cpu-torch", "cuda", "cuda:N"), or an
    InputError saying what is missing."""
    if accelerator != "cpu-torch" and not accelerator.startswith("cuda"):
        raise InputError(f"unknown accelerator '{accelerator}'",
                         hint=f"Use one of {', '.join(ACCELERATORS)}.")
    try:
        import torch
    except ImportError:
        raise InputError(f"accelerator '{accelerator}' needs torch, which is not installed",
                         hint="pip install 'snn2hw[torch]' (CPU), or 'snn2hw[cuda]' on a "
                              "machine with an NVIDIA GPU.") from None
    if accelerator.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"accelerator '{accelerator}': torch {torch.__version__} sees no "
                         "CUDA device", hint="Run on a machine with an NVIDIA GPU and a CUDA "
                         "build of torch ('snn2hw[cuda]'), or use --accelerator cpu.")
    ops.setup(torch)
    return torch, torch.device("cpu" if accelerator == "cpu-torch" else accelerator)


def stages(program: Any) -> list[list[Any]]:
    from snn2hw_emulator import timebatch

    order = timebatch.order(program)
    return [[g] for g in order] if order is not None else [list(program.groups)]


def run(program: Any, data: dict[str, np.ndarray], batch: int, steps: int,
        record: Sequence[str], cost: bool, accelerator: str) -> Any:
    """engine.run's result for inputs already checked (engine.check_inputs)."""
    from snn2hw_emulator import torchstep as stepper

    torch, dev = device(accelerator)
    blocks = prepared(program)
    shapes = {p.name: p.shape for p in program.ports} | {g.name: g.shape for g in program.groups}
    payload = {p.name: float(2 ** (p.message_bits - 1) if p.message_bits else 1)
               for p in program.ports} | {g.name: 2.0**31 if g.model in GRADED_MODELS
                                          else 1.0 for g in program.groups}
    key = ("torch", str(dev))
    cache = device_cache(program)
    if key not in cache:
        cache[key] = Blocks(torch, dev, blocks)
    ctx = cache[key]
    counter = None
    if cost:
        from snn2hw_emulator import cost as costmod
        from snn2hw_emulator.image import target_of

        counter = costmod.Counter(program, target_of(program), batch, steps, blocks)
    run_ = stepper.Run(torch, dev, program, batch, steps, record, cost)
    sent = {name: _padded(torch, dev, arr, steps) for name, arr in data.items()}
    with torch.no_grad():
        for stage in stages(program):
            names = {g.name for g in stage}
            inner = [i for i, b in enumerate(blocks) if b.spec.target in names and
                     b.spec.source in names]
            outer = [i for i, b in enumerate(blocks) if b.spec.target in names and
                     b.spec.source not in names]
            a_all = {g.name: _external(ctx, outer, g.name, sent, shapes, payload, batch, steps)
                     for g in stage}
            sent |= run_.stage(stage, a_all, inner, ctx, shapes, payload)
        if counter is not None:
            run_.synops(ctx, sent, counter)
        return run_.result(counter)


def _padded(torch: Any, dev: Any, arr: np.ndarray, steps: int) -> Any:
    """Port values at steps 1..steps (later steps: no input) on the device."""
    b, t_in, n = arr.shape
    out = torch.zeros((b, steps, n), dtype=torch.int64 if arr.dtype != np.int8 else torch.int8,
                      device=dev)
    t = min(steps, t_in)
    out[:, :t] = torch.from_numpy(np.ascontiguousarray(arr[:, :t])).to(dev, out.dtype)
    return out


def _external(ctx: Blocks, outer: list[int], target: str, sent: dict, shapes: dict,
              payload: dict, batch: int, steps: int) -> Any:
    """The summed, wrapped input of group ``target`` at every step from blocks of earlier
    stages (B, steps, n) int64: block activations from step t's source values land at
    step t + 1 + delay. Products over whole samples' rows, a few samples at a time."""
    torch = ctx.torch
    n = int(np.prod(shapes[target]))
    a = torch.zeros((batch, steps, n), dtype=torch.int64, device=ctx.dev)
    for i in outer:
        if ctx.blocks[i].spec.target != target or steps == 0:
            continue
        src = ctx.blocks[i].spec.source
        x = sent[src]
        width = max(x.shape[2], n) * _unfold_factor(ctx, i)
        per = max(1, ops.rows(0, width) // steps)          # samples per chunk
        for b0 in range(0, batch, per):
            part = x[b0:b0 + per]
            nb = part.shape[0]
            for k, act in activation(ctx, i, part.reshape(nb * steps, -1), shapes,
                                     payload[src]):
                lag = 1 + k                                # LATENCY + delay
                if lag < steps:
                    a[b0:b0 + nb, lag:] += act.reshape(nb, steps, n)[:, :steps - lag]
    return ops.wrap32(a)


def _unfold_factor(ctx: Blocks, i: int) -> int:
    """How much wider than its input a block's temporaries get (a conv's im2col)."""
    kernel = ctx.kernel[i]
    return 1 if kernel is None else kernel[0] * kernel[1]


__all__ = ["ACCELERATORS", "device", "run", "stages"]
