"""The target file drives the arithmetic (issue 16): a copy of targets/loihi2.toml with other
widths either compiles and runs consistently on compiler and emulator, in the file's
widths, or is refused naming the key; the Lava and netx devices refuse widths Lava's
models cannot run, naming the key.

``NARROW`` is loihi2 with 8-bit decays, a 16-bit state, ``<< 3`` on input and threshold,
and the threshold and bias encodings that fit that state. The issue's own example (8-bit
decays, 16-bit state, ``act_shift = 3`` and loihi2's 17-bit threshold) is refused: its
largest threshold ``(2^17 - 1) << 3`` could never be reached by a 16-bit v.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path

import numpy as np
import programs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from snn2hw_emulator import engine, image, kernels, lifloop, reference, timebatch
from snn2hw_emulator.errors import ImageFormatError, ProgramLimitError
from snn2hw_emulator.family import LAVA
from snn2hw_emulator.program import NeuronGroup, OutputPort, Port, Program, SynapseBlock
from test_compiler import exact_graph, spikes_in

from snn2hw import checker, compiler, devices, execute, targets
from snn2hw import reference as float_reference
from snn2hw.backends import netx
from snn2hw.errors import TargetError, UnsupportedError

NARROW = {"decay_bits": 8, "state_bits": 16, "act_shift": 3, "vth_mant_bits": 11,
          "bias_mant_bits": 9, "bias_exp_max": 3, "accumulator_bits": 13}
ISSUE = {"decay_bits": 8, "state_bits": 16, "act_shift": 3}


def _toml(edits: dict[str, int], name: str = "narrow") -> str:
    text = targets.load("loihi2").toml.replace('name = "loihi2"', f'name = "{name}"')
    for key, value in edits.items():
        text, n = re.subn(rf"(?m)^{key} = -?\d+", f"{key} = {value}", text)
        assert n == 1, key
    return text


@pytest.fixture(scope="module")
def narrow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("targets") / "narrow.toml"
    path.write_text(_toml(NARROW))
    return path


def _retarget(program: Program, text: str) -> Program:
    return dataclasses.replace(program, target_name="narrow", target_toml=text,
                               target_hash=hashlib.sha256(text.encode()).hexdigest())


def _narrowed(program: Program) -> Program:
    """A random loihi2 program with its neuron parameters brought into NARROW's widths
    (the blocks stay: 8-bit full-scale weights, clipping and truncation exercised)."""
    def group(g: NeuronGroup) -> NeuronGroup:
        return dataclasses.replace(g, du=g.du % 256, dv=g.dv % 256, vth=max(1, g.vth % 2048),
                                   bias_mant=np.asarray(g.bias_mant) % 256 - 128 * (
                                       np.asarray(g.bias_mant) != 0),
                                   bias_exp=np.asarray(g.bias_exp) % 4,
                                   u0=np.asarray(g.u0) >> 8, v0=np.asarray(g.v0) >> 8)
    return _retarget(dataclasses.replace(program, groups=tuple(map(group, program.groups))),
                     _toml(NARROW))


# --------------------------------------------------------------------------- the file


def test_the_issue_example_is_refused_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "issue.toml"
    path.write_text(_toml(ISSUE))
    with pytest.raises(TargetError, match=r"issue\.toml: key 'numeric\.vth_mant_bits' must be"):
        targets.load(path)
    # ... and embedded in a program image, it is refused at load, naming the key
    import h5py

    image.save(programs.random_program(3), tmp_path / "p.h5")
    text = _toml(ISSUE)
    with h5py.File(tmp_path / "p.h5", "r+") as f:       # the file swapped, hash matching
        del f["target_toml"]
        f.create_dataset("target_toml", data=text)
        f.attrs["target_hash"] = hashlib.sha256(text.encode()).hexdigest()
    with pytest.raises(ImageFormatError, match=r"embedded target file: key "
                       r"'numeric\.vth_mant_bits' must be"):
        image.load(tmp_path / "p.h5")


@pytest.mark.parametrize("edits, key", [
    ({"state_bits": 40}, "numeric.state_bits"),             # beyond Lava's int32 registers
    ({"decay_bits": 0}, "numeric.decay_bits"),
    ({"bias_exp_max": 12}, "numeric.bias_exp_max"),         # 4095 << 12 leaves the state
    ({"delay_max": 64}, "numeric.delay_max"),               # a 6-bit delay field
    ({"weight_bits_max": 16}, "numeric.weight_bits_max"),   # stored weights are 16-bit
    ({"act_shift": 23}, "numeric.act_shift"),
])
def test_values_the_family_cannot_honour_are_named(edits: dict[str, int], key: str) -> None:
    with pytest.raises(TargetError, match=re.escape(f"key '{key}'")):
        targets.parse(_toml(edits), "bad.toml")


def test_the_record_holds_the_files_widths(narrow: Path) -> None:
    t = targets.load(narrow)
    f = t.numeric
    assert t.family == "loihi-lif" and type(f).family == "loihi-lif"
    assert (f.decay_one, f.decay_max, f.state_half, f.v_max, f.act_scale, f.vth_max,
            f.bias_mant_max) == (256, 255, 2**15, 2**15 - 1, 8.0, 2047, 255)
    assert (LAVA.decay_one, LAVA.v_max, LAVA.act_scale, LAVA.weight_max, LAVA.weight_bound) \
        == (4096, 2**23 - 1, 64.0, 255, 256)
    assert f.lava_mismatches() == [("state_bits", 16, 24), ("decay_bits", 8, 12),
                                   ("act_shift", 3, 6)]
    assert targets.load("loihi2").numeric == LAVA            # Lava's record is loihi2's


# --------------------------------------------------------------------------- the emulator


def _saturating_program() -> Program:
    """Inputs into two neurons that keep almost all of u (du = 0): u climbs by
    255 << act_shift per input spike until it wraps (the neuron fed by 4 inputs), and the
    wrapped u drives v into saturation."""
    group = NeuronGroup("L0", "lif", 2, (2,), du=0, dv=0, vth=2047,
                        bias_mant=np.zeros(2, np.int64), bias_exp=np.zeros(2, np.int64),
                        u0=np.zeros(2, np.int64), v0=np.zeros(2, np.int64))
    w = np.array([[255, 0, 0, 0], [255, 255, 255, 255]], np.int32)
    block = SynapseBlock("W", "dense", "in", "L0", w)
    t = targets.load("loihi2")
    base = Program(t.name, t.sha256, t.toml, (Port("in", 4, (4,)),), (group,), (block,),
                   (programs.Core(0, 0, ("L0",), ("W",)),), (OutputPort("out", "L0"),))
    return _retarget(base, _toml(NARROW))


#: every engine: the three CPU modes, and the torch engine (the GPU's code) on the CPU
RUNS = [(mode, "cpu") for mode in engine.MODES] + [("batch", "cpu-torch")]


def test_the_emulator_runs_the_files_widths() -> None:
    """v saturates at 2^15 - 1 (not Lava's 2^23 - 1), u wraps into (-2^15, 2^15], the
    input is shifted by 3 and the decays are fractions of 256: the engine in all three
    modes equals the kernels run in the file's widths, and differs from Lava's widths."""
    program = _saturating_program()
    x = np.ones((1, 40, 4), np.int8)
    ref = reference.run_one(program, {"in": x[0].astype(np.int64)}, 40)
    for mode, acc in RUNS:
        res = engine.run(program, x, record=("spikes", "u", "v"), mode=mode, accelerator=acc)
        for var in ("spikes", "u", "v"):
            assert np.array_equal(getattr(res, var)["L0"][0], ref[var]["L0"]), (mode, acc, var)
    v, u = ref["v"]["L0"], ref["u"]["L0"]
    assert np.abs(v).max() == 2**15 - 1                                 # v clips there
    assert u[1, 0] == 255 << 3 and np.abs(u).max() <= 2**15            # a << act_shift
    assert res.saturation["L0"]["v_clip"] > 0 and res.saturation["L0"]["u_wrap"] > 0
    # du = 0 keeps (256 - 1) / 256 of u: Loihi's +1 in 8-bit decays
    f = targets.parse(program.target_toml).numeric
    assert kernels.lif_step(1000, 0, 0, 0, 0, 2047, 0, 0, f)[0] == (1000 * 255) >> 8
    lava = reference.run_one(_lava_widths(program), {"in": x[0].astype(np.int64)}, 40)
    assert not np.array_equal(lava["v"]["L0"], v)                      # negative control


def _lava_widths(program: Program) -> Program:
    t = targets.load("loihi2")
    return dataclasses.replace(program, target_name=t.name, target_toml=t.toml,
                               target_hash=t.sha256)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), run=st.sampled_from(RUNS), compiled=st.booleans())
def test_engine_equals_kernels_in_narrow_widths(seed: int, run: tuple[str, str],
                                                compiled: bool) -> None:
    """Random programs (sign modes, 1..8 weight bits, sparse, delays, LIFReset, recurrence,
    graded input) in NARROW's widths: every engine (the compiled LIF loop and gather
    included, and the torch engine on the CPU) equals the kernels in every u, v and
    spike."""
    mode, acc = run
    program = _narrowed(programs.random_program(seed))
    x = programs.random_inputs(program, seed, batch=2, steps=25)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(lifloop, "AVAILABLE", compiled and lifloop.AVAILABLE)
        mp.setattr(lifloop, "LOAD_FROM", 0)
        mp.setattr(timebatch, "GATHER_DENSITY", 1.1 if compiled else 0.0)
        res = engine.run(program, x, steps=28, record=("spikes", "u", "v"), mode=mode,
                         accelerator=acc)
    xi = np.clip(x.astype(np.int64), -128, 127) if program.ports[0].message_bits else \
        x.astype(np.int64)
    for b in range(2):
        ref = reference.run_one(program, {"in": xi[b]}, 28)
        for var in ("spikes", "u", "v"):
            for g, want in ref[var].items():
                got = getattr(res, var)[g][b]
                assert np.array_equal(want, got), (var, g, int(np.sum(want != got)))
                if var == "v":
                    assert np.abs(got).max(initial=0) <= 2**15 - 1


def test_a_value_outside_the_files_widths_is_refused_at_load(tmp_path: Path) -> None:
    """du = 300 is a 12-bit decay, not an 8-bit one; vth = 3000 needs 12 bits: both named,
    together, with the target keys."""
    program = _narrowed(programs.random_program(4))
    g = dataclasses.replace(program.groups[0], du=300, vth=3000)
    bad = dataclasses.replace(program, groups=(g, *program.groups[1:]))
    with pytest.raises(ProgramLimitError, match=r"2 design-rule violations: .*du=300, dv=\d+ "
                       r"outside 0\.\.255 \[target: numeric\.decay_bits\]; .*vth=3000 outside "
                       r"0\.\.2047 \[target: numeric\.vth_mant_bits\]"):
        image.save(bad, tmp_path / "bad.h5")
    assert not list(tmp_path.iterdir())
    image.validate(_lava_widths(bad))                  # fine in Lava's widths


# --------------------------------------------------------------------------- the compiler


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), recurrent=st.booleans())
def test_compiled_for_narrow_widths_runs_consistently(narrow: Path, seed: int,
                                                      recurrent: bool) -> None:
    """A lossless IF network (integer weights up to 255, integer thresholds) compiled for
    NARROW: its integers are within the file's widths, the emulator equals the kernels in
    the file's widths, and the hardware equals the float reference spike for spike."""
    rng = np.random.default_rng(seed)
    graph = exact_graph(rng, int(rng.integers(3, 8)), int(rng.integers(4, 12)),
                        int(rng.integers(2, 5)), recurrent, False)
    c = compiler.compile(graph, compiler.Options(target=str(narrow)))
    assert c.program.target_name == "narrow"
    for g in c.program.groups:
        assert 0 <= g.du <= 255 and 0 <= g.dv <= 255 and 0 <= g.vth <= 2047
        assert np.abs(g.bias_mant).max(initial=0) <= 255 and np.all(g.bias_exp <= 3)
    x = spikes_in(rng, graph, 2, 16)
    hw = execute.run(c.program, x)
    ref = float_reference.simulate(graph, x.astype(float), record=("spikes",))
    for pop, s in hw.spikes.items():
        np.testing.assert_array_equal(s, ref.spikes[pop].reshape(s.shape), err_msg=pop)
    assert sum(int(s.sum()) for s in hw.spikes.values()) > 0          # something was compared
    flat = x.reshape(2, 16, -1).astype(np.int64)
    res = engine.run(c.program, {c.program.ports[0].name: flat}, record=("spikes", "u", "v"))
    want = reference.run_one(c.program, {c.program.ports[0].name: flat[0]}, 16)
    for var in ("spikes", "u", "v"):
        for g, arr in want[var].items():
            assert np.array_equal(getattr(res, var)[g][0], arr), (var, g)


