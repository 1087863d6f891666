"""Discretise: each neuron population's ODE constants at ``dt`` -> Loihi CUBA-LIF decays,
in the widths of the target's family record (``f``: family.LoihiLif).

Loihi's neuron (Lava fixed point, specs/loihi_fixed_point.md §1.3), in float terms, with
``ONE = 2^decay_bits`` (4096 in Lava) and Loihi's ``du_offset`` (1):

    u[t] = (1 - (du+du_offset)/ONE) * u[t-1] + a[t]   (a: weighted input, << act_shift)
    v[t] = (1 - dv/ONE)             * v[t-1] + u[t] + bias

The float reference's Euler step (specs/nir_semantics.md §1.5) maps onto it exactly,
up to the ``decay_bits`` rounding of the decays, with ``alpha = dt/tau``
(``1 - exp(-dt/tau)`` under the ``exact`` integrator):

* LIF / LI: ``dv = ONE*alpha``, ``du = ONE - du_offset`` (u forgets: u = a), input gain
  ``alpha*r``, bias per step ``alpha*v_leak``.
* IF / I: ``dv = 0``, ``du = ONE - du_offset``, gain ``r``.
* CubaLIF / CubaLI: ``du = ONE*alpha_syn - du_offset``, ``dv = ONE*alpha_mem``, gain
  ``alpha_mem*r*alpha_syn*w_in`` (u is the synaptic current in voltage units).

LI, CubaLI and I have no threshold: they become *readouts* (a LIF whose threshold
is never reached, read through its voltage).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import nir
import numpy as np
from snn2hw_emulator.family import LAVA, LoihiLif

from snn2hw.errors import UnsupportedError
from snn2hw.reference import resolve_options

READOUT_TYPES = (nir.LI, nir.CubaLI, nir.I)
APPROXIMATIONS = ("reset-to-zero", "cuba-bias", "threshold-ge")


@dataclass(frozen=True, eq=False)
class Dynamics:
    """Per-neuron (flat, NIR order) discrete dynamics of one population."""

    model: str                 # "lif" or "readout"
    du: np.ndarray             # int, 0..decay_max
    dv: np.ndarray             # int, 0..decay_max
    gain: np.ndarray           # float: v-units per unit of summed input
    bias: np.ndarray           # float: v-units added every step (from v_leak)
    threshold: np.ndarray      # float (inf for readouts)
    cuba: bool                 # u carries memory (bias into u is then not exact)


def _flat(node: Any, name: str, n: int, default: float = 0.0) -> np.ndarray:
    value = getattr(node, name, None)
    arr = np.asarray(default if value is None else value, dtype=float).ravel()
    if arr.size not in (1, n):
        raise UnsupportedError(f"parameter '{name}' has {arr.size} values for {n} neurons")
    return np.broadcast_to(arr, (n,)).copy()


def _alpha(tau: np.ndarray, dt: float, integrator: str) -> np.ndarray:
    ratio = dt / tau
    return 1.0 - np.exp(-ratio) if integrator == "exact" else ratio


def _decay(name: str, field: str, alpha: np.ndarray, offset: int, f: LoihiLif) -> np.ndarray:
    """The decay code ``rint(alpha * 2^decay_bits) - offset`` (offset: du_offset for u)."""
    code = np.rint(alpha * f.decay_one).astype(np.int64) - offset
    bits, steps = f"{f.decay_bits}-bit", 2 * f.decay_one     # rounds to 0 beyond ONE/2 steps
    if np.any(alpha >= 1.0):
        raise UnsupportedError(
            f"'{field}' of node '{name}' is at most dt (dt/tau = {alpha.max():.3g}): the neuron "
            f"keeps no memory, which a {bits} decay cannot express", node=name,
            hint="Use a smaller dt or a longer time constant.")
    if np.any(code < 0):
        raise UnsupportedError(
            f"'{field}' of node '{name}' is over {steps} steps long (dt/tau = "
            f"{alpha.min():.3g}); the {bits} decay rounds it to no decay plus one", node=name,
            hint="Use a larger dt, or a perfect integrator (IF / I) if that is the intent.")
    small = (code == 0) & (alpha > 0) if offset == 0 else np.zeros_like(code, dtype=bool)
    if np.any(small):
        warnings.warn(f"node '{name}': {field} is so long (dt/{field} < 1/{steps}) that the "
                      f"{bits} decay rounds it to no leak", stacklevel=3)
    return np.minimum(code, f.decay_max)


def dynamics(name: str, node: Any, n: int, opt: Any, approximations: tuple[str, ...],
             f: LoihiLif = LAVA) -> Dynamics:
    """Discrete Loihi dynamics of one neuron node (``opt``: resolved reference options) in
    the widths of ``f``, the target's family record (default: Lava's)."""
    mode = str((node.metadata or {}).get("reset", opt.reset))
    spiking = not isinstance(node, READOUT_TYPES)
    if spiking:
        _check_reset(name, node, n, mode, opt, approximations)
    ones = np.ones(n)
    if isinstance(node, (nir.IF, nir.I)):
        du, dv = np.full(n, f.du_forget), np.zeros(n, dtype=np.int64)
        gain, bias, cuba = _flat(node, "r", n), np.zeros(n), False
    elif isinstance(node, (nir.LIF, nir.LI)):
        a = _alpha(_flat(node, "tau", n), opt.dt, opt.integrator)
        du, dv = np.full(n, f.du_forget), _decay(name, "tau", a, 0, f)
        gain, bias, cuba = a * _flat(node, "r", n), a * _flat(node, "v_leak", n), False
    else:
        if opt.cuba_voltage_uses != "new":
            raise UnsupportedError(
                f"node '{name}': cuba_voltage_uses='old' (voltage from last step's current) has "
                "no Loihi equivalent", node=name,
                hint="Loihi's voltage integrates the current of the same step; use 'new'.")
        a_syn = _alpha(_flat(node, "tau_syn", n), opt.dt, opt.integrator)
        a_mem = _alpha(_flat(node, "tau_mem", n), opt.dt, opt.integrator)
        du = _decay(name, "tau_syn", a_syn, f.du_offset, f)
        dv = _decay(name, "tau_mem", a_mem, 0, f)
        gain = a_mem * _flat(node, "r", n) * a_syn * _flat(node, "w_in", n, 1.0)
        bias, cuba = a_mem * _flat(node, "v_leak", n), True
    threshold = _flat(node, "v_threshold", n) if spiking else np.full(n, np.inf)
    if spiking and np.any(threshold <= 0):
        raise UnsupportedError(f"node '{name}' has a threshold <= 0, which a Loihi threshold "
                               "mantissa (unsigned) cannot express", node=name,
                               hint="Shift the voltage so that the threshold is positive.")
    return Dynamics("lif" if spiking else "readout", du.astype(np.int64), dv.astype(np.int64),
                    gain * ones, bias * ones, threshold, cuba)


def _check_reset(name: str, node: Any, n: int, mode: str, opt: Any,
                 approximations: tuple[str, ...]) -> None:
    if np.any(_flat(node, "v_reset", n) != 0):
        raise UnsupportedError(f"node '{name}' resets to v_reset != 0; Loihi resets to 0",
                               node=name, hint="Set v_reset = 0 (shift v_leak and the "
                               "threshold instead).")
    if mode != "zero":
        if "reset-to-zero" not in approximations:
            raise UnsupportedError(
                f"node '{name}' resets by '{mode}', but Loihi's LIF resets to zero", node=name,
                hint="Retrain with reset to zero, or accept the approximation with "
                     "--approximate reset-to-zero (strongly driven neurons then lose the "
                     "charge above threshold and fire less).")
        warnings.warn(f"node '{name}': reset '{mode}' approximated by reset to zero; neurons "
                      "driven above threshold lose the excess charge and fire less", stacklevel=4)
    if opt.threshold_cmp != "gt":
        if "threshold-ge" not in approximations:
            raise UnsupportedError(
                f"node '{name}' fires at v >= threshold; Loihi fires at v > threshold",
                node=name, hint="Accept with --approximate threshold-ge (ties then differ).")
        warnings.warn(f"node '{name}': v >= threshold approximated by v > threshold",
                      stacklevel=4)


def options(graph: Any, dt: float | None) -> Any:
    """The float reference's options for ``graph`` (dt argument overrides metadata)."""
    return resolve_options(graph, dt=dt)


__all__ = ["APPROXIMATIONS", "READOUT_TYPES", "Dynamics", "dynamics", "options"]
