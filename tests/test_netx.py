"""lava-dl netx .net export and import: round trips through the file are bit-exact."""

from __future__ import annotations

import warnings
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest
from snn2hw_emulator import engine
from test_compiler import exact_graph, spikes_in

from snn2hw import checker, compiler, ir
from snn2hw.backends import lava, netx
from snn2hw.cli import main
from snn2hw.compare import first_divergence
from snn2hw.errors import DesignRuleError, UnsupportedError
from snn2hw.targets import load

ALL = ("spikes", "u", "v")


def _netx_graph(seed: int, conv: bool) -> ir.Graph:
    """Mixed-sign, bias-free network (netx has no initial voltages for early biases)."""
    rng = np.random.default_rng(seed)
    g = exact_graph(rng, 6, 12, 4, recurrent=False, conv=conv)
    nodes = dict(g.nodes)
    nodes["fc1"] = nir.Affine(np.asarray(nodes["fc1"].weight) - 8, np.zeros(12))
    nodes["fc2"] = nir.Linear(np.asarray(nodes["fc2"].weight) - 10)
    if conv:
        c = nodes["conv"]
        nodes["conv"] = nir.Conv2d(input_shape=c.input_shape, weight=np.asarray(c.weight) - 5,
                                   stride=c.stride, padding=c.padding, dilation=c.dilation,
                                   groups=c.groups, bias=np.zeros(3))
    return checker.from_nir(nir.NIRGraph(nodes, list(g.edges), type_check=False),
                            metadata={"dt": 1e-4})


def _compiled(seed: int, conv: bool) -> compiler.Compiled:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return compiler.compile(_netx_graph(seed, conv), compiler.Options(
            target="loihi2", netx=True, allow_saturation=True))


def _inputs(c: compiler.Compiled, seed: int) -> np.ndarray:
    x = spikes_in(np.random.default_rng(seed), c.graph, 2, 20).reshape(2, 20, -1)
    return x[:, :, np.asarray(c.net.layouts["input"])].astype(np.int64)


def _same(a, b, groups_a, groups_b) -> None:
    spikes = 0
    for ga, gb in zip(groups_a, groups_b):
        for var in ALL:
            np.testing.assert_array_equal(getattr(a, var)[ga], getattr(b, var)[gb],
                                          err_msg=f"{var} {ga}/{gb}")
        spikes += int(a.spikes[ga].sum())
    assert spikes > 0


@pytest.mark.parametrize("conv", [False, True], ids=["dense", "conv-flatten-dense"])
def test_export_then_netx_rules_rebuild_the_same_program(tmp_path: Path, conv: bool) -> None:
    c = _compiled(1, conv)
    path = tmp_path / "net.net"
    netx.export(c.program, path)
    rebuilt = netx.to_program(path, load("loihi2"))
    x = _inputs(c, 2)
    _same(engine.run(c.program, x, record=ALL), engine.run(rebuilt, x, record=ALL),
          [g.name for g in c.program.groups], [g.name for g in rebuilt.groups])


def test_file_follows_the_documented_layout(tmp_path: Path) -> None:
    path = tmp_path / "net.net"
    netx.export(_compiled(3, True).program, path)
    with h5py.File(path, "r") as f:
        kinds = [f["layer"][str(k)]["type"][0] for k in range(len(f["layer"]))]
        assert kinds == [b"input", b"conv", b"flatten", b"dense", b"dense"]
        assert f["layer/0/type"].dtype == np.dtype("S10")
        assert list(f["layer/0/shape"][()]) == [2, 5, 5]              # (C, H, W)
        assert list(f["layer/1/shape"][()]) == [3, 5, 5]
        assert f["layer/1/weight"].shape == (3, 2, 3, 3)              # torch layout
        for k in (1, 3, 4):
            w = f[f"layer/{k}/weight"][()]
            assert np.array_equal(w, np.round(w))                     # integers only
            neuron = f[f"layer/{k}/neuron"]
            assert neuron["type"][()] == b"CUBA" and "messageBits" not in neuron
            assert neuron["iDecay"][()] == 4096 and neuron["vDecay"][()] == 0


