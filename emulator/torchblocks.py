"""A program's prepared blocks with their weights on a torch device, and the torch
engine's exact block products (synapses.accumulate on torch: torchops.py's arithmetic)."""

from __future__ import annotations

from typing import Any

import numpy as np
from snn2hw_emulator import torchops as ops

__all__ = ["Blocks", "activation"]


class Blocks:
    """The program's prepared blocks with their weights on the device (made once per
    program and device: synapses.prepared)."""

    def __init__(self, torch: Any, dev: Any, blocks: list[Any]) -> None:
        self.torch, self.dev, self.blocks = torch, dev, blocks
        self.mats: list[list[tuple[int, ops.Matrix]]] = []
        self.kernel: list[tuple[int, int] | None] = []
        for blk in blocks:
            if blk.spec.kind == "conv":
                w, kernel = ops.conv_weights(torch, blk.weights, dev)
                self.mats.append([(0, w)])
                self.kernel.append(kernel)
                continue
            self.mats.append([(k, _matrix(torch, dev, m)) for k, m in blk.matrices()])
            self.kernel.append(None)


def _matrix(torch: Any, dev: Any, m: Any) -> ops.Matrix:
    """Effective weights (n_out, n_in) as an ops.Matrix: dense transposed, csr as CSR."""
    from snn2hw_emulator.program import is_sparse

    if is_sparse(m):
        import warnings

        c = m.tocsr()
        with warnings.catch_warnings():        # "CSR support is in beta": it is exact here
            warnings.simplefilter("ignore", UserWarning)
            t = torch.sparse_csr_tensor(torch.tensor(c.indptr, dtype=torch.int64),
                                        torch.tensor(c.indices, dtype=torch.int64),
                                        torch.tensor(c.data, dtype=torch.float64),
                                        size=c.shape, check_invariants=True).to(dev)
        return ops.Matrix(torch, t, float(np.abs(c.data).max(initial=0)))
    t = torch.tensor(np.ascontiguousarray(m.T), dtype=torch.float64, device=dev)
    return ops.Matrix(torch, t, float(np.abs(m).max(initial=0)))


def activation(ctx: Blocks, i: int, x: Any, shapes: dict, x_max: float
               ) -> list[tuple[int, Any]]:
    """synapses.accumulate for block ``i`` on rows ``x`` (R, n_source) (any int dtype):
    [(delay, int64 activation (R, n_target))]."""
    torch = ctx.torch
    blk = ctx.blocks[i]
    spec = blk.spec
    x = x.to(torch.int64) if blk.graded else (x != 0).to(torch.int64)
    x_max = x_max if blk.graded else 1.0
    if spec.kind == "conv":
        (_, w), = ctx.mats[i]
        return [(0, ops.conv(torch, x, w, ctx.kernel[i], spec.conv, shapes[spec.source],
                             shapes[spec.target], x_max, blk.arith.conv_bits))]
    out = []
    for k, w in ctx.mats[i]:
        acc = ops.product(torch, x, w, x_max)
        if blk.graded and spec.kind != "delay_dense":   # Lava: int32 weights.dot(s) wraps
            acc = ops.wrap32(acc)
        out.append((k, ops.wrap32(ops.floor_shift(acc, spec.weight_exp))))
    return out
