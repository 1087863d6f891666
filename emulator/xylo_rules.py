"""Design rules of a Xylo core: small named functions, each yielding every violation of a
program (or of the compiler's float net, which has the same weight fields) against a
target's limits. The compiler runs them before it quantises (on the weights' non-zero
pattern) and the emulator when it loads a program image; all violations are reported
together, each with where, the measured value, the limit, the target key and a fix.
A rule reads its limits from the target's ``xylo-iaf`` record (``target.numeric``) and
its ``[core]`` table (hidden neurons, recurrent fan-out) only.

Limits (docs/xylo.md §5): Xylo Audio 2 has 16 input channels, 1,000 hidden neurons with
two synaptic currents, 8 output neurons, a recurrent fan-out of 64 per neuron; Xylo IMU
16, 496 with one, 16, a fan-out of 512 and 31,744 recurrent weights in all, with input
weights only into the first 128 hidden neurons and output weights only from the last 128.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

import numpy as np
from snn2hw_emulator.rules import Violation
from snn2hw_emulator.target import Target


class XyloWeights(Protocol):
    """What the rules read: a XyloProgram, or the compiler's float net (the same fields)."""

    weights_in: np.ndarray           # (n_in, n_hidden, n_syn)
    weights_rec: np.ndarray          # (n_hidden, n_hidden, n_syn)
    weights_out: np.ndarray          # (n_hidden, n_out)


def _nonzero(w: np.ndarray) -> np.ndarray:
    return np.asarray(w) != 0


def _v(rule: str, where: str, measured: float, limit: float, key: str, text: str,
       hint: str) -> Violation:
    return Violation(rule, where, float(measured), float(limit), hint, key, text)


def describe(v: Violation) -> str:
    """One line: the rule, what is wrong with numbers, the target key and the fix."""
    key = f" [target: {v.key}]" if v.key else ""
    return f"{v.rule}: {v.text or v.where}{key}; fix: {v.hint}"


def inputs_fit(net: XyloWeights, t: Target) -> Iterator[Violation]:
    n, cap = int(np.shape(net.weights_in)[0]), t.numeric.inputs_max
    if n > cap:
        yield _v("inputs_fit", "input", n, cap, "numeric.inputs_max",
                 f"the network has {n} input channels; the core has {cap}",
                 "reduce the input channels (pool or select features)")


def hidden_fit(net: XyloWeights, t: Target) -> Iterator[Violation]:
    n, cap = int(np.shape(net.weights_rec)[0]), t.core.neurons_max
    if n > cap:
        yield _v("hidden_neurons_fit", "hidden", n, cap, "core.neurons_max",
                 f"{n} hidden neurons; the core has {cap}", "use fewer or smaller hidden layers")


def outputs_fit(net: XyloWeights, t: Target) -> Iterator[Violation]:
    n, cap = int(np.shape(net.weights_out)[1]), t.numeric.outputs_max
    if n > cap:
        yield _v("output_neurons_fit", "output", n, cap, "numeric.outputs_max",
                 f"{n} output neurons; the core has {cap}",
                 "use fewer output neurons (classes), or a Xylo with more outputs")


def synapses_fit(net: XyloWeights, t: Target) -> Iterator[Violation]:
    n, cap = int(np.shape(net.weights_in)[2]), t.numeric.synapses_max
    if n > cap:
        yield _v("synapses_per_neuron_fit", "hidden", n, cap, "numeric.synapses_max",
                 f"hidden neurons use {n} synaptic currents; the core has {cap}",
                 "use one synaptic current per neuron on this target")


def fan_out_fits(net: XyloWeights, t: Target) -> Iterator[Violation]:
    """Recurrent targets per hidden neuron (a target through either synapse counts once)."""
    per = _nonzero(net.weights_rec).any(axis=2).sum(axis=1)
    cap = t.core.fan_out_axons_max
    over = np.flatnonzero(per > cap)
    if over.size:
        worst = int(over[np.argmax(per[over])])
        yield _v("recurrent_fan_out_fits", f"hidden neuron {worst}", int(per[worst]), cap,
                 "core.fan_out_axons_max",
                 f"{over.size} hidden neuron(s) send weights to more than {cap} hidden "
                 f"neurons; neuron {worst} to {int(per[worst])}",
                 "connect hidden layers more sparsely, or make them smaller")


def recurrent_weights_fit(net: XyloWeights, t: Target) -> Iterator[Violation]:
    n, cap = int(_nonzero(net.weights_rec).sum()), t.numeric.recurrent_weights_max
    if n > cap:
        yield _v("recurrent_weights_fit", "hidden", n, cap, "numeric.recurrent_weights_max",
                 f"{n} hidden-to-hidden weights; the core stores {cap}",
                 "prune hidden-to-hidden weights or use smaller hidden layers")


def input_expansion_fits(net: XyloWeights, t: Target) -> Iterator[Violation]:
    fed = np.flatnonzero(_nonzero(net.weights_in).any(axis=(0, 2)))
    cap = t.numeric.input_expansion_max
    if fed.size and fed.max() >= cap:
        top = int(fed.max())
        yield _v("input_expansion_fits", f"hidden neuron {top}", top + 1, cap,
                 "numeric.input_expansion_max",
                 f"input weights reach hidden neuron {top}; only hidden neurons 0..{cap - 1} "
                 "can receive input",
                 f"feed the input to one first hidden layer of at most {cap} neurons")


def output_expansion_fits(net: XyloWeights, t: Target) -> Iterator[Violation]:
    n, cap = int(np.shape(net.weights_rec)[0]), t.numeric.output_expansion_max
    src = np.flatnonzero(_nonzero(net.weights_out).any(axis=1))
    if src.size and src.min() < n - cap:
        low = int(src.min())
        yield _v("output_expansion_fits", f"hidden neuron {low}", n - low, cap,
                 "numeric.output_expansion_max",
                 f"output weights leave hidden neuron {low}; only the last {cap} of {n} "
                 "hidden neurons can project to the outputs",
                 f"read the outputs from one last hidden layer of at most {cap} neurons")


Rule = Callable[[XyloWeights, Target], Iterator[Violation]]
#: Every resource rule, in report order.
RULES: tuple[Rule, ...] = (inputs_fit, hidden_fit, outputs_fit, synapses_fit, fan_out_fits,
                           recurrent_weights_fit, input_expansion_fits, output_expansion_fits)


def check(net: XyloWeights, t: Target) -> list[Violation]:
    """Every violation of every rule (an empty list: the network fits)."""
    return [v for rule in RULES for v in rule(net, t)]
