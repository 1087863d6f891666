"""NIR files as snnTorch, Norse and Sinabs write them (snn2hw/conventions.py): read with a
warning naming each convention assumed, compiled for loihi2 and loihi1 with the default
range policy, and in agreement with the float reference per layer. The Norse and Sinabs
files are kept in tests/data/exporters (README there: how they were made)."""

from __future__ import annotations

import warnings
from pathlib import Path

import nir
import numpy as np
import pytest
import snntorch_models as sm

from snn2hw import compiler, nirio, reference, verify
from snn2hw.errors import GraphError

DATA = Path(__file__).parent / "data" / "exporters"


def _read(path: Path) -> tuple[object, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph = nirio.read(path)
    return graph, [str(w.message) for w in caught if "exporter convention" in str(w.message)]


def test_norse_export_reads_with_its_batch_dimension_and_tau_and_equals_norse() -> None:
    graph, notes = _read(DATA / "norse_lif_20_50_5.nir")
    assert any("batch dimension" in n and "[1, 20] -> [20]" in n for n in notes), notes
    assert any("norse#411" in n for n in notes), notes
    assert graph.metadata["dt"] == 1e-3
    want = np.load(DATA / "norse_lif_20_50_5_forward.npz")
    got = reference.simulate(graph, want["x"].astype(float), record=("spikes",)).spikes
    for layer in ("1", "3"):
        assert want[layer].sum() > 50
        assert int((got[layer] != want[layer]).sum()) == 0, layer


def test_sinabs_export_reads_tau_in_steps() -> None:
    graph, notes = _read(DATA / "sinabs_lif_20_40_5.nir")
    assert any("time steps" in n for n in notes) and any("scalar" in n for n in notes), notes
    assert graph.metadata["integrator"] == "exact"
    tau = float(np.ravel(graph.nodes["1"].tau)[0])
    assert tau == pytest.approx(10 * 1e-4)


def test_a_batch_dimension_that_is_not_one_is_still_an_error(tmp_path: Path) -> None:
    raw = nir.read(DATA / "norse_lif_20_50_5.nir", type_check=False)
    nodes = dict(raw.nodes)
    nodes["input"] = nir.Input(np.array([2, 20]))
    nir.write(tmp_path / "b.nir", nir.NIRGraph(nodes, list(raw.edges), type_check=False),
              compression=None)
    with pytest.raises(GraphError, match="shape"):
        nirio.read(tmp_path / "b.nir")


def test_snntorch_export_reads_without_conventions(tmp_path: Path) -> None:
    import torch
    from snntorch.export_nir import export_to_nir

    net = sm.make("leaky", "zero", n_in=20, n_hidden=30, n_out=5, seed=0)
    graph = export_to_nir(net, torch.zeros(1, 20, dtype=torch.float64), ignore_dims=[0])
    nir.write(tmp_path / "s.nir", graph)
    read, notes = _read(tmp_path / "s.nir")
    assert notes == []
    assert "integrator" not in read.metadata


@pytest.mark.parametrize("target", ["loihi2", "loihi1"])
@pytest.mark.parametrize("name", ["norse_lif_20_50_5", "sinabs_lif_20_40_5"])
def test_exports_compile_with_the_default_range_policy_and_agree(name: str, target: str
                                                                 ) -> None:
    graph, _ = _read(DATA / f"{name}.nir")
    x = (np.random.default_rng(0).random((16, 100, 20)) < 0.2).astype(np.int8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = compiler.compile(graph, compiler.Options(target=target))
    rep, _ = verify.verify(graph, c.program, x)
    layers = {l.population: l for l in rep.layers}
    assert set(layers) == {"1", "3"}
    for layer in layers.values():
        assert layer.spikes_reference > 150, layer
        assert layer.identical_fraction >= 0.98, layer
