"""Sigma-delta neurons in NIR graphs: the convention, its checks and its float step.

NIR has no sigma-delta neuron, so a sigma-delta layer is stored as an ``IF`` node whose
``metadata["snn2hw.sigma_delta"]`` holds the layer (docs/sigma_delta.md §9):

* ``vth`` (float > 0): the smallest change the neuron sends, in the layer's units;
* ``act_mode``: ``"relu"`` (hidden layers) or ``"unit"`` (no activation: the logits);
* ``bias`` (the node's shape): added to sigma every step, as Lava's SigmaDelta does;
* ``observed`` (optional): the largest magnitudes of the per-step input, the state
  (sigma and sigma + bias) and the payloads seen on calibration data, which the compiler
  sizes the integer grid by (``passes/quantise_sdnn.py``).

The IF fields are placeholders (r = 1, v_threshold = 1, v_reset = 0) and are not read: a
tool that does not know the key sees an IF layer. An Input node whose
``metadata["snn2hw.payload_bits"]`` is B carries signed integer payloads of at most B
bits (a graded input port), not 0/1 spikes.

Running such graphs on the float reference (settling time, observed magnitudes) is
sdnn_sim.py's; this module is the node convention the reference itself reads.

The float semantics (:func:`step`) are Lava 0.10's ``PySigmaDeltaModelFixed`` with
spike_exp = state_exp = 0 and cum_error off, in floats (docs/sigma_delta.md §3)::

    sigma += x;  y = sigma + bias;  act_new = max(y, 0) (relu) or y (unit)
    delta = act_new - act + residue;  s = delta if |delta| >= vth else 0
    residue = delta - s;  act = act_new;  send s
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import nir
import numpy as np

from snn2hw import primitives
from snn2hw.errors import GraphError, UnsupportedError, UserInputError

KEY = "snn2hw.sigma_delta"
PAYLOAD_BITS_KEY = "snn2hw.payload_bits"
ACT_MODES = ("relu", "unit")
OBSERVED = ("input", "state", "payload")


@dataclass(frozen=True)
class Params:
    """A sigma-delta node's checked parameters (``bias`` flat, C order)."""

    vth: float
    act_mode: str
    bias: np.ndarray
    observed: dict[str, float] | None


def node(vth: float, act_mode: str, bias: np.ndarray,
         observed: Mapping[str, float] | None = None) -> nir.IF:
    """The NIR node of a sigma-delta layer whose output has ``bias``'s shape."""
    bias = np.asarray(bias, dtype=float)
    meta: dict[str, Any] = {"vth": float(vth), "act_mode": act_mode, "bias": bias}
    if observed is not None:
        meta["observed"] = {k: float(observed[k]) for k in OBSERVED}
    ones = np.ones(bias.shape)
    return nir.IF(r=ones, v_threshold=ones, v_reset=0 * ones, metadata={KEY: meta})


def is_sd(n: Any) -> bool:
    return isinstance(n, nir.IF) and KEY in (getattr(n, "metadata", None) or {})


def sd_nodes(graph: Any) -> list[str]:
    return [name for name, n in graph.nodes.items() if is_sd(n)]


def _bad(name: str, what: str, hint: str) -> GraphError:
    return GraphError(f"sigma-delta node '{name}' {what}", node=name, hint=hint)


def params(name: str, n: Any) -> Params:
    """The node's parameters, or a one-line GraphError naming the node, the limit and
    the fix (vth <= 0, an unknown activation, a bias that does not fit the node)."""
    meta = n.metadata[KEY]
    if not isinstance(meta, Mapping):
        raise _bad(name, f"has {KEY} = {meta!r}, not a group of parameters",
                   "Store vth, act_mode and bias under it (snn2hw import writes them).")
    act = meta.get("act_mode")
    act = act.decode() if isinstance(act, bytes) else act
    if act not in ACT_MODES:
        raise _bad(name, f"has activation {act!r}; sigma-delta neurons have "
                   f"{' or '.join(ACT_MODES)}", "Use relu for ReLU layers and unit for a "
                   "layer without activation (the logits); other activations do not convert.")
    try:
        vth = float(np.asarray(meta.get("vth")).reshape(()))
    except (TypeError, ValueError):
        raise _bad(name, f"has vth {meta.get('vth')!r}, not one number",
                   "Give one threshold per layer (Lava's SigmaDelta has one).") from None
    if not (math.isfinite(vth) and vth > 0):
        raise _bad(name, f"has vth {vth:g}; it must be > 0 (the smallest change the neuron "
                   "sends)", "Give vth > 0, e.g. re-import with --vth auto.")
    shape = tuple(int(d) for d in np.asarray(n.r).shape)
    try:
        bias = np.asarray(meta.get("bias", np.zeros(shape)), dtype=float)
    except (TypeError, ValueError):
        bias = np.full(1, np.nan)
    if bias.shape != shape or not np.all(np.isfinite(bias)):
        raise _bad(name, f"has a bias of shape {bias.shape} (or not finite) for a layer of "
                   f"shape {shape}", "Store one finite bias value per neuron.")
    if not np.all(np.asarray(n.r) == 1):
        raise _bad(name, "has r != 1 (its sigma takes its input with unit gain)",
                   "Fold the gain into the incoming weights.")
    observed = meta.get("observed")
    if observed is not None:
        try:
            observed = {k: float(np.asarray(observed[k]).reshape(()))
                        for k in OBSERVED if k in observed}
        except (TypeError, ValueError):
            observed = {}
        if len(observed) != len(OBSERVED) or not all(math.isfinite(v) and v >= 0
                                                     for v in observed.values()):
            raise _bad(name, f"has observed maxima {observed}, not three finite numbers "
                       ">= 0", f"Store {', '.join(OBSERVED)}, or drop 'observed'.")
    return Params(vth, str(act), bias.ravel(), observed)


