"""Differential tests: emulator vs Lava 0.10 fixed-point models, every state variable at
every step, on hypothesis-generated random programs. Lava runs in its own Python 3.10
environment (created by `make test`); these tests never skip."""

from __future__ import annotations

import dataclasses

import numpy as np
import programs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from snn2hw_emulator import engine

from snn2hw.backends import lava
from snn2hw.compare import first_divergence

pytestmark = [pytest.mark.lava, pytest.mark.slow]
ALL = ("spikes", "u", "v")


def _check(runs: list) -> None:
    results = lava.run_many(runs, record=ALL)
    spikes = 0
    for (program, x, steps), got in zip(runs, results):
        want = engine.run(program, x, steps=steps, record=ALL)
        div = first_divergence(want, got)
        assert div is None, f"program seed {program.metadata.get('seed')}: {div}"
        spikes += sum(int(s.sum()) for s in want.spikes.values())
    assert spikes > 0, "the random programs produced no spikes: the test would prove little"


@settings(max_examples=2, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(seeds=st.lists(st.integers(0, 2**31), min_size=20, max_size=20, unique=True))
def test_emulator_equals_lava_on_random_programs(seeds: list[int]) -> None:
    runs = []
    for k, seed in enumerate(seeds):
        program = programs.random_program(seed, graded=k % 3 == 0, recurrent=k % 2 == 0,
                                          wild=k % 4 == 0)
        runs.append((program, programs.random_inputs(program, seed, batch=1 + k % 2, steps=40),
                     45))
    _check(runs)


@settings(max_examples=1, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(seeds=st.lists(st.integers(0, 2**31), min_size=8, max_size=8, unique=True))
def test_emulator_equals_lava_on_codebook_programs(seeds: list[int]) -> None:
    """Codebook blocks (shared weights, both table scopes, -1 = no synapse; graded and
    binary inputs) against Lava, where they run as Dense with the looked-up matrix."""
    runs = []
    for k, seed in enumerate(seeds):
        program = programs.codebook_program(seed, scope=("layer", "neuron")[k % 2],
                                            graded=k % 4 < 2, recurrent=k % 3 == 0,
                                            wild=k % 4 == 3)
        runs.append((program, programs.random_inputs(program, seed, batch=1, steps=40), 45))
    blocks = [b for program, _, _ in runs for b in program.blocks]
    assert all(b.kind == "codebook" for b in blocks)
    assert any(bool((b.weights < 0).any()) for b in blocks), "no -1 (missing) synapses drawn"
    _check(runs)


def test_emulator_equals_lava_on_convolutions() -> None:
    runs = []
    for seed, (stride, pad, groups, graded) in enumerate(
            [(1, 1, 1, False), (2, 0, 1, False), (1, 1, 2, True)]):
        program = programs.conv_program(seed, stride=stride, padding=pad, groups=groups,
                                        graded=graded)
        runs.append((program, programs.random_inputs(program, seed, 1, 20, rate=0.5), 22))
    _check(runs)


def test_a_changed_rule_is_caught() -> None:
    """Negative control: the emulator's copy gets bias + 1 on its first group only."""
    program = programs.random_program(7, graded=False, recurrent=False, wild=False)
    x = programs.random_inputs(program, 7, batch=1, steps=40, rate=0.6)
    group = program.groups[0]
    changed = dataclasses.replace(program, groups=(
        dataclasses.replace(group, bias_mant=np.asarray(group.bias_mant) + 1,
                            bias_exp=np.zeros(group.size, dtype=np.int64)),
        *program.groups[1:]))
    got = lava.run(program, x, steps=45, record=ALL)
    div = first_divergence(engine.run(changed, x, steps=45, record=ALL), got)
    assert div is not None and div.variable == "v" and div.a == div.b + 1
    assert "first divergence at step 1" in str(div)


def test_emulator_equals_lava_on_compiled_networks() -> None:
    """Programs from the compiler (solved initial voltages, path-evening delays,
    convolutions kept or unrolled, populations split over cores, shared weights) run the
    same on Lava as on the emulator."""
    import warnings

    import nir
    from test_compiler import exact_graph, spikes_in

    from snn2hw import checker, compiler

    runs = []
    for seed, (target, conv, share) in enumerate([("loihi2", True, None), ("loihi1", True, None),
                                                  ("tiny", False, 4), ("loihi2", False, 8)]):
        rng = np.random.default_rng(seed)
        graph = exact_graph(rng, 6, 30, 4, recurrent=True, conv=conv)
        nodes = dict(graph.nodes)                       # make the weights mixed-sign
        nodes["fc2"] = nir.Linear(np.asarray(nodes["fc2"].weight) - 20.0)
        src = "flat" if conv else "input"               # a skip path: needs a delay
        nodes["skip"] = nir.Linear(rng.normal(size=(4, 75 if conv else 6)) * 30)
        edges = graph.edges + ((src, "skip"), ("skip", "o"))
        graph = checker.from_nir(nir.NIRGraph(nodes, list(edges), type_check=False),
                                 metadata={"dt": 1e-4})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            c = compiler.compile(graph, compiler.Options(target=target, share=share,
                                                         allow_saturation=True))
        x = spikes_in(rng, graph, 2, 15).reshape(2, 15, -1)
        x = x[:, :, np.asarray(c.net.layouts["input"])]
        runs.append((c.program, x.astype(np.int64), 20))
    assert any(b.kind == "delay_dense" for program, _, _ in runs for b in program.blocks)
    assert any(b.kind == "conv" for program, _, _ in runs for b in program.blocks)
    assert any(b.kind == "codebook" for program, _, _ in runs for b in program.blocks)
    _check(runs)


def test_verify_lava_against_emulator_on_the_command_line(tmp_path, capsys) -> None:
    from test_cli import _model

    from snn2hw.cli import main

    rng = np.random.default_rng(2)
    np.save(tmp_path / "x.npy", (rng.random((3, 10, 20)) < 0.4).astype(np.int8))
    np.save(tmp_path / "y.npy", rng.integers(0, 100, 3))
    assert main(["verify", str(_model(tmp_path)), "--target", "tiny", "--data",
                 str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy"),
                 "--device", "lava", "--against", "emulator"]) == 0
    out = capsys.readouterr().out
    assert "lava vs emulator: bit-identical over 3 samples x 11 steps" in out
