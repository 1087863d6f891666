"""Synapse blocks for the engines: prepared once per program (effective weights, delay
buckets, synapse counts, cached product matrices) and applied exactly (products proved
exact in float BLAS or done in int64; Lava's Conv with its wrapping register).

A sparse block held as a csr matrix stays one: its effective weights are computed on
the stored values and its product is csr @ x in int64 (exact; no float shortcut).
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from snn2hw_emulator.family import LAVA, LoihiLif
from snn2hw_emulator.image import target_of
from snn2hw_emulator.program import (
    Program,
    SynapseBlock,
    expanded_weights,
    is_sparse,
    synapse_mask,
)
from snn2hw_emulator.vector import floor_shift, wrap32

#: a program's prepared blocks and their device copies, made once per program object
_PREPARED: weakref.WeakKeyDictionary[Program, list[Block]] = weakref.WeakKeyDictionary()
_DEVICE: weakref.WeakKeyDictionary[Program, dict[Any, Any]] = weakref.WeakKeyDictionary()

__all__ = ["Block", "accumulate", "device_cache", "effective_weights", "prepare", "prepared"]


def effective_weights(block: SynapseBlock, arith: LoihiLif = LAVA
                      ) -> np.ndarray | sp.csr_matrix:
    """Lava's clip_weights + truncate_weights, vectorised (see kernels.effective_weight),
    applied to the full-scale matrix (a codebook block's looked-up weights); a csr
    matrix's stored values are transformed in place of the matrix (zeros stay zeros).
    ``arith``: the target's family record (default: Lava's)."""
    w = expanded_weights(block)
    if is_sparse(w):
        return sp.csr_matrix((_clip_truncate(w.data, block, arith), w.indices, w.indptr),
                             shape=w.shape)
    return _clip_truncate(w, block, arith)


def _clip_truncate(w: np.ndarray, block: SynapseBlock, arith: LoihiLif) -> np.ndarray:
    mode = block.sign_mode
    if mode == "auto":       # implicit zeros of a csr matrix change nothing here
        mode = "exc" if w.size == 0 or w.min() >= 0 else ("inh" if w.max() <= 0 else "mixed")
    if mode == "inh":
        w = -w
    lo, hi = arith.clip_range("mixed" if mode == "mixed" else "exc")  # inh: on the magnitude
    w = np.clip(w, lo, hi)
    n = arith.dropped_bits(mode, block.num_weight_bits)
    w = (w >> n) << n
    return -w if mode == "inh" else w


@dataclass
class Block:
    spec: SynapseBlock
    weights: np.ndarray                    # effective int64 weights
    graded: bool
    buckets: list[tuple[int, np.ndarray]]  # delay_dense: (delay, weights with that delay)
    depth: int                             # buffer length (max delay + 1)
    nnz_col: np.ndarray                    # synapses per source neuron (for synop counts)
    arith: LoihiLif                        # the target's family record
    fast: dict[int, np.ndarray] = field(default_factory=dict)

    def matrices(self) -> list[tuple[int, np.ndarray]]:
        return self.buckets if self.buckets else [(0, self.weights)]


def prepare(block: SynapseBlock, arith: LoihiLif = LAVA) -> Block:
    if block.kind == "conv":
        w = np.asarray(block.weights, dtype=np.int64)   # Lava Conv: no clip, no truncation
        nnz = np.zeros(0)
        return Block(block, w, block.num_message_bits > 0, [], 1, nnz, arith)
    w = effective_weights(block, arith)
    buckets: list[tuple[int, np.ndarray]] = []
    depth = 1
    if block.kind == "delay_dense":
        d = np.asarray(block.delays, dtype=np.int64)
        buckets = [(int(k), np.where(d == k, w, 0)) for k in np.unique(d)]
        depth = int(d.max()) + 1 if d.size else 1
    # synops: non-zero effective weights; a codebook block: every existing synapse
    if is_sparse(w):
        nnz = np.bincount(w.indices[w.data != 0], minlength=w.shape[1])
    else:
        present = synapse_mask(block) if block.kind == "codebook" else w != 0
        nnz = np.count_nonzero(present, axis=0)
    return Block(block, w, block.num_message_bits > 0, buckets, depth, nnz, arith)


def prepared(program: Program) -> list[Block]:
    """The program's blocks prepared once (effective weights, delay buckets, synapse
    counts, and the engines' cached product matrices in ``fast``), not once per run."""
    if program not in _PREPARED:
        arith = target_of(program).numeric
        _PREPARED[program] = [prepare(b, arith) for b in program.blocks]
    return _PREPARED[program]


