"""lava-dl SDNN (sigma-delta) .net files through the product (snn2hw/backends/netx_sdnn.py):
read, inspected, built with netx's integers (to_program), compiled for loihi2 where the
network maps (a small SDNN file here; PilotNet's layers exceed a core), refused for loihi1
and wherever they cannot be represented. The netx round trips are in
tests/test_lava_sdnn_netx.py."""

from __future__ import annotations

import gzip
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from netx_files import write_net
from snn2hw_emulator import engine, kernels

from snn2hw import compiler, execute
from snn2hw.backends import netx, netx_compile, netx_run, netx_sdnn
from snn2hw.cli import main
from snn2hw.devices import DeviceError
from snn2hw.errors import DesignRuleError, Snn2hwError, UnsupportedError
from snn2hw.targets import load

DATA = Path(__file__).with_name("data") / "netx"
SDNN = ("pilotnet_sdnn_square", "pilotnet_sdnn_gts", "pilotnet_sdnn_slayer",
        "pilotnet_sdnn_tutorial")
VARS = ("spikes", *kernels.SD_STATE)


def unpack(name: str, folder: Path) -> Path:
    out = folder / f"{name}.net"
    with gzip.open(DATA / f"{name}.net.gz") as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return out


def frames(n: int, steps: int, seed: int) -> np.ndarray:
    """(1, steps, n) pixel-like values 0..255 that drift over time (a graded stream)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, n)
    drift = rng.integers(-20, 21, (steps, n)) * (rng.random((steps, n)) < 0.3)
    return np.clip(base + np.cumsum(drift, axis=0), 0, 255).astype(np.int64)[None]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("sdnn")
    return {name: unpack(name, out) for name in SDNN}


@pytest.mark.parametrize("name", SDNN)
def test_inspect_prints_every_layer(files: dict[str, Path], name: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(files[name])]) == 0
    out = capsys.readouterr().out
    layers = netx.read(files[name])
    rows = [r for r in out.splitlines() if r.startswith("layer") and not r.startswith("layer ")]
    assert len(rows) == len(layers)
    for row, layer in zip(rows, layers):
        cells = row.split()
        assert cells[1] == layer["type"]
        if "neuron" in layer:
            kind = netx_sdnn.model(layer)
            assert cells[3] == kind and cells[5] == "16"
            assert cells[4] == ("-" if kind == "sigma" else str(layer["neuron"]["vThMant"]))


@pytest.mark.parametrize("name", SDNN)
def test_to_program_holds_the_files_integers(files: dict[str, Path], name: str) -> None:
    program = netx.to_program(files[name], netx_sdnn.big_core(load("loihi2")))
    layers = {f"layer{x['index']}": x for x in netx.read(files[name]) if "neuron" in x}
    assert [g.name for g in program.groups] == list(layers)
    for g in program.groups:
        layer = layers[g.name]
        kind = netx_sdnn.model(layer)
        assert g.model == kind and (g.du, g.dv) == (0, 0)
        assert (g.spike_exp, g.state_exp) == ((0, 0) if kind == "sigma" else (6, 6))
        assert g.vth == (0 if kind == "sigma" else layer["neuron"]["vThMant"])
        if kind == "sigma_delta":
            bias = np.broadcast_to(layer["bias"], g.shape) if layer["type"] == "conv" else \
                layer["bias"]
            assert np.array_equal(g.bias_mant, np.ravel(bias)) and g.bias_mant.any()
        blocks = [b for b in program.blocks if b.target == g.name]
        assert len(blocks) == 1
        b = blocks[0]
        assert b.num_message_bits == (24 if kind == "delta" else 16)
        if layer["type"] == "conv":
            assert np.array_equal(b.weights, layer["weight"][:, :, ::-1, ::-1].transpose(
                0, 3, 2, 1))
        elif layer["type"] == "dense":
            full, nwb, wexp = netx.optimize_weight_bits(layer["weight"])
            src = next(q for q in program.groups if q.name == b.source)
            assert (b.weight_exp, b.num_weight_bits) == (wexp, nwb)
            if len(src.shape) == 3:                      # after flatten: netx's (c, y, x)
                x, y, c = src.shape
                order = np.arange(x * y * c).reshape(c, y, x).transpose(2, 1, 0).ravel()
                assert np.array_equal(b.weights, full[:, order])
            else:
                assert np.array_equal(b.weights, full)
    assert program.ports[0].message_bits == 24


def test_every_layer_sends_payloads_on_the_emulator(files: dict[str, Path]) -> None:
    program = netx.to_program(files["pilotnet_sdnn_gts"], netx_sdnn.big_core(load("loihi2")))
    x = frames(program.ports[0].size, 12, seed=1)
    res = engine.run(program, {"input": x}, record=list(VARS))
    assert all(int((res.spikes[g.name] != 0).sum()) for g in program.groups)
    assert execute.states(program) == VARS
    assert not res.u and not res.v


@pytest.mark.parametrize("target", ["loihi1"])
def test_loihi1_is_refused_in_one_line(files: dict[str, Path], target: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = files["pilotnet_sdnn_square"]
    with pytest.raises(UnsupportedError, match="loihi1 has no graded spikes; use --target "
                                               "loihi2"):
        netx.compile_file(path, compiler.Options(target=target))
    with pytest.raises(UnsupportedError, match="loihi1 has no graded spikes"):
        netx.to_program(path, load(target))
    assert main(["compile", str(path), "--target", target, "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "loihi1 has no graded spikes; use --target loihi2" in err


def test_verify_runs_the_unmapped_program_where_compile_cannot_map(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A loihi2 whose cores take 40 input axons cannot hold a 64-input dense layer however
    it is split: compile refuses it, and verify's program is the unmapped one, said in one
    line (the same integers: equal to to_program's on the emulator)."""
    toml = load("loihi2").toml.replace('name = "loihi2"', 'name = "loihi2-narrow"', 1)
    toml = toml.replace("fan_in_axons_max = 4096 ", "fan_in_axons_max = 40 ", 1)
    target = tmp_path / "narrow.toml"
    target.write_text(toml)
    path = small(tmp_path / "small.net")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DesignRuleError, match="fan-in"):
            netx.compile_file(path, compiler.Options(target=str(target)))
        c = netx_compile.compile_for_verify(path, compiler.Options(target=str(target)))
    out = capsys.readouterr().out.strip()
    assert "\n" not in out and "fan-in" in out and "verifying the unmapped program" in out
    assert c.target.name == "loihi2-narrow-bigcore" and c.target.core.neurons_max == 131072
    unmapped = netx.to_program(path, netx_sdnn.big_core(load(target)))
    x = frames(108, 6, seed=5)
    a = engine.run(c.program, {"input": x}, record=list(VARS))
    b = engine.run(unmapped, {"input": x}, record=list(VARS))
    for g in unmapped.groups:
        assert np.array_equal(a.spikes[g.name], b.spikes[g.name]) and a.spikes[g.name].any()


