"""PyTorch ANN files for conversion: ``torch.export`` archives (``.pt2``).

A ``.pt2`` file (``torch.export.save(torch.export.export(model, (example,)), "m.pt2")``)
describes its graph as data (JSON) with its tensors beside it. snn2hw reads exactly that
(:mod:`snn2hw.importers.pt2_archive`; never ``torch.export.load``, which unpickles parts
of the archive) and walks the ATen graph op by op into the same layer list as the ONNX
front end (:class:`snn2hw.importers.layers.AnnModel`).

Pickled files (``torch.save(model)``, ``.pt``/``.pth``) are refused: unpickling runs
arbitrary code. A state dict needs its architecture: build the module in Python, load it
with ``torch.load(path, weights_only=True)``, and use ``ann.from_torch`` or export it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from snn2hw.errors import UnsupportedError
from snn2hw.importers import pt2_archive
from snn2hw.importers.layers import (
    MAX_GEOMETRY,
    MAX_INPUT,
    AnnModel,
    Layer,
    fold_bn,
    maxpool,
    pair,
    size_global_pools,
    values_after,
)
from snn2hw.importers.pt2_archive import EXPORT_HINT

# ATen ops that change nothing at inference (dropout in eval mode, copies, dtype no-ops).
_PASS_THROUGH = {"dropout", "clone", "contiguous", "alias", "detach"}
_FLATTEN = {"flatten", "view", "reshape", "_unsafe_view"}
_PLAIN = {"as_int", "as_ints", "as_float", "as_floats", "as_bool", "as_bools", "as_string",
          "as_strings"}


def from_exported(source: Any, *, approximate: tuple[str, ...] = ()) -> AnnModel:
    """A ``.pt2`` path (or an in-memory ExportedProgram) of a sequential ANN -> layer list.

    The archive is read as data (:mod:`snn2hw.importers.pt2_archive`): nothing in it is
    unpickled or executed, and torch is not imported for a path."""
    if isinstance(source, (str, Path)):
        label, archive = str(source), pt2_archive.read(source, str(source))
    else:                                       # an ExportedProgram the caller built
        import torch

        buffer = io.BytesIO()
        torch.export.save(source, buffer)
        buffer.seek(0)
        label, archive = "<ExportedProgram>", pt2_archive.read(buffer, "<ExportedProgram>")
    try:
        return _walk(archive, approximate)
    except pt2_archive.BROKEN as exc:           # a field of the wrong type or missing
        raise pt2_archive.broken(label, exc) from None


@dataclass(frozen=True)
class _Ref:
    """A tensor argument: the name of a graph value."""

    name: str


@dataclass(frozen=True)
class _Node:
    target: str                    # 'aten.conv2d.default'
    op: str                        # 'conv2d' (in-place 'relu_' -> 'relu'), else the target
    name: str                      # module path and node name: '0:conv2d'
    args: dict[str, Any]           # by the operator schema's argument names
    first: Any                     # the first argument (the data flowing in)
    out: str | None                # the (first) tensor it produces


def _walk(archive: pt2_archive.Archive, approximate: tuple[str, ...]) -> AnnModel:
    graph = archive.graph
    if len(archive.user_inputs) != 1:
        raise UnsupportedError(f"the exported program has {len(archive.user_inputs)} inputs; "
                               "snn2hw converts single-input sequential networks")
    current = archive.user_inputs[0]
    ann = AnnModel(_input_shape(graph["tensor_values"][current]["sizes"]))
    for node in map(_node, graph["nodes"]):
        if node.op == "_assert_tensor_metadata":
            continue
        if node.first != _Ref(current):
            raise UnsupportedError(f"op {node.target} ('{node.name}') does not continue the "
                                   "chain; only sequential networks convert", node=node.name)
        current = node.out or ""
        if node.target == "_operator.getitem" and node.args.get("index", 0) == 0:
            continue                                   # the output of a tuple-valued op
        if node.op not in _PASS_THROUGH:
            _aten(ann, archive.tensors, node, approximate)
    if not any(layer.kind in ("dense", "conv") for layer in ann.layers):
        raise UnsupportedError("the exported program has no linear or conv2d layer")
    return ann


def _input_shape(sizes: list[dict[str, Any]]) -> tuple[int, ...]:
    """The input's shape without its batch dimension (which may be symbolic)."""
    dims = [s.get("as_int") for s in sizes[1:]]
    if not all(isinstance(d, int) and d > 0 for d in dims):
        raise UnsupportedError(f"the exported program's input has dimensions {dims} after the "
                               "batch; snn2hw needs fixed positive sizes",
                               hint="Export with static shapes (no dynamic_shapes but batch).")
    if int(np.prod(dims, dtype=object)) > MAX_INPUT:
        raise UnsupportedError(f"the exported program's input has {dims} values per sample, "
                               f"more than the {MAX_INPUT} snn2hw converts",
                               hint="Convert a smaller network.")
    return tuple(dims)


