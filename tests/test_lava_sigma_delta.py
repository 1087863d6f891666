"""Differential tests: sigma-delta programs on the emulator vs Lava 0.10 fixed_pt
(``SigmaDelta`` -> ``PySigmaDeltaModelFixed``), every state variable of every group at
every step: payloads, sigma, act, residue, error (sigma-delta) and spikes, u, v (LIF), on
hypothesis-random programs mixing both, graded and binary blocks, dense, sparse and conv.
Lava runs in its own Python 3.10 environment; these tests never skip."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import programs
import pytest
import sd_programs
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from snn2hw_emulator import engine
from snn2hw_emulator.kernels import SD_STATE

from snn2hw.backends import lava
from snn2hw.compare import first_divergence

pytestmark = [pytest.mark.lava, pytest.mark.slow]
ALL = ("spikes", "u", "v", *SD_STATE)


def _check(runs: list) -> dict[str, int]:
    """Every run equal on Lava and the emulator; returns what was exercised."""
    results = lava.run_many(runs, record=ALL)
    seen = {"payloads": 0, "lif_spikes": 0, "residue": 0, "error": 0, "sigma_delta": 0,
            "delta": 0, "sigma": 0}
    for (program, x, steps), got in zip(runs, results):
        want = engine.run(program, x, steps=steps, record=ALL)
        assert sd_programs.conv_bound_ok(program, want.spikes), \
            f"seed {program.metadata['seed']}: a conv sum reaches 2^31 (the generator drifted)"
        # every variable some group of this program has (a sigma group has only sigma)
        present = [var for var in ALL if getattr(want, var)]
        div = first_divergence(want, got, variables=present, names=("the emulator", "Lava"))
        assert div is None, f"program seed {program.metadata.get('seed')}: {div}"
        for g in program.groups:
            sent = int((want.spikes[g.name] != 0).sum())
            if g.model != "lif" and g.model != "lif_reset":
                seen["payloads"] += sent
                seen[g.model] += int(sent > 0)                 # groups that sent something
                for var in ("residue", "error"):
                    if g.name in getattr(want, var):
                        seen[var] += int((getattr(want, var)[g.name] != 0).sum())
            else:
                seen["lif_spikes"] += sent
    assert all(seen.values()), f"the programs left something unexercised: {seen}"
    return seen


@settings(max_examples=2, deadline=None, database=None, phases=(Phase.generate,),
          suppress_health_check=[HealthCheck.too_slow])     # no shrinking: Lava is slow
@given(seeds=st.lists(st.integers(0, 2**31), min_size=12, max_size=12, unique=True))
def test_emulator_equals_lava_on_random_sigma_delta_programs(seeds: list[int]) -> None:
    runs = []
    for k, seed in enumerate(seeds):
        program = sd_programs.sigma_delta_program(
            seed, conv=k % 3 == 0, force=(None, "delta", None, "sigma")[k % 4])
        x = programs.random_inputs(program, seed, batch=1 + k % 2, steps=30, rate=0.5)
        runs.append((program, x, 34))
    _check(runs)


def test_a_changed_rule_is_caught() -> None:
    """Negative control: the emulator's copy of the first sigma-delta group gets bias + 1
    (its act moves by 2^(spike_exp + state_exp) from step 1); the comparison names that
    group, step 1 and the variable."""
    program = sd_programs.sigma_delta_program(1, conv=False)
    x = programs.random_inputs(program, 1, batch=1, steps=30, rate=0.5)
    k = next(i for i, g in enumerate(program.groups) if g.model == "sigma_delta")
    g = program.groups[k]
    changed = dataclasses.replace(program, groups=(
        *program.groups[:k], dataclasses.replace(g, bias_mant=np.asarray(g.bias_mant) + 1),
        *program.groups[k + 1:]))
    got = lava.run(program, x, steps=34, record=ALL)
    assert first_divergence(engine.run(program, x, steps=34, record=ALL), got,
                            variables=ALL) is None
    div = first_divergence(engine.run(changed, x, steps=34, record=ALL), got, variables=ALL)
    assert div is not None and (div.group, div.step) == (g.name, 1), div
    scale = 1 << (g.spike_exp + g.state_exp)
    assert div.variable in ("spikes", "act"), div
    if div.variable == "act":
        assert div.a - div.b in (scale, div.a), div          # shifted, or lifted from 0


def test_converted_digits_mlp_runs_bit_identical_on_lava(digits_anns: Any) -> None:
    """The digits MLP converted to sigma-delta neurons (snn2hw.importers.ann_sdnn) and
    compiled for loihi2, through the Lava device (execute.run(device="lava"), the path
    `snn2hw verify --device lava` takes) and the emulator: every variable of both groups
    at every step equal, on 6 images sent once and then changed (negative payloads).
    Negative control: the hidden layer's bias + 1 on the emulator diverges at step 1."""
    from snn2hw import compiler, execute, sdnn_sim
    from snn2hw.importers import ann, ann_sdnn

    digits = digits_anns.digits
    graph = ann_sdnn.convert(ann.from_onnx(digits_anns.path("mlp")), digits.x_train)
    program = compiler.compile(graph, compiler.Options(target="loihi2")).program
    steps = sdnn_sim.settle_steps(graph)
    seq = np.repeat(digits.x[:6, None], 2 * steps, axis=1)
    seq[:, steps:] = digits.x[6:12, None]                          # another image halfway
    x = ann_sdnn.encode(seq, 2 * steps, graph.metadata["input_scale"],
                        graph.metadata["input_bits"], shape=(1, 8, 8))
    got = execute.run(program, x, device="lava", record_states=True).raw
    want = execute.run(program, x, record_states=True).raw
    variables = execute.states(program)
    assert set(variables) == {"spikes", *SD_STATE}
    assert first_divergence(want, got, variables=variables, names=("emulator", "Lava")) is None
    sent = {g: want.spikes[g] for g in want.spikes}
    assert all(np.any(s > 0) and np.any(s < 0) for s in sent.values()), "no negative payloads"
    assert np.any(want.residue["1_sd"] != 0), "no residue: the threshold was never exercised"
    g = program.groups[0]
    changed = dataclasses.replace(program, groups=(
        dataclasses.replace(g, bias_mant=np.asarray(g.bias_mant) + 1), *program.groups[1:]))
    div = first_divergence(execute.run(changed, x, record_states=True).raw, got,
                           variables=variables)
    assert div is not None and (div.group, div.step) == (g.name, 1), div
