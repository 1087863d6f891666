"""Weight sharing: each block's weights restricted to K shared values per scope.

``scope="layer"``: one codebook per block; ``scope="neuron"``: one per post-synaptic
neuron (row). Values are chosen by 1-D k-means (Lloyd, quantile start) on the
block's integer mantissas, or spread evenly (``method="uniform"``), then put back
on the block's weight grid. Absent synapses (zero weights) stay absent (index -1).
Convolution blocks are already shared (one kernel for all positions) and keep it.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from snn2hw_emulator.family import LAVA, LoihiLif

from snn2hw.errors import UserInputError
from snn2hw.options import SHARE_METHODS, SHARE_SCOPES
from snn2hw.passes import current_bias
from snn2hw.passes.hwmodel import HwBlock, HwNet, dense
from snn2hw.passes.integers import grid

SCOPES = SHARE_SCOPES        # the names Options and the CLI accept
METHODS = SHARE_METHODS


def kmeans_1d(values: np.ndarray, k: int, iterations: int = 30) -> np.ndarray:
    """Sorted centres of a 1-D k-means of ``values`` (fewer if there are fewer values)."""
    uniq = np.unique(values)
    if uniq.size <= k:
        return uniq.astype(float)
    centres = np.quantile(values, (np.arange(k) + 0.5) / k)
    for _ in range(iterations):
        edges = (centres[1:] + centres[:-1]) / 2
        label = np.searchsorted(edges, values)
        sums = np.bincount(label, weights=values, minlength=k)
        counts = np.bincount(label, minlength=k)
        new = np.where(counts > 0, sums / np.maximum(counts, 1), centres)
        if np.allclose(new, centres):
            break
        centres = np.sort(new)
    return centres


def _codebook(values: np.ndarray, k: int, method: str, lo: int, hi: int) -> np.ndarray:
    if method == "uniform":
        return np.unique(np.rint(np.linspace(values.min(), values.max(), k))).clip(lo, hi)
    return np.unique(np.rint(kmeans_1d(values.astype(float), k)).clip(lo, hi))


def _assign(values: np.ndarray, book: np.ndarray) -> np.ndarray:
    edges = (book[1:] + book[:-1]) / 2
    return np.searchsorted(edges, values)


def share_block(block: HwBlock, k: int, scope: str, method: str, f: LoihiLif = LAVA
                ) -> HwBlock:
    if block.kind == "conv":
        return block
    lo, hi, step = grid(block.sign_mode, block.num_weight_bits, f)
    m = dense(block.weights) // 2**step
    present = m != 0
    rows = [m[present]] if scope == "layer" else [r[p] for r, p in zip(m, present)]
    books = [_codebook(r, k, method, lo, hi) if r.size else np.zeros(1) for r in rows]
    width = max(b.size for b in books)
    table = np.zeros((len(books), width), dtype=np.int64)
    for i, b in enumerate(books):
        table[i, :b.size] = b
        table[i, b.size:] = b[-1]
    index = np.full(m.shape, -1, dtype=np.int64)
    if scope == "layer":
        index[present] = _assign(m[present], books[0].astype(float))
    else:
        for i, (r, p) in enumerate(zip(m, present)):
            index[i, p] = _assign(r[p], books[i].astype(float))
    return replace(block, kind="codebook", weights=index, codebook=table * 2**step)


def share(net: HwNet, k: int, scope: str = "layer", method: str = "kmeans",
          f: LoihiLif = LAVA) -> HwNet:
    """Every block's weights on K shared values per scope, on the grid of ``f`` (the
    target's family record; default: Lava's)."""
    if k < 1:
        raise UserInputError(f"--share {k}: a codebook needs at least one value")
    if scope not in SCOPES or method not in METHODS:
        raise UserInputError(f"weight sharing scope {scope!r} / method {method!r} unknown; "
                             f"use scope in {SCOPES} and method in {METHODS}")
    blocks = tuple(b if current_bias.is_source(b.source) else      # biases keep their values
                   share_block(b, k, scope, method, f) for b in net.blocks)
    report = dict(net.report)
    report["share"] = {"values": k, "scope": scope, "method": method}
    return net.with_(blocks=blocks, report=report)


__all__ = ["METHODS", "SCOPES", "kmeans_1d", "share", "share_block"]
