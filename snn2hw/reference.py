"""The float reference simulator: batched discrete-time execution of a NIR graph.

It is the yardstick for quantisation, and on snnTorch exports it reproduces
snnTorch's own forward pass spike for spike. Conventions (specs/nir_semantics.md
§1.3-1.5), all recorded as graph metadata keys or passed as arguments:

* ``dt`` (seconds): NIR does not carry it. Default 1e-4 (the snnTorch/NIR-paper
  convention) with a warning when neither the graph nor the caller gives one.
* One step, for t = 0..T-1, nodes in topological order of the graph with its
  recurrent edges cut: a node's input is the sum of its predecessors' outputs at
  this step, except on *recurrent* edges (edges leaving a stateful node inside a
  cycle), which carry the previous step's output (zero at t = 0).
* LI/LIF: ``v += dt/tau * (v_leak - v + r*I)`` (``integrator="exact"``: zero-order
  hold ``v = v_inf + (v - v_inf) * exp(-dt/tau)``). IF/I: ``v += r*I`` per step.
  CubaLI/CubaLIF: ``i += dt/tau_syn * (-i + w_in*I)`` then v as LI using the *new*
  ``i`` (``cuba_voltage_uses="old"`` uses the previous one).
* Spiking: integrate, then threshold (strict ``v > v_threshold``; ``threshold_cmp="ge"``
  for ``>=``), then reset, within one step. Spikes have amplitude 1.
  ``reset``: ``zero`` (v = v_reset), ``subtract`` (v -= v_threshold),
  ``snntorch_subtract`` (snnTorch 1.0's exact flavour: a reset flag carried from the
  previous step), ``sinabs`` (multi-spike ``trunc(v/θ)``, subtract, v >= -θ).
  A node's own ``metadata["reset"]`` overrides the graph's.
* Output nodes pass their summed input through; Delay shifts by round(delay/dt) steps.
* Sigma-delta nodes (IF nodes marked ``snn2hw.sigma_delta``, :mod:`snn2hw.sdnn`) run
  Lava's SigmaDelta in floats: sigma accumulates the input, the activation (ReLU or
  none) of sigma + bias is compared with what was sent, and a change of at least vth
  is sent as a graded payload (their recorded ``v`` is the activation). Each takes its
  input one step late, as the hardware delivers it one synaptic hop later: with
  thresholds, a sigma-delta network's transient (a bias acting before the input
  arrives) changes what it sends, so the timing is part of the model. dt plays no part.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from snn2hw import primitives, sdnn
from snn2hw.errors import UnsupportedError, UserInputError
from snn2hw.ir import Graph, execution_order, recurrent_edges
from snn2hw.refops import conv2d, param
from snn2hw.shapes import infer_shapes

DEFAULT_DT = 1e-4
RESET_MODES = ("zero", "subtract", "snntorch_subtract", "sinabs")
OPTIONS = {"integrator": ("euler", "exact"), "cuba_voltage_uses": ("new", "old"),
           "threshold_cmp": ("gt", "ge"), "reset": RESET_MODES}


@dataclass(frozen=True)
class Options:
    dt: float = DEFAULT_DT
    reset: str = "zero"
    integrator: str = "euler"
    cuba_voltage_uses: str = "new"
    threshold_cmp: str = "gt"


@dataclass
class SimResult:
    """``outputs[name]`` is (B, T, *shape) per Output node; ``spikes``/``states`` per node
    when recorded (``states[node]["v"]``, ``states[node]["i"]``)."""

    outputs: dict[str, np.ndarray]
    spikes: dict[str, np.ndarray] = field(default_factory=dict)
    states: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    options: Options = field(default_factory=Options)


def resolve_options(graph: Graph, **given: Any) -> Options:
    """Arguments override graph metadata, which overrides defaults; values are checked."""
    meta = dict(graph.metadata)
    values: dict[str, Any] = {}
    for key in ("dt", *OPTIONS):
        value = given.get(key) if given.get(key) is not None else meta.get(key)
        if value is None:
            continue
        if key in OPTIONS and value not in OPTIONS[key]:
            raise UserInputError(f"{key}={value!r} is not one of {', '.join(OPTIONS[key])}")
        values[key] = value
    if "dt" not in values:
        warnings.warn("the graph does not state dt; using dt=1e-4 s (the snnTorch/NIR "
                      "convention). Pass dt= or set graph metadata 'dt'.", stacklevel=3)
    elif not float(values["dt"]) > 0:
        raise UserInputError(f"dt={values['dt']!r} must be a positive number of seconds")
    if "dt" in values:
        values["dt"] = float(values["dt"])
    return Options(**values)


# --------------------------------------------------------------------------- per-node steps

#: The step of every stateless primitive (a view of the primitives table's ``forward``).
STATELESS: Mapping[type, Callable[[Any, np.ndarray], np.ndarray]] = {
    cls: p.forward for cls, p in primitives.TABLE.items() if p.forward is not None}

def _fire(node: Any, v: np.ndarray, state: dict[str, np.ndarray], mode: str,
          opt: Options) -> tuple[np.ndarray, np.ndarray]:
    """Threshold and reset; returns (spikes, new v)."""
    theta = param(node, "v_threshold", v.dtype)
    if mode == "sinabs":
        z = np.where(v > 0, np.trunc(v / theta), 0.0)
        return z, np.maximum(v - z * theta, -theta)
    if mode == "snntorch_subtract":
        flag = state["flag"]
        v = v - flag * theta
    z = ((v > theta) if opt.threshold_cmp == "gt" else (v >= theta)).astype(v.dtype)
    if mode == "zero":
        return z, np.where(z > 0, param(node, "v_reset", v.dtype), v)
    if mode == "subtract":
        return z, v - z * theta
    v = v - (z - state["flag"]) * theta
    state["flag"] = (v > theta).astype(v.dtype)
    return z, v


def _step_neuron(node: Any, x: np.ndarray, state: dict[str, np.ndarray], opt: Options,
                 mode: str) -> np.ndarray:
    if sdnn.is_sd(node):                  # graded payloads, not spikes (module docstring)
        if "sd" not in state:
            state["sd"] = sdnn.params("", node)        # checked by simulate() already
        late = state.get("late", np.zeros_like(x))     # the hop: last step's input
        state["late"] = x
        out = sdnn.step(state["sd"], late, state)
        state["v"], state["i"] = state["act"], state["sigma"]     # recorded as v and sigma
        return out
    row = primitives.of(node)
    v = row.integrate(node, x, state, opt)
    if row.spiking:
        z, v = _fire(node, v, state, mode, opt)
        state["v"] = v
        return z
    state["v"] = v
    return v


def neuron_trace(node: Any, drive: np.ndarray, opt: Options, mode: str) -> np.ndarray:
    """One neuron node over time on a given input ``drive`` (B, T, *shape): its spikes
    (spiking nodes) or v (readouts), (B, T, *shape), by the same step as ``simulate``."""
    shape = drive.shape[:1] + drive.shape[2:]
    state = {k: np.zeros(shape, dtype=drive.dtype) for k in ("v", "i", "flag")}
    return np.stack([_step_neuron(node, drive[:, t], state, opt, mode)
                     for t in range(drive.shape[1])], axis=1)


def _delay_steps(node: Any, dt: float) -> np.ndarray:
    steps = np.asarray(node.delay, dtype=float) / dt
    rounded = np.rint(steps)
    if np.any(np.abs(steps - rounded) > 1e-6 * np.maximum(1, rounded)) or np.any(rounded < 0):
        raise UnsupportedError("Delay values must be non-negative whole multiples of dt "
                               f"(dt={dt:g}, delays/dt={steps.ravel()[:4]}...)",
                               hint="Choose dt so that every delay is a multiple of it.")
    return rounded.astype(int)


# --------------------------------------------------------------------------- simulation


def _inputs(graph: Graph, inputs: Any, shapes: Mapping[str, Any], dtype: Any
            ) -> tuple[dict[str, np.ndarray], int, int]:
    names = graph.inputs()
    if not isinstance(inputs, Mapping):
        if len(names) != 1:
            raise UserInputError(f"the graph has {len(names)} inputs ({', '.join(names)}); "
                                 "pass a dict name -> array")
        inputs = {names[0]: inputs}
    missing = [n for n in names if n not in inputs]
    if missing:
        raise UserInputError(f"no data for input '{missing[0]}'",
                             hint=f"Pass arrays for: {', '.join(names)}.")
    arrays = {n: np.asarray(inputs[n], dtype=dtype) for n in names}
    batch, steps = None, None
    for n, arr in arrays.items():
        want = shapes[n][1]
        if arr.ndim != 2 + len(want) or tuple(arr.shape[2:]) != tuple(want):
            raise UserInputError(f"input '{n}' has shape {arr.shape}; expected "
                                 f"(batch, time, {', '.join(map(str, want))})")
        if batch is not None and arr.shape[:2] != (batch, steps):
            raise UserInputError("all inputs must have the same batch and time sizes")
        batch, steps = arr.shape[:2]
    return arrays, int(batch), int(steps)


def simulate(graph: Graph, inputs: Any, *, dt: float | None = None, reset: str | None = None,
             integrator: str | None = None, cuba_voltage_uses: str | None = None,
             threshold_cmp: str | None = None, record: tuple[str, ...] = (),
             dtype: Any = np.float64) -> SimResult:
    """Run ``graph`` on ``inputs`` ((B, T, *shape) per Input node) for T steps.

    ``record`` may contain ``"spikes"`` (every spiking node; a sigma-delta node's
    payloads) and ``"states"`` (v, i of every stateful node; a sigma-delta node's
    activation as v, and its sigma).
    """
    opt = resolve_options(graph, dt=dt, reset=reset, integrator=integrator,
                          cuba_voltage_uses=cuba_voltage_uses, threshold_cmp=threshold_cmp)
    sdnn.check_graph(graph)
    shapes = infer_shapes(graph)
    arrays, batch, steps = _inputs(graph, inputs, shapes, dtype)
    order = execution_order(graph)
    delayed = recurrent_edges(graph)
    preds = {n: [(p, (p, n) in delayed) for p in graph.predecessors(n)] for n in order}
    modes = {n: str((node.metadata or {}).get("reset", opt.reset))
             for n, node in graph.nodes.items()}
    for n, m in modes.items():
        if m not in RESET_MODES:
            raise UserInputError(f"node '{n}' has reset mode {m!r}; use one of "
                                 f"{', '.join(RESET_MODES)}")
    zeros = {n: np.zeros((batch, *shapes[n][1]), dtype=dtype) for n in order}
    state = {n: {"v": zeros[n].copy(), "i": zeros[n].copy(), "flag": zeros[n].copy()}
             for n in order}
    delay_steps = {n: _delay_steps(graph.nodes[n], opt.dt) for n in order
                   if primitives.kind(graph.nodes[n]) == "delay"}
    history: dict[str, list[np.ndarray]] = {n: [] for n in delay_steps}
    prev = dict(zeros)
    zero_in = {n: np.zeros((batch, *shapes[n][0]), dtype=dtype) for n in order}
    # keep per-step values only for what is returned (outputs, and what was asked for)
    kept = set(graph.outputs()) | {n for n, node in graph.nodes.items() if
                                   "spikes" in record and primitives.is_spiking(node)}
    kept_states = {n for n, node in graph.nodes.items() if "states" in record
                   and primitives.is_neuron(node)}
    traces: dict[str, list[np.ndarray]] = {n: [] for n in kept}
    vs: dict[str, list[np.ndarray]] = {n: [] for n in kept_states}
    cur_i: dict[str, list[np.ndarray]] = {n: [] for n in kept_states}
    for t in range(steps):
        cur: dict[str, np.ndarray] = {}
        for n in order:
            node = graph.nodes[n]
            if primitives.kind(node) == "input":
                cur[n] = arrays[n][:, t]
                continue
            x = zero_in[n]
            for p, is_delayed in preds[n]:
                x = x + (prev[p] if is_delayed else cur[p])
            cur[n] = _run_node(node, n, x, state[n], opt, modes[n], delay_steps, history, t)
            if n in kept:
                traces[n].append(cur[n])
            if n in kept_states:
                vs[n].append(state[n]["v"])
                cur_i[n].append(state[n]["i"])
        prev = cur
    return _collect(graph, traces, vs, cur_i, record, opt)


def _run_node(node: Any, name: str, x: np.ndarray, state: dict[str, np.ndarray], opt: Options,
              mode: str, delay_steps: Mapping[str, np.ndarray],
              history: dict[str, list[np.ndarray]], t: int) -> np.ndarray:
    row = primitives.of(node)
    if row.kind == "delay":
        hist = history[name]
        hist.append(x)
        d = delay_steps[name]
        out = np.zeros_like(x)
        for k in np.unique(d):
            if t - k >= 0:
                mask = np.broadcast_to(d == k, x.shape[1:])
                out[:, mask] = hist[t - k][:, mask]
        return out
    if row.forward is not None:
        return row.forward(node, x)
    return _step_neuron(node, x, state, opt, mode)


def _collect(graph: Graph, traces: dict[str, list[np.ndarray]], vs: dict[str, list[np.ndarray]],
             cur_i: dict[str, list[np.ndarray]], record: tuple[str, ...],
             opt: Options) -> SimResult:
    def stack(seq: list[np.ndarray]) -> np.ndarray:
        return np.stack(seq, axis=1)

    outputs = {n: stack(traces[n]) for n in graph.outputs()}
    result = SimResult(outputs=outputs, options=opt)
    for n, node in graph.nodes.items():
        if "spikes" in record and primitives.is_spiking(node):
            result.spikes[n] = stack(traces[n])
        if n in vs:
            result.states[n] = {"v": stack(vs[n])}
            if "i" in primitives.of(node).states:
                result.states[n]["i"] = stack(cur_i[n])
            elif sdnn.is_sd(node):
                result.states[n]["sigma"] = stack(cur_i[n])
    return result


__all__ = ["DEFAULT_DT", "OPTIONS", "RESET_MODES", "STATELESS", "Options", "SimResult", "conv2d",
           "neuron_trace", "resolve_options", "simulate"]
