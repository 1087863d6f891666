"""PyTorch ANN files for conversion: ``torch.export`` archives (``.pt2``).

A ``.pt2`` file (``torch.export.save(torch.export.export(model, (example,)), "m.pt2")``)
describes its graph as data (JSON) with its tensors beside it, so it can be read without
running pickled Python code. Its ATen graph is walked op by op into the same layer list as
the ONNX front end (:class:`snn2hw.importers.ann.AnnModel`).

Pickled files (``torch.save(model)``, ``.pt``/``.pth``) are refused: unpickling runs
arbitrary code. A state dict needs its architecture: build the module in Python, load it
with ``torch.load(path, weights_only=True)``, and use ``ann.from_torch`` or export it.
"""

from __future__ import annotations

import functools
import operator
from pathlib import Path
from typing import Any

import numpy as np

from snn2hw.errors import ModelFileError, UnsupportedError
from snn2hw.importers.ann import AnnModel, Layer, _fold_bn, _maxpool, _pair, _size_global_pools

EXPORT_HINT = ("Save it with torch.export.save(torch.export.export(model.eval(), (example,)), "
               "'model.pt2'), or export ONNX with torch.onnx.export(..., dynamo=False).")

# ATen ops that change nothing at inference (dropout in eval mode, copies, dtype no-ops).
_PASS_THROUGH = {"dropout", "clone", "contiguous", "alias", "detach"}
_FLATTEN = {"flatten", "view", "reshape", "_unsafe_view"}


def load(path: str | Path) -> Any:
    """Read a ``.pt2`` archive into an ExportedProgram (errors name the file)."""
    import torch

    p = Path(path)
    try:
        return torch.export.load(str(p))
    except Exception as exc:    # torch raises RuntimeError, KeyError, zipfile errors...
        raise ModelFileError(f"'{p}' is not a readable torch.export archive "
                             f"({type(exc).__name__}: {' '.join(str(exc).split())[:160]})",
                             hint=EXPORT_HINT) from None


def _op(node: Any) -> str:
    """'aten.conv2d.default' -> 'conv2d' (in-place variants 'relu_' -> 'relu')."""
    name = str(node.target).split(".")
    return (name[1] if len(name) > 1 else name[0]).rstrip("_") or name[-1]


def _value(gm: Any, arg: Any) -> np.ndarray | None:
    if arg is None:
        return None
    if getattr(arg, "op", None) != "get_attr":
        raise UnsupportedError(f"'{arg}' is computed, not a stored parameter", node=str(arg),
                               hint="Only sequential layers with constant weights convert.")
    tensor = functools.reduce(getattr, arg.target.split("."), gm)
    return tensor.detach().double().numpy().copy()


def from_exported(ep: Any, *, approximate: tuple[str, ...] = ()) -> AnnModel:
    """An ExportedProgram (or a ``.pt2`` path) of a sequential ANN -> layer list."""
    if isinstance(ep, (str, Path)):
        ep = load(ep)
    gm = ep.module()
    data = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if len(data) != 1:
        raise UnsupportedError(f"the exported program has {len(data)} inputs; snn2hw converts "
                               "single-input sequential networks")
    shape = tuple(int(s) for s in data[0].meta["val"].shape[1:])
    ann, current = AnnModel(shape), data[0]
    for node in gm.graph.nodes:
        if node.op != "call_function" or _op(node) == "_assert_tensor_metadata":
            continue
        if not node.args or node.args[0] is not current:
            raise UnsupportedError(f"op {node.target} ('{_name(node)}') does not continue the "
                                   "chain; only sequential networks convert", node=_name(node))
        current = node
        if node.target is operator.getitem and node.args[1] == 0:
            continue                                   # the output of a tuple-valued op
        op = _op(node)
        if op not in _PASS_THROUGH:
            _aten(ann, gm, op, node, approximate)
    if not any(layer.kind in ("dense", "conv") for layer in ann.layers):
        raise UnsupportedError("the exported program has no linear or conv2d layer")
    return ann


def _name(node: Any) -> str:
    """The module path that produced an op ('features.3'), else the graph node's name."""
    stack = node.meta.get("nn_module_stack") or {}
    path = list(stack.values())[-1][0] if stack else ""
    return f"{path}:{node.name}" if path else node.name


def _aten(ann: AnnModel, gm: Any, op: str, node: Any, approximate: tuple[str, ...]) -> None:
    a, name = list(node.args) + [None] * 9, _name(node)
    prev = ann.layers[-1] if ann.layers else None
    if op == "linear":
        w = _value(gm, a[1])
        b = _value(gm, a[2])
        ann.layers.append(Layer("dense", name, w, np.zeros(len(w)) if b is None else b))
    elif op == "conv2d":
        w, b = _value(gm, a[1]), _value(gm, a[2])
        if isinstance(a[4], str) or _pair(a[5], 1) != (1, 1):
            raise UnsupportedError(f"conv2d '{name}' is dilated or pads by name", node=name,
                                   hint="Use numeric padding and dilation 1.")
        ann.layers.append(Layer("conv", name, w, np.zeros(len(w)) if b is None else b,
                                _pair(a[3], 1), _pair(a[4], 0), int(a[6] or 1)))
    elif op == "relu":
        ann.layers.append(Layer("relu", name))
    elif op in ("batch_norm", "_native_batch_norm_legit_no_training"):
        gamma, beta, mean, var = (_value(gm, a[k]) for k in (1, 2, 3, 4))
        eps = float(a[7] if op == "batch_norm" else a[6])
        scale = gamma / np.sqrt(var + eps)
        _fold_bn(prev, name, scale, beta - mean * scale)
    elif op in ("avg_pool2d", "max_pool2d", "max_pool2d_with_indices"):
        if op != "avg_pool2d":
            _maxpool(name, op, approximate)
        if _pair(a[3], 0) != (0, 0) or a[4] or (op == "avg_pool2d" and a[6] is not None):
            raise UnsupportedError(f"pooling '{name}' pads, rounds up or overrides its "
                                   "divisor", node=name, hint="Use plain unpadded pooling.")
        k = _pair(a[1], 1)
        ann.layers.append(Layer("avgpool", name, stride=_pair(a[2] or a[1], 1), kernel=k))
    elif op in ("adaptive_avg_pool2d", "mean") and _global(op, a):
        ann.layers.append(Layer("avgpool", name, kernel=(0, 0)))
        if op == "mean" and not a[2]:                  # mean without keepdim also flattens
            _size_global_pools(ann)
            ann.layers.append(Layer("flatten", name + ".flatten"))
    elif op in _FLATTEN and _flattens(op, a):
        ann.layers.append(Layer("flatten", name))
    else:
        raise UnsupportedError(f"op {node.target} ('{name}') is not supported for conversion",
                               node=name, hint="Supported: linear, conv2d, relu, batch_norm, "
                               "avg_pool2d, adaptive_avg_pool2d(1), flatten, dropout.")
    _size_global_pools(ann)


def _flattens(op: str, a: list[Any]) -> bool:
    """flatten(x, 1[, -1]) or view/reshape(x, [B, -1]) keep the batch and flatten the rest."""
    if op == "flatten":
        return int(a[1] or 0) == 1 and int(-1 if a[2] is None else a[2]) == -1
    return len(a[1]) == 2


def _global(op: str, a: list[Any]) -> bool:
    if op == "adaptive_avg_pool2d":
        return _pair(a[1], 1) == (1, 1)
    return sorted(int(d) % 4 for d in a[1]) == [2, 3]          # mean over H and W


__all__ = ["EXPORT_HINT", "from_exported", "load"]