def test_compile_fails_nowhere_on_narrow_decays(narrow: Path) -> None:
    """The issue's first symptom: 8-bit decays made discretise a 'compiler bug'; now a
    leaky network compiles with decays of 8 bits."""
    from nirgraphs import feedforward

    graph = checker.from_nir(feedforward(np.random.default_rng(1)))
    c = compiler.compile(graph, compiler.Options(target=str(narrow), dt=1e-4,
                                                     allow_saturation=True))
    assert all(0 < g.dv <= 255 for g in c.program.groups)


# --------------------------------------------------------------------------- devices


def test_lava_and_netx_refuse_non_lava_widths(narrow: Path, tmp_path: Path) -> None:
    program = _narrowed(programs.random_program(2))
    with pytest.raises(devices.DeviceError, match=r"device 'lava' cannot run a program for "
                       r"target 'narrow': its numeric\.state_bits = 16, and Lava's fixed-point "
                       r"models hard-wire state_bits = 24"):
        devices.get("lava").load(program)
    devices.get("emulator").check(program)              # the emulator runs it
    from netx_files import write_net

    path = write_net(tmp_path / "n.net", [{"type": "input", "shape": (3,)}, {
        "type": "dense", "shape": (2,), "weight": np.ones((2, 3)) * 4,
        "neuron": {"type": "CUBA", "iDecay": 1024, "vDecay": 512, "vThMant": 20}}])
    with pytest.raises(UnsupportedError, match=r"holds Lava's integers \(state_bits = 24\), "
                       r"but target 'narrow' has numeric\.state_bits = 16"):
        netx.compile_file(path, compiler.Options(target=str(narrow)))
    with pytest.raises(Exception, match=r"numeric\.state_bits = 16"):
        netx.export(program, tmp_path / "out.net")
