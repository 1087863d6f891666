"""Per-primitive parameter rules: what NIR checks only with ``assert`` (gone under
``python -O``, and an internal error otherwise) and what it does not check at all.

Each rule takes a node's fields as a mapping (``vars(node)``, or the datasets of a node in
a ``.nir`` file before nir builds it) and raises GraphError naming the node, the problem
and the fix. ``check_fields`` runs them for one node; ``check_graph`` for every node of a
graph and its metadata (``checker.validate`` calls it before shape inference).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from snn2hw.errors import GraphError

#: Larger magnitudes are refused: no trained network needs them, and products of such
#: values leave float32's range (3.4e38, what exporters write): (1.9e19)^2 already does.
HUGE = 1e19

#: Values per sample an Input or Output port may carry (as for .pt2 layers).
MAX_PORT = 2**24

Fields = Mapping[str, Any]
Rule = Callable[[Fields], None]

_NOT_PARAMETERS = ("type", "input_type", "output_type", "metadata", "nodes", "edges")
_TAUS = ("tau", "tau_mem", "tau_syn")
NEURON_FIELDS = {
    "LIF": ("tau", "r", "v_leak", "v_threshold", "v_reset"),
    "IF": ("r", "v_threshold", "v_reset"),
    "LI": ("tau", "r", "v_leak"),
    "I": ("r",),
    "CubaLIF": ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in"),
    "CubaLI": ("tau_syn", "tau_mem", "r", "v_leak", "w_in"),
}


class _Bad(Exception):
    """A rule's finding, before the node's name is attached."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


def _array(fields: Fields, key: str) -> np.ndarray:
    return np.asarray(fields[key])


def _numbers(key: str, value: Any) -> None:
    """Every numeric parameter: real, finite, not huge."""
    if isinstance(value, str) and key == "padding":
        return                                      # Conv padding 'same'/'valid'
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise _Bad(f"parameter '{key}' has dtype {arr.dtype} (not real numbers)",
                   "Export it as floats or integers.")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise _Bad(f"parameter '{key}' has non-finite values (NaN or inf)",
                   "Check the exported model; a diverged training run writes NaN.")
    if arr.size and float(np.max(np.abs(arr.astype(np.float64)))) > HUGE:
        raise _Bad(f"parameter '{key}' has values up to "
                   f"{float(np.max(np.abs(arr.astype(np.float64)))):.3g}, above {HUGE:g}",
                   "Rescale the layer (weights and threshold together); no trained network "
                   "needs such values.")


def _weight_ndim(minimum: int, exact: bool, layout: str) -> Rule:
    def rule(fields: Fields) -> None:
        w = _array(fields, "weight")
        if w.ndim < minimum or (exact and w.ndim != minimum):
            raise _Bad(f"weight has shape {list(w.shape)} ({w.ndim} dimension(s)); expected "
                       f"{layout}", f"Export the layer's full weight tensor {layout}.")
    return rule


def _bias_matches(fields: Fields) -> None:
    """Affine: one bias per output (weight (..., out, in)); Conv: one per output channel."""
    w, b = _array(fields, "weight"), _array(fields, "bias")
    want = tuple(w.shape[:1] if "stride" in fields else w.shape[:-1])
    if tuple(b.shape) != want:
        raise _Bad(f"bias has shape {list(b.shape)} but the weight {list(w.shape)} has "
                   f"{want[-1] if want else 0} output(s)",
                   f"Give one bias per output: shape {list(want)}.")


def _at_least(key: str, low: int, what: str) -> Rule:
    def rule(fields: Fields) -> None:
        if key not in fields or isinstance(fields[key], str):
            return
        arr = _array(fields, key)
        if arr.size == 0 or np.any(arr < low) or np.any(arr != np.round(arr)):
            raise _Bad(f"{key} {arr.tolist()} must be whole numbers >= {low} ({what})",
                       f"Export {key} as integers >= {low}.")
    return rule


def _non_negative(key: str, what: str) -> Rule:
    def rule(fields: Fields) -> None:
        if key in fields and np.any(_array(fields, key) < 0):
            raise _Bad(f"{key} must be >= 0 ({what}; min {_array(fields, key).min():g})",
                       f"Export {key} as non-negative values.")
    return rule


def _io_shape(fields: Fields) -> None:
    """Input/Output: the file's 'shape', or the node's type (a dict of one shape)."""
    types = [fields["shape"]] if "shape" in fields else [
        v for t in ("input_type", "output_type") for v in (fields.get(t) or {}).values()]
    for shape in types:
        arr = np.atleast_1d(np.asarray(shape))
        if arr.dtype.kind not in "iuf" or np.any(arr < 1) or np.any(arr != np.round(arr)):
            raise _Bad(f"shape {arr.tolist()} must be whole numbers >= 1",
                       "Export the port's shape without batch or time dimensions.")
        if float(np.prod(arr.astype(np.float64))) > MAX_PORT:
            raise _Bad(f"shape {arr.tolist()} has {float(np.prod(arr.astype(float))):.3g} "
                       f"values per sample, more than {MAX_PORT}",
                       "Check the exported shape (no batch or time dimensions).")


