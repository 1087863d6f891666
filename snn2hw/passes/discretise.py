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

import numpy as np
from snn2hw_emulator.family import LAVA, LoihiLif

from snn2hw import primitives
from snn2hw.errors import UnsupportedError
from snn2hw.options import LOIHI_APPROXIMATIONS
from snn2hw.passes.decays import flat
from snn2hw.reference import resolve_options

APPROXIMATIONS = LOIHI_APPROXIMATIONS        # the names Options and the CLI accept


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


def dynamics(name: str, node: Any, n: int, opt: Any, approximations: tuple[str, ...],
             f: LoihiLif = LAVA) -> Dynamics:
    """Discrete Loihi dynamics of one neuron node (``opt``: resolved reference options) in
    the widths of ``f``, the target's family record (default: Lava's)."""
    mode = str((node.metadata or {}).get("reset", opt.reset))
    row = primitives.of(node)
    spiking = row.spiking
    if spiking:
        _check_reset(name, node, n, mode, opt, approximations)
    ones = np.ones(n)
    du, dv, gain, bias, cuba = row.discretise(name, node, n, opt, f)
    threshold = flat(node, "v_threshold", n) if spiking else np.full(n, np.inf)
    if spiking and np.any(threshold <= 0):
        raise UnsupportedError(f"node '{name}' has a threshold <= 0, which a Loihi threshold "
                               "mantissa (unsigned) cannot express", node=name,
                               hint="Shift the voltage so that the threshold is positive.")
    return Dynamics("lif" if spiking else "readout", du.astype(np.int64), dv.astype(np.int64),
                    gain * ones, bias * ones, threshold, cuba)


def _check_reset(name: str, node: Any, n: int, mode: str, opt: Any,
                 approximations: tuple[str, ...]) -> None:
    if np.any(flat(node, "v_reset", n) != 0):
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


__all__ = ["APPROXIMATIONS", "Dynamics", "dynamics", "options"]
