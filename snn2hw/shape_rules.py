"""Shape rules, one per primitive (the ``shape`` column of :mod:`snn2hw.primitives`).

Each rule takes the node and the shape arriving on its input (None when no
predecessor has been visited yet) and returns (input_shape, output_shape).
Shapes exclude batch and time. Conv follows PyTorch's output formula. Graph-wide
inference (visiting nodes in execution order, checking every edge) is
:func:`snn2hw.shapes.infer_shapes`.
"""

from __future__ import annotations

from collections.abc import Callable

import nir
import numpy as np

from snn2hw.errors import GraphError

Shape = tuple[int, ...]
Rule = Callable[[nir.NIRNode, Shape | None], tuple[Shape, Shape]]


def _t(x: object) -> Shape:
    return tuple(int(v) for v in np.atleast_1d(np.asarray(x)).ravel())


def io(node: nir.NIRNode, arriving: Shape | None) -> tuple[Shape, Shape]:
    """Input and Output: the declared type."""
    shape = _t(next(iter(node.output_type.values())))
    return shape, shape


def dense(node: nir.NIRNode, arriving: Shape | None) -> tuple[Shape, Shape]:
    """Affine and Linear: weight (..., out, in)."""
    w = np.asarray(node.weight)
    if w.ndim < 2:
        raise GraphError(f"weight has {w.ndim} dimension(s); expected (out, in)")
    return tuple(w.shape[:-2]) + (w.shape[-1],), tuple(w.shape[:-2]) + (w.shape[-2],)


def elementwise(field: str) -> Rule:
    """Nodes shaped like their parameter ``field`` (a scalar broadcasts)."""
    def rule(node: nir.NIRNode, arriving: Shape | None) -> tuple[Shape, Shape]:
        shape = tuple(np.shape(getattr(node, field)))
        if shape == () and arriving is not None:
            shape = arriving  # a scalar parameter broadcasts over the population
        return shape, shape
    return rule


def _pair(v: object, n: int) -> tuple[int, ...]:
    arr = np.atleast_1d(np.asarray(v)).astype(int).ravel()
    return tuple(int(arr[0]) for _ in range(n)) if arr.size == 1 else tuple(int(x) for x in arr)


def _conv_out(size: Shape, kernel: Shape, stride: Shape, pad: Shape, dil: Shape) -> Shape:
    return tuple((s + 2 * p - d * (k - 1) - 1) // st + 1
                 for s, k, st, p, d in zip(size, kernel, stride, pad, dil))


def _conv_padding(node: nir.NIRNode, kernel: Shape, dil: Shape, n: int) -> Shape:
    if isinstance(node.padding, str):
        if node.padding == "valid":
            return (0,) * n
        if node.padding == "same":
            return tuple(d * (k - 1) // 2 for k, d in zip(kernel, dil))
        raise GraphError(f"padding '{node.padding}' is not 'same', 'valid' or a number")
    return _pair(node.padding, n)


def conv(n: int) -> Rule:
    """Conv1d (n = 1) and Conv2d (n = 2)."""
    def rule(node: nir.NIRNode, arriving: Shape | None) -> tuple[Shape, Shape]:
        w = np.asarray(node.weight)
        groups = int(np.asarray(node.groups))
        channels = w.shape[1] * groups  # NIR's own inference forgets groups (spec §1.2)
        if arriving is not None:
            spatial = arriving[1:]
        elif node.input_shape is not None:
            spatial = _pair(node.input_shape, n)
        else:
            raise GraphError("the input size is unknown", hint="Set input_shape on the node.")
        kernel, dil = tuple(w.shape[2:]), _pair(node.dilation, n)
        stride = _pair(node.stride, n)
        if isinstance(node.padding, str) and node.padding == "same":
            if any(s != 1 for s in stride):  # PyTorch forbids it; NIR mis-sizes it (§1.2)
                raise GraphError("padding='same' with stride > 1 is undefined",
                                 hint="Give the padding as numbers.")
            return (channels, *spatial), (w.shape[0], *spatial)
        pad = _conv_padding(node, kernel, dil, n)
        out = _conv_out(tuple(spatial), kernel, stride, pad, dil)
        return (channels, *spatial), (w.shape[0], *out)
    return rule


def pool(node: nir.NIRNode, arriving: Shape | None) -> tuple[Shape, Shape]:
    """SumPool2d and AvgPool2d."""
    if arriving is None:
        raise GraphError("pooling needs an input shape from its predecessor")
    kernel = _pair(node.kernel_size, 2)
    out = _conv_out(arriving[1:], kernel, _pair(node.stride, 2), _pair(node.padding, 2), (1, 1))
    return arriving, (arriving[0], *out)


def flatten(node: nir.NIRNode, arriving: Shape | None) -> tuple[Shape, Shape]:
    shape = arriving if arriving is not None else _t(node.input_type["input"])
    nd = len(shape)
    start, end = node.start_dim % nd, node.end_dim % nd
    if start > end:
        raise GraphError(f"start_dim {node.start_dim} is after end_dim {node.end_dim}")
    flat = int(np.prod(shape[start:end + 1]))
    return shape, (*shape[:start], flat, *shape[end + 1:])


__all__ = ["Rule", "Shape", "conv", "dense", "elementwise", "flatten", "io", "pool"]
