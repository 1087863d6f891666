"""The ONNX front end of ANN-to-SNN conversion: an ``.onnx`` file (parsed with the ``onnx``
package: checker and shape inference first, then onnx_check.py) -> the layer list
(layers.py). Identity and Dropout are removed; BatchNormalization is folded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from snn2hw.errors import ModelFileError, UnsupportedError
from snn2hw.importers import onnx_check
from snn2hw.importers.layers import AnnModel, Layer, fold_bn, maxpool, pair

__all__ = ["from_onnx", "load_onnx"]


def _attrs(node: Any) -> dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _symmetric_pads(name: str, pads: Any) -> tuple[int, int]:
    if pads is None:
        return (0, 0)
    p = [int(v) for v in pads]
    if p[:2] != p[2:]:
        raise UnsupportedError(f"node '{name}' pads asymmetrically ({p})", node=name,
                               hint="Use symmetric padding.")
    return (p[0], p[1])


def load_onnx(path: str | Path) -> Any:
    import onnx

    p = Path(path)
    if not p.is_file():
        raise ModelFileError(f"model file '{p}' does not exist")
    try:
        model = onnx.load(str(p))
        onnx.checker.check_model(model)
        return onnx.shape_inference.infer_shapes(model)
    except Exception as exc:  # noqa: BLE001 (onnx raises DecodeError, ValidationError, ...)
        raise ModelFileError(f"'{p}' is not a valid ONNX model ({type(exc).__name__}: "
                             f"{' '.join(str(exc).split())[:200]})",
                             hint="Re-export it (torch.onnx.export) and check it with "
                                  "onnx.checker.") from None


def from_onnx(model: Any, *, approximate: tuple[str, ...] = ()) -> AnnModel:
    """An ONNX ModelProto (or a path) -> layer list."""
    import onnx
    from onnx import numpy_helper

    if isinstance(model, (str, Path)):
        model = load_onnx(model)
    onnx_check.check(model)                        # opset, input dims, tensor types, geometry
    init = {t.name: numpy_helper.to_array(t).astype(float) for t in model.graph.initializer}
    for node in model.graph.node:                  # Constant nodes carry initialisers too
        if node.op_type == "Constant":
            init[node.output[0]] = numpy_helper.to_array(_attrs(node)["value"]).astype(float)
    inputs = [i for i in model.graph.input if i.name not in init]
    if len(inputs) != 1:
        raise UnsupportedError(f"the ONNX graph has {len(inputs)} data inputs; snn2hw converts "
                               "single-input sequential networks")
    dims = [d.dim_value for d in inputs[0].type.tensor_type.shape.dim][1:]
    if not dims or any(d <= 0 for d in dims):
        raise UnsupportedError(f"input '{inputs[0].name}' has no fixed shape ({dims})",
                               hint="Export with a fixed input size (batch may vary).")
    ann = AnnModel(tuple(dims))
    current = inputs[0].name
    for node in model.graph.node:
        op, name = node.op_type, node.name or node.output[0]
        if op == "Constant":
            continue
        data_in = [i for i in node.input if i and i not in init]
        if data_in != [current]:
            raise UnsupportedError(f"{op} node '{name}' does not continue the chain (inputs "
                                   f"{list(node.input)}); only sequential networks convert",
                                   node=name)
        current = node.output[0]
        a = _attrs(node)
        prev = ann.layers[-1] if ann.layers else None
        try:
            _onnx_node(ann, op, name, node, a, init, prev, approximate)
        except KeyError as exc:
            raise UnsupportedError(f"{op} node '{name}' refers to {exc} which is not a "
                                   "constant initializer", node=name) from None
        except (ValueError, IndexError, TypeError) as exc:     # weights of the wrong rank
            raise onnx_check.misfit(op, name, exc) from None
    if not any(layer.kind in ("dense", "conv") for layer in ann.layers):
        raise UnsupportedError("the ONNX graph has no Gemm, MatMul or Conv layer")
    del onnx
    return ann


def _onnx_node(ann: AnnModel, op: str, name: str, node: Any, a: dict[str, Any],
               init: dict[str, np.ndarray], prev: Layer | None,
               approximate: tuple[str, ...]) -> None:
    if op == "Gemm":
        w = init[node.input[1]] * float(a.get("alpha", 1.0))
        if a.get("transA", 0):
            raise UnsupportedError(f"Gemm node '{name}' transposes its input", node=name)
        w = w if a.get("transB", 0) else w.T
        b = init[node.input[2]] * float(a.get("beta", 1.0)) if len(node.input) > 2 \
            else np.zeros(w.shape[0])
        ann.layers.append(Layer("dense", name, w, np.broadcast_to(b, (w.shape[0],)).copy()))
    elif op == "MatMul":
        w = init[node.input[1]].T
        ann.layers.append(Layer("dense", name, w, np.zeros(w.shape[0])))
    elif op == "Add":
        if prev is None or prev.kind != "dense":
            raise UnsupportedError(f"Add node '{name}' is not a bias after MatMul", node=name,
                                   hint="Only MatMul + Add (a dense layer) is converted.")
        prev.bias = prev.bias + np.broadcast_to(init[node.input[1]].ravel(), prev.bias.shape)
    elif op == "Conv":
        w = init[node.input[1]]
        if w.ndim != 4:
            raise UnsupportedError(f"Conv node '{name}' is {w.ndim - 2}-D; only 2-D converts",
                                   node=name)
        if any(int(d) != 1 for d in a.get("dilations", [1, 1])):
            raise UnsupportedError(f"Conv node '{name}' is dilated", node=name)
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise UnsupportedError(f"Conv node '{name}' uses auto_pad", node=name,
                                   hint="Export with explicit pads.")
        b = init[node.input[2]] if len(node.input) > 2 else np.zeros(w.shape[0])
        ann.layers.append(Layer("conv", name, w, b, pair(a.get("strides"), 1),
                                _symmetric_pads(name, a.get("pads")), int(a.get("group", 1))))
    elif op == "Relu":
        ann.layers.append(Layer("relu", name))
    elif op == "BatchNormalization":
        gamma, beta, mean, var = (init[node.input[k]] for k in range(1, 5))
        scale = gamma / np.sqrt(var + float(a.get("epsilon", 1e-5)))
        fold_bn(prev, name, scale, beta - mean * scale)
    elif op in ("AveragePool", "MaxPool"):
        if op == "MaxPool":
            maxpool(name, op, approximate)
        if _symmetric_pads(name, a.get("pads")) != (0, 0):
            raise UnsupportedError(f"{op} node '{name}' pads its input", node=name,
                                   hint="Use unpadded pooling.")
        k = pair(a.get("kernel_shape"), 1)
        ann.layers.append(Layer("avgpool", name, stride=pair(a.get("strides"), 1), kernel=k))
    elif op in ("GlobalAveragePool", "GlobalMaxPool"):
        if op == "GlobalMaxPool":
            maxpool(name, op, approximate)
        ann.layers.append(Layer("avgpool", name, kernel=(0, 0)))    # sized below
    elif op in ("Flatten", "Reshape"):
        if op == "Flatten" and int(a.get("axis", 1)) != 1:
            raise UnsupportedError(f"Flatten node '{name}' has axis != 1", node=name)
        ann.layers.append(Layer("flatten", name))
    elif op in ("Identity", "Dropout"):
        return
    else:
        raise UnsupportedError(f"ONNX op {op} (node '{name}') is not supported for conversion",
                               node=name, hint="Supported: Gemm, MatMul+Add, Conv, Relu, "
                               "BatchNormalization, AveragePool, GlobalAveragePool, Flatten, "
                               "Reshape, Identity, Dropout.")
    onnx_check.sized(ann, op, name)            # values per sample; weights fit their input
