"""ANN-to-SNN conversion: ONNX files and PyTorch ``nn.Sequential`` ANNs -> NIR graphs.

The front ends (onnx_ann.py, torch_export.py, torch_module.py) produce the same layer
list (layers.py, :class:`AnnModel`): ``dense``, ``conv``, ``relu``, ``avgpool``,
``flatten``, with BatchNormalization folded into the preceding weight layer and
Identity/Dropout removed. MaxPool has no rate-coded equivalent and is an error naming
the node (``approximate=("maxpool-as-avgpool",)`` accepts average pooling in its place,
with a warning).

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

from pathlib import Path

import nir
import numpy as np

from snn2hw import checker, files, ir
from snn2hw.errors import UnsupportedError, UserInputError
from snn2hw.importers.layers import APPROXIMATIONS, AnnModel, Layer, check_approximations
from snn2hw.importers.onnx_ann import from_onnx, load_onnx
from snn2hw.importers.torch_export import from_exported
from snn2hw.importers.torch_module import from_torch
from snn2hw.options import ENCODINGS, RESETS  # the CLI's choices, importers.Conversion's too


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
    if reset not in RESETS:
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
    approximate = check_approximations(approximate)
    if files.sniff(path) == "pt2":
        return from_exported(path, approximate=approximate)
    return from_onnx(path, approximate=approximate)


__all__ = ["APPROXIMATIONS", "ENCODINGS", "RESETS", "AnnModel", "Layer", "calibration_inputs", "convert",
           "encode", "from_onnx", "from_torch", "import_ann", "layer_scale", "load_model",
           "load_onnx"]