def test_netx_file_imports_into_a_graph_that_compiles_to_the_same_behaviour(
        tmp_path: Path) -> None:
    c = _compiled(4, True)
    path = tmp_path / "net.net"
    netx.export(c.program, path)
    graph = netx.to_graph(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = compiler.compile(graph, compiler.Options(target="loihi2",
                                                         allow_saturation=True))
    x = _inputs(c, 5)
    a = engine.run(c.program, x, record=("spikes",))
    b = engine.run(again.program, x, record=("spikes",))
    for ga, gb in zip(c.program.groups, again.program.groups):
        np.testing.assert_array_equal(a.spikes[ga.name], b.spikes[gb.name])


def test_what_netx_cannot_hold_is_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    recurrent = compiler.compile(exact_graph(rng, 6, 8, 3, recurrent=True, conv=False))
    with pytest.raises(DesignRuleError, match="cannot export to netx"):
        netx.export(recurrent.program, tmp_path / "r.net")
    wide = _compiled(1, False)                     # fine; the same net without --netx is not
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        big = compiler.compile(_netx_graph(1, False), compiler.Options(allow_saturation=True))
    netx.export(wide.program, tmp_path / "ok.net")
    with pytest.raises(DesignRuleError, match="beyond what netx keeps exactly"):
        netx.export(big.program, tmp_path / "big.net")
    assert not (tmp_path / "big.net").exists()


def test_cli_compile_netx_and_import(tmp_path: Path) -> None:
    from snn2hw import nirio

    model = tmp_path / "m.nir"
    nirio.write(_netx_graph(6, False), model)
    out = tmp_path / "out"
    assert main(["compile", str(model), "--netx", "--allow-saturation", "-o", str(out)]) == 0
    assert main(["import", str(out / "network.net"), "-o", str(tmp_path / "back.nir")]) == 0
    assert main(["inspect", str(out / "network.net")]) == 0
    assert "IF" in {type(n).__name__ for n in nirio.read(tmp_path / "back.nir").nodes.values()}


@pytest.mark.lava
@pytest.mark.slow
def test_netx_rebuilt_program_on_lava_equals_the_original_on_the_emulator(
        tmp_path: Path) -> None:
    c = _compiled(7, True)
    path = tmp_path / "net.net"
    netx.export(c.program, path)
    rebuilt = netx.to_program(path, load("loihi2"))
    x = _inputs(c, 8)
    got = lava.run(rebuilt, x, record=ALL)
    _same(engine.run(c.program, x, record=ALL), got, [g.name for g in c.program.groups],
          [g.name for g in rebuilt.groups])
    assert first_divergence(engine.run(rebuilt, x, record=ALL), got) is None



@pytest.mark.lava
@pytest.mark.slow
@pytest.mark.parametrize("conv", [False, True], ids=["dense", "conv-flatten-dense"])
def test_exported_file_runs_in_netx_itself_exactly_as_on_the_emulator(
        tmp_path: Path, conv: bool) -> None:
    """lava-dl's own hdf5.Network builds and runs our file: every u, v and spike equal."""
    from snn2hw.backends.image import io_map

    c = _compiled(9, conv)
    path = tmp_path / "net.net"
    netx.export(c.program, path)
    x = _inputs(c, 10)
    got = netx.run_netx(path, x)
    want = engine.run(c.program, x, record=ALL)
    pops = io_map(c.program).populations
    spikes = 0
    for k, g in enumerate(c.program.groups):      # a dense layer's netx neuron perm[i]
        perm = next(np.asarray(p.index) for p in pops.values() if p.groups == (g.name,))
        order = perm if len(g.shape) == 1 else np.arange(g.size)   # is group neuron i
        for var in ALL:
            np.testing.assert_array_equal(got[var][k][:, :, order], getattr(want, var)[g.name],
                                          err_msg=f"{var} of layer {k} ('{g.name}')")
        spikes += int(want.spikes[g.name].sum())
    assert spikes > 0


@pytest.mark.lava
@pytest.mark.slow
def test_slayer_exported_network_is_read_as_netx_runs_it(tmp_path: Path) -> None:
    """A file written by slayer's export_hdf5 (no input layer, conv first): our reading of
    it on the emulator equals netx on Lava in every variable; its NIR import compiles."""
    import subprocess

    from snn2hw import lava_env

    path = tmp_path / "slayer.net"
    script = Path(__file__).with_name("slayer_export.py")
    subprocess.run([str(lava_env.netx_interpreter()), str(script), str(path), "3"],
                   check=True, capture_output=True)
    program = netx.to_program(path, load("loihi2"))
    assert [g.shape for g in program.groups] == [(6, 6, 4), (16,), (5,)]
    x = (np.random.default_rng(4).random((2, 30, 72)) < 0.3).astype(np.int64)
    got = netx.run_netx(path, x, input_shape=(6, 6, 2))
    want = engine.run(program, x, record=ALL)
    for k, g in enumerate(program.groups):
        for var in ALL:
            np.testing.assert_array_equal(got[var][k], getattr(want, var)[g.name],
                                          err_msg=f"{var} of layer {k}")
    assert all(want.spikes[g.name].sum() > 0 for g in program.groups)
    graph = netx.to_graph(path)                  # input shape inferred: (2, 6, 6)
    assert tuple(graph.nodes["input"].output_type["output"]) == (2, 6, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = compiler.compile(graph, compiler.Options(target="loihi2",
                                                         allow_saturation=True))
    nir_x = x.reshape(2, 30, 6, 6, 2).transpose(0, 1, 4, 3, 2).reshape(2, 30, -1)
    ours = engine.run(again.program, nir_x[:, :, np.asarray(again.net.layouts["input"])])
    first = program.groups[0].name, again.program.groups[0].name
    # requantised at the compiler's own scale: nearly, not exactly, the same spikes
    assert (ours.spikes[first[1]] == want.spikes[first[0]]).mean() > 0.98


def _hand_net(path: Path, stride: int, neuron: str, message_bits: int = 0) -> Path:
    """A one-conv .net file without an input layer, as slayer writes them."""
    with h5py.File(path, "w") as f:
        h = f.create_group("layer/0")
        h.create_dataset("type", (1,), "S10", [b"conv"])
        h.create_dataset("shape", data=np.array([2, 4, 4]))
        h.create_dataset("weight", data=np.ones((2, 1, 3, 3), dtype=np.float32))
        for key, value in (("stride", stride), ("padding", 1), ("dilation", 1)):
            h.create_dataset(key, data=np.array([value, value]))
        n = h.create_group("neuron")
        n.create_dataset("type", data=neuron)
        for key, value in (("iDecay", 4096), ("vDecay", 0), ("vThMant", 10)):
            n.create_dataset(key, data=value)
        if message_bits:
            n.create_dataset("messageBits", data=message_bits)
    return path


def test_files_without_input_layer_infer_it_or_say_what_is_missing(tmp_path: Path) -> None:
    graph = netx.to_graph(_hand_net(tmp_path / "a.net", 1, "CUBA"))
    assert tuple(graph.nodes["input"].output_type["output"]) == (1, 4, 4)
    with pytest.raises(UnsupportedError, match="does not fix the input size"):
        netx.to_graph(_hand_net(tmp_path / "b.net", 2, "CUBA"))
    strided = netx.to_graph(tmp_path / "b.net", input_shape=(1, 8, 8))
    assert tuple(strided.nodes["input"].output_type["output"]) == (1, 8, 8)
    assert netx.read(_hand_net(tmp_path / "c.net", 1, "SDNN"))[0]["neuron"]["type"] == "SDNN"
    with pytest.raises(UnsupportedError, match=r"SDNN \(sigma-delta\) neurons"):
        netx.to_graph(tmp_path / "c.net")                # NIR has no sigma-delta node
    with pytest.raises(UnsupportedError, match=r"CUBA neurons with graded spikes"):
        netx.read(_hand_net(tmp_path / "d.net", 1, "CUBA", message_bits=8))
    assert main(["import", str(tmp_path / "c.net"), "-o", str(tmp_path / "c.nir")]) == 2
    assert not (tmp_path / "c.nir").exists()


@pytest.mark.lava
def test_a_file_netx_cannot_build_is_a_one_line_error_naming_it(tmp_path: Path) -> None:
    from snn2hw.errors import LavaEnvironmentError

    path = tmp_path / "pool.net"
    with h5py.File(path, "w") as f:
        f.create_dataset("layer/0/type", (1,), "S10", [b"input"])
        f.create_dataset("layer/0/shape", data=np.array([1, 4, 4]))
        f.create_dataset("layer/1/type", (1,), "S10", [b"pool"])
    with pytest.raises(LavaEnvironmentError) as err:
        netx.run_netx(path, np.zeros((1, 3, 16), dtype=np.int8))
    assert "the netx run of" in str(err.value) and "pool.net" in str(err.value)
    assert "pool is not implemented" in str(err.value)


def test_missing_lava_dl_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from snn2hw import lava_env
    from snn2hw.errors import LavaEnvironmentError

    monkeypatch.setattr(lava_env, "interpreter", lambda: Path(sys.executable))  # no lava-dl
    assert not lava_env.has_netx(sys.executable)
    with pytest.raises(LavaEnvironmentError, match="lava install --netx"):
        netx.run_netx("any.net", np.zeros((1, 2, 3)))
