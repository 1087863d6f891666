"""The Xylo compiler path: one minimal violating network per design rule (the rule is
named, with numbers and a fix), every violation of a model reported together, the
compiled program bit-identical on the emulator and on xylosim, the program image and
Rockpool's specification round trips, and the CLI's compile and device comparison."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import nir
import numpy as np
import pytest
from snn2hw_emulator import image, xylo_engine, xylo_rules
from snn2hw_emulator.errors import ImageFormatError, ProgramLimitError
from snn2hw_emulator.xylo_program import XyloProgram

from snn2hw import checker, compiler, devices, ir, nirio, targets
from snn2hw.backends import rockpool_spec, xylosim
from snn2hw.compare import first_divergence
from snn2hw.errors import DesignRuleError, UserInputError
from snn2hw.xylo import rules as model_rules

DT = 1e-4
XN = ("xylo-neuron",)


def cuba(n: int, tau_mem: float = 8e-4, theta: float = 1.0, reset: str = "sinabs",
         v_leak: float = 0.0) -> nir.CubaLIF:
    return nir.CubaLIF(tau_syn=np.full(n, 2e-4), tau_mem=np.full(n, tau_mem),
                       r=np.full(n, 8.0), v_leak=np.full(n, v_leak), v_threshold=np.full(n, theta),
                       v_reset=np.zeros(n), w_in=np.full(n, 2.0), metadata={"reset": reset})


def chain(sizes: tuple[int, ...], seed: int = 0, rec: bool = False, density: float = 1.0,
          **kw: object) -> ir.Graph:
    """Input -> [Linear -> CubaLIF] per layer -> Output; ``rec``: the first hidden layer
    recurrent (a Linear from itself); ``density``: the fraction of non-zero weights."""
    rng = np.random.default_rng(seed)
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(np.array([sizes[0]]))}
    edges, prev = [], "input"
    for k, (a, b) in enumerate(itertools.pairwise(sizes)):
        w = rng.normal(0, 1.0, size=(b, a)) * (rng.random((b, a)) < density)
        nodes[f"fc{k}"] = nir.Linear(w)
        nodes[f"n{k}"] = cuba(b, **kw)
        edges += [(prev, f"fc{k}"), (f"fc{k}", f"n{k}")]
        prev = f"n{k}"
    if rec:
        nodes["wrec"] = nir.Linear(rng.normal(0, 0.3, size=(sizes[1], sizes[1])))
        edges += [("n0", "wrec"), ("wrec", "n0")]
    nodes["output"] = nir.Output(np.array([sizes[-1]]))
    edges.append((prev, "output"))
    return checker.from_nir(nir.NIRGraph(nodes, edges, type_check=False),
                            metadata={"dt": DT, "threshold_cmp": "ge"})


def edit(g: ir.Graph, **nodes: nir.NIRNode) -> ir.Graph:
    return g.replace(nodes={**g.nodes, **nodes})


def violations(graph: ir.Graph, target: str = "xylo-audio2",
               approximations: tuple[str, ...] = XN) -> str:
    with pytest.raises(DesignRuleError) as info:
        compiler.compile(graph, compiler.Options(target=target, approximations=approximations))
    return str(info.value)


def _graph(nodes: dict[str, nir.NIRNode], edges: list[tuple[str, str]], **meta: object
           ) -> ir.Graph:
    return checker.from_nir(nir.NIRGraph(nodes, edges, type_check=False),
                            metadata={"dt": DT, "threshold_cmp": "ge", **meta})


def lin(a: int, b: int) -> nir.Linear:
    return nir.Linear(np.full((b, a), 0.5))


# --------------------------------------------------------------------------- one per rule

CASES = {
    "one_input_port": lambda: _graph(
        {"a": nir.Input(np.array([2])), "b": nir.Input(np.array([2])), "fa": lin(2, 3),
         "fb": lin(2, 3), "h": cuba(3), "f2": lin(3, 2), "o": cuba(2, reset="subtract"),
         "output": nir.Output(np.array([2]))},
        [("a", "fa"), ("b", "fb"), ("fa", "h"), ("fb", "h"), ("h", "f2"), ("f2", "o"),
         ("o", "output")]),
    "output_from_one_spiking_population": lambda: _graph(
        {"input": nir.Input(np.array([2])), "f": lin(2, 3), "h": cuba(3), "f2": lin(3, 2),
         "o": cuba(2), "out1": nir.Output(np.array([3])), "out2": nir.Output(np.array([2]))},
        [("input", "f"), ("f", "h"), ("h", "f2"), ("f2", "o"), ("h", "out1"), ("o", "out2")]),
    "at_least_two_neuron_layers": lambda: chain((4, 3)),
    "input_only_to_hidden": lambda: _graph(
        {"input": nir.Input(np.array([2])), "f": lin(2, 3), "h": cuba(3), "fo": lin(2, 2),
         "fh": lin(3, 2), "o": cuba(2), "output": nir.Output(np.array([2]))},
        [("input", "f"), ("f", "h"), ("input", "fo"), ("fo", "o"), ("h", "fh"), ("fh", "o"),
         ("o", "output")]),
    "output_neurons_cannot_be_recurrent": lambda: _graph(
        {"input": nir.Input(np.array([2])), "f": lin(2, 3), "h": cuba(3), "f2": lin(3, 2),
         "o": cuba(2), "r": lin(2, 2), "output": nir.Output(np.array([2]))},
        [("input", "f"), ("f", "h"), ("h", "f2"), ("f2", "o"), ("o", "r"), ("r", "o"),
         ("o", "output")]),
    "no_synaptic_delays": lambda: _graph(
        {"input": nir.Input(np.array([2])), "f": lin(2, 3), "h1": cuba(3), "f2": lin(3, 3),
         "h2": cuba(3), "f3": lin(3, 2), "skip": lin(3, 2), "o": cuba(2),
         "output": nir.Output(np.array([2]))},
        [("input", "f"), ("f", "h1"), ("h1", "f2"), ("f2", "h2"), ("h2", "f3"), ("f3", "o"),
         ("h1", "skip"), ("skip", "o"), ("o", "output")]),
    "time_constants_exceed_dt": lambda: edit(chain((4, 5, 3)), n0=cuba(5, tau_mem=DT / 2)),
    "dash_fits": lambda: edit(chain((4, 5, 3)), n0=cuba(5, tau_mem=DT * 2**17)),
    "thresholds_positive": lambda: edit(chain((4, 5, 3)), n0=cuba(5, theta=-1.0, v_leak=-2.0)),
    "spiking_neurons_only": lambda: edit(chain((4, 5, 3)), n1=nir.LI(
        tau=np.full(3, 1e-3), r=np.ones(3), v_leak=np.zeros(3))),
    "cuba_uses_new_current": lambda: chain((4, 5, 3)).replace(
        metadata={"dt": DT, "threshold_cmp": "ge", "cuba_voltage_uses": "old"}),
    "inputs_fit": lambda: chain((17, 5, 3)),
    "hidden_neurons_fit": lambda: chain((4, 1001, 3)),
    "output_neurons_fit": lambda: chain((4, 5, 9)),
    "recurrent_fan_out_fits": lambda: chain((4, 65, 65, 3)),
    "model_structure": lambda: _graph(
        {"input": nir.Input(np.array([2])), "d": nir.Delay(np.full(2, 2 * DT)),
         "f": lin(2, 3), "h": cuba(3), "f2": lin(3, 2), "o": cuba(2),
         "output": nir.Output(np.array([2]))},
        [("input", "d"), ("d", "f"), ("f", "h"), ("h", "f2"), ("f2", "o"), ("o", "output")]),
}
IMU_CASES = {
    "recurrent_weights_fit": lambda: chain((4, 180, 180, 3)),
    "input_expansion_fits": lambda: chain((4, 129, 3)),
    "output_expansion_fits": lambda: chain((4, 20, 129, 3), density=0.3),
}


@pytest.mark.parametrize("rule", sorted(CASES))
def test_each_rule_names_itself_with_numbers_and_a_fix(rule: str) -> None:
    text = violations(CASES[rule]())
    assert f"{rule}:" in text and "fix:" in text, text


@pytest.mark.parametrize("rule", sorted(IMU_CASES))
def test_imu_rules(rule: str) -> None:
    text = violations(IMU_CASES[rule](), "xylo-imu")
    assert f"{rule}:" in text and "fix:" in text, text
    if rule != "recurrent_weights_fit":   # Xylo Audio 2 has no such projection limits
        compiler.compile(IMU_CASES[rule](), compiler.Options(target="xylo-audio2",
                                                             approximations=XN))


def test_neuron_model_needs_the_approximation() -> None:
    text = violations(chain((4, 5, 3)), approximations=())
    assert "neuron_model_matches:" in text and "--approximate xylo-neuron" in text


def test_synapses_rule_on_a_two_synapse_program() -> None:
    """NIR neurons have one synaptic current; a hand-built two-synapse program is refused
    by Xylo IMU (one) and accepted by Xylo Audio 2 (two)."""
    imu = targets.load("xylo-imu")
    p = _program(n_syn=2, target=imu)
    assert [v.rule for v in xylo_rules.check(p, imu)] == ["synapses_per_neuron_fit"]
    assert xylo_rules.check(p, targets.load("xylo-audio2")) == []


def test_every_violation_is_reported_together() -> None:
    """17 inputs, 9 outputs, a threshold <= 0 and tau <= dt: four rules, one error."""
    g = edit(chain((17, 5, 9)), n0=cuba(5, tau_mem=DT / 2, theta=-1.0, v_leak=-2.0))
    text = violations(g)
    for rule in ("time_constants_exceed_dt", "thresholds_positive"):
        assert f"{rule}:" in text
    g = chain((17, 70, 70, 9))
    text = violations(g)
    for rule in ("inputs_fit", "output_neurons_fit", "recurrent_fan_out_fits"):
        assert f"{rule}:" in text
    assert "(3 design rule violation(s))" in text


def test_rockpool_rule_list_is_accounted_for() -> None:
    """Every rule of Rockpool's xylo_drc is a rule here or named in rules.py as folded away."""
    doc = model_rules.__doc__ or ""
    for name in ("output_nodes_have_neurons_as_source", "input_to_neurons_is_a_weight",
                 "first_module_is_a_weight", "le_16_input_channels", "le_8_output_channels",
                 "all_neurons_have_same_dt", "output_neurons_cannot_be_recurrent",
                 "no_consecutive_weights", "alias_inputs_must_be_neurons",
                 "at_least_two_neuron_layers_needed", "weight_nodes_have_no_biases"):
        assert name.split("_")[0] in doc and (name in doc or name.startswith("alias")), name


