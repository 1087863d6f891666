"""lava-dl's own published netx networks (tests/data/netx, BSD-3, see NOTICE there): every
file reads, compiles with its own integers and runs bit-identical to netx; what snn2hw
cannot represent is a one-line refusal naming the layer and the feature."""

from __future__ import annotations

import gzip
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from netx_files import write_net
from snn2hw_emulator import engine

from snn2hw import compiler, devices
from snn2hw.backends import netx, netx_blocks, netx_hw
from snn2hw.cli import main
from snn2hw.compare import first_divergence
from snn2hw.errors import DesignRuleError, ModelFileError, UnsupportedError

DATA = Path(__file__).with_name("data") / "netx"
CUBA = ("tiny", "oxford", "trained_mnist", "bootstrap_mnist")     # compile for loihi2
BIG = ("pilotnet_lif",)              # conv maps > 8192 neurons: unrolled to sparse blocks
SDNN = ("pilotnet_sdnn_gts", "pilotnet_sdnn_square", "pilotnet_sdnn_tutorial",
        "pilotnet_sdnn_slayer")
#: random input per file: graded values 0..hi into an input layer, else spike probability
INPUT = {"tiny": 40, "oxford": 0.02, "trained_mnist": 0.2, "bootstrap_mnist": 10}
ALL = ("spikes", "u", "v")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("netx")
    paths = {}
    for gz in sorted(DATA.glob("*.net.gz")):
        paths[gz.name[:-7]] = out / gz.name[:-3]
        with gzip.open(gz) as src, open(paths[gz.name[:-7]], "wb") as dst:
            shutil.copyfileobj(src, dst)
    return paths


def test_the_corpus_is_all_there() -> None:
    names = {p.name[:-7] for p in DATA.glob("*.net.gz")}
    assert names == set(CUBA + BIG + SDNN)
    assert (DATA / "LICENSE.lava-dl").is_file() and "BSD" in (DATA / "NOTICE").read_text()


def _compile(path: Path) -> compiler.Compiled:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return netx.compile_file(path, compiler.Options(target="loihi2"))


def _inputs(c: compiler.Compiled, name: str, batch: int = 2, steps: int = 32) -> np.ndarray:
    rng = np.random.default_rng(7)
    n = c.program.ports[0].size
    if c.program.ports[0].message_bits:
        return rng.integers(0, INPUT[name], (batch, steps, n))
    return (rng.random((batch, steps, n)) < INPUT[name]).astype(np.int64)


@pytest.mark.parametrize("name", CUBA + BIG)
def test_every_cuba_file_inspects_and_imports(files: dict[str, Path], name: str,
                                              tmp_path: Path) -> None:
    assert main(["inspect", str(files[name])]) == 0
    assert main(["import", str(files[name]), "-o", str(tmp_path / "m.nir")]) == 0


