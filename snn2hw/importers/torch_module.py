"""In-memory PyTorch ANNs (``torch.nn.Sequential``, nested allowed) -> the layer list
(layers.py). snn2hw never unpickles model files: state dicts load with
``torch.load(..., weights_only=True)`` in user code, then ``module.load_state_dict``."""

from __future__ import annotations

from typing import Any

import numpy as np

from snn2hw.errors import UnsupportedError
from snn2hw.importers.layers import AnnModel, Layer, fold_bn, maxpool, pair, size_global_pools

__all__ = ["from_torch"]


def from_torch(module: Any, input_shape: tuple[int, ...], *,
               approximate: tuple[str, ...] = ()) -> AnnModel:
    """A ``torch.nn.Sequential`` (nested allowed) of supported layers -> layer list."""
    import torch

    ann = AnnModel(tuple(int(s) for s in input_shape))

    def walk(m: Any, prefix: str) -> None:
        for name, child in m.named_children():
            full = f"{prefix}{name}"
            prev = ann.layers[-1] if ann.layers else None
            t = lambda v: v.detach().double().numpy().copy()
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
                fold_bn(prev, full, scale, t(child.bias) - t(child.running_mean) * scale)
            elif isinstance(child, (torch.nn.AvgPool2d, torch.nn.MaxPool2d)):
                if isinstance(child, torch.nn.MaxPool2d):
                    maxpool(full, "MaxPool2d", approximate)
                k = pair(np.atleast_1d(child.kernel_size), 1)
                s = pair(np.atleast_1d(child.stride or child.kernel_size), 1)
                if pair(np.atleast_1d(child.padding), 0) != (0, 0):
                    raise UnsupportedError(f"pooling '{full}' pads its input", node=full)
                ann.layers.append(Layer("avgpool", full, stride=s, kernel=k))
            elif isinstance(child, torch.nn.AdaptiveAvgPool2d) and \
                    pair(np.atleast_1d(child.output_size), 1) == (1, 1):
                ann.layers.append(Layer("avgpool", full, kernel=(0, 0)))
                size_global_pools(ann)
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
