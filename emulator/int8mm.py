"""Exact int8 matrix products of binary inputs for the time-batched engine (timebatch.py).

torch's ``_int_mm`` (oneDNN: AMX or VNNI int8 where the CPU has them) multiplies int8
matrices with int32 sums. Binary inputs and weights that are 2^s times int8 values (Loihi's
mixed-sign weights have at least one low bit cleared) give exact sums: |sum| <= 128 x
inputs. The synapse counts of the inputs ride along as base-128 digit columns, so one
product also counts synaptic events. See :func:`product` for why the inputs go in
negated.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np


def matrix(blk: Any, k: int, w: np.ndarray, nnz: np.ndarray) -> Any:
    """(W8, s, n_out, digits) for an exact int8 product of binary inputs, or None: the
    weights are 2^s times int8 values (Loihi's mixed-sign weights have at least one low
    bit cleared); W8 = [w.T >> s | the synapse counts per input in base-128 digits |
    zeros to a multiple of 16 columns], so one product also counts synaptic events
    (every sum exact in int32: |sum| <= 128 * inputs)."""
    key = 5000 + k
    if key not in blk.fast:
        nz = w[w != 0]
        s = min(8, int(np.min(nz & -nz)).bit_length() - 1) if nz.size else 0   # low zeros
        w8 = w >> s
        digits = max(1, (int(nnz.max(initial=0)).bit_length() + 6) // 7)
        ok = w.shape[1] < 2**24 and (w8.size == 0 or -128 <= w8.min() and w8.max() <= 127)
        cols = [w8.T] + [((nnz >> (7 * i)) & 127)[:, None] for i in range(digits)]
        pad = -(w.shape[0] + digits) % 16        # int8 kernels like 16-column multiples
        cols.append(np.zeros((w.shape[1], pad), np.int64))
        blk.fast[key] = (np.ascontiguousarray(np.hstack(cols), dtype=np.int8), s,
                         w.shape[0], digits) if ok else None
    return blk.fast[key]


#: bytes of int32 sums per chunk of an int8 product (under glibc's mmap threshold)
CHUNK_BYTES = 4 << 20


class Scaled(NamedTuple):
    """An activation still to be scaled: floor_shift(sign * raw, shift), raw (B, T, n)
    int32 (the first n columns of wider rows); lifloop's LIF loop applies it as it reads."""

    raw: np.ndarray
    sign: int
    shift: int


def product(torch: Any, neg8: np.ndarray, mat: tuple, e: int, fuse: bool = False
                  ) -> tuple[Any, np.ndarray]:
    """(activations int32 (R, n_out), synaptic events (R,)) of binary rows given negated,
    ``neg8`` (int8 0/-1; see below):
    the weights' floor shift by e applied to 2^s * sum is the shift of sum by s + e.
    ``fuse``: the activations as a :class:`Scaled` (R, n_out) for the LIF loop to scale,
    a view of a reused work array (scratch.py) that the next product overwrites, so the
    caller consumes it first."""
    w8, s, n_out, digits = mat
    # The inputs go in negated (0/-1) and the sums come out negated: CPUs without VNNI or
    # AMX multiply int8 pairs through an unsigned operand (input + 128) into saturating
    # int16 pair sums; with inputs 0/1 that is 129 * -128 * 2 < -2^15 (wrong sums, seen
    # with ONEDNN_MAX_CPU_ISA=AVX2), with 0/-1 at most 128 * 128 * 2 = 2^15 in magnitude,
    # which int16 holds at the negative end (tests/test_timebatch.py runs it on AVX2).
    from snn2hw_emulator import lifloop, scratch

    acc = scratch.take("int8mm.acc", (neg8.shape[0], w8.shape[1]), np.int32)
    # in row chunks of a few MB copied into the reused array: torch's own result of the
    # whole product would be a fresh mapping, paged in at every run (its out= form
    # computes into one too, then copies), while chunks this size come from the heap
    rows = max(16, CHUNK_BYTES // (4 * w8.shape[1]))
    a, b = torch.from_numpy(neg8), torch.from_numpy(w8)
    for lo in range(0, neg8.shape[0], rows):
        acc[lo:lo + rows] = torch._int_mm(a[lo:lo + rows], b).numpy()
    syn = -acc[:, n_out:n_out + digits].astype(np.int64)
    syn = sum(syn[:, i] << (7 * i) for i in range(digits))
    if fuse:
        return Scaled(acc[:, :n_out], -1, s + e), syn
    if lifloop.ready(acc.size):
        act = lifloop.negated_shift(acc, n_out, s + e)  # one fused pass
    else:
        act = engine_shift(-acc[:, :n_out], s + e)
    return act, syn


def engine_shift(x: np.ndarray, exp: int) -> np.ndarray:
    """floor_shift (engine.floor_shift) of int32 values that stay in range."""
    return x << exp if exp >= 0 else x >> -exp


__all__ = ["CHUNK_BYTES", "Scaled", "engine_shift", "matrix", "product"]