def _node(raw: dict[str, Any]) -> _Node:
    target = str(raw["target"]).removeprefix("torch.ops.")
    parts = target.split(".")
    op = (parts[1].rstrip("_") or parts[1]) if parts[0] == "aten" and len(parts) > 1 else target
    inputs = raw["inputs"]
    args = {str(i["name"]): _arg(i["arg"]) for i in inputs}
    outs = raw["outputs"]
    out = _arg(outs[0]) if outs else None
    if isinstance(out, list):                          # a tuple-valued op: its first tensor
        out = out[0] if out else None
    return _Node(target, op, _name(raw), args, _arg(inputs[0]["arg"]) if inputs else None,
                 out.name if isinstance(out, _Ref) else None)


def _arg(arg: dict[str, Any]) -> Any:
    """One serialized Argument as a Python value (tensors as _Ref, other kinds by name)."""
    (kind, value), = arg.items()
    if kind == "as_none":
        return None
    if kind == "as_tensor":
        return _Ref(str(value["name"]))
    if kind == "as_tensors":
        return [_Ref(str(v["name"])) for v in value]
    if kind in ("as_sym_int", "as_sym_ints"):          # static ints, or a symbol's name
        return _sym(value) if kind == "as_sym_int" else [_sym(v) for v in value]
    if kind in _PLAIN:
        return value
    return f"<{kind}>"


def _sym(value: dict[str, Any]) -> Any:
    return value["as_int"] if "as_int" in value else f"<{value.get('as_name')}>"


def _name(raw: dict[str, Any]) -> str:
    """The module path that produced an op ('features.3'), else the graph node's name."""
    stack = str((raw.get("metadata") or {}).get("nn_module_stack") or "")
    last = stack.split(";")[-1]                        # 'key,path,type' of the innermost
    path = last.split(",", 1)[1].rsplit(",", 1)[0] if last.count(",") >= 2 else ""
    name = str(raw.get("name") or "?")
    return f"{path}:{name}" if path else name


def _value(tensors: dict[str, np.ndarray], arg: Any, node: str) -> np.ndarray | None:
    if arg is None:
        return None
    if not isinstance(arg, _Ref) or arg.name not in tensors:
        raise UnsupportedError(f"'{getattr(arg, 'name', arg)}' is computed, not a stored "
                               "parameter", node=node,
                               hint="Only sequential layers with constant weights convert.")
    return tensors[arg.name]