def _groups(fields: Fields) -> None:
    groups, w = _array(fields, "groups"), _array(fields, "weight")
    if groups.size != 1 or not float(groups.ravel()[0]).is_integer() or groups.ravel()[0] < 1:
        raise _Bad(f"groups {groups.tolist()} must be one whole number >= 1",
                   "Export groups as 1 (dense) or the number of channel groups.")
    if w.ndim and w.shape[0] % int(groups.ravel()[0]):
        raise _Bad(f"groups {int(groups.ravel()[0])} does not divide the {w.shape[0]} output "
                   "channels", "Export the convolution's groups and weight together.")


def _equal_shapes(names: tuple[str, ...]) -> Rule:
    def rule(fields: Fields) -> None:
        shapes = {k: np.shape(fields[k]) for k in names if k in fields}
        if len(set(shapes.values())) > 1:
            listed = ", ".join(f"{k} {list(s)}" for k, s in shapes.items())
            raise _Bad(f"parameters have unequal shapes ({listed})",
                       "Give every parameter one value per neuron (the same shape).")
    return rule


def _positive_taus(fields: Fields) -> None:
    for key in _TAUS:
        if key in fields and np.any(_array(fields, key) <= 0):
            raise _Bad(f"parameter '{key}' must be > 0 (min {_array(fields, key).min():g})",
                       "Time constants are in seconds and positive.")


def _fires_without_input(rest: str) -> Rule:
    """A threshold at or below the resting potential (v_leak; 0 for IF, which starts there)
    makes the neuron fire with no input at all: no exporter writes that on purpose."""
    def rule(fields: Fields) -> None:
        theta, base = np.broadcast_arrays(_array(fields, "v_threshold"),
                                          _array(fields, rest) if rest in fields else 0.0)
        low = np.flatnonzero(theta <= base)
        if low.size:
            k = int(low[0])
            raise _Bad(f"v_threshold {theta.ravel()[k]:g} (neuron {k}) is not above the "
                       f"resting potential {base.ravel()[k]:g}, so the neuron fires without "
                       "input", "Export a threshold above v_leak (IF: above 0).")
    return rule


def _neuron(kind: str, rest: str = "v_leak") -> list[Rule]:
    rules: list[Rule] = [_equal_shapes(NEURON_FIELDS[kind]), _positive_taus]
    return rules + ([_fires_without_input(rest)] if "v_threshold" in NEURON_FIELDS[kind]
                    else [])


_CONV_FIELDS = [_at_least("stride", 1, "a step of 0 never advances"),
                _at_least("dilation", 1, "kernel taps must be apart"),
                _at_least("padding", 0, "padding cannot be negative"), _groups, _bias_matches]
_POOL_FIELDS = [_at_least("kernel_size", 1, "an empty window"),
                _at_least("stride", 1, "a step of 0 never advances"),
                _at_least("padding", 0, "padding cannot be negative")]

RULES: dict[str, list[Rule]] = {
    "Affine": [_weight_ndim(2, False, "(out, in)"), _bias_matches],
    "Linear": [_weight_ndim(2, False, "(out, in)")],
    "Conv1d": [_weight_ndim(3, True, "(out, in/groups, k)"), *_CONV_FIELDS],
    "Conv2d": [_weight_ndim(4, True, "(out, in/groups, kh, kw)"), *_CONV_FIELDS],
    "SumPool2d": _POOL_FIELDS, "AvgPool2d": _POOL_FIELDS,
    "Delay": [_non_negative("delay", "a delay in seconds")],
    "Input": [_io_shape], "Output": [_io_shape],
    **{kind: _neuron(kind) for kind in NEURON_FIELDS},
}


def check_fields(kind: str, fields: Fields, node: str) -> None:
    """Raise GraphError naming ``node`` if a parameter of this ``kind`` of node is unusable."""
    try:
        for key, value in fields.items():
            if key not in _NOT_PARAMETERS and value is not None:
                _numbers(key, value)
        for rule in RULES.get(kind, ()):
            try:
                rule(fields)
            except KeyError:        # a missing field: nir's reader names it
                continue
    except _Bad as bad:
        raise GraphError(f"{kind} node '{node}': {bad.message}", node=node,
                         hint=bad.hint) from None


def check_metadata(metadata: Mapping[str, Any]) -> None:
    """dt, where a graph states it, is a positive number of seconds."""
    if "dt" not in metadata:
        return
    dt = metadata["dt"]
    value = dt.item() if isinstance(dt, np.ndarray) and dt.ndim == 0 else dt
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value <= 0:
        shown = f"an array {list(value.shape)}" if isinstance(value, np.ndarray) else repr(value)
        raise GraphError(f"graph metadata dt = {shown} is not a positive number of seconds",
                         hint="Set metadata 'dt' to the time step in seconds (e.g. 1e-3), or "
                              "remove it and pass --dt.")


def check_graph(nodes: Mapping[str, Any], metadata: Mapping[str, Any]) -> None:
    for name, node in nodes.items():
        check_fields(type(node).__name__, vars(node), name)
    check_metadata(metadata)


__all__ = ["HUGE", "RULES", "check_fields", "check_graph", "check_metadata"]
