"""The NIR primitives snn2hw accepts, one row each: what a node is and what each part of
snn2hw does with it (NIR's one dataclass per primitive; ONNX's schema with its shape
function). Modules look a node up here instead of testing its type.

Columns:

* ``kind``: ``input``, ``output``, ``linear`` (stateless and linear: what a projection
  between two populations may contain), ``neuron`` (a population), ``delay`` or
  ``threshold``;
* ``stateful``: its output at step t depends on step t-1, so a cycle through it is a
  recurrence, not an algebraic loop (the SCC rule, specs/nir_semantics.md §1.4);
* ``spiking``: a neuron that sends 0/1 spikes; the others (LI, CubaLI, I) are read
  through v (readouts);
* ``states``: the state variables the float reference records;
* ``shape``: the shape rule (:mod:`snn2hw.shape_rules`);
* ``forward`` / ``integrate``: the float reference's step (:mod:`snn2hw.refops`) of a
  stateless node, or of a neuron's membrane before threshold and reset;
* ``discretise``: a neuron's Loihi CUBA-LIF constants at dt
  (:mod:`snn2hw.passes.decays`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import nir

from snn2hw import refops
from snn2hw import shape_rules as rules
from snn2hw.passes import decays

KINDS = ("input", "output", "linear", "neuron", "delay", "threshold")


@dataclass(frozen=True)
class Primitive:
    kind: str
    shape: rules.Rule
    stateful: bool = False
    spiking: bool = False
    states: tuple[str, ...] = ()
    forward: Callable[[Any, Any], Any] | None = None
    integrate: Callable[..., Any] | None = None
    discretise: Callable[..., decays.Constants] | None = None


def _neuron(shape: str, integrate: Callable[..., Any], discretise: Callable[..., Any],
            spiking: bool, states: tuple[str, ...] = ("v",)) -> Primitive:
    return Primitive("neuron", rules.elementwise(shape), True, spiking, states, None,
                     integrate, discretise)


def _linear(shape: rules.Rule, forward: Callable[[Any, Any], Any]) -> Primitive:
    return Primitive("linear", shape, forward=forward)


TABLE: Mapping[type, Primitive] = MappingProxyType({
    nir.Input: Primitive("input", rules.io),
    nir.Output: Primitive("output", rules.io, forward=refops.identity),
    nir.Affine: _linear(rules.dense, refops.affine),
    nir.Linear: _linear(rules.dense, refops.linear),
    nir.Scale: _linear(rules.elementwise("scale"), refops.scale),
    nir.Conv1d: _linear(rules.conv(1), refops.conv),
    nir.Conv2d: _linear(rules.conv(2), refops.conv),
    nir.SumPool2d: _linear(rules.pool, refops.sum_pool),
    nir.AvgPool2d: _linear(rules.pool, refops.avg_pool),
    nir.Flatten: _linear(rules.flatten, refops.flatten),
    nir.Threshold: Primitive("threshold", rules.elementwise("threshold"),
                             forward=refops.threshold),
    nir.Delay: Primitive("delay", rules.elementwise("delay"), stateful=True),
    nir.IF: _neuron("r", refops.integrate_perfect, decays.perfect, True),
    nir.I: _neuron("r", refops.integrate_perfect, decays.perfect, False),
    nir.LIF: _neuron("tau", refops.integrate_leaky, decays.leaky, True),
    nir.LI: _neuron("tau", refops.integrate_leaky, decays.leaky, False),
    nir.CubaLIF: _neuron("tau_mem", refops.integrate_cuba, decays.current_based, True,
                         ("v", "i")),
    nir.CubaLI: _neuron("tau_mem", refops.integrate_cuba, decays.current_based, False,
                        ("v", "i")),
})

#: The accepted NIR classes (nested NIRGraph nodes are flattened away on import).
KNOWN: tuple[type, ...] = tuple(TABLE)


def lookup(node: Any) -> Primitive | None:
    """The row of ``node`` (a subclass finds its NIR base class), None if unknown."""
    for cls in type(node).__mro__:
        row = TABLE.get(cls)
        if row is not None:
            return row
    return None


def of(node: Any) -> Primitive:
    """The row of a node the checker accepted (KeyError naming the type otherwise)."""
    row = lookup(node)
    if row is None:
        raise KeyError(type(node).__name__)
    return row


def kind(node: Any) -> str | None:
    row = lookup(node)
    return None if row is None else row.kind


def is_neuron(node: Any) -> bool:
    return kind(node) == "neuron"


def is_source(node: Any) -> bool:
    """A population: where a projection starts (an Input or a neuron)."""
    return kind(node) in ("input", "neuron")


def is_stateful(node: Any) -> bool:
    row = lookup(node)
    return row is not None and row.stateful


def is_spiking(node: Any) -> bool:
    row = lookup(node)
    return row is not None and row.spiking


__all__ = ["KINDS", "KNOWN", "TABLE", "Primitive", "is_neuron", "is_source", "is_spiking",
           "is_stateful", "kind", "lookup", "of"]
