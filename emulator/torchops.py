"""The exact arithmetic of the torch engine (torchengine.py), on any torch device.

Every function here computes what its numpy counterpart in engine.py / sigma_delta.py
computes, bit for bit, on int64 tensors: integer operations (shifts, masks, compares
and adds in int64 are exact on CPUs and CUDA alike), and matrix products in floating
point only where the magnitude bound proves every partial sum an exactly representable
integer (below 2^24 in float32, 2^53 in float64): then no summation order, blocking or
fused multiply-add can change the result. TF32 and reduced-precision reductions are
switched off (:func:`setup`). Operands past float64's bound are split into 16-bit limbs
whose products are exact and recombined in int64.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: float32 holds every integer below 2^24 exactly, float64 below 2^53
EXACT = {"float32": 2.0**24, "float64": 2.0**53}
#: rows of one product at most (bounds the temporary float copies)
CHUNK_ELEMENTS = 1 << 26


def setup(torch: Any) -> None:
    """No TF32 (10-bit mantissa) in float32 products on CUDA: 'highest' precision."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = False
    torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False
    torch.set_float32_matmul_precision("highest")


def wrap32(x: Any) -> Any:
    return ((x + 2**31) & (2**32 - 1)) - 2**31


def wrap_conv(x: Any, bits: int) -> Any:
    """A convolution's output register wraps at ``bits`` (the family record's conv_bits;
    kernels.conv_activation)."""
    half = 1 << (bits - 1)
    return ((x + half) & (2 * half - 1)) - half


def floor_shift(x: Any, exp: int) -> Any:
    return x << exp if exp >= 0 else x >> -exp


def trunc_decay(x: Any, keep: int, torch: Any, bits: int) -> Any:
    """x * keep / 2^bits rounded toward zero (kernels.trunc_decay; ``bits``: the family
    record's decay_bits)."""
    p = x * keep
    return torch.where(p < 0, -((-p) >> bits), p >> bits)


def _dtype(torch: Any, bound: float) -> Any:
    return torch.float32 if bound < EXACT["float32"] else torch.float64


class Matrix:
    """A weight matrix on the device, float64, with its float32 copy made once when a
    product needs it: dense (n_in, n_out), or sparse CSR (n_out, n_in)."""

    def __init__(self, torch: Any, w: Any, top: float) -> None:
        self.torch, self.top = torch, top
        self.sparse = w.layout == torch.sparse_csr
        self.n_sum = int(w.shape[1] if self.sparse else w.shape[0])   # terms per sum
        self.n_out = int(w.shape[0] if self.sparse else w.shape[1])
        self._as = {torch.float64: w}

    def get(self, dtype: Any) -> Any:
        if dtype not in self._as:
            self._as[dtype] = self._as[self.torch.float64].to(dtype)
        return self._as[dtype]


def product(torch: Any, x: Any, w: Matrix, x_max: float) -> Any:
    """x (R, n_in) int @ w exactly, as int64 (R, n_out), |x| <= x_max: float where
    x_max * max|w| * terms proves every partial sum exact, else 16-bit limbs of x (each
    limb's product exact in float64)."""
    bound = x_max * w.top * w.n_sum
    if bound < EXACT["float64"]:
        return _float_product(torch, x, w, _dtype(torch, bound))
    if 2.0**16 * w.top * w.n_sum >= EXACT["float64"]:
        raise ValueError("a product too wide for 16-bit limbs")  # 2^37 terms of 2^16
    lo = x & 0xFFFF                                  # x = hi * 2^16 + lo, 0 <= lo < 2^16
    hi = x >> 16
    dtype = _dtype(torch, 2.0**16 * w.top * w.n_sum)
    return (_float_product(torch, hi, w, dtype) << 16) + _float_product(torch, lo, w, dtype)


def _float_product(torch: Any, x: Any, w: Matrix, dtype: Any) -> Any:
    if w.sparse:
        return (w.get(dtype) @ x.to(dtype).T).T.to(torch.int64)
    return (x.to(dtype) @ w.get(dtype)).to(torch.int64)


def rows(total: int, width: int) -> int:
    """Rows per chunk for products ``width`` wide."""
    return max(1, CHUNK_ELEMENTS // max(1, width))


def conv(torch: Any, x: Any, w: Matrix, kernel: tuple[int, int], c: dict, size_in: tuple,
         size_out: tuple, x_max: float, conv_bits: int) -> Any:
    """engine._conv on torch: Lava's true convolution (the kernel flipped, here once in
    ``w``: (C_out, C_in/groups * Kw * Kh) in (c, i, j) order, :func:`conv_weights`) of
    (R, X*Y*C) inputs as an im2col product (F.unfold then a matrix product: no FFT or
    Winograd algorithm, so exact under the bound), wrapped to the conv_bits register;
    (R, X'*Y'*C')."""
    (sx, sy), (px, py), (dx, dy) = c["stride"], c["padding"], c["dilation"]
    groups = int(c["groups"])
    xin, yin, cin = size_in
    xo, yo, co = size_out
    r = x.shape[0]
    n_sum = w.n_sum
    if x_max * w.top * n_sum >= EXACT["float64"]:
        raise ValueError("a convolution too wide for exact float64 sums")
    dtype = _dtype(torch, x_max * w.top * n_sum)
    img = x.reshape(r, xin, yin, cin).permute(0, 3, 1, 2).to(dtype)
    cols = torch.nn.functional.unfold(img, kernel, dilation=(dx, dy), padding=(px, py),
                                      stride=(sx, sy))          # (R, C*Kw*Kh, X'*Y')
    og, per = co // groups, n_sum
    wd = w.get(dtype)
    out = torch.cat([wd[g * og:(g + 1) * og] @ cols[:, g * per:(g + 1) * per]
                     for g in range(groups)], dim=1)            # (R, C', X'*Y')
    out = out.to(torch.int64).permute(0, 2, 1).reshape(r, xo * yo * co)
    return wrap_conv(out, conv_bits)


def conv_weights(torch: Any, weights: np.ndarray, device: Any
                 ) -> tuple[Matrix, tuple[int, int]]:
    """A conv block's (C_out, Kw, Kh, C_in/groups) weights, flipped (Lava convolves) and
    laid out for :func:`conv`: (C_out, C_in/groups * Kw * Kh), and (Kw, Kh)."""
    w = np.asarray(weights, np.int64)[:, ::-1, ::-1, :]
    co, kw, kh, cg = w.shape
    flat = np.ascontiguousarray(w.transpose(0, 3, 1, 2)).reshape(co, cg * kw * kh)
    t = torch.tensor(flat, dtype=torch.float64, device=device)
    top = float(np.abs(flat).max(initial=0))
    m = Matrix(torch, t.T, top)          # n_sum: C_in/groups * Kw * Kh terms per sum
    m._as = {torch.float64: t}           # used as (C_out, terms), not transposed
    return m, (kw, kh)


__all__ = [
    "EXACT",
    "Matrix",
    "conv",
    "conv_weights",
    "floor_shift",
    "product",
    "rows",
    "setup",
    "trunc_decay",
    "wrap32",
    "wrap_conv",
]