# --------------------------------------------------------------------------- programs


def _program(n_syn: int = 1, target: object = None) -> XyloProgram:
    t = target or targets.load("xylo-audio2")
    rng = np.random.default_rng(1)
    nh, no = 6, 2
    return XyloProgram(t.name, t.sha256, t.toml, rng.integers(-50, 50, (3, nh, n_syn)),
                       rng.integers(-50, 50, (nh, nh, n_syn)), rng.integers(-50, 50, (nh, no)),
                       1, 0, 2, np.full(nh, 3), np.full((nh, n_syn), 1), np.full(no, 3),
                       np.full(no, 1), np.full(nh, 200), np.full(no, 200), np.zeros(nh, int),
                       np.zeros(no, int), np.full(nh, -1))


def _compiled(rec: bool = True) -> compiler.Compiled:
    g = chain((6, 12, 4), rec=rec)
    data = (np.random.default_rng(2).random((16, 20, 6)) < 0.4).astype(np.int8)
    return compiler.compile(g, compiler.Options(target="xylo-audio2", approximations=XN),
                            calibration=data)


def test_compiled_program_runs_bit_identical_on_xylosim() -> None:
    c = _compiled(rec=True)
    assert c.program.weights_rec.any()          # hidden recurrence in the one matrix
    x = np.random.default_rng(3).integers(0, 3, (4, 30, 6))
    want = ("spikes", "v", "i_syn")
    ref = xylosim.run(c.program, x, record=want)
    for mode in xylo_engine.MODES:
        res = devices.EmulatorDevice(mode).load(c.program).run(x, record=want)
        assert first_divergence(ref, res, want) is None
    assert ref.spikes["hidden"].sum() > 0 and ref.spikes["output"].sum() > 0


