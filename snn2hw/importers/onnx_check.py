"""Validation of ONNX models before ann.py builds layers from them (``inspect`` and
``import`` alike).

:func:`check` runs on the loaded, shape-inferred model and refuses with one line naming
the thing, the limit and a way out:

* an opset of the default domain outside ``OPSET_MIN`` .. the installed onnx package's
  newest, or a node from another domain (custom ops);
* an input whose dimensions after the batch are not fixed positive numbers (0, negative,
  symbolic ``dim_param``) or hold more than ``MAX_INPUT`` values per sample (a memory
  estimate, before anything of that size is allocated);
* an initializer or Constant tensor of a type other than float16/32/64 or (u)int8..64,
  or one with NaN or infinite values;
* Conv and pooling geometry: strides, kernels, dilations and group >= 1, pads >= 0, all
  at most ``MAX_GEOMETRY``.

:func:`sized` runs after each node is added: the values per sample after it stay within
``MAX_INPUT``, and the weights fit the shape flowing into them (a Gemm or MatMul weight of
the wrong shape is named, not a numpy ValueError); :func:`misfit` is the error for a node
whose initializers do not fit it at all (a 1-D Gemm weight, a bias of the wrong length).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from snn2hw.errors import ModelFileError, UnsupportedError
from snn2hw.importers.layers import (
    MAX_GEOMETRY,
    MAX_INPUT,
    AnnModel,
    size_global_pools,
    values_after,
)

OPSET_MIN = 9                        # BatchNormalization without 'spatial', Reshape by input
_HINT = "Re-export it (torch.onnx.export with a fixed input size) and check it with onnx.checker."
_GEOMETRY = {"strides": 1, "kernel_shape": 1, "dilations": 1, "group": 1, "pads": 0}


def _tensor_types() -> dict[int, str]:
    from onnx import TensorProto as T

    return {T.FLOAT: "float32", T.DOUBLE: "float64", T.FLOAT16: "float16",
            T.INT8: "int8", T.INT16: "int16", T.INT32: "int32", T.INT64: "int64",
            T.UINT8: "uint8", T.UINT16: "uint16", T.UINT32: "uint32", T.UINT64: "uint64"}


def _opset(model: Any) -> None:
    import onnx

    newest = onnx.defs.onnx_opset_version()
    versions = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    version = versions.get("ai.onnx")
    if version is None or not OPSET_MIN <= version <= newest:
        raise UnsupportedError(f"the ONNX model uses opset {version}; snn2hw converts opsets "
                               f"{OPSET_MIN}..{newest}", hint="Re-export it with "
                               "torch.onnx.export(..., opset_version=17).")
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx"):
            raise UnsupportedError(f"{node.op_type} node '{node.name or node.output[0]}' is "
                                   f"from the custom domain '{node.domain}'",
                                   node=node.name or None, hint="Export standard ONNX ops only.")


def _tensor(where: str, t: Any) -> None:
    from onnx import TensorProto, numpy_helper

    types = _tensor_types()
    if t.data_type not in types:
        name = TensorProto.DataType.Name(t.data_type) if t.data_type in \
            TensorProto.DataType.values() else str(t.data_type)
        raise ModelFileError(f"{where} '{t.name}' has type {name}; snn2hw reads "
                             f"{', '.join(types.values())}", hint=_HINT)
    values = numpy_helper.to_array(t)
    if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
        raise ModelFileError(f"{where} '{t.name}' holds NaN or infinite values", hint=_HINT)


def _input(model: Any, init: set[str]) -> None:
    for inp in model.graph.input:
        if inp.name in init:
            continue
        dims = list(inp.type.tensor_type.shape.dim)[1:]
        shown = [d.dim_param or d.dim_value for d in dims]
        if not dims or any(d.dim_param or d.dim_value <= 0 for d in dims):
            raise UnsupportedError(f"input '{inp.name}' has dimensions {shown} after the batch; "
                                   "snn2hw needs fixed positive sizes (no 0, negative or "
                                   "symbolic dimension)", hint="Export with a fixed input size "
                                   "(only the batch may vary).")
        n = int(np.prod([d.dim_value for d in dims], dtype=object))
        if n > MAX_INPUT:
            raise UnsupportedError(f"input '{inp.name}' has {shown}: {n} values per sample "
                                   f"({n * 8 / 2**30:.3g} GiB as float64), more than the "
                                   f"{MAX_INPUT} snn2hw converts",
                                   hint="Convert a smaller network.")


def _geometry(node: Any) -> None:
    import onnx

    name = node.name or node.output[0]
    for a in node.attribute:
        if a.name not in _GEOMETRY:
            continue
        value = onnx.helper.get_attribute_value(a)
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        low = _GEOMETRY[a.name]
        if not all(isinstance(v, int) and low <= v <= MAX_GEOMETRY for v in values):
            raise UnsupportedError(f"{node.op_type} node '{name}' has {a.name} {values}; each "
                                   f"must lie in {low}..{MAX_GEOMETRY}", node=name, hint=_HINT)


def check(model: Any) -> None:
    """Raise for the first part of ``model`` that ann.py must not convert (module doc)."""
    _opset(model)
    init = {t.name for t in model.graph.initializer}
    for t in model.graph.initializer:
        _tensor("initializer", t)
    for node in model.graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    _tensor("Constant", a.t)
        _geometry(node)
    _input(model, init)


def sized(ann: AnnModel, op: str, name: str) -> None:
    """After node ``name`` was added: bound the values per sample, size global pools and
    check that every weight fits the shape flowing into it (ann.py calls this)."""
    last = ann.layers[-1] if ann.layers else None
    if last is not None and last.kind == "dense" and np.ndim(last.weight) != 2:
        raise UnsupportedError(f"{op} node '{name}' has a {np.ndim(last.weight)}-D weight; a "
                               "dense layer needs a 2-D matrix", node=name,
                               hint="Export the layer as Gemm or MatMul with a 2-D weight.")

    try:
        n = values_after(ann)
    except (ValueError, IndexError, ZeroDivisionError):
        n = 0                                      # shapes are checked just below
    if n > MAX_INPUT:
        raise UnsupportedError(f"{op} node '{name}' produces {n} values per sample, more than "
                               f"the {MAX_INPUT} snn2hw converts", node=name,
                               hint="Convert a smaller network.")
    try:
        size_global_pools(ann)
    except (ValueError, ZeroDivisionError, IndexError) as exc:
        layer = ann.layers[-1] if ann.layers else None
        if layer is not None and layer.kind == "dense" and layer.weight is not None:
            n_in = values_after(replace(ann, layers=ann.layers[:-1]))
            what = (f"has weights (out, in) = {layer.weight.shape} taking "
                    f"{layer.weight.shape[1]} inputs, but {n_in} values flow into it")
        else:
            what = f"does not fit the shape flowing into it ({' '.join(str(exc).split())[:80]})"
        raise UnsupportedError(f"{op} node '{name}' {what}", node=name,
                               hint="Check the exported weight shapes (a transposed weight?) "
                                    "and re-export the model.") from None


def misfit(op: str, name: str, exc: Exception) -> UnsupportedError:
    """The error for a node whose initializers do not fit it (a 1-D Gemm weight, a bias of
    the wrong length): numpy's message, shortened, with the node's name."""
    return UnsupportedError(f"{op} node '{name}' has initializers whose shapes do not fit it "
                            f"({' '.join(str(exc).split())[:100]})", node=name,
                            hint="Check the exported weight shapes and re-export the model.")
