"""The emulator's Xylo engine and normative kernel against SynSense's xylosim 0.1.3: every
spike count, V and I_syn of every hidden and output neuron at every step, on
hypothesis-generated programs (weights in/rec/out, shifts, dashes, thresholds, biases,
recurrence, aliases, saturation, multi-spike), with negative controls that plant a
one-off change and must be caught. xylosim is a required test dependency (``make test``
installs the ``xylo`` extra): a missing xylosim fails here, it is never skipped."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from snn2hw_emulator import xylo_engine
from snn2hw_emulator.xylo_program import XyloProgram
from snn2hw_emulator.xylo_result import XyloResult
from xylo_programs import Regime, kernel_run, random_inputs, random_program, regimes

from snn2hw.backends import xylosim
from snn2hw.compare import first_divergence

STEPS, BATCH = 14, 2


def _variables(program: XyloProgram) -> tuple[str, ...]:
    return ("spikes", "v", "i_syn", "i_syn2") if program.n_syn == 2 else ("spikes", "v",
                                                                          "i_syn")


def _diverge(a: object, b: object, program: XyloProgram) -> object:
    return first_divergence(a, b, _variables(program), ("xylosim", "the emulator"))


def _case(r: Regime) -> tuple[XyloProgram, np.ndarray, XyloResult]:
    program = random_program(r)
    x = random_inputs(r, BATCH, STEPS)
    return program, x, xylosim.run(program, x, record=_variables(program))


@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(r=regimes)
def test_engine_equals_xylosim_every_mode(r: Regime) -> None:
    program, x, ref = _case(r)
    for mode in xylo_engine.MODES:
        res = xylo_engine.run(program, x, record=_variables(program), mode=mode)
        assert _diverge(ref, res, program) is None, (mode, r)
    # the three modes also count the same saturation
    sat = {m: xylo_engine.run(program, x, mode=m).saturation for m in xylo_engine.MODES}
    assert sat["batch"] == sat["step"] == sat["event"]


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(r=regimes)
def test_kernel_equals_xylosim(r: Regime) -> None:
    program, x, ref = _case(r)
    assert _diverge(ref, kernel_run(program, x), program) is None, r


def test_random_programs_reach_saturation_multispike_and_aliases() -> None:
    """The generator does reach the cases the differential tests claim: saturated
    synapses and membranes, hidden neurons spiking 31 times in a step, alias targets
    spiking, thresholds <= 0 (a seeded sample of regimes; fails if the generator stops
    covering one)."""
    seen = {"i_clip": 0, "v_clip": 0, "max_count": 0, "alias_spikes": 0, "th_le0": 0}
    rng = np.random.default_rng(7)
    for seed in range(40):
        r = Regime(seed, 8, 12, 4, 2, 0.9, True, bool(seed % 2), bool(seed % 3 == 0),
                   0.5, True, True)
        program = random_program(r)
        res = xylo_engine.run(program, random_inputs(r, 2, STEPS))
        for g in res.saturation.values():
            seen["i_clip"] += g["i_clip"]
            seen["v_clip"] += g["v_clip"]
        seen["max_count"] = max(seen["max_count"], int(res.spikes["hidden"].max()))
        targets = program.aliases[program.aliases >= 0]
        seen["alias_spikes"] += int(res.spikes["hidden"][:, :, targets].sum())
        seen["th_le0"] += int(np.sum(program.threshold <= 0))
        rng.random()
    assert seen["i_clip"] > 0 and seen["v_clip"] > 0
    assert seen["max_count"] == 31 and seen["alias_spikes"] > 0 and seen["th_le0"] > 0


def _quirk_program() -> XyloProgram:
    """Two synapses saturate V at -32768 with dash_mem = 0, then a large positive input
    arrives: dv = -decay(V) is an int16, so -(-32768) wraps to -32768 (V ends at -4, not
    at -1 as exact arithmetic gives)."""
    z = np.zeros
    return XyloProgram("xylo-test", "0" * 64, "", np.array([[[-128, -128]], [[127, 127]]]),
                       z((1, 1, 2), int), z((1, 1), int), 8, 0, 0, np.array([0]),
                       np.array([[15, 15]]), np.array([1]), np.array([1]), np.array([30000]),
                       np.array([100]), z(1, int), z(1, int), np.array([-1]))


def test_int16_negation_quirk_at_minus_32768() -> None:
    program = _quirk_program()
    x = np.array([[[15, 0], [0, 15], [0, 0]]])
    ref = xylosim.run(program, x, record=("spikes", "v", "i_syn", "i_syn2"))
    assert ref.v["hidden"][0, :2, 0].tolist() == [-32768, -4]
    for res in [kernel_run(program, x)] + [xylo_engine.run(program, x, mode=m, record=(
            "spikes", "v", "i_syn", "i_syn2")) for m in xylo_engine.MODES]:
        assert _diverge(ref, res, program) is None


# --------------------------------------------------------------------------- negative controls


def _seeded_cases(n: int = 24, tiny_thresholds: bool = False
                  ) -> list[tuple[XyloProgram, np.ndarray, object]]:
    """Seeded random cases; ``tiny_thresholds``: thresholds 1..8, so that V often lands
    exactly on a threshold (where ``>`` and ``>=`` differ)."""
    out = []
    for seed in range(n):
        r = Regime(seed, 6, 10, 3, 1 + seed % 2, 0.4, seed % 4 == 0, seed % 2 == 0,
                   False, 0.3, True, seed % 2 == 1)
        program = random_program(r)
        if tiny_thresholds:
            th = np.random.default_rng(seed).integers(1, 9, program.n_hidden)
            program = XyloProgram(**{**program.__dict__, "threshold": th})
        x = random_inputs(r, BATCH, STEPS)
        out.append((program, x, xylosim.run(program, x, record=_variables(program))))
    return out


def test_negative_control_planted_parameter_change_is_caught() -> None:
    """A threshold one lower on one hidden neuron that spikes (a one-off change) is
    reported as a divergence, naming the step, neuron and both values."""
    cases = [(p, x, ref) for p, x, ref in _seeded_cases() if ref.spikes["hidden"].any()]
    assert len(cases) >= 20
    for program, x, ref in cases:
        th = program.threshold.copy()
        first = int(np.flatnonzero(ref.spikes["hidden"].any(axis=(0, 1)))[0])
        th[first] -= 1
        planted = XyloProgram(**{**program.__dict__, "threshold": th})
        div = _diverge(ref, xylo_engine.run(planted, x, record=_variables(program)), program)
        assert div is not None and div.group == "hidden", program


@pytest.mark.parametrize("part", ["decay", "spike", "clip"])
def test_negative_control_planted_engine_error_is_caught(part: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The same comparison catches a one-off error in the engine's arithmetic: decay
    without its minimum step of 1, spiking on ``>`` instead of ``>=``, or a symmetric
    clip at -(2^15 - 1)."""
    if part == "decay":
        monkeypatch.setattr(xylo_engine, "_decay", lambda x, dash: x >> dash)
    elif part == "spike":
        real = xylo_engine._spike

        def strict(v: np.ndarray, th: np.ndarray, n0: np.ndarray, cap: int, bits: int
                   ) -> tuple[np.ndarray, np.ndarray]:
            v2, n = real(v - 1, th, n0, cap, bits)       # v > th is v - 1 >= th
            return v2 + 1, n

        monkeypatch.setattr(xylo_engine, "_spike", strict)
    else:
        monkeypatch.setattr(xylo_engine, "_clip", lambda x, rng: np.clip(x, rng[0] + 1, rng[1]))
    cases = _seeded_cases(tiny_thresholds=part == "spike")
    diverged = sum(_diverge(ref, xylo_engine.run(p, x, record=_variables(p)), p) is not None
                   for p, x, ref in cases)
    assert diverged >= len(cases) // 2, diverged