@pytest.mark.parametrize("name", SDNN)
def test_sdnn_files_inspect_and_build_with_their_integers(files: dict[str, Path], name: str,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    """The working SDNN path (details in tests/test_netx_sdnn.py): inspect lists the
    layers, to_program builds delta / sigma_delta / sigma groups with the file's
    thresholds, compile refuses loihi1 in one line (no graded spikes); importing into NIR
    is refused (no sigma-delta node)."""
    from snn2hw.backends import netx_sdnn
    from snn2hw.targets import load

    assert main(["inspect", str(files[name])]) == 0
    assert "sigma_delta" in capsys.readouterr().out
    program = netx.to_program(files[name], netx_sdnn.big_core(load("loihi2")))
    layers = [x for x in netx.read(files[name]) if "neuron" in x]
    assert [(g.model, g.vth) for g in program.groups] == [
        (netx_sdnn.model(x), 0 if netx_sdnn.model(x) == "sigma" else x["neuron"]["vThMant"])
        for x in layers]
    with pytest.raises(UnsupportedError, match="loihi1 has no graded spikes; use --target "
                                               "loihi2"):
        netx.compile_file(files[name], compiler.Options(target="loihi1"))
    with pytest.raises(UnsupportedError, match="layer 0 .*SDNN"):
        netx.to_graph(files[name])


@pytest.mark.parametrize("name", CUBA)
def test_compile_keeps_the_files_integers(files: dict[str, Path], name: str,
                                          tmp_path: Path) -> None:
    layers = [x for x in netx.read(files[name]) if x["type"] in ("dense", "conv")]
    c = _compile(files[name])
    assert c.passes == ("ranges", "map", "emit")
    by_layer = {}
    for g in c.program.groups:
        by_layer.setdefault(g.name.split("[")[0], []).append(g)
    for layer in layers:
        groups = by_layer[f"layer{layer['index']}"]
        nrn = layer["neuron"]
        if not layer.get("default_neuron"):
            assert {(g.vth, g.du, g.dv) for g in groups} == {
                (nrn["vThMant"], nrn["iDecay"] - 1, nrn["vDecay"])}
        blocks = [b for b in c.program.blocks if b.target in {g.name for g in groups}]
        if layer["type"] == "dense":
            full, nwb, wexp = netx.optimize_weight_bits(layer["weight"])
            order = [q.name for q in c.program.ports] + [q.name for q in c.program.groups]
            rows = np.concatenate([np.hstack([b.weights for b in sorted(
                (b for b in blocks if b.target == g.name), key=lambda b: order.index(b.source))])
                for g in groups])                     # split by rows and by source groups
            assert np.array_equal(rows, full) and {(b.weight_exp, b.num_weight_bits)
                                                   for b in blocks} == {(wexp, nwb)}
        else:
            flipped = layer["weight"][:, :, ::-1, ::-1].transpose(0, 3, 2, 1)
            assert np.array_equal(blocks[0].weights, flipped)
    out = tmp_path / "out"
    assert main(["compile", str(files[name]), "--target", "loihi2", "-o", str(out)]) == 0
    assert (out / "program.h5").is_file()


def test_trained_mnist_threshold_stays_and_range_check_only_informs(
        files: dict[str, Path]) -> None:
    with pytest.warns(UserWarning, match="information; the integers are the source's own"):
        c = netx.compile_file(files["trained_mnist"])
    assert {g.vth for g in c.program.groups} == {64}
    boot = _compile(files["bootstrap_mnist"])
    assert {g.vth for g in boot.program.groups if g.name.startswith("layer1")} == {80}


@pytest.fixture(scope="module")
def pilotnet(files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[Path, dict]:
    """lava-dl's PilotNet LIF compiled for loihi2 by the CLI (once per module): its
    convolutions do not fit a core, so they are unrolled to exact sparse blocks."""
    out = tmp_path_factory.mktemp("pilotnet") / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["compile", str(files["pilotnet_lif"]), "--target", "loihi2", "-o",
                     str(out)]) == 0
    return out, json.loads((out / "report.json").read_text())


def _bigcore(tmp_path: Path):
    """loihi2 with cores large enough for PilotNet's layers unmapped (netx's own build)."""
    from snn2hw.targets import load

    toml = load("loihi2").toml.replace('name = "loihi2"', 'name = "loihi2-bigcore"')
    toml = toml.replace("neurons_max = 8192 ", "neurons_max = 131072 ")
    (tmp_path / "bigcore.toml").write_text(toml)
    return load(tmp_path / "bigcore.toml")


def test_pilotnet_compiles_for_loihi2_with_its_convolutions_unrolled(
        files: dict[str, Path], pilotnet: tuple[Path, dict]) -> None:
    out, report = pilotnet
    layers = {row["population"]: row for row in report["mapping_layers"]}
    assert 100 < report["cores"] <= 2 * 128 and report["chips"] == 2
    for name in ("layer0", "layer1", "layer2", "layer3", "layer4", "layer5"):
        assert layers[name]["unrolled"].startswith("conv unrolled to sparse"), layers[name]
        assert layers[name]["cores"] >= layers[name]["lower_bound"] > 1
    assert "neurons 76032 > 8192" in layers["layer1"]["unrolled"]
    assert layers["layer7"]["unrolled"] == "" and layers["layer7"]["parts"] == 1
    assert "cores" in (out / "summary.txt").read_text()
    program_layers = [x for x in netx.read(files["pilotnet_lif"]) if x["type"] != "flatten"]
    assert [x["type"] for x in program_layers] == ["input"] + ["conv"] * 5 + ["dense"] * 4
    assert program_layers[-1]["weight"].shape == (1, 10)           # a (10,) weight
    assert program_layers[6]["bias"].shape == (100,)               # shape (100, 1, 1)


def test_compiled_pilotnet_runs_bit_identical_to_the_file_as_read(
        files: dict[str, Path], pilotnet: tuple[Path, dict], tmp_path: Path) -> None:
    """The mapped program (read back from program.h5: csr blocks) equals netx's build of
    the file, unmapped, in every spike, u and v of every layer (5 steps reach layer5)."""
    import scipy.sparse as sp
    from snn2hw_emulator import image

    program = image.load(pilotnet[0] / "program.h5")
    sparse = [b for b in program.blocks if b.kind == "sparse"]
    assert sparse and all(sp.issparse(b.weights) for b in sparse)
    assert not any(b.kind == "conv" for b in program.blocks)
    built = netx.to_program(files["pilotnet_lif"], _bigcore(tmp_path))
    x = np.random.default_rng(0).integers(0, 60, (1, 5, built.ports[0].size))
    a = engine.run(program, {"input": x}, record=ALL, cost=False)
    b = engine.run(built, {"input": x}, record=ALL, cost=False)
    net, _ = netx_hw.to_hwnet(files["pilotnet_lif"])
    where = {g.name: np.argsort(g.index) for g in net.groups}     # NIR index -> position
    io = json.loads(program.metadata["snn2hw.io"])["populations"]
    for g in built.groups:
        pos = where[g.name][np.asarray(io[g.name]["index"])]
        parts = io[g.name]["groups"]
        for var in ALL:
            got = np.concatenate([getattr(a, var)[p] for p in parts], axis=2)
            want = getattr(b, var)[g.name][:, :, pos]
            assert np.array_equal(got, want), (g.name, var, int(np.sum(got != want)))
    assert b.spikes["layer5"].any()


@pytest.mark.parametrize("name", CUBA)
def test_compiled_program_runs_as_netx_rules_build_it(files: dict[str, Path],
                                                      name: str) -> None:
    """Mapping (splits, packing) keeps the behaviour of the file read as netx builds it."""
    from snn2hw.targets import load

    c = _compile(files[name])
    built = netx.to_program(files[name], load("loihi2"))
    x = {"input": _inputs(c, name)}
    a, b = engine.run(c.program, x, record=ALL), engine.run(built, x, record=ALL)
    for g in built.groups:
        parts = [p.name for p in c.program.groups if p.name.split("[")[0] == g.name]
        for var in ALL:
            got = np.concatenate([getattr(a, var)[p] for p in parts], axis=2)
            np.testing.assert_array_equal(got, getattr(b, var)[g.name], err_msg=f"{var} {g.name}")


# --------------------------------------------------------------------------- netx itself


@pytest.mark.lava
@pytest.mark.slow
@pytest.mark.parametrize("name", CUBA)
def test_every_cuba_file_runs_bit_identical_to_netx(files: dict[str, Path], name: str) -> None:
    c = _compile(files[name])
    x = {"input": _inputs(c, name)}
    want = devices.get("emulator").load(c.program).run(x, record=ALL)
    got = devices.get("netx").load(c.program).run(x, record=ALL)
    assert first_divergence(want, got) is None
    for g in c.program.groups:
        for var in ALL:
            assert getattr(got, var)[g.name].shape == getattr(want, var)[g.name].shape == (
                2, 32, g.size)
    active = [g for g in c.program.groups if want.spikes[g.name].any()]
    info = json.loads(c.program.metadata[netx_blocks.META_KEY])
    silent = {g.name for g in c.program.groups} - {g.name for g in active}
    assert all(n.split("[")[0] in info["u_differs"] for n in silent)   # the readout: v only
    assert all(np.any(want.v[n]) for n in silent)


@pytest.mark.lava
@pytest.mark.slow
def test_compiled_pilotnet_runs_bit_identical_to_netx(pilotnet: tuple[Path, dict]) -> None:
    """The loihi2 program (convolutions unrolled to sparse blocks, 186 cores on 2 chips)
    through lava-dl's own netx and on the emulator: every spike, u and v of every layer.
    netx needs ~17 s per step here; 12 steps reach the last layer."""
    from snn2hw_emulator import image

    program = image.load(pilotnet[0] / "program.h5")
    x = {"input": np.random.default_rng(0).integers(0, 60, (1, 12, program.ports[0].size))}
    want = devices.get("emulator").load(program).run(x, record=ALL)
    got = devices.get("netx").load(program).run(x, record=ALL)
    assert first_divergence(want, got) is None
    assert any(want.spikes[g.name].any() for g in program.groups
               if g.name.startswith("layer9"))
    assert any(want.v[g.name].any() for g in program.groups if g.name.startswith("layer10"))


@pytest.mark.lava
@pytest.mark.slow
def test_cli_verify_against_netx_and_run_a_net_file(files: dict[str, Path], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "x.npy"
    np.save(data, np.random.default_rng(1).integers(0, 40, (2, 32, 768)))
    assert main(["verify", str(files["tiny"]), "--device", "netx", "--against", "emulator",
                 "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "netx vs emulator: bit-identical over 2 samples" in out and "one step later" in out
    assert main(["run", str(files["tiny"]), "--input", str(data), "--output",
                 str(tmp_path / "o.npz")]) == 0
    with np.load(tmp_path / "o.npz") as f:
        assert sum(int(np.asarray(f[k]).sum()) for k in f.files if "spikes" in k) > 0


# --------------------------------------------------------------------------- unit cases


def _file(path: Path, layers: list[dict]) -> Path:
    return write_net(path, layers)


CUBA_N = {"iDecay": 4096, "vDecay": 1024, "vThMant": 25, "refDelay": 3}


def _dense(n_out: int, n_in: int, seed: int = 0, **extra: object) -> dict:
    w = 2 * np.random.default_rng(seed).integers(-20, 21, (n_out, n_in))
    return {"type": "dense", "shape": [n_out], "weight": w.astype(np.float32),
            "neuron": dict(CUBA_N), **extra}


def test_layouts_of_the_published_files(tmp_path: Path) -> None:
    """(C,1,1) dense shapes with 1-D biases, a (n,) weight for one output, 5-D conv
    weights, an input layer with neurons, a dense layer without neurons, refDelay and
    scalar-array neuron parameters: read as netx builds them, compile, run."""
    conv_w = 2 * np.random.default_rng(1).integers(-8, 9, (4, 2, 3, 3, 1))
    layers = [
        {"type": "input", "shape": [2, 6, 6], "weight": [40.0], "bias": [36.0],
         "neuron": dict(CUBA_N, vThMant=np.array([25]))},
        {"type": "conv", "shape": [4, 2, 2], "weight": conv_w.astype(np.float32),
         "bias": np.arange(4.0) * 2, "stride": [2, 2], "padding": [0, 0],
         "dilation": [1, 1], "groups": 1, "neuron": dict(CUBA_N)},
        {"type": "flatten", "shape": [1, 1, 16]},
        _dense(5, 16, bias=np.full(5, 2.0), shape=[5, 1, 1]),
        {"type": "dense", "shape": [1, 1, 1], "weight": np.arange(5.0) * 2},   # no neuron
    ]
    path = _file(tmp_path / "layouts.net", layers)
    read = netx.read(path)
    assert read[1]["weight"].shape == (4, 2, 3, 3) and read[3]["bias"].shape == (5,)
    assert read[4]["weight"].shape == (1, 5) and read[4]["default_neuron"]
    c = _compile(path)
    x = np.random.default_rng(2).integers(0, 30, (2, 20, 72))
    res = engine.run(c.program, {"input": x}, record=ALL)
    assert res.spikes["layer0"].any() and res.spikes["layer1"].any()
    assert netx.to_graph(path).nodes["layer4"].__class__.__name__ == "IF"


@pytest.mark.parametrize("case, match", [
    ({"neuron": dict(CUBA_N, vThMant=np.array([25, 26, 25]))}, r"layer 0 .*per-neuron vThMant"),
    ({"neuron": dict(CUBA_N, type="RF_PHASE")}, r"layer 0 .*RF_PHASE neurons"),
    ({"neuron": dict(CUBA_N, messageBits=8)}, r"layer 0 .*graded spikes"),
    ({"delay": np.array([[1, 2, 1, 1]] * 3)}, r"layer 0 .*per-synapse delays \(1\.\.2\)"),
    ({"neuron": dict(CUBA_N, vDecay=4096)}, r"layer 0 .*vDecay 4096, outside Loihi"),
    ({"weight": np.zeros((3, 4), dtype=np.float32)}, r"layer 0 .*all-zero weights"),
])
def test_what_cannot_be_represented_is_refused_naming_layer_and_feature(
        tmp_path: Path, case: dict, match: str) -> None:
    path = _file(tmp_path / "bad.net", [{**_dense(3, 4), **case}])
    with pytest.raises(UnsupportedError, match=match) as err:
        netx.compile_file(path)
    assert "\n" not in str(err.value)


def test_other_layer_types_and_lfs_pointers_are_refused(tmp_path: Path) -> None:
    pool = _file(tmp_path / "pool.net", [{"type": "input", "shape": [1, 4, 4]},
                                         {"type": "pool", "shape": [1, 2, 2]}])
    with pytest.raises(UnsupportedError, match="layer 1 .*'pool', which is not built by netx"):
        netx.read(pool)
    lfs = tmp_path / "lfs.net"
    lfs.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 9\n")
    with pytest.raises(ModelFileError, match="not a netx .net"):
        netx.read(lfs)
    no_shape = _file(tmp_path / "noshape.net", [{"type": "input"}, _dense(3, 4)])
    assert netx.to_program(no_shape, __import__("snn2hw.targets").targets.load("loihi2")
                           ).ports[0].size == 4


def test_uniform_delays_are_kept_and_clamped_as_netx_does(tmp_path: Path) -> None:
    path = _file(tmp_path / "d.net", [_dense(3, 4, delay=np.array(70))])
    c = _compile(path)
    assert [b.kind for b in c.program.blocks] == ["delay_dense"]
    assert np.all(c.program.blocks[0].delays == 62)


def test_a_real_one_step_overflow_is_still_refused_with_the_numbers(tmp_path: Path) -> None:
    w = np.full((2, 1000), 254.0, dtype=np.float32)
    path = _file(tmp_path / "big.net", [{"type": "dense", "shape": [2], "weight": w,
                                         "neuron": dict(CUBA_N)}])
    with pytest.raises(DesignRuleError, match=r"one step with every input spiking gives "
                                              r"u = 16256000, beyond the 8388607"):
        netx.compile_file(path)
