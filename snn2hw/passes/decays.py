"""A neuron's ODE constants at ``dt`` as Loihi CUBA-LIF constants, one function per kind
of neuron (the ``discretise`` column of :mod:`snn2hw.primitives`; the formulas are in
:mod:`snn2hw.passes.discretise`'s docstring). Widths come from ``f``, the target's family
record (family.LoihiLif).

Each function takes ``(name, node, n, opt, f)`` (``opt``: the float reference's resolved
options) and returns :class:`Constants`: per neuron (flat, NIR order) the decays du and dv
(integers), the input gain and the bias per step (v-units), and whether u carries memory.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np
from snn2hw_emulator.family import LoihiLif

from snn2hw.errors import UnsupportedError


class Constants(NamedTuple):
    du: np.ndarray
    dv: np.ndarray
    gain: np.ndarray
    bias: np.ndarray
    cuba: bool                 # u carries memory (a bias into u is then not exact)


def flat(node: Any, name: str, n: int, default: float = 0.0) -> np.ndarray:
    """Parameter ``name`` of ``node`` as n values (a scalar broadcasts)."""
    value = getattr(node, name, None)
    arr = np.asarray(default if value is None else value, dtype=float).ravel()
    if arr.size not in (1, n):
        raise UnsupportedError(f"parameter '{name}' has {arr.size} values for {n} neurons")
    return np.broadcast_to(arr, (n,)).copy()


def alpha(tau: np.ndarray, dt: float, integrator: str) -> np.ndarray:
    ratio = dt / tau
    return 1.0 - np.exp(-ratio) if integrator == "exact" else ratio


def decay(name: str, field: str, a: np.ndarray, offset: int, f: LoihiLif) -> np.ndarray:
    """The decay code ``rint(alpha * 2^decay_bits) - offset`` (offset: du_offset for u)."""
    code = np.rint(a * f.decay_one).astype(np.int64) - offset
    bits, steps = f"{f.decay_bits}-bit", 2 * f.decay_one     # rounds to 0 beyond ONE/2 steps
    if np.any(a >= 1.0):
        raise UnsupportedError(
            f"'{field}' of node '{name}' is at most dt (dt/tau = {a.max():.3g}): the neuron "
            f"keeps no memory, which a {bits} decay cannot express", node=name,
            hint="Use a smaller dt or a longer time constant.")
    if np.any(code < 0):
        raise UnsupportedError(
            f"'{field}' of node '{name}' is over {steps} steps long (dt/tau = "
            f"{a.min():.3g}); the {bits} decay rounds it to no decay plus one", node=name,
            hint="Use a larger dt, or a perfect integrator (IF / I) if that is the intent.")
    small = (code == 0) & (a > 0) if offset == 0 else np.zeros_like(code, dtype=bool)
    if np.any(small):
        warnings.warn(f"node '{name}': {field} is so long (dt/{field} < 1/{steps}) that the "
                      f"{bits} decay rounds it to no leak", stacklevel=4)
    return np.minimum(code, f.decay_max)


def perfect(name: str, node: Any, n: int, opt: Any, f: LoihiLif) -> Constants:
    """IF and I: no leak, u forgets."""
    return Constants(np.full(n, f.du_forget), np.zeros(n, dtype=np.int64), flat(node, "r", n),
                     np.zeros(n), False)


def leaky(name: str, node: Any, n: int, opt: Any, f: LoihiLif) -> Constants:
    """LI and LIF: ``dv = ONE*alpha``, u forgets, gain ``alpha*r``, bias ``alpha*v_leak``."""
    a = alpha(flat(node, "tau", n), opt.dt, opt.integrator)
    return Constants(np.full(n, f.du_forget), decay(name, "tau", a, 0, f),
                     a * flat(node, "r", n), a * flat(node, "v_leak", n), False)


def current_based(name: str, node: Any, n: int, opt: Any, f: LoihiLif) -> Constants:
    """CubaLI and CubaLIF: u is the synaptic current in voltage units."""
    if opt.cuba_voltage_uses != "new":
        raise UnsupportedError(
            f"node '{name}': cuba_voltage_uses='old' (voltage from last step's current) has "
            "no Loihi equivalent", node=name,
            hint="Loihi's voltage integrates the current of the same step; use 'new'.")
    a_syn = alpha(flat(node, "tau_syn", n), opt.dt, opt.integrator)
    a_mem = alpha(flat(node, "tau_mem", n), opt.dt, opt.integrator)
    du = decay(name, "tau_syn", a_syn, f.du_offset, f)
    dv = decay(name, "tau_mem", a_mem, 0, f)
    gain = a_mem * flat(node, "r", n) * a_syn * flat(node, "w_in", n, 1.0)
    return Constants(du, dv, gain, a_mem * flat(node, "v_leak", n), True)


__all__ = ["Constants", "alpha", "current_based", "decay", "flat", "leaky", "perfect"]
