"""The default range policy (passes/scale_policy.py): a scale lowered to fit the worst case
is said out loud, and calibration is asked for only when the precision cost is large."""

from __future__ import annotations

import warnings

import nir
import numpy as np
import pytest

from snn2hw import checker, compiler, ir
from snn2hw.passes import scale_policy


def _slow_lif(tau_steps: float) -> ir.Graph:
    """20 -> 10 LIF with mixed-sign weights and a slow leak: the worst-case |v| (every
    inhibitory input at once, for 1/leak steps) grows with tau."""
    rng = np.random.default_rng(0)
    n = 10
    nodes = {"input": nir.Input(np.array([20])),
             "fc": nir.Linear(rng.uniform(-1, 1, (n, 20))),
             "h": nir.LIF(tau=np.full(n, tau_steps * 1e-4), r=np.full(n, tau_steps),
                          v_leak=np.zeros(n), v_threshold=np.ones(n), v_reset=np.zeros(n)),
             "output": nir.Output(np.array([n]))}
    edges = [("input", "fc"), ("fc", "h"), ("h", "output")]
    return checker.from_nir(nir.NIRGraph(nodes, edges, type_check=False), metadata={"dt": 1e-4})


def _compile(tau_steps: float) -> tuple[list[str], int]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        c = compiler.compile(_slow_lif(tau_steps), compiler.Options(target="loihi2"))
    notes = [str(w.message) for w in caught if "range policy" in str(w.message)]
    return notes, scale_policy.cost_bits(c.report["layers"]["h"], 8)


def test_a_bound_that_fits_at_full_precision_says_nothing() -> None:
    notes, cost = _compile(20)
    assert (notes, cost) == ([], 0)


def test_a_small_precision_cost_is_taken_and_said() -> None:
    notes, cost = _compile(600)
    assert 1 <= cost <= scale_policy.SMALL_COST_BITS
    assert len(notes) == 1 and "worst-case |v|" in notes[0] and "--calibrate" not in notes[0]


def test_a_large_precision_cost_asks_for_calibration() -> None:
    notes, cost = _compile(1200)
    assert cost > scale_policy.SMALL_COST_BITS
    assert len(notes) == 1 and "--calibrate" in notes[0], notes


def test_the_old_rounding_overflow_is_gone() -> None:
    """A scale fitted exactly to the float bound used to overflow by the weights' rounding
    ("|v| can reach 8.39e+06, beyond the 24-bit range"); FIT_MARGIN keeps it clear."""
    notes, cost = _compile(300)          # raised DesignRuleError before FIT_MARGIN
    assert (notes, cost) == ([], 0)


@pytest.mark.parametrize("calibrated", [True, False])
def test_calibrated_bounds_are_the_users_own(calibrated: bool) -> None:
    layer = {"limited_by": "voltage", "inputs": {"x": {"bits_used": 5, "kind": "dense"}}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        notes = scale_policy.explain({"h": layer}, 8, calibrated)
    assert len(notes) == (0 if calibrated else 1)
