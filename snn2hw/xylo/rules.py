"""Design rules of a NIR model against a Xylo target: small named functions, each yielding
every violation with numbers, the target key and a fix; :func:`check` runs all of them
and the resource rules (snn2hw_emulator.xylo_rules) on the lowered float network, so a
model that does not fit gets every violated rule at once.

Rockpool's list (``syns61201/xylo_mapper.py: xylo_drc``, docs/xylo.md §5) maps to these:
``output_nodes_have_neurons_as_source`` -> :func:`output_from_one_spiking_population`;
``le_16_input_channels``/``le_8_output_channels`` -> ``inputs_fit``/``output_neurons_fit``
(errors here, not warnings); ``output_neurons_cannot_be_recurrent`` ->
:func:`output_neurons_cannot_be_recurrent`; ``at_least_two_neuron_layers_needed`` ->
:func:`at_least_two_neuron_layers`; ``max_synapses_per_neuron`` (IMU) ->
``synapses_per_neuron_fit``; IMU's expansion limits -> ``input_expansion_fits`` /
``output_expansion_fits``. Not rules here: ``first_module_is_a_weight`` and
``input_to_neurons_is_a_weight`` (an Input feeding neurons directly becomes an identity
weight matrix), ``no_consecutive_weights`` (chains of linear nodes fold into one matrix,
exactly), ``weight_nodes_have_no_biases`` (a bias becomes the neuron's bias, within its
8 bits), ``all_neurons_have_same_dt`` (a NIR graph has one dt), the alias rules (NIR has
no aliases).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import nir
from snn2hw_emulator.rules import Violation

from snn2hw.passes.structure import Structure
from snn2hw.xylo.dynamics import APPROXIMATION, Dyn


@dataclass(frozen=True, eq=False)
class Model:
    """What the model rules read: the graph, its structure (None where the structure
    could not be built), each population's Xylo dynamics, and the accepted approximations."""

    graph: Any
    structure: Structure | None
    dyn: dict[str, Dyn]
    approximations: tuple[str, ...]

    @property
    def input(self) -> str | None:
        names = self.graph.inputs()
        return names[0] if len(names) == 1 else None

    @property
    def output(self) -> str | None:
        st = self.structure
        return next(iter(st.outputs.values())) if st is not None and len(st.outputs) == 1 \
            else None


def _v(rule: str, where: str, measured: float, limit: float, text: str, hint: str,
       key: str = "") -> Violation:
    return Violation(rule, where, float(measured), float(limit), hint, key, text)


def one_input_port(m: Model, t: Any) -> Iterator[Violation]:
    names = m.graph.inputs()
    if len(names) != 1:
        yield _v("one_input_port", "graph", len(names), 1,
                 f"the model has {len(names)} Input nodes; Xylo has one bank of input "
                 "channels", "concatenate the inputs into one Input node")


def output_from_one_spiking_population(m: Model, t: Any) -> Iterator[Violation]:
    outs = [n for n, node in m.graph.nodes.items() if isinstance(node, nir.Output)]
    if len(outs) != 1:
        yield _v("output_from_one_spiking_population", "graph", len(outs), 1,
                 f"the model has {len(outs)} Output nodes; Xylo reports one layer of output "
                 "neurons", "keep one Output node, fed by the last spiking layer")


def at_least_two_neuron_layers(m: Model, t: Any) -> Iterator[Violation]:
    st = m.structure
    if st is None or m.output is None:
        return
    neurons = [p for p in st.populations if p != m.input]
    if len(neurons) < 2:
        yield _v("at_least_two_neuron_layers", m.output, len(neurons), 2,
                 f"{len(neurons)} neuron layer(s); Xylo needs a hidden layer before the "
                 "output layer (input weights reach hidden neurons only)",
                 "add a hidden spiking layer between the input and the output layer")


def input_only_to_hidden(m: Model, t: Any) -> Iterator[Violation]:
    st = m.structure
    if st is None or m.output is None:
        return
    for p in st.projections:
        if p.source == m.input and p.target == m.output:
            yield _v("input_only_to_hidden", p.name, 1, 0,
                     f"the input feeds the output layer '{p.target}' directly; Xylo's input "
                     "weights reach hidden neurons only",
                     "route the input through a hidden layer")


def output_neurons_cannot_be_recurrent(m: Model, t: Any) -> Iterator[Violation]:
    st = m.structure
    if st is None or m.output is None:
        return
    for p in st.projections:
        if p.source == m.output:
            yield _v("output_neurons_cannot_be_recurrent", p.name, 1, 0,
                     f"the output layer '{p.source}' feeds '{p.target}'; Xylo's output "
                     "neurons send nothing back", "end the model with a layer that only "
                     "reads out (move the recurrence into a hidden layer)")


def no_synaptic_delays(m: Model, t: Any) -> Iterator[Violation]:
    st = m.structure
    if st is None:
        return
    for p in st.projections:
        if p.delay:
            yield _v("no_synaptic_delays", p.name, p.delay, 0,
                     f"'{p.name}' needs a delay of {p.delay} step(s) to keep the model's "
                     "timing (paths of different depth meet there); Xylo has no delays",
                     "give every path into a layer the same number of layers", "connectivity.delays")


def neuron_model_matches(m: Model, t: Any) -> Iterator[Violation]:
    if APPROXIMATION in m.approximations:
        return
    for name, d in m.dyn.items():
        if d.differences:
            yield _v("neuron_model_matches", name, len(d.differences), 0,
                     f"Xylo's IAF neuron differs from '{name}' ({d.kind}): "
                     + "; ".join(x.split(": ", 1)[-1] for x in d.differences),
                     f"accept with --approximate {APPROXIMATION} (then check the accuracy "
                     "with snn2hw verify), or train with Xylo's neuron")


Rule = Callable[[Model, Any], Iterator[Violation]]
#: The model rules, in report order (the neuron rules of dynamics.py and the resource
#: rules of snn2hw_emulator.xylo_rules run with them in compile.py).
RULES: tuple[Rule, ...] = (one_input_port, output_from_one_spiking_population,
                           at_least_two_neuron_layers, input_only_to_hidden,
                           output_neurons_cannot_be_recurrent, no_synaptic_delays,
                           neuron_model_matches)


def check(m: Model, t: Any) -> list[Violation]:
    return [v for rule in RULES for v in rule(m, t)]