def test_image_round_trip_and_damage(tmp_path: Path) -> None:
    import h5py

    c = _compiled()
    path = tmp_path / "p.h5"
    image.save(c.program, path)
    back = image.load(path)
    assert back.format_version == 4 and back.metadata == c.program.metadata
    for k, v in c.program.arrays().items():
        assert np.array_equal(v, back.arrays()[k]), k
    for damage in ("family", "dtype", "range"):
        bad = tmp_path / f"{damage}.h5"
        bad.write_bytes(path.read_bytes())
        with h5py.File(bad, "r+") as f:
            if damage == "family":
                del f.attrs["family"]            # a version-4 file that is not Xylo
            elif damage == "dtype":
                del f["xylo/threshold"]
                f["xylo"].create_dataset("threshold", data=np.ones(12) * 1.5)
            else:
                f["xylo/dash_mem"][0] = 99
        with pytest.raises((ImageFormatError, ProgramLimitError)):
            image.load(bad)


def test_rockpool_specification_builds_the_same_simulation(tmp_path: Path) -> None:
    """The exported specification, turned into xylosim synapses the way Rockpool's
    XyloSim.from_specification does (per source: synapse 1 then 2 of every non-zero
    weight; output weights from the last OEN hidden neurons), runs as the program does."""
    from xylosim.v2 import XyloLayer, XyloSynapse

    c = _compiled()
    rockpool_spec.write(c.program, DT, tmp_path / "s.npz", tmp_path / "s.json")
    for name in ("s.npz", "s.json"):
        spec = rockpool_spec.read(tmp_path / name)
        assert spec["dt"] == DT and spec["weight_shift_out"] == c.program.weight_shift_out

        def syns(w: np.ndarray) -> list:
            w = w if w.ndim == 3 else w[:, :, None]
            return [[XyloSynapse(int(j), s, int(row[j, s])) for s in range(w.shape[2])
                     for j in np.flatnonzero(row[:, s])] for row in w]

        w_in, w_rec, w_out = (syns(np.asarray(spec[k])) for k in
                              ("weights_in", "weights_rec", "weights_out"))
        nh = len(w_rec)
        layer = XyloLayer(w_in, w_rec, [[]] * (nh - len(w_out)) + w_out, spec["aliases"],
                          list(spec["threshold"]), list(spec["threshold_out"]), True,
                          list(spec["bias"]), list(spec["bias_out"]), spec["weight_shift_in"],
                          spec["weight_shift_rec"], spec["weight_shift_out"],
                          list(spec["dash_mem"]), list(spec["dash_mem_out"]),
                          [[int(a), int(b)] for a, b in zip(spec["dash_syn"],
                                                            spec["dash_syn_2"])],
                          [[int(d)] for d in spec["dash_syn_out"]], "spec")
        x = np.random.default_rng(4).integers(0, 2, (25, 6))
        out = np.asarray(layer.evolve(x.tolist()))
        res = xylo_engine.run(c.program, x[None], record=("spikes", "v"))
        assert np.array_equal(out, res.spikes["output"][0])
        assert np.array_equal(np.asarray(layer.rec_v_mem).T, res.v["hidden"][0])
        del w_in, w_rec, w_out                      # the layer held pointers to them