def device_cache(program: Program) -> dict:
    """Per-program storage for an accelerator's copies of the weights."""
    return _DEVICE.setdefault(program, {})


def _matmul(blk: Block, k: int, w: np.ndarray, src: np.ndarray, bound: float) -> np.ndarray:
    """src (B, n_in) @ w.T exactly: float BLAS when the bound proves it exact; a csr
    matrix in int64 (scipy's integer kernels)."""
    if is_sparse(w):
        return np.asarray(w @ src.T, dtype=np.int64).T
    if bound < 2**53:
        dtype = np.float32 if bound < 2**24 else np.float64
        key = k * 2 + (dtype is np.float32)
        if key not in blk.fast:
            blk.fast[key] = np.ascontiguousarray(w.T, dtype=dtype)
        return (src.astype(dtype) @ blk.fast[key]).astype(np.int64)
    return src @ w.T


def _conv(blk: Block, src: np.ndarray, size_in: tuple[int, ...], size_out: tuple[int, ...]
          ) -> np.ndarray:
    """Lava Conv over a batch: true convolution in (X, Y, C); the output register
    (``conv_bits`` wide) wraps."""
    c = blk.spec.conv or {}
    (sx, sy), (px, py), (dx, dy) = c["stride"], c["padding"], c["dilation"]
    groups = int(c["groups"])
    b = src.shape[0]
    xin, yin, cin = size_in
    xo, yo, co = size_out
    w = blk.weights[:, ::-1, ::-1, :]                     # flip: Lava convolves
    kw, kh = w.shape[1], w.shape[2]
    x = np.zeros((b, xin + 2 * px, yin + 2 * py, cin), dtype=np.int64)
    x[:, px:px + xin, py:py + yin, :] = src.reshape(b, xin, yin, cin)
    if not blk.graded:
        x = (x != 0).astype(np.int64)
    out = np.zeros((b, xo, yo, co), dtype=np.int64)
    cg, og = cin // groups, co // groups
    for i in range(kw):
        for j in range(kh):
            patch = x[:, i * dx: i * dx + sx * (xo - 1) + 1: sx,
                      j * dy: j * dy + sy * (yo - 1) + 1: sy, :]
            for gi in range(groups):
                out[..., gi * og:(gi + 1) * og] += patch[..., gi * cg:(gi + 1) * cg] @ \
                    w[gi * og:(gi + 1) * og, i, j, :].T
    half = 1 << (blk.arith.conv_bits - 1)
    return (((out + half) & (2 * half - 1)) - half).reshape(b, -1)


def _columns(blk: Block, k: int, w: np.ndarray | sp.csr_matrix
             ) -> np.ndarray | sp.csc_matrix:
    """The matrix for column selection by spiking inputs: csc where the weights are sparse
    (its columns are contiguous), the matrix itself otherwise."""
    if not is_sparse(w):
        return w
    key = -1 - k
    if key not in blk.fast:
        blk.fast[key] = w.tocsc()
    return blk.fast[key]


def accumulate(blk: Block, src: np.ndarray, mode: str, shapes: Mapping[str, tuple[int, ...]],
                payload_max: int) -> list[tuple[int, np.ndarray]]:
    """(delay, activation) pairs for this step's source values ``src`` (B, n_in)."""
    spec = blk.spec
    if spec.kind == "conv":
        return [(0, _conv(blk, src, shapes[spec.source], shapes[spec.target]))]
    x = src if blk.graded else (src != 0).astype(np.int64)
    out = []
    for k, w in blk.matrices():
        if mode == "event":
            acc = np.zeros((x.shape[0], w.shape[0]), dtype=np.int64)
            cols = _columns(blk, k, w)
            for i in range(x.shape[0]):
                idx = np.flatnonzero(x[i])
                if idx.size:
                    acc[i] = cols[:, idx] @ x[i, idx]
        else:
            acc = _matmul(blk, k, w, x, float(blk.arith.weight_bound) * payload_max *
                          max(1, w.shape[1]))
        if blk.graded and spec.kind != "delay_dense":   # Lava: int32 weights.dot(s) wraps
            acc = wrap32(acc)
        out.append((k, wrap32(floor_shift(acc, spec.weight_exp))))
    return out
