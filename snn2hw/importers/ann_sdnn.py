"""ANN -> sigma-delta network (``snn2hw import MODEL --neuron sigma-delta``).

A ReLU ANN (the layers :mod:`snn2hw.importers.ann` reads: dense, conv, average pooling,
flatten, BatchNorm folded) becomes the same layers with sigma-delta neurons
(:mod:`snn2hw.sdnn`): every weight layer is a ``Linear``/``Conv2d`` without bias into a
sigma-delta node that holds the bias, ReLU (hidden layers) or no activation (the
logits). Sent once, a static input settles every layer at its ANN activation up to the
thresholds, so the network computes the ANN (docs/ann_conversion.md, "Sigma-delta").

Scales, from calibration data:

* **Input grid.** The input is quantised to signed ``input_bits``-bit payloads,
  ``q = round(x * input_scale)`` with ``input_scale = (2^(B-1) - 1) / max|x|`` over the
  calibration data; the Input node carries these integers (a graded input port).
* **Layer scales.** Layer l's activations are divided by ``lambda_l``, the ``percentile``
  (99.9) of its non-zero activation magnitudes on the calibration data (as the rate-coded
  conversion does), so every layer's values are about 0..1: weights
  ``W * lambda_{l-1} / lambda_l`` (the input's ``lambda`` is ``1 / input_scale``), bias
  ``b / lambda_l``. The compiler turns these units into each layer's integer grid
  (``passes/quantise_sdnn.py``), sized by the maxima observed here (stored in the node).
* **Thresholds.** ``vth`` is a fraction of the layer scale. ``"auto"``: the largest
  ``2^-k`` (k = 1..12) for which the float sigma-delta network predicts the ANN's class on
  at least :data:`AGREEMENT` of the calibration samples; larger thresholds send fewer
  payloads. The logits layer gets :data:`READOUT_VTH` or ``vth`` if smaller (its payloads
  go to the host, no synapses, so a fine threshold costs only spikes).
"""

from __future__ import annotations

import warnings
from typing import Any

import nir
import numpy as np

from snn2hw import checker, ir, sdnn, sdnn_sim
from snn2hw.errors import UnsupportedError, UserInputError
from snn2hw.importers.ann import calibration_inputs, layer_scale
from snn2hw.importers.layers import AnnModel, Layer, apply

#: auto vth: the float network must predict the ANN's class on this fraction of the
#: calibration samples (the goal on hardware is 99%: the rest is left to the integers).
AGREEMENT = 0.998
CANDIDATES = tuple(2.0 ** -k for k in range(1, 13))
READOUT_VTH = 2.0 ** -10
DEFAULT_INPUT_BITS = 8


def input_scale(x: np.ndarray, bits: int) -> float:
    """Payload units per input unit: the largest calibration magnitude maps to the
    largest positive ``bits``-bit payload."""
    top = float(np.abs(x).max())
    return (2 ** (bits - 1) - 1) / (top if top > 0 else 1.0)


