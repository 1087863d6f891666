"""Linear maps between populations, kept in the form they have (no dense matrix for a
convolution): the algebra behind ``structure.analyse``.

A map from one source population (``n_src`` neurons, flat NIR order) to a node's
output is one of:

* ``eye``: the source itself (no node yet);
* ``pool``: the source through one exact sum/average pool (kernel == stride, no
  padding, the map divisible by the stride), kept only so that a following
  convolution can absorb it;
* ``conv``: one convolution of the source (kernel, geometry and the source shape), which
  a target with shared kernels holds as it is;
* ``sparse``: a ``scipy.sparse.csr_matrix`` (n_out, n_src) -- convolutions and pools
  unrolled, one entry per synapse;
* ``dense``: an ``ndarray`` (n_out, n_src) -- after an Affine/Linear.

A pool followed by a convolution is one convolution of the source: with pool kernel and
stride ``s`` and a conv of kernel ``k``, stride ``c`` and padding ``p``, the composed
kernel repeats every tap ``s x s`` times (size ``k*s``), its stride is ``c*s`` and its
padding ``p*s``. Everything is linear in the number of synapses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import nir
import numpy as np
import scipy.sparse as sp

from snn2hw.refops import as_tuple as _tuple
from snn2hw.refops import pad_amounts as _pad_amounts


@dataclass(frozen=True, eq=False)
class Lin:
    kind: str                        # eye | pool | conv | sparse | dense
    n_src: int
    src_shape: tuple[int, ...]
    mat: Any = None                  # csr (sparse) or ndarray (dense)
    node: Any = None                 # pool / conv node (pool, conv)

    def csr(self) -> sp.csr_matrix:
        if self.kind == "eye":
            return sp.identity(self.n_src, format="csr")
        if self.kind in ("pool", "conv"):
            return conv_matrix(self.node, self.src_shape)
        if self.kind == "dense":
            return sp.csr_matrix(self.mat)
        return self.mat

    def explicit(self) -> Any:
        """The map as a matrix: dense stays dense, everything else sparse."""
        return self.mat if self.kind == "dense" else self.csr()


def _geometry(node: Any, shape: tuple[int, ...]) -> tuple[np.ndarray, tuple[int, int],
                                                          list[tuple[int, int]],
                                                          tuple[int, int], int]:
    """(kernel (O, C/g, kh, kw), stride, pads, dilation, groups) of a conv or pool on
    an input of ``shape`` (C, H, W) or (C, L)."""
    if isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
        k = _tuple(node.kernel_size, 2)
        w = np.ones((shape[0], 1, *k))
        if isinstance(node, nir.AvgPool2d):
            w = w / (k[0] * k[1])
        return w, _tuple(node.stride, 2), [(p, p) for p in _tuple(node.padding, 2)], \
            (1, 1), shape[0]
    w = np.asarray(node.weight, dtype=float)
    if w.ndim == 3:
        w = w[:, :, None, :]
        stride, dil = (1, *_tuple(node.stride, 1)), (1, *_tuple(node.dilation, 1))
        pads = [(0, 0), *_pad_amounts(node, w.shape[3:], dil[1:])]
    else:
        stride, dil = _tuple(node.stride, 2), _tuple(node.dilation, 2)
        pads = _pad_amounts(node, w.shape[2:], dil)
    return w, stride, pads, dil, int(np.asarray(node.groups))


def conv_matrix(node: Any, shape: tuple[int, ...]) -> sp.csr_matrix:
    """The convolution or pool ``node`` on input ``shape`` as a sparse (n_out, n_in)
    matrix in NIR flat order, one entry per synapse (PyTorch cross-correlation, as the
    float reference computes it)."""
    w, (sy, sx), pads, (dy, dx), groups = _geometry(node, shape)
    c_in, h, wd = (shape[0], 1, shape[1]) if len(shape) == 2 else shape
    o, cg, kh, kw = w.shape
    ho = (h + sum(pads[0]) - dy * (kh - 1) - 1) // sy + 1
    wo = (wd + sum(pads[1]) - dx * (kw - 1) - 1) // sx + 1
    oo, yy, xx, cc, ky, kx = np.meshgrid(np.arange(o), np.arange(ho), np.arange(wo),
                                         np.arange(cg), np.arange(kh), np.arange(kw),
                                         indexing="ij", sparse=True)
    iy = yy * sy - pads[0][0] + ky * dy
    ix = xx * sx - pads[1][0] + kx * dx
    ci = (oo // (o // groups)) * cg + cc
    full = np.broadcast_shapes(oo.shape, iy.shape, ix.shape, ci.shape)
    iy, ix, ci = (np.broadcast_to(a, full) for a in (iy, ix, ci))
    ok = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < wd)
    vals = np.broadcast_to(w[:, None, None], full)[ok]
    rows = np.broadcast_to((oo * ho + yy) * wo + xx, full)[ok]
    cols = (ci[ok] * h + iy[ok]) * wd + ix[ok]
    keep = vals != 0
    return sp.csr_matrix((vals[keep], (rows[keep], cols[keep])),
                         shape=(o * ho * wo, c_in * h * wd))


def _exact_pool(node: Any, shape: tuple[int, ...]) -> bool:
    if len(shape) != 3 or not isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
        return False
    k, s, p = (_tuple(getattr(node, f), 2) for f in ("kernel_size", "stride", "padding"))
    return k == s and p == (0, 0) and shape[1] % s[0] == 0 and shape[2] % s[1] == 0


def _compose(pool: Any, conv: nir.Conv2d, shape: tuple[int, ...]) -> nir.Conv2d | None:
    """One Conv2d equal to ``conv(pool(x))`` (see the module docstring), or None."""
    s = _tuple(pool.stride, 2)
    w, stride, pads, dil, groups = _geometry(conv, (shape[0], shape[1] // s[0],
                                                    shape[2] // s[1]))
    pw = _geometry(pool, shape)[0][0, 0, 0, 0]
    if dil != (1, 1) or any(a != b for a, b in pads) or np.asarray(conv.weight).ndim != 4:
        return None
    kernel = np.repeat(np.repeat(w, s[0], axis=2), s[1], axis=3) * pw
    return nir.Conv2d(None, kernel, (stride[0] * s[0], stride[1] * s[1]),
                      (pads[0][0] * s[0], pads[1][0] * s[1]), 1, groups,
                      np.zeros(kernel.shape[0]))


def apply(node: Any, lin: Lin, in_shape: tuple[int, ...]) -> Lin:
    """The map ``node(lin(x))`` without the node's bias."""
    n, shape = lin.n_src, lin.src_shape
    if isinstance(node, nir.Flatten):
        return lin if lin.kind in ("eye", "sparse", "dense") else Lin("sparse", n, shape,
                                                                      lin.csr())
    if isinstance(node, (nir.Affine, nir.Linear)):
        w = np.asarray(node.weight, dtype=float)
        if lin.kind == "eye":
            return Lin("dense", n, shape, w.copy())
        m = lin.explicit()
        out = w @ m if lin.kind == "dense" else np.asarray((m.T @ w.T).T)
        return Lin("dense", n, shape, out)
    if isinstance(node, nir.Scale):
        s = np.broadcast_to(np.asarray(node.scale, dtype=float).ravel(),
                            (int(np.prod(in_shape)),))
        if lin.kind == "dense":
            return Lin("dense", n, shape, s[:, None] * lin.mat)
        return Lin("sparse", n, shape, sp.csr_matrix(sp.diags(s) @ lin.csr()))
    if isinstance(node, (nir.SumPool2d, nir.AvgPool2d)) and lin.kind == "eye" \
            and _exact_pool(node, in_shape):
        return Lin("pool", n, shape, node=node)
    if isinstance(node, nir.Conv2d) and lin.kind == "eye":
        return Lin("conv", n, shape, node=node)
    if isinstance(node, nir.Conv2d) and lin.kind == "pool":
        fused = _compose(lin.node, node, lin.src_shape)
        if fused is not None:
            return Lin("conv", n, shape, node=fused)
    if isinstance(node, (nir.Conv1d, nir.Conv2d, nir.SumPool2d, nir.AvgPool2d)):
        op = conv_matrix(node, in_shape)
        m = lin.explicit()
        if lin.kind == "dense":
            return Lin("dense", n, shape, np.asarray(op @ m))
        return Lin("sparse", n, shape, sp.csr_matrix(op @ m))
    raise TypeError(type(node).__name__)


def add(a: Lin, b: Lin) -> Lin:
    """Two paths from the same source summed."""
    if a.kind == "dense" or b.kind == "dense":
        return Lin("dense", a.n_src, a.src_shape,
                   np.asarray(a.explicit() + b.explicit()))
    return Lin("sparse", a.n_src, a.src_shape, sp.csr_matrix(a.csr() + b.csr()))


__all__ = ["Lin", "add", "apply", "conv_matrix"]
