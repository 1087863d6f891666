"""A NIR neuron population as Xylo IAF neurons, in floats: dashes, input gain, bias, threshold.

The float reference's Euler step (specs/nir_semantics.md) decays a state by ``alpha =
dt/tau`` per step (``1 - exp(-dt/tau)`` under the ``exact`` integrator); a Xylo state
decays by ``2^-dash``, so ``dash = round(-log2(alpha))`` (Rockpool's ``log2(tau/dt)``
rounded). Xylo's synaptic current takes an event *before* it decays (docs/xylo.md §3):
an event ``a`` adds ``a (1 - 2^-ds)`` to I at once and hands V a total charge of
``a (1 - 2^-ds) / 2^-ds``. The gain makes that charge equal to the reference's:

* CubaLIF: ``gain = alpha_mem r w_in 2^-ds / (1 - 2^-ds)`` (with the hardware's own
  ``2^-ds``, so the rounded dash does not change the charge).
* LIF: no synaptic current in the model; Xylo has one (ds = 0 clears it before V sees
  it), so the input goes through ``ds = 1`` (half now, then halving) with
  ``gain = alpha r``: the same charge, spread over the following steps.
* IF: the same, with ``dash_mem`` at its maximum: V still leaks one unit per step.

Every difference between the model's neuron and Xylo's (these, the reset, ``>`` vs
``>=``) is listed in ``Dyn.differences``; compiling needs ``--approximate xylo-neuron``
to accept them. The reset's differences depend on how many spikes the population's
neurons may fire per step (the target's ``hidden_spikes_max``, 31; ``output_spikes_max``,
1: an output neuron subtracts its threshold once, as a one-spike model does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import nir
import numpy as np
from snn2hw_emulator.xylo_rules import Violation

from snn2hw import primitives
from snn2hw.options import XYLO_APPROXIMATIONS
from snn2hw.reference import resolve_options

APPROXIMATION = XYLO_APPROXIMATIONS[0]       # the name Options and the CLI accept


@dataclass(frozen=True, eq=False)
class Dyn:
    """Per-neuron (NIR flat order) Xylo parameters of one population, in float units."""

    population: str
    kind: str                    # "lif", "cubalif" or "if"
    dash_mem: np.ndarray
    dash_syn: np.ndarray
    gain: np.ndarray             # I units per unit of summed model input (before scaling)
    bias: np.ndarray             # V units per step (from v_leak and the projection's bias)
    threshold: np.ndarray
    alpha_syn: np.ndarray        # the model's synaptic alpha (1: none); for bias and bounds
    differences: tuple[str, ...]


def _flat(node: Any, name: str, n: int, default: float = 0.0) -> np.ndarray:
    value = getattr(node, name, None)
    arr = np.asarray(default if value is None else value, dtype=float).ravel()
    return np.broadcast_to(arr, (n,)).copy() if arr.size in (1, n) else np.full(n, np.nan)


def _alpha(tau: np.ndarray, dt: float, integrator: str) -> np.ndarray:
    with np.errstate(divide="ignore"):
        ratio = dt / tau
    return 1.0 - np.exp(-ratio) if integrator == "exact" else ratio


def _dash(alpha: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.rint(-np.log2(np.clip(alpha, 1e-300, None))).astype(np.int64)


def dynamics(name: str, node: Any, n: int, bias_in: np.ndarray, opt: Any, dash_max: int,
             spikes_max: int) -> tuple[Dyn | None, list[Violation]]:
    """The population's Xylo parameters, or None and the violations that prevent them;
    ``spikes_max``: the spikes its neurons fire per step at most (hidden or output)."""
    bad = _model_violations(name, node, n, opt, dash_max)
    if bad:
        return None, bad
    ones = np.ones(n)
    r = _flat(node, "r", n, 1.0)
    diffs = list(_reset_differences(name, node, opt, spikes_max))
    if isinstance(node, nir.CubaLIF):
        a_syn = _alpha(_flat(node, "tau_syn", n), opt.dt, opt.integrator)
        a_mem = _alpha(_flat(node, "tau_mem", n), opt.dt, opt.integrator)
        ds = np.maximum(_dash(a_syn), 1)         # ds = 0 would clear I before V sees it
        hw = 2.0 ** -ds
        gain = a_mem * r * _flat(node, "w_in", n, 1.0) * hw / (1 - hw)
        bias = a_mem * _flat(node, "v_leak", n) + a_mem * r * _flat(node, "w_in", n, 1.0) * \
            bias_in
        if np.any(bias_in != 0):
            diffs.append(f"'{name}': the projection's bias enters V at once (Xylo's bias), "
                         "not through the synaptic current")
        return Dyn(name, "cubalif", _dash(a_mem), ds, gain, bias,
                   _flat(node, "v_threshold", n), a_syn, tuple(diffs)), []
    ds = np.ones(n, np.int64)
    diffs.append(f"'{name}': Xylo filters every input through a synaptic current "
                 "(dash_syn 1: half at once, then halving; the total charge is kept)")
    if isinstance(node, nir.IF):
        diffs.append(f"'{name}': IF has no leak; Xylo's V still moves one unit per step "
                     f"toward 0 (dash_mem {dash_max})")
        return Dyn(name, "if", np.full(n, dash_max), ds, r * ones, r * bias_in,
                   _flat(node, "v_threshold", n), ones, tuple(diffs)), []
    a_mem = _alpha(_flat(node, "tau", n), opt.dt, opt.integrator)
    return Dyn(name, "lif", _dash(a_mem), ds, a_mem * r,
               a_mem * (_flat(node, "v_leak", n) + r * bias_in),
               _flat(node, "v_threshold", n), ones, tuple(diffs)), []


def _model_violations(name: str, node: Any, n: int, opt: Any, dash_max: int
                      ) -> list[Violation]:
    if not primitives.is_spiking(node):
        return [Violation("spiking_neurons_only", name, 0, 0,
                          "Use LIF, CubaLIF or IF neurons (end with a spiking layer; decode "
                          "its spike counts).", "",
                          f"'{name}' is a {type(node).__name__}; Xylo runs spiking IAF "
                          "neurons only")]
    out: list[Violation] = []
    taus = ("tau_syn", "tau_mem") if isinstance(node, nir.CubaLIF) else \
        ("tau",) if isinstance(node, nir.LIF) else ()
    for field in taus:
        tau = _flat(node, field, n)
        short = np.flatnonzero(~(tau > opt.dt))
        if short.size:
            out.append(Violation("time_constants_exceed_dt", f"{name}.{field}",
                                 float(np.nanmin(tau)), opt.dt,
                                 "Use a smaller dt or longer time constants (dash = "
                                 "log2(tau/dt) must be >= 1).", "",
                                 f"'{name}' has {field} <= dt ({float(np.nanmin(tau)):g} s "
                                 f"<= {opt.dt:g} s) on {short.size} neuron(s)"))
            continue
        dash = _dash(_alpha(tau, opt.dt, opt.integrator))
        if dash.max() > dash_max:
            out.append(Violation("dash_fits", f"{name}.{field}", int(dash.max()), dash_max,
                                 "Use a larger dt or shorter time constants.",
                                 "numeric.dash_bits",
                                 f"'{name}' needs dash {int(dash.max())} for {field} = "
                                 f"{float(np.nanmax(tau)):g} s at dt = {opt.dt:g} s; at most "
                                 f"{dash_max}"))
    theta = _flat(node, "v_threshold", n)
    if not np.all(theta > 0):
        out.append(Violation("thresholds_positive", name, float(np.nanmin(theta)), 0,
                             "Shift v so that every threshold is positive.", "",
                             f"'{name}' has a threshold <= 0 ({float(np.nanmin(theta)):g}), "
                             "which fires every step"))
    if isinstance(node, nir.CubaLIF) and opt.cuba_voltage_uses != "new":
        out.append(Violation("cuba_uses_new_current", name, 0, 0,
                             "Xylo's V integrates the current of the same step; use 'new'.",
                             "", f"'{name}': cuba_voltage_uses='old' has no Xylo equivalent"))
    return out


def _reset_differences(name: str, node: Any, opt: Any, spikes_max: int) -> list[str]:
    """How the model's reset differs from Xylo's: the threshold subtracted once per
    spike, at most ``spikes_max`` spikes per step. An output neuron (one spike) after a
    subtracting one-spike model differs only where snnTorch carries its reset over."""
    mode = str((node.metadata or {}).get("reset", opt.reset))
    out = []
    if mode == "zero":
        many = f" (up to {spikes_max} spikes per step)" if spikes_max > 1 else ""
        out.append(f"'{name}': reset to zero becomes Xylo's subtraction of the threshold"
                   + many)
    elif mode in ("subtract", "snntorch_subtract") and spikes_max > 1:
        out.append(f"'{name}': one spike per step becomes up to {spikes_max} (when V >= 2 "
                   "thresholds)")
    elif mode == "snntorch_subtract":
        out.append(f"'{name}': a spike that leaves V above the threshold holds the next one "
                   "back in snnTorch (its reset is carried to the next step), not on Xylo")
    elif mode != "subtract":                            # sinabs: multi-spike, subtract
        if spikes_max == 1:
            out.append(f"'{name}': several spikes per step (V >= 2 thresholds) become one")
        out.append(f"'{name}': V is not held above -threshold (Xylo floors it at -32768)")
    if opt.threshold_cmp == "gt":
        out.append(f"'{name}': v > threshold becomes v >= threshold")
    return out


def options(graph: Any, dt: float | None) -> Any:
    """The float reference's options for ``graph`` (dt overrides the metadata)."""
    return resolve_options(graph, dt=dt)