def test_cli_compile_and_verify_xylosim_against_emulator(tmp_path: Path) -> None:
    model = tmp_path / "m.nir"
    nirio.write(chain((6, 12, 4), rec=True), model)
    x = (np.random.default_rng(5).random((6, 20, 6)) < 0.4).astype(np.int8)
    np.savez(tmp_path / "d.npz", spikes=x, labels=np.arange(6) % 4)
    cli = [sys.executable, "-m", "snn2hw.cli"]
    out = subprocess.run([*cli, "compile", str(model), "--target", "xylo-audio2", "-o",
                          str(tmp_path / "out"), "--approximate", "xylo-neuron"],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert "xylo_spec.npz" in out.stdout and (tmp_path / "out" / "xylo_spec.json").exists()
    assert json.loads((tmp_path / "out" / "report.json").read_text())["family"] == "xylo-iaf"
    out = subprocess.run([*cli, "verify", str(model), "--target", "xylo-audio2", "--device",
                          "xylosim", "--against", "emulator", "--data",
                          str(tmp_path / "d.npz"), "--approximate", "xylo-neuron"],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0 and "bit-identical" in out.stdout, out.stdout + out.stderr
    out = subprocess.run([*cli, "compile", str(model), "--target", "xylo-audio2", "-o",
                          str(tmp_path / "no")], capture_output=True, text=True, check=False)
    assert out.returncode == 2 and "neuron_model_matches" in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "no").exists()


def test_loihi_devices_refuse_a_xylo_program() -> None:
    with pytest.raises(devices.DeviceError, match="xylo-iaf"):
        devices.get("lava").load(_program())


def test_target_values_the_family_cannot_honour_are_refused_naming_the_key() -> None:
    from snn2hw.errors import TargetError

    text = targets.load("xylo-audio2").toml
    for key, value in (("weight_shift_max", 9), ("dash_bits", 5), ("synapses_max", 3)):
        old = next(line for line in text.splitlines() if line.startswith(f"{key} ="))
        with pytest.raises(TargetError, match=f"numeric.{key}"):
            targets.parse(text.replace(old, f"{key} = {value}"), "edited.toml")


def test_cli_run_and_inspect_a_xylo_image(tmp_path: Path) -> None:
    c = _compiled()
    image.save(c.program, tmp_path / "p.h5")
    np.save(tmp_path / "x.npy", np.random.default_rng(6).integers(0, 2, (2, 10, 6)))
    cli = [sys.executable, "-m", "snn2hw.cli"]
    runs = {}
    for dev in ("emulator", "xylosim"):
        out = subprocess.run([*cli, "run", str(tmp_path / "p.h5"), "--input",
                              str(tmp_path / "x.npy"), "--output", str(tmp_path / f"{dev}.npz"),
                              "--device", dev, "--record", "spikes,v,i_syn"],
                             capture_output=True, text=True, check=False)
        assert out.returncode == 0, out.stderr
        runs[dev] = dict(np.load(tmp_path / f"{dev}.npz"))
    assert runs["emulator"].keys() == runs["xylosim"].keys()
    assert all(np.array_equal(runs["emulator"][k], runs["xylosim"][k]) for k in runs["emulator"])
    out = subprocess.run([*cli, "inspect", str(tmp_path / "p.h5")], capture_output=True,
                         text=True, check=False)
    assert out.returncode == 0 and "(Xylo)" in out.stdout and "hidden: 12" in out.stdout


@pytest.mark.parametrize("option", [{"share": 4}, {"netx": True}, {"input_bits": 4},
                                    {"scale_groups": 2}, {"weight_bits": 6}])
def test_loihi_only_options_are_refused_on_xylo(option: dict) -> None:
    """Options that mean something only on the Loihi path are refused, not ignored."""
    name = next(iter(option))
    with pytest.raises(UserInputError, match=f"option {name}=.* has no meaning on a Xylo target"):
        compiler.compile(chain((16, 8, 4)),
                         compiler.Options(target="xylo-audio2", approximations=XN, **option))


@pytest.mark.parametrize("reset", ["zero", "subtract", "snntorch_subtract", "sinabs"])
def test_reset_differences_follow_each_population_s_spike_limit(reset: str) -> None:
    """Hidden neurons fire up to hidden_spikes_max (31) spikes per step, output neurons
    at most output_spikes_max (1, MAX_NUM_OUT_SPIKES): a one-spike model's subtraction
    differs on hidden neurons only, and no output note promises 31 spikes. The emulator
    shows the limit: strong input gives hidden counts above 1, outputs of 1 at most."""
    g = chain((6, 12, 4), seed=4, reset=reset)
    target = targets.load("xylo-audio2")
    assert (target.numeric.hidden_spikes_max, target.numeric.output_spikes_max) == (31, 1)
    with pytest.warns(UserWarning, match="approximated on Xylo"):
        c = compiler.compile(g, compiler.Options(target="xylo-audio2", approximations=XN))
    hidden = [w for w in c.warnings if w.startswith("'n0'")]
    output = [w for w in c.warnings if w.startswith("'n1'")]
    assert not any("31" in w for w in output), output
    many = "'n0': one spike per step becomes up to 31 (when V >= 2 thresholds)"
    assert (many in hidden) == (reset in ("subtract", "snntorch_subtract")), hidden
    reset_notes = [w for w in output if "spike" in w or "reset" in w or "floors" in w]
    if reset == "subtract":
        assert reset_notes == [], output
    else:
        assert len(reset_notes) >= 1, output
    x = np.full((2, 10, 6), 15)                      # every channel at its event limit
    res = devices.EmulatorDevice("batch").load(c.program).run(x, record=("spikes",))
    assert res.spikes["hidden"].max() > 1 and res.spikes["output"].max() == 1