def test_import_and_verify_against_the_float_reference_are_refused(
        files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(files["pilotnet_sdnn_square"])
    assert main(["import", path, "-o", str(tmp_path / "m.nir")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "layer 0" in err and "SDNN (sigma-delta)" in err
    np.save(tmp_path / "x.npy", frames(3267, 4, 0))
    assert main(["verify", path, "--data", str(tmp_path / "x.npy")]) == 2
    assert "NIR has no node for" in capsys.readouterr().err


# --------------------------------------------------------------------------- small files


def _write(path: Path, layers: list[dict]) -> Path:
    return write_net(path, layers, bytes_neuron_type=True)


def _sd(vth: int = 2, **extra: object) -> dict:
    return {"type": "SDNN", "activation": np.array([b"relu"]), "vThMant": vth, **extra}


def small(path: Path, **change: object) -> Path:
    """input (3, 6, 6) -> conv 4x3x3 (4, 4, 4) -> flatten -> dense 10 -> sigma_output 1."""
    rng = np.random.default_rng(3)
    layers = [
        {"type": "input", "shape": [3, 6, 6], "neuron": _sd(0)},
        {"type": "conv", "shape": [4, 4, 4], "weight": rng.integers(-60, 61, (4, 3, 3, 3)),
         "bias": rng.integers(-30, 31, 4).astype(float), "stride": [1, 1], "padding": [0, 0],
         "dilation": [1, 1], "groups": [1], "neuron": _sd(1)},
        {"type": "flatten", "shape": [64, 1, 1]},
        {"type": "dense", "shape": [10], "weight": rng.integers(-90, 91, (10, 64)),
         "bias": rng.integers(-20, 21, 10).astype(float), "neuron": _sd(3)},
        {"type": "dense", "shape": [1], "weight": rng.integers(-90, 91, (1, 10)),
         "neuron": _sd(0, sigma_output=True)},
    ]
    for key, value in change.items():
        k, field = key.split("_", 1)
        target = layers[int(k[1:])]
        if field.startswith("neuron_"):
            target["neuron"][field[7:]] = value
        else:
            target[field] = value
    return _write(path, layers)


def test_a_small_sdnn_file_compiles_for_loihi2_and_runs_as_unmapped(tmp_path: Path) -> None:
    """compile (ranges, map, emit) keeps the integers: the compiled program on the
    emulator equals to_program's, every payload and state variable, every step."""
    path = small(tmp_path / "small.net")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        c = netx.compile_file(path, compiler.Options(target="loihi2"))
    assert c.passes == ("ranges", "map", "emit") and c.target.name == "loihi2"
    assert not [w for w in caught if "range analysis" in str(w.message)]   # no u, v bounds
    assert set(c.report["ranges"]) == {"layer0", "layer1", "layer3", "layer4"} and all(
        "graded" in r for r in c.report["ranges"].values())
    unmapped = netx.to_program(path, load("loihi2"))
    x = frames(108, 10, seed=4)
    a = engine.run(c.program, {"input": x}, record=list(VARS))
    b = engine.run(unmapped, {"input": x}, record=list(VARS))
    compared = 0
    for g in unmapped.groups:
        for var in ("spikes", *kernels.STATE_VARS[g.model]):
            assert np.array_equal(getattr(a, var)[g.name], getattr(b, var)[g.name]), (g, var)
            compared += 1
    assert compared == 1 + 3 + 1 + 4 + 1 + 4 + 1 + 1
    assert all(int((b.spikes[g.name] != 0).sum()) for g in unmapped.groups)
    out = tmp_path / "out"
    assert main(["compile", str(path), "--target", "loihi2", "-o", str(out)]) == 0
    assert (out / "program.h5").is_file()


def test_quantised_nir_of_an_sdnn_file_is_not_recompiled(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    """OUT/quantised.nir holds the sigma-delta layers under marked IF stand-ins; compiling
    it would treat them as IF neurons, so it is refused in one line."""
    out = tmp_path / "out"
    assert main(["compile", str(small(tmp_path / "s.net")), "--target", "loihi2", "-o",
                 str(out)]) == 0
    capsys.readouterr()
    assert main(["compile", str(out / "quantised.nir"), "--target", "loihi2", "-o",
                 str(tmp_path / "again")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "stands in for a netx SDNN" in err


@pytest.mark.parametrize("change, match", [
    ({"L1_neuron_type": "CUBA"}, "layer 1 .* has CUBA neurons in an SDNN network"),
    ({"L3_neuron_vThMant": 4096}, "layer 3 .* vThMant 4096, .* exceeds the 24-bit state"),
    ({"L1_bias": np.full(4, 3000.0)}, r"layer 1 .* \|bias\| 3000"),
    ({"L3_neuron_vThMant": -1}, "layer 3 .*vThMant.* -1"),
    ({"L3_neuron_messageBits": 40}, "layer 3 .* messageBits 40"),
    ({"L3_delay": np.ones(10)}, "layer 3 .* delays on SDNN neurons"),
    ({"L4_bias": np.ones(1)}, "layer 4 .* bias on a sigma_output layer"),
    ({"L0_neuron_type": "CUBA"}, "layer 0 .* has CUBA neurons in an SDNN network"),
])
def test_what_cannot_be_represented_is_refused(tmp_path: Path, change: dict,
                                               match: str) -> None:
    for k in (0, 1):
        if change.get(f"L{k}_neuron_type") == "CUBA":
            change = {**change, f"L{k}_neuron_iDecay": 4096, f"L{k}_neuron_vDecay": 0}
    path = small(tmp_path / "bad.net", **change)
    with pytest.raises(Snn2hwError, match=match) as err:      # netx_check or netx_sdnn
        netx.to_program(path, load("loihi2"))
    assert "\n" not in str(err.value)


def test_netx_running_another_model_is_refused() -> None:
    netx_run.check_models(["PyDeltaModelFixed", "PySigmaDeltaModelFixed"],
                           ["delta", "sigma_delta"])
    with pytest.raises(DeviceError, match="PySigmaDeltaModelFixedCorrected for block 1"):
        netx_run.check_models(["PyDeltaModelFixed", "PySigmaDeltaModelFixedCorrected"],
                               ["delta", "sigma_delta"])


def _by_population(program, result, var: str) -> dict[str, np.ndarray]:
    """Each population's (B, T, n) values of ``var`` in NIR order, from its groups."""
    from snn2hw.backends.image import io_map

    out = {}
    for pop, info in io_map(program).populations.items():
        parts = [getattr(result, var)[g] for g in info.groups if g in getattr(result, var)]
        if parts:
            arr = np.concatenate(parts, axis=2)
            ordered = np.empty_like(arr)
            ordered[:, :, np.asarray(info.index)] = arr
            out[pop] = ordered
    return out


@pytest.mark.parametrize("name", ["pilotnet_sdnn_square", "pilotnet_sdnn_gts"])
def test_pilotnet_sdnn_compiles_for_loihi2_and_runs_as_the_unmapped_program(
        files: dict[str, Path], name: str) -> None:
    """compile_integer maps PilotNet SDNN onto loihi2's cores (convolutions that do not fit
    a core unrolled to exact sparse blocks, graded message bits kept): the compiled program
    on the emulator equals the unmapped to_program's, every payload and state variable of
    every layer, every step (12 steps: the gts net's last layer is reached at step 10)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = netx.compile_file(files[name], compiler.Options(target="loihi2"))
    unmapped = netx.to_program(files[name], netx_sdnn.big_core(load("loihi2")))
    assert c.target.name == "loihi2" and c.report["cores"] > len(unmapped.groups)  # split
    x = frames(unmapped.ports[0].size, 12, seed=2)
    a = engine.run(c.program, {"input": x}, record=list(VARS))
    b = engine.run(unmapped, {"input": x}, record=list(VARS))
    compared = 0
    for var in VARS:
        mine, want = _by_population(c.program, a, var), _by_population(unmapped, b, var)
        assert set(mine) == set(want) and want, var
        for pop in want:
            assert np.array_equal(mine[pop], want[pop]), (pop, var)
            compared += 1
    assert compared == sum(1 + len(kernels.STATE_VARS[g.model]) for g in unmapped.groups)
    assert all((b.spikes[g.name] != 0).any() for g in unmapped.groups)


def test_the_netx_device_reads_each_compiled_group_from_its_own_positions(
        files: dict[str, Path]) -> None:
    """netx's arrays are whole layers in Lava's (x, y, c) order, which the unmapped
    program's groups hold; each group of the compiled (split) program is given
    ``netx_run.columns`` of them, checked here with the unmapped program's emulator run
    standing for netx's (tests/test_lava_sdnn_netx.py checks that one against netx)."""
    path = files["pilotnet_sdnn_square"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = netx.compile_file(path, compiler.Options(target="loihi2"))
    unmapped = netx.to_program(path, netx_sdnn.big_core(load("loihi2")))
    x = frames(unmapped.ports[0].size, 8, seed=6)
    a = engine.run(c.program, {"input": x}, record=list(VARS))
    b = engine.run(unmapped, {"input": x}, record=list(VARS))
    cols = netx_run.columns(c.program)
    assert set(cols) == {g.name for g in c.program.groups} and len(cols) > len(unmapped.groups)
    for g in c.program.groups:
        k, where = cols[g.name]
        layer = unmapped.groups[k].name
        for var in ("spikes", *kernels.STATE_VARS[g.model]):
            assert np.array_equal(getattr(a, var)[g.name], getattr(b, var)[layer][:, :, where])