def input_bits(graph: Any) -> dict[str, int]:
    """Input node -> payload bits, for the Input nodes that carry graded payloads."""
    out = {}
    for name, n in graph.nodes.items():
        bits = (getattr(n, "metadata", None) or {}).get(PAYLOAD_BITS_KEY)
        if isinstance(n, nir.Input) and bits is not None:
            b = np.asarray(bits)
            if b.ndim or b.dtype.kind not in "iu" or not 1 <= int(b) <= 32:
                raise GraphError(f"Input '{name}' has {PAYLOAD_BITS_KEY} = {bits!r}, not a "
                                 "whole number of bits in 1..32", node=name,
                                 hint="Give the width of its signed integer payloads.")
            out[name] = int(b)
    return out


def check_graph(graph: Any) -> list[str]:
    """The sigma-delta nodes of ``graph`` (checked), or [] for other graphs. A graph that
    mixes them with other neurons is refused: hardware layers of one kind only."""
    names = sd_nodes(graph)
    if not names:
        return []
    for name in names:
        params(name, graph.nodes[name])
    other = [n for n, v in graph.nodes.items() if primitives.is_neuron(v) and not is_sd(v)]
    if other:
        raise UnsupportedError(f"node '{other[0]}' is a {type(graph.nodes[other[0]]).__name__} "
                               f"in a graph of sigma-delta layers ('{names[0]}')",
                               node=other[0], hint="Convert the whole network to sigma-delta "
                               "neurons, or to spiking neurons.")
    return names


# --------------------------------------------------------------------------- float step


def step(p: Params, x: np.ndarray, state: dict[str, np.ndarray]) -> np.ndarray:
    """One float step of a sigma-delta node on its input ``x`` (B, *shape); returns the
    payload sent. ``state`` holds sigma, act and residue (created at zero)."""
    for key in ("sigma", "act", "residue"):
        state.setdefault(key, np.zeros_like(x))
    sigma = state["sigma"] + x
    y = sigma + p.bias.reshape(x.shape[1:])
    new = np.maximum(y, 0) if p.act_mode == "relu" else y
    delta = new - state["act"] + state["residue"]
    s = np.where(np.abs(delta) >= p.vth, delta, 0.0)
    state.update(sigma=sigma, act=new, residue=delta - s)
    return s


def payload_range(bits: int) -> tuple[int, int]:
    """Signed payloads of ``bits`` bits: the two's complement range."""
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def check_payloads(name: str, values: np.ndarray, bits: int) -> None:
    """Integer payloads for a graded port of ``bits`` bits, or a one-line error."""
    v = np.asarray(values)
    if v.size and not np.all(v == np.round(v)):
        raise UserInputError(f"input '{name}' is a graded port and holds fractions",
                             hint="Pass integer payloads (snn2hw encodes analog data for "
                                  "converted sigma-delta models itself).")
    lo, hi = payload_range(bits)
    if v.size and (v.min() < lo or v.max() > hi):
        raise UserInputError(f"input '{name}' holds payloads {v.min():g}..{v.max():g}, wider "
                             f"than its {bits}-bit message ({lo}..{hi})",
                             hint=f"Rescale the data to {lo}..{hi}, or compile with "
                                  "--input-bits set to a wider message.")


__all__ = ["ACT_MODES", "KEY", "OBSERVED", "PAYLOAD_BITS_KEY", "Params", "check_graph",
           "check_payloads", "input_bits", "is_sd", "node", "params", "payload_range", "sd_nodes",
           "step"]
