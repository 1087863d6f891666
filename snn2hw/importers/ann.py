"""ANN-to-SNN conversion: ONNX files and PyTorch ``nn.Sequential`` ANNs -> NIR graphs.

Both front ends produce the same layer list (:class:`AnnModel`): ``dense``, ``conv``,
``relu``, ``avgpool``, ``flatten``, with BatchNormalization folded into the preceding
weight layer and Identity/Dropout removed. MaxPool has no rate-coded equivalent and is
an error naming the node (``approximate=("maxpool-as-avgpool",)`` accepts average
pooling in its place, with a warning).

Conversion (after Rueckauer et al. 2017, data-based normalisation): every weight layer
followed by ReLU becomes an IF population (r = 1, threshold 1) whose weights and bias
are scaled by ``lambda_prev / lambda_l``, where ``lambda_l`` is a robust percentile
(default 99.9) of layer l's ReLU activations on calibration data. A spike train's rate
then approximates the ANN activation divided by ``lambda_l``. The last weight layer
(the logits) becomes a non-spiking integrator readout (NIR ``I``): its voltage after T
steps is proportional to the mean logit, and the class is its argmax.

Input encoding (:func:`encode`): each input value ``x`` becomes Bernoulli spikes with
probability ``x / input_scale`` per step (``input_scale``: the largest calibration input),
i.e. a Poisson-like rate code, or (``encoding="current"``) the deterministic spike train of
an IF encoder driven by the constant current ``x / input_scale``; the first layer's weights
carry ``input_scale``.

Reset: ``zero`` (what Loihi-family cores do; the default) or ``subtract`` (closer to the
ANN, for targets and simulators that have it). Stored as graph metadata ``reset``.

Accepted files: ``.onnx`` (parsed with the ``onnx`` package: checker and shape inference
first) and ``torch.export`` archives (``.pt2``, :mod:`snn2hw.importers.torch_export`).
PyTorch models are also taken as in-memory modules (``from_torch``); snn2hw never
unpickles model files (state dicts load with ``torch.load(..., weights_only=True)`` in
user code, then ``module.load_state_dict``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import nir
import numpy as np

from snn2hw import checker, ir
from snn2hw.errors import ModelFileError, UnsupportedError, UserInputError
from snn2hw.importers import onnx_check
from snn2hw.reference import conv2d

APPROXIMATIONS = ("maxpool-as-avgpool",)


@dataclass
class Layer:
    kind: str                            # dense | conv | relu | avgpool | flatten
    name: str
    weight: np.ndarray | None = None     # dense (out, in); conv (O, I/groups, kH, kW)
    bias: np.ndarray | None = None
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    groups: int = 1
    kernel: tuple[int, int] = (1, 1)     # avgpool


@dataclass
class AnnModel:
    input_shape: tuple[int, ...]
    layers: list[Layer] = field(default_factory=list)

    def forward(self, x: np.ndarray) -> list[np.ndarray]:
        """Outputs of every layer for a batch x (B, *input_shape)."""
        outs = []
        for layer in self.layers:
            x = _apply(layer, x)
            outs.append(x)
        return outs


def _apply(layer: Layer, x: np.ndarray) -> np.ndarray:
    if layer.kind == "dense":
        return x @ layer.weight.T + layer.bias
    if layer.kind == "conv":
        pads = [(p, p) for p in layer.padding]
        y = conv2d(x, layer.weight, layer.stride, pads, (1, 1), layer.groups)
        return y + layer.bias.reshape(-1, 1, 1)
    if layer.kind == "relu":
        return np.maximum(x, 0)
    if layer.kind == "avgpool":
        c = x.shape[1]
        w = np.ones((c, 1, *layer.kernel)) / (layer.kernel[0] * layer.kernel[1])
        return conv2d(x, w, layer.stride, [(0, 0), (0, 0)], (1, 1), c)
    if layer.kind == "flatten":
        return x.reshape(x.shape[0], -1)
    raise AssertionError(layer.kind)


def _fold_bn(prev: Layer | None, name: str, scale: np.ndarray, shift: np.ndarray) -> None:
    if prev is None or prev.kind not in ("dense", "conv"):
        raise UnsupportedError(f"BatchNormalization node '{name}' does not follow a Dense or "
                               "Conv layer, so it cannot be folded", node=name,
                               hint="Place batch normalisation right after a linear layer.")
    shape = (-1, 1) if prev.kind == "dense" else (-1, 1, 1, 1)
    prev.weight = prev.weight * scale.reshape(shape)
    prev.bias = prev.bias * scale + shift


def _maxpool(name: str, op: str, approximate: tuple[str, ...]) -> None:
    if "maxpool-as-avgpool" not in approximate:
        raise UnsupportedError(f"{op} node '{name}' has no spiking equivalent (a rate code "
                               "cannot take a maximum)", node=name,
                               hint="Retrain with average pooling, or accept "
                                    "--approximate maxpool-as-avgpool.")
    warnings.warn(f"{op} node '{name}' replaced by average pooling; accuracy will change",
                  stacklevel=3)


# --------------------------------------------------------------------------- ONNX


def _attrs(node: Any) -> dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _pair(values: Any, default: int) -> tuple[int, int]:
    v = list(values) if values is not None else [default, default]
    return (int(v[0]), int(v[1])) if len(v) >= 2 else (int(v[0]), int(v[0]))


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
    except Exception as exc:   # onnx raises DecodeError, ValidationError, InferenceError...
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
        ann.layers.append(Layer("conv", name, w, b, _pair(a.get("strides"), 1),
                                _symmetric_pads(name, a.get("pads")), int(a.get("group", 1))))
    elif op == "Relu":
        ann.layers.append(Layer("relu", name))
    elif op == "BatchNormalization":
        gamma, beta, mean, var = (init[node.input[k]] for k in range(1, 5))
        scale = gamma / np.sqrt(var + float(a.get("epsilon", 1e-5)))
        _fold_bn(prev, name, scale, beta - mean * scale)
    elif op in ("AveragePool", "MaxPool"):
        if op == "MaxPool":
            _maxpool(name, op, approximate)
        if _symmetric_pads(name, a.get("pads")) != (0, 0):
            raise UnsupportedError(f"{op} node '{name}' pads its input", node=name,
                                   hint="Use unpadded pooling.")
        k = _pair(a.get("kernel_shape"), 1)
        ann.layers.append(Layer("avgpool", name, stride=_pair(a.get("strides"), 1), kernel=k))
    elif op in ("GlobalAveragePool", "GlobalMaxPool"):
        if op == "GlobalMaxPool":
            _maxpool(name, op, approximate)
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


def _size_global_pools(ann: AnnModel) -> None:
    """Give global pools their kernel (the spatial size at that point)."""
    shape: tuple[int, ...] = ann.input_shape
    x = np.zeros((1, *shape))
    for k, layer in enumerate(ann.layers):
        if layer.kind == "avgpool" and layer.kernel == (0, 0):
            ann.layers[k] = replace(layer, kernel=tuple(x.shape[2:]), stride=tuple(x.shape[2:]))
            layer = ann.layers[k]
        x = _apply(layer, x)


# --------------------------------------------------------------------------- PyTorch


def from_torch(module: Any, input_shape: tuple[int, ...], *,
               approximate: tuple[str, ...] = ()) -> AnnModel:
    """A ``torch.nn.Sequential`` (nested allowed) of supported layers -> layer list."""
    import torch

    ann = AnnModel(tuple(int(s) for s in input_shape))

    def walk(m: Any, prefix: str) -> None:
        for name, child in m.named_children():
            full = f"{prefix}{name}"
            prev = ann.layers[-1] if ann.layers else None
            t = lambda v: v.detach().double().numpy().copy()   # noqa: E731
            if isinstance(child, torch.nn.Sequential):
                walk(child, full + ".")
            elif isinstance(child, torch.nn.Linear):
                b = t(child.bias) if child.bias is not None else np.zeros(child.out_features)
                ann.layers.append(Layer("dense", full, t(child.weight), b))
            elif isinstance(child, torch.nn.Conv2d):
                if child.dilation != (1, 1) or isinstance(child.padding, str):
                    raise UnsupportedError(f"Conv2d '{full}' is dilated or pads by name",
                                           node=full, hint="Use numeric padding, dilation 1.")
                b = t(child.bias) if child.bias is not None else np.zeros(child.out_channels)
                ann.layers.append(Layer("conv", full, t(child.weight), b, tuple(child.stride),
                                        tuple(child.padding), int(child.groups)))
            elif isinstance(child, torch.nn.ReLU):
                ann.layers.append(Layer("relu", full))
            elif isinstance(child, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                scale = t(child.weight) / np.sqrt(t(child.running_var) + child.eps)
                _fold_bn(prev, full, scale, t(child.bias) - t(child.running_mean) * scale)
            elif isinstance(child, (torch.nn.AvgPool2d, torch.nn.MaxPool2d)):
                if isinstance(child, torch.nn.MaxPool2d):
                    _maxpool(full, "MaxPool2d", approximate)
                k = _pair(np.atleast_1d(child.kernel_size), 1)
                s = _pair(np.atleast_1d(child.stride or child.kernel_size), 1)
                if _pair(np.atleast_1d(child.padding), 0) != (0, 0):
                    raise UnsupportedError(f"pooling '{full}' pads its input", node=full)
                ann.layers.append(Layer("avgpool", full, stride=s, kernel=k))
            elif isinstance(child, torch.nn.AdaptiveAvgPool2d) and \
                    _pair(np.atleast_1d(child.output_size), 1) == (1, 1):
                ann.layers.append(Layer("avgpool", full, kernel=(0, 0)))
                _size_global_pools(ann)
            elif isinstance(child, torch.nn.Flatten):
                ann.layers.append(Layer("flatten", full))
            elif isinstance(child, (torch.nn.Dropout, torch.nn.Identity)):
                continue
            else:
                raise UnsupportedError(f"layer '{full}' ({type(child).__name__}) is not "
                                       "supported for conversion", node=full,
                                       hint="Supported: Linear, Conv2d, ReLU, BatchNorm, "
                                            "AvgPool2d, AdaptiveAvgPool2d(1), Flatten, Dropout.")

    walk(module, "")
    return ann


# --------------------------------------------------------------------------- conversion


ENCODINGS = ("bernoulli", "current")


def encode(x: np.ndarray, steps: int, input_scale: float, seed: int = 0,
           method: str = "bernoulli") -> np.ndarray:
    """Rate-code (B, *shape) values in [0, input_scale] as (B, T, *shape) 0/1 spikes.

    ``bernoulli``: a spike with probability p = x / input_scale at every step (Poisson-like;
    ``seed`` picks the draw). ``current``: p as a constant current into an IF encoder
    (threshold 1, reset by subtraction), i.e. a spike at step t when floor((t+1)p) >
    floor(tp): deterministic, exactly floor(T p) spikes, so no sampling noise.
    """
    if np.any(x < 0):
        raise UserInputError("rate coding needs non-negative inputs",
                             hint="Shift or rescale the data to [0, max].")
    if method not in ENCODINGS:
        raise UserInputError(f"unknown input encoding '{method}'",
                             hint=f"Choose from {', '.join(ENCODINGS)}.")
    p = np.clip(np.asarray(x, dtype=float) / input_scale, 0, 1)[:, None]
    if method == "current":
        t = np.arange(1, steps + 1, dtype=float).reshape(1, steps, *[1] * (p.ndim - 2))
        count = np.floor(t * p + 1e-9)            # spikes fired by the end of each step
        return np.diff(count, axis=1, prepend=0).astype(np.int8)
    rng = np.random.default_rng(seed)
    return (rng.random((p.shape[0], steps, *p.shape[2:])) < p).astype(np.int8)


def calibration_inputs(ann: AnnModel, calibration: np.ndarray) -> np.ndarray:
    """Calibration data as float ANN inputs (batch, *input_shape), or a one-line error."""
    x = np.asarray(calibration, dtype=float)
    if x.ndim != 1 + len(ann.input_shape) or tuple(x.shape[1:]) != ann.input_shape:
        raise UserInputError(f"calibration data has shape {x.shape}; expected (batch, "
                             f"{', '.join(map(str, ann.input_shape))})")
    if x.shape[0] == 0:
        raise UserInputError("calibration data has no samples",
                             hint="Pass at least one ANN input (a few hundred is typical).")
    return x


def layer_scale(post: np.ndarray, percentile: float) -> float:
    """A layer's activation scale: the ``percentile`` of its non-zero magnitudes (1 when
    it has none), so that one outlier does not set it."""
    nz = np.abs(post[post != 0])
    return float(np.percentile(nz, percentile)) if nz.size else 1.0


def convert(ann: AnnModel, calibration: np.ndarray, *, percentile: float = 99.9,
            reset: str = "zero", dt: float = 1e-3, encoding: str = "bernoulli") -> ir.Graph:
    """Data-normalised rate-coded IF network in NIR (see the module docstring)."""
    x = calibration_inputs(ann, calibration)
    if reset not in ("zero", "subtract"):
        raise UserInputError(f"reset {reset!r} is not 'zero' or 'subtract'")
    if encoding not in ENCODINGS:
        raise UserInputError(f"unknown input encoding '{encoding}'",
                             hint=f"Choose from {', '.join(ENCODINGS)}.")
    input_scale = float(x.max()) if x.max() > 0 else 1.0
    acts = ann.forward(x)
    weighted = [k for k, layer in enumerate(ann.layers) if layer.kind in ("dense", "conv")]
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(np.array(ann.input_shape))}
    edges: list[tuple[str, str]] = []
    prev, lam_prev = "input", input_scale
    shape = ann.input_shape
    for k, layer in enumerate(ann.layers):
        out_shape = acts[k].shape[1:]
        if layer.kind == "relu":
            continue
        name = f"{k}_{layer.kind}"
        if layer.kind in ("dense", "conv"):
            last = k == weighted[-1]
            relu = not last and k + 1 < len(ann.layers) and ann.layers[k + 1].kind == "relu"
            if not last and not relu:
                raise UnsupportedError(f"layer '{layer.name}' is not followed by ReLU",
                                       node=layer.name, hint="Every hidden weight layer must "
                                       "be followed by ReLU to convert to spikes.")
            post = acts[k + 1] if relu else acts[k]
            lam = 1.0 if last else float(np.percentile(post[post > 0], percentile)) \
                if np.any(post > 0) else 1.0
            w = layer.weight * lam_prev / lam
            b = layer.bias / lam
            if layer.kind == "dense":
                nodes[name] = nir.Affine(w, b)
            else:
                nodes[name] = nir.Conv2d(input_shape=np.array(shape[1:]), weight=w,
                                         stride=np.array(layer.stride),
                                         padding=np.array(layer.padding),
                                         dilation=np.array([1, 1]), groups=layer.groups, bias=b)
            edges.append((prev, name))
            n = f"{k}_if" if relu else f"{k}_readout"
            ones = np.ones(out_shape)
            nodes[n] = (nir.IF(r=ones, v_threshold=ones, v_reset=np.zeros(out_shape)) if relu
                        else nir.I(r=ones))
            edges.append((name, n))
            prev, lam_prev = n, lam
        elif layer.kind == "avgpool":
            nodes[name] = nir.AvgPool2d(kernel_size=np.array(layer.kernel),
                                        stride=np.array(layer.stride), padding=np.array([0, 0]))
            edges.append((prev, name))
            prev = name
        elif layer.kind == "flatten":
            nodes[name] = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0,
                                      end_dim=-1)
            edges.append((prev, name))
            prev = name
        shape = out_shape
    nodes["output"] = nir.Output(np.array(shape))
    edges.append((prev, "output"))
    meta = {"dt": dt, "reset": reset, "source": "ann-conversion",
            "input_scale": input_scale, "percentile": float(percentile),
            "encoding": encoding}
    return checker.from_nir(nir.NIRGraph(nodes, edges, type_check=False), metadata=meta)


def import_ann(path: str | Path, calibration: np.ndarray, *, percentile: float = 99.9,
               reset: str = "zero", approximate: tuple[str, ...] = (),
               encoding: str = "bernoulli") -> ir.Graph:
    """An ONNX file or a torch.export archive (``.pt2``) -> a converted NIR graph."""
    ann = load_model(path, approximate)
    return convert(ann, calibration, percentile=percentile, reset=reset, encoding=encoding)


def load_model(path: str | Path, approximate: tuple[str, ...] = ()) -> AnnModel:
    """The layers of an ONNX file or a torch.export archive (``.pt2``)."""
    from snn2hw import files

    for bad in approximate:
        if bad not in APPROXIMATIONS:
            raise UserInputError(f"unknown approximation '{bad}'",
                                 hint=f"Choose from {', '.join(APPROXIMATIONS)}.")
    if files.sniff(path) == "pt2":
        from snn2hw.importers.torch_export import from_exported

        return from_exported(path, approximate=approximate)
    return from_onnx(path, approximate=approximate)


__all__ = ["AnnModel", "Layer", "from_onnx", "from_torch", "convert", "encode", "import_ann",
           "load_model", "calibration_inputs", "layer_scale",
           "ENCODINGS",
           "load_onnx", "APPROXIMATIONS"]
