"""The layer list both ANN front ends produce (ONNX: onnx_ann.py, torch.export:
torch_export.py, in-memory torch modules: torch_module.py) and the conversions take
(ann.py: rate-coded IF, ann_sdnn.py: sigma-delta): ``dense``, ``conv``, ``relu``,
``avgpool``, ``flatten``, with BatchNormalization folded into the preceding weight layer.
MaxPool has no rate-coded equivalent and is an error naming the node
(``approximate=("maxpool-as-avgpool",)`` accepts average pooling in its place, with a
warning).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from snn2hw.errors import UnsupportedError, UserInputError
from snn2hw.options import ANN_APPROXIMATIONS
from snn2hw.refops import conv2d

APPROXIMATIONS = ANN_APPROXIMATIONS          # what a conversion may accept (the CLI's choices)
MAX_INPUT = 1 << 24                  # values per sample, at the input and after each layer
MAX_GEOMETRY = 4096                  # strides, paddings, kernels and groups

__all__ = ["APPROXIMATIONS", "MAX_GEOMETRY", "MAX_INPUT", "AnnModel", "Layer", "apply",
           "check_approximations", "fold_bn", "maxpool", "pair", "size_global_pools",
           "values_after"]


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
            x = apply(layer, x)
            outs.append(x)
        return outs


def apply(layer: Layer, x: np.ndarray) -> np.ndarray:
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


def fold_bn(prev: Layer | None, name: str, scale: np.ndarray, shift: np.ndarray) -> None:
    if prev is None or prev.kind not in ("dense", "conv"):
        raise UnsupportedError(f"BatchNormalization node '{name}' does not follow a Dense or "
                               "Conv layer, so it cannot be folded", node=name,
                               hint="Place batch normalisation right after a linear layer.")
    shape = (-1, 1) if prev.kind == "dense" else (-1, 1, 1, 1)
    prev.weight = prev.weight * scale.reshape(shape)
    prev.bias = prev.bias * scale + shift


def maxpool(name: str, op: str, approximate: tuple[str, ...]) -> None:
    if "maxpool-as-avgpool" not in approximate:
        raise UnsupportedError(f"{op} node '{name}' has no spiking equivalent (a rate code "
                               "cannot take a maximum)", node=name,
                               hint="Retrain with average pooling, or accept "
                                    "--approximate maxpool-as-avgpool.")
    warnings.warn(f"{op} node '{name}' replaced by average pooling; accuracy will change",
                  stacklevel=3)


def pair(values: Iterable[int] | None, default: int) -> tuple[int, int]:
    """A (y, x) pair from one value or two (None: ``default`` twice)."""
    v = list(values) if values is not None else [default, default]
    return (int(v[0]), int(v[1])) if len(v) >= 2 else (int(v[0]), int(v[0]))


def size_global_pools(ann: AnnModel) -> None:
    """Give global pools their kernel (the spatial size at that point)."""
    shape: tuple[int, ...] = ann.input_shape
    x = np.zeros((1, *shape))
    for k, layer in enumerate(ann.layers):
        if layer.kind == "avgpool" and layer.kernel == (0, 0):
            ann.layers[k] = replace(layer, kernel=tuple(x.shape[2:]), stride=tuple(x.shape[2:]))
            layer = ann.layers[k]
        x = apply(layer, x)


def values_after(ann: AnnModel) -> int:
    """Values per sample after the last layer, from the shapes alone (no arrays)."""
    shape = ann.input_shape
    for layer in ann.layers:
        if layer.kind in ("conv", "avgpool") and len(shape) == 3 and layer.kernel != (0, 0):
            k = layer.weight.shape[2:] if layer.kind == "conv" else layer.kernel
            c = layer.weight.shape[0] if layer.kind == "conv" else shape[0]
            shape = (c, *((n + 2 * p - kk) // s + 1 for n, p, kk, s in
                          zip(shape[1:], layer.padding if layer.kind == "conv" else (0, 0),
                              k, layer.stride)))
        elif layer.kind == "dense":
            shape = (layer.weight.shape[0],)
    return int(np.prod(shape, dtype=object))


def check_approximations(approximate: Sequence[str]) -> tuple[str, ...]:
    """The named approximations, each one snn2hw knows (or a one-line error)."""
    for bad in approximate:
        if bad not in APPROXIMATIONS:
            raise UserInputError(f"unknown approximation '{bad}'",
                                 hint=f"Choose from {', '.join(APPROXIMATIONS)}.")
    return tuple(approximate)