def _aten(ann: AnnModel, tensors: dict[str, np.ndarray], node: _Node,
          approximate: tuple[str, ...]) -> None:
    op, a, name = node.op, node.args, node.name
    prev = ann.layers[-1] if ann.layers else None
    if op == "linear":
        w, b = _value(tensors, a.get("weight"), name), _value(tensors, a.get("bias"), name)
        ann.layers.append(Layer("dense", name, _rank(w, 2, name),
                                np.zeros(len(w)) if b is None else b))
    elif op == "conv2d":
        w, b = _value(tensors, a.get("weight"), name), _value(tensors, a.get("bias"), name)
        if isinstance(a.get("padding"), str) or pair(a.get("dilation"), 1) != (1, 1):
            raise UnsupportedError(f"conv2d '{name}' is dilated or pads by name", node=name,
                                   hint="Use numeric padding and dilation 1.")
        ann.layers.append(Layer("conv", name, _rank(w, 4, name),
                                np.zeros(len(w)) if b is None else b,
                                _geometry(a.get("stride"), 1, 1, name),
                                _geometry(a.get("padding"), 0, 0, name),
                                _geometry([a.get("groups") or 1], 1, 1, name)[0]))
    elif op == "relu":
        ann.layers.append(Layer("relu", name))
    elif op in ("batch_norm", "_native_batch_norm_legit_no_training"):
        gamma, beta, mean, var = (_value(tensors, a.get(k), name) for k in
                                  ("weight", "bias", "running_mean", "running_var"))
        if mean is None or var is None:
            raise UnsupportedError(f"batch_norm '{name}' has no running statistics", node=name,
                                   hint="Track running statistics (track_running_stats=True).")
        gamma = np.ones_like(mean) if gamma is None else gamma
        beta = np.zeros_like(mean) if beta is None else beta
        scale = gamma / np.sqrt(var + float(a["eps"]))
        fold_bn(prev, name, scale, beta - mean * scale)
    elif op in ("avg_pool2d", "max_pool2d", "max_pool2d_with_indices"):
        if op != "avg_pool2d":
            maxpool(name, op, approximate)
        if (pair(a.get("padding"), 0) != (0, 0) or a.get("ceil_mode")
                or a.get("divisor_override") is not None
                or pair(a.get("dilation"), 1) != (1, 1)):
            raise UnsupportedError(f"pooling '{name}' pads, rounds up, dilates or overrides "
                                   "its divisor", node=name, hint="Use plain unpadded pooling.")
        k = _geometry(a.get("kernel_size"), 1, 1, name)
        ann.layers.append(Layer("avgpool", name, kernel=k,
                                stride=_geometry(a.get("stride") or a.get("kernel_size"), 1,
                                                 1, name)))
    elif op in ("adaptive_avg_pool2d", "mean") and _global(op, a):
        ann.layers.append(Layer("avgpool", name, kernel=(0, 0)))
        if op == "mean" and not a.get("keepdim"):      # mean without keepdim also flattens
            _sized(ann, name)
            ann.layers.append(Layer("flatten", name + ".flatten"))
    elif op in _FLATTEN and _flattens(op, a):
        ann.layers.append(Layer("flatten", name))
    else:
        raise UnsupportedError(f"op {node.target} ('{name}') is not supported for conversion",
                               node=name, hint="Supported: linear, conv2d, relu, batch_norm, "
                               "avg_pool2d, adaptive_avg_pool2d(1), flatten, dropout.")
    _sized(ann, name)


def _rank(w: np.ndarray | None, rank: int, name: str) -> np.ndarray:
    if w is None or w.ndim != rank or 0 in w.shape:
        raise UnsupportedError(f"layer '{name}' has a weight of shape "
                               f"{None if w is None else w.shape}, not a {rank}-D tensor",
                               node=name, hint="Export the model with torch.export.save.")
    return w


def _geometry(values: Any, default: int, low: int, name: str) -> tuple[int, int]:
    """A stride, padding, kernel or group count: integers from ``low`` to MAX_GEOMETRY."""
    both = pair(values, default)
    if not all(low <= v <= MAX_GEOMETRY for v in both):
        raise UnsupportedError(f"layer '{name}' has stride, padding, kernel or groups {both}, "
                               f"outside {low}..{MAX_GEOMETRY}", node=name,
                               hint="Export the model with torch.export.save.")
    return both


def _sized(ann: AnnModel, name: str) -> None:
    """Size global pools, and check every weight fits the shape flowing into it."""
    if values_after(ann) > MAX_INPUT:
        raise UnsupportedError(f"layer '{name}' produces {values_after(ann)} values per "
                               f"sample, more than the {MAX_INPUT} snn2hw converts", node=name,
                               hint="Convert a smaller network.")
    try:
        size_global_pools(ann)
    except (ValueError, ZeroDivisionError) as exc:
        raise UnsupportedError(f"layer '{name}' does not fit the shape flowing into it "
                               f"({' '.join(str(exc).split())[:120]})", node=name,
                               hint="Export the model with torch.export.save.") from None


def _flattens(op: str, a: dict[str, Any]) -> bool:
    """flatten(x, 1[, -1]) or view/reshape(x, [B, -1]) keep the batch and flatten the rest."""
    if op == "flatten":
        end = a.get("end_dim")
        return int(a.get("start_dim") or 0) == 1 and int(-1 if end is None else end) == -1
    size = a.get("shape", a.get("size"))
    return isinstance(size, list) and len(size) == 2


def _global(op: str, a: dict[str, Any]) -> bool:
    if op == "adaptive_avg_pool2d":
        return pair(a.get("output_size"), 1) == (1, 1)
    dims = a.get("dim")                                 # mean over H and W
    return isinstance(dims, list) and sorted(int(d) % 4 for d in dims) == [2, 3]


__all__ = ["EXPORT_HINT", "from_exported"]