def encode(x: np.ndarray, steps: int, scale: float, bits: int, *,
           shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Analog inputs -> graded input payloads (B, T, *shape): each value quantised to
    ``round(x * scale)`` (saturating at ``bits`` bits, with a warning) and sent as the
    change since the previous step. A static input (B, *shape) is sent at step 0 and
    held (zeros after); a sequence (B, T, *shape) sends its changes."""
    x = np.asarray(x, dtype=float)
    static = shape is None or x.ndim == 1 + len(shape)
    lo, hi = sdnn.payload_range(bits)
    q = np.round(x * scale)
    clipped = int(np.count_nonzero((q < lo) | (q > hi)))
    if clipped:
        warnings.warn(f"{clipped} input value(s) lie outside the calibration range and "
                      f"saturate at the {bits}-bit payload range ({lo}..{hi})", stacklevel=2)
    q = np.clip(q, lo, hi)
    if static:
        out = np.zeros((q.shape[0], steps, *q.shape[1:]))
        out[:, 0] = q
        return out
    delta = np.diff(q, axis=1, prepend=0.0)
    if np.any(delta < lo) or np.any(delta > hi):
        raise UserInputError(f"the input's step-to-step changes need more than {bits} bits",
                             hint="Pass --input-bits one larger than the values need.")
    return delta


def _layers(ann: AnnModel, x: np.ndarray, percentile: float
            ) -> list[tuple[int, Layer, str, float]]:
    """(index, layer, activation, lambda) for the weight layers; refuses hidden layers
    without ReLU (a sigma-delta neuron has ReLU or nothing)."""
    acts = ann.forward(x)
    weighted = [k for k, layer in enumerate(ann.layers) if layer.kind in ("dense", "conv")]
    out = []
    for k in weighted:
        last = k == weighted[-1]
        relu = k + 1 < len(ann.layers) and ann.layers[k + 1].kind == "relu"
        if not last and not relu:
            layer = ann.layers[k]
            raise UnsupportedError(f"layer '{layer.name}' is not followed by ReLU",
                                   node=layer.name, hint="Sigma-delta neurons have ReLU or no "
                                   "activation; only the last weight layer may have none.")
        post = acts[k + 1] if relu else acts[k]
        out.append((k, ann.layers[k], "relu" if relu else "unit",
                    layer_scale(post, percentile)))
    return out


def _graph(ann: AnnModel, layers: list[tuple[int, Layer, str, float]], scale: float,
           bits: int, vth: float, meta: dict[str, Any],
           observed: dict[str, dict[str, float]] | None = None) -> ir.Graph:
    scales = {k: (act, lam) for k, _, act, lam in layers}
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(
        np.array(ann.input_shape), metadata={sdnn.PAYLOAD_BITS_KEY: bits})}
    edges: list[tuple[str, str]] = []
    prev, lam_prev, shape = "input", 1.0 / scale, tuple(ann.input_shape)
    x = np.zeros((1, *shape))
    for k, layer in enumerate(ann.layers):
        x = apply(layer, x)
        out_shape = tuple(x.shape[1:])
        if layer.kind == "relu":
            continue
        name = f"{k}_{layer.kind}"
        if layer.kind == "dense":
            nodes[name] = nir.Linear(layer.weight * lam_prev / scales[k][1])
        elif layer.kind == "conv":
            nodes[name] = nir.Conv2d(input_shape=np.array(shape[1:]),
                                     weight=layer.weight * lam_prev / scales[k][1],
                                     stride=np.array(layer.stride),
                                     padding=np.array(layer.padding), dilation=np.array([1, 1]),
                                     groups=layer.groups, bias=np.zeros(layer.weight.shape[0]))
        elif layer.kind == "avgpool":
            nodes[name] = nir.AvgPool2d(kernel_size=np.array(layer.kernel),
                                        stride=np.array(layer.stride), padding=np.array([0, 0]))
        else:
            nodes[name] = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0,
                                      end_dim=-1)
        edges.append((prev, name))
        prev = name
        if k in scales:
            act, lam = scales[k]
            sd = f"{k}_sd"
            bias = (layer.bias / lam).reshape(-1, *[1] * (len(out_shape) - 1))
            nodes[sd] = sdnn.node(vth if act == "relu" else min(vth, READOUT_VTH), act,
                                  np.broadcast_to(bias, out_shape).copy(),
                                  None if observed is None else observed[sd])
            edges.append((name, sd))
            prev, lam_prev = sd, lam
        shape = out_shape
    nodes["output"] = nir.Output(np.array(shape))
    edges.append((prev, "output"))
    return checker.from_nir(nir.NIRGraph(nodes, edges, type_check=False), metadata=meta)


def _agreement(graph: ir.Graph, payloads: np.ndarray, want: np.ndarray) -> float:
    from snn2hw import reference
    from snn2hw.verify import decode

    out = reference.simulate(graph, payloads).outputs["output"]
    return float((decode(out, False) == want).mean())


def convert(ann: AnnModel, calibration: np.ndarray, *, percentile: float = 99.9,
            input_bits: int = DEFAULT_INPUT_BITS, vth: float | str = "auto") -> ir.Graph:
    """The sigma-delta network of ``ann`` in NIR (module docstring)."""
    x = calibration_inputs(ann, calibration)
    if isinstance(input_bits, bool) or not isinstance(input_bits, (int, np.integer)) or \
            not 2 <= input_bits <= 24:
        raise UserInputError(f"input_bits={input_bits!r} must be a whole number in 2..24",
                             hint="8 bits suit images; the payloads are signed.")
    if vth != "auto" and not (isinstance(vth, (int, float)) and 0 < float(vth) < np.inf):
        raise UserInputError(f"vth={vth!r} must be 'auto' or a number > 0 (a fraction of "
                             "each layer's activation scale)", hint="Try --vth auto.")
    layers = _layers(ann, x, percentile)
    scale = input_scale(x, input_bits)
    meta = {"dt": 1e-3, "source": "ann-conversion", "neuron": "sigma-delta",
            "input_scale": scale, "input_bits": int(input_bits), "encoding": "delta",
            "percentile": float(percentile)}
    steps = sdnn_sim.settle_steps(_graph(ann, layers, scale, input_bits, 1.0, meta))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")            # calibration data lies inside its range
        payloads = encode(x, steps, scale, input_bits)
    if vth == "auto":
        want = ann.forward(x)[-1].argmax(axis=1)
        for theta in CANDIDATES:                                     # largest first
            got = _agreement(_graph(ann, layers, scale, input_bits, theta, meta), payloads,
                             want)
            if got >= AGREEMENT:
                break
        chosen = theta
        if got < AGREEMENT:
            warnings.warn(f"no threshold 2^-1..2^-{len(CANDIDATES)} keeps "
                          f"{100 * AGREEMENT:g}% agreement with the ANN on the calibration "
                          f"data; the smallest gives {100 * got:.2f}% (the input's "
                          f"{input_bits}-bit grid limits it: try a larger --input-bits)",
                          stacklevel=2)
        meta["vth_rule"] = (f"auto: largest 2^-k (k = 1..12) with >= {100 * AGREEMENT:g}% "
                            "agreement with the ANN on the calibration data")
    else:
        chosen = float(vth)
    meta["vth"] = chosen
    graph = _graph(ann, layers, scale, input_bits, chosen, meta)
    return _graph(ann, layers, scale, input_bits, chosen, meta,
                  observed=sdnn_sim.observe(graph, payloads))


__all__ = ["AGREEMENT", "DEFAULT_INPUT_BITS", "READOUT_VTH", "convert", "encode",
           "input_scale"]
