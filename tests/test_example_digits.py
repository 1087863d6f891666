"""The digits example end to end (short training): snnTorch and reference agree."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from snn2hw import inspect as graph_inspect, nirio

sys.path.insert(0, str(Path(__file__).parents[1] / "examples"))


@pytest.mark.slow
def test_digits_example_agrees(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import digits_snn

    assert digits_snn.main(["--epochs", "2", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    torch_line = next(line for line in out.splitlines() if "snnTorch forward pass" in line)
    ref_line = next(line for line in out.splitlines() if "snn2hw reference" in line)
    assert torch_line.split(":")[1] == ref_line.split(":")[1]
    assert float(torch_line.split(":")[1].strip(" %")) > 50
    graph = nirio.read(tmp_path / "digits.nir")
    assert "LIF" in graph_inspect.graph_table(graph)
