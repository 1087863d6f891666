"""A graph that compile annotated (OUT/quantised.nir) compiles again to the same integers."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from snn2hw_emulator import engine, image
from test_netx import _inputs, _netx_graph

from snn2hw import compiler, nirio
from snn2hw.cli import main
from snn2hw.compare import first_divergence


@pytest.mark.parametrize("conv", [False, True], ids=["dense", "conv"])
def test_quantised_nir_keeps_its_integers(tmp_path: Path, conv: bool) -> None:
    nirio.write(_netx_graph(2, conv), tmp_path / "m.nir")
    first, again = tmp_path / "a", tmp_path / "b"
    assert main(["compile", str(tmp_path / "m.nir"), "--allow-saturation", "-o",
                 str(first)]) == 0
    assert main(["compile", str(first / "quantised.nir"), "--allow-saturation", "-o",
                 str(again)]) == 0
    a, b = image.load(first / "program.h5"), image.load(again / "program.h5")
    assert [(g.name, g.vth, g.du, g.dv) for g in a.groups] == \
        [(g.name, g.vth, g.du, g.dv) for g in b.groups]
    for ga, gb in zip(a.groups, b.groups, strict=True):
        assert np.array_equal(ga.bias_mant, gb.bias_mant) and np.array_equal(ga.v0, gb.v0)
    assert [(x.name, x.weight_exp) for x in a.blocks] == [(x.name, x.weight_exp) for x in b.blocks]
    assert all(np.array_equal(x.weights, y.weights)
               for x, y in zip(a.blocks, b.blocks, strict=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = compiler.compile(_netx_graph(2, conv), compiler.Options(allow_saturation=True))
    x = _inputs(c, 4)
    record = ("spikes", "u", "v")
    assert first_divergence(engine.run(a, {"input": x}, record=record),
                            engine.run(b, {"input": x}, record=record)) is None
    assert "ranges -> map -> emit" in (again / "summary.txt").read_text()


def test_annotations_for_another_target_are_requantised(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = compiler.compile(_netx_graph(3, False), compiler.Options(allow_saturation=True))
    nirio.write(c.graph, tmp_path / "q.nir")
    with pytest.warns(UserWarning, match="integers are for target 'loihi2'; requantising"):
        other = compiler.compile(nirio.read(tmp_path / "q.nir"),
                                 compiler.Options(target="loihi1", allow_saturation=True))
    assert other.passes[0] == "canonicalise"
