"""Sigma-delta groups and graded-spike blocks in the emulator: the engine (both modes,
any batch) against the normative kernels on random mixed programs, traces Lava 0.10
produced on this machine (docs/sigma_delta.md), the program image (version 3, older files
unchanged), validation and the cost model's graded-spike counts."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import h5py
import numpy as np
import programs
import pytest
import sd_programs
from hypothesis import given, settings
from hypothesis import strategies as st
from snn2hw_emulator import engine, image, kernels, reference
from snn2hw_emulator.errors import ImageFormatError, ProgramLimitError
from snn2hw_emulator.program import Core, NeuronGroup, OutputPort, Port, Program, SynapseBlock

from snn2hw import targets

SD_VARS = ("spikes", "sigma", "act", "residue", "error")
ALL = ("spikes", "u", "v", *kernels.SD_STATE)


def _first_difference(name: str, want: np.ndarray, got: np.ndarray) -> str:
    idx = np.argwhere(want != got)
    t, n = idx[0][-2:]
    return (f"{name}: {len(idx)} values differ; first at step {t + 1}, neuron {n}: "
            f"expected {want[tuple(idx[0])]}, got {got[tuple(idx[0])]}")


def _inputs(program: Program, seed: int, batch: int, steps: int) -> np.ndarray:
    return programs.random_inputs(program, seed, batch=batch, steps=steps, rate=0.5)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10**6), conv=st.booleans())
def test_engine_equals_reference_kernels(seed: int, conv: bool) -> None:
    program = sd_programs.sigma_delta_program(seed, conv=conv)
    x = _inputs(program, seed, 2, 25)
    res = engine.run(program, x, steps=30, record=ALL)
    clipped = np.clip(x.astype(np.int64), -128, 127) if program.ports[0].message_bits else x
    compared = 0
    for b in range(2):
        ref = reference.run_one(program, {"in": np.asarray(clipped[b], np.int64)}, 30)
        for var, groups in ref.items():
            for g, want in groups.items():
                got = getattr(res, var)[g][b]
                assert np.array_equal(want, got), _first_difference(f"{var}[{g}]", want, got)
                compared += 1
    for g in program.groups:
        for var in ALL[1:]:
            assert (g.name in getattr(res, var)) == (var in kernels.STATE_VARS[g.model]), var
    assert compared == 2 * sum(1 + len(kernels.STATE_VARS[g.model]) for g in program.groups)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10**6), batch=st.integers(1, 4))
def test_modes_and_batch_sizes_agree(seed: int, batch: int) -> None:
    program = sd_programs.sigma_delta_program(seed, conv=seed % 2 == 0)
    x = _inputs(program, seed + 1, batch, 20)
    full = engine.run(program, x, record=ALL, mode="batch")
    event = engine.run(program, x, record=ALL, mode="event")
    singles = engine.concatenate([engine.run(program, x[i:i + 1], record=ALL)
                                  for i in range(batch)])
    for other in (event, singles):
        for var in ALL:
            for g, arr in getattr(full, var).items():
                assert np.array_equal(arr, getattr(other, var)[g]), (var, g)
        for e, counts in full.cost.counts.items():
            assert np.array_equal(counts, other.cost.counts[e]), e


def _chain(group: NeuronGroup, weights: np.ndarray, *, weight_exp: int = 0,
           message_bits: int = 16, port_bits: int = 32) -> Program:
    """Graded port -> one dense block -> ``group``."""
    n_in = weights.shape[1]
    t = targets.load("loihi2")
    block = SynapseBlock("W", "dense", "in", group.name, weights, weight_exp=weight_exp,
                         num_message_bits=message_bits)
    return Program(t.name, t.sha256, t.toml, (Port("in", n_in, (n_in,), port_bits),),
                   (group,), (block,), (Core(0, 0, (group.name,), ("W",)),),
                   (OutputPort("out", group.name),))


def _sd(n: int, **kw: object) -> NeuronGroup:
    zeros = np.zeros(n, np.int64)
    base = dict(name="S", model="sigma_delta", size=n, shape=(n,), du=0, dv=0, vth=1,
                bias_mant=zeros, bias_exp=zeros, u0=zeros, v0=zeros)
    return NeuronGroup(**{**base, **kw})  # type: ignore[arg-type]


def test_a_trace_lava_produced() -> None:
    """RingBuffer -> Dense([[2, 4], [6, -8]], 16-bit graded) -> SigmaDelta(vth=1, bias
    [0, 1], RELU, state_exp=3) run on Lava 0.10 fixed_pt (docs/sigma_delta.md §3): the
    payloads lose the low 3 bits of each delta (228 -> 28) and shift by floor (-86 -> -11)."""
    program = _chain(_sd(2, bias_mant=np.array([0, 1]), state_exp=3),
                     np.array([[2, 4], [6, -8]]))
    x = np.array([[100, 37, -5, 200, 0, 3], [7, 7, 7, 7, 7, 7]]).T[None]
    res = engine.run(program, x, record=ALL)
    lava = {"sigma": [[0, 228, 330, 348, 776, 804], [0, 544, 710, 624, 1768, 1712]],
            "act": [[0, 228, 330, 348, 776, 804], [8, 552, 718, 632, 1776, 1720]],
            "spikes": [[0, 28, 12, 2, 53, 3], [1, 68, 20, -11, 143, -7]]}
    for var, want in lava.items():
        assert getattr(res, var)["S"][0].T.tolist() == want, var
    assert not res.residue["S"].any() and not res.error["S"].any()


def test_graded_products_wrap_at_32_bits_before_the_exponent() -> None:
    """Lava's Dense computes weights.dot(s) in int32: 2*2^30 + 2*2^30 wraps to 0 before
    the >> 1 (exact arithmetic would give 2^31, then -2^31); seen on Lava 0.10."""
    program = _chain(_sd(2, act_mode="unit"), np.array([[2, 2], [2, -2]]), weight_exp=-1)
    x = np.array([[2**30, 2**30], [0, 0], [0, 0]])[None]
    for mode in engine.MODES:
        assert not engine.run(program, x, record=ALL, mode=mode).sigma["S"].any()
    assert kernels.dense_activation([[2, 2]], [2**30, 2**30], -1, True) == [0]
    assert kernels.dense_activation([[2, 2]], [2**30, 2**30], -1, True, int32_dot=False) == \
        [-(2**31)]


def test_threshold_is_not_strict_and_cum_error_fires_on_the_sum() -> None:
    # |delta| == vth_s sends (>=); vth_s = 3 << (1 + 0) = 6
    assert kernels.sigma_delta_step(0, 0, 0, 0, 6, 6, 0, True, False, 0)[4] == 6
    assert kernels.sigma_delta_step(0, 0, 0, 0, 5, 6, 0, True, False, 0)[4] == 0
    # cum_error: deltas of 4 then 0 with vth 6: the error sums to 4, no send; a delta of 3
    # makes |error| = 7 >= 6, sends the delta (3 + residue 4 = 7) and clears the error
    st_ = kernels.sigma_delta_step(0, 0, 0, 0, 4, 6, 0, True, True, 0)
    assert st_ == (4, 4, 4, 4, 0)
    assert kernels.sigma_delta_step(*st_[:4], 3, 6, 0, True, True, 0) == (7, 7, 0, 0, 7)
    # RELU: a negative sum sends the drop to 0 once, then nothing
    assert kernels.sigma_delta_step(0, 0, 0, 0, -50, 1, 0, True, False, 0)[4] == 0
    assert kernels.sigma_delta_step(0, 0, 0, 0, -50, 1, 0, False, False, 0)[4] == -50


def test_binary_blocks_see_any_payload_as_a_spike() -> None:
    lif = NeuronGroup("L", "lif", 1, (1,), 4095, 4095, 100000, *(np.zeros(1, np.int64),) * 4)
    sd = _sd(2, act_mode="unit", vth=1)
    t = targets.load("loihi2")
    blocks = (SynapseBlock("W0", "dense", "in", "S", np.array([[2], [-2]]),
                           num_message_bits=16),
              SynapseBlock("W1", "dense", "S", "L", np.array([[10, 20]])))
    program = Program(t.name, t.sha256, t.toml, (Port("in", 1, (1,), 16),), (sd, lif), blocks,
                      (Core(0, 0, ("S",), ("W0",)), Core(1, 0, ("L",), ("W1",))),
                      (OutputPort("out", "L"),))
    res = engine.run(program, np.array([[[50], [0], [0], [0]]]), record=ALL)
    assert res.spikes["S"][0, 1].tolist() == [100, -100]
    assert res.u["L"][0, 2, 0] == (10 + 20) << 6                   # both count as spikes


def test_cost_counts_graded_spikes_and_payload_bits() -> None:
    program = sd_programs.sigma_delta_program(1, conv=False)   # 3 SD groups feed graded
    x = _inputs(program, 1, 2, 20)
    res = engine.run(program, x)
    sent = sum(int((res.spikes[g.name] != 0).sum()) for g in program.groups)
    assert int(res.cost.counts["spikes"].sum()) == sent
    width = {g.name: max([b.num_message_bits for b in program.blocks if b.source == g.name]
                         + [0]) for g in program.groups if g.model == "sigma_delta"}
    bits = sum(int((res.spikes[g] != 0).sum()) * w for g, w in width.items())
    assert bits > 0 and int(res.cost.counts["payload_bits"].sum()) == bits
    assert "payload bits" in res.cost.summary()


# --------------------------------------------------------------------------- image


def test_round_trip_and_older_versions(tmp_path: Path) -> None:
    program = sd_programs.sigma_delta_program(11, conv=True)
    image.save(program, tmp_path / "sd.h5")
    back = image.load(tmp_path / "sd.h5")
    assert back.format_version == 3
    for a, b in zip(program.groups, back.groups):
        for key in ("model", "vth", "act_mode", "cum_error", "spike_exp", "state_exp"):
            assert getattr(a, key) == getattr(b, key), key
        assert np.array_equal(a.bias_mant, b.bias_mant)
    x = _inputs(program, 11, 1, 15)
    want, got = engine.run(program, x, record=ALL), engine.run(back, x, record=ALL)
    for var in ALL:
        for g, arr in getattr(want, var).items():
            assert np.array_equal(arr, getattr(got, var)[g])
    # a version-2 file (LIF only) still loads and keeps its version
    lif = dataclasses.replace(programs.random_program(2), format_version=2)
    image.save(lif, tmp_path / "v2.h5")
    assert image.load(tmp_path / "v2.h5").format_version == 2
    # ... but cannot hold a sigma-delta group
    path = tmp_path / "bad.h5"
    path.write_bytes((tmp_path / "sd.h5").read_bytes())
    with h5py.File(path, "a") as f:
        f.attrs["format_version"] = 2
    sd = next(g.name for g in program.groups if g.model == "sigma_delta")
    with pytest.raises(ImageFormatError, match=f"group '{sd}' is a sigma-delta group, which "
                       "format version 2 cannot hold"):
        image.load(path)


_P = _chain(_sd(2, vth=5, spike_exp=2, state_exp=3), np.array([[2, 4], [6, -8]]))


@pytest.mark.parametrize("change, match", [
    (dict(vth=-1), r"vth=-1 must be >= 0"),
    (dict(vth=2**18), r"vth << 5 below 2\^23"),
    (dict(act_mode="tanh"), "unknown act_mode 'tanh'"),
    (dict(state_exp=8), r"state_exp=8 outside 0\.\.7"),
    (dict(spike_exp=-1), r"spike_exp=-1 outside 0\.\.7"),
    (dict(bias_mant=np.array([2**18, 0])), r"\|bias\| << 5 up to 8388608 exceeds"),
    (dict(u0=np.array([1, 0])), "a sigma_delta group has no u0"),
    (dict(model="delta", bias_mant=np.array([1, 0])), "a delta group has no bias_mant"),
    (dict(model="sigma"), "a sigma group .* has no vth, exponents or cum_error"),
    (dict(du=5), "has no du, dv or reset"),
])
def test_bad_sigma_delta_groups_are_refused(tmp_path: Path, change: dict, match: str) -> None:
    bad = dataclasses.replace(_P, groups=(dataclasses.replace(_P.groups[0], **change),))
    with pytest.raises(ProgramLimitError, match=match):
        image.save(bad, tmp_path / "bad.h5")
    assert not list(tmp_path.iterdir())


def test_a_target_without_graded_spikes_refuses_sigma_delta() -> None:
    t = targets.load("loihi1")
    program = dataclasses.replace(_P, target_name=t.name, target_hash=t.sha256,
                                  target_toml=t.toml, ports=(Port("in", 2, (2,), 0),),
                                  blocks=(dataclasses.replace(_P.blocks[0],
                                                              num_message_bits=0),))
    with pytest.raises(ProgramLimitError, match="sigma-delta group, but the target has no "
                       r"graded spikes \(message_bits_max = 0\)"):
        image.validate(program)


def test_delta_and_sigma_kernels() -> None:
    # Delta: the input shifted by spike_exp + state_exp (1 + 2) is the activation: 5 -> 40;
    # vth_s = 1 << 3 = 8, so 40 is sent as 40 >> 2 = 10; then a drop to 3 -> 24 sends -4
    assert kernels.delta_step(0, 0, 0, 5, 8, False, 1, 2) == (40, 0, 0, 10)
    assert kernels.delta_step(40, 0, 0, 3, 8, False, 1, 2) == (24, 0, 0, -4)
    # Sigma: a running sum, sent whole
    program = _chain(_sd(2, model="sigma", vth=0), np.array([[1, 0], [0, 2]]))
    res = engine.run(program, np.array([[[3, 4], [5, -6], [0, 0]]]), record=ALL)
    assert res.spikes["S"][0].tolist() == [[0, 0], [3, 8], [8, -4]]
    assert np.array_equal(res.sigma["S"], res.spikes["S"]) and "S" not in res.act


def test_devices_record_sigma_delta_state() -> None:
    from snn2hw import devices

    program = sd_programs.sigma_delta_program(1, conv=False)
    x = _inputs(program, 1, 1, 10)
    res = devices.get("emulator").load(program).run({"in": x}, record=("spikes", "sigma", "act"))
    sd = [g.name for g in program.groups if g.model == "sigma_delta"]
    assert sd and set(res.sigma) == set(sd) and set(res.act) >= set(sd) and not res.residue
    from snn2hw_emulator import xylo_program  # the emulator also runs Xylo programs

    assert devices.get("emulator").records == engine.RECORDABLE + xylo_program.RECORDABLE[2:]
