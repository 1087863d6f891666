import io
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest

# Test helpers (tests/nirgraphs.py, tests/programs.py) import as top-level modules.
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "examples"))

# Before any test module imports torch: pin its CPU kernels so that the tests that train
# get the same weights on every machine of this kind (examples/reproducible.py).
import reproducible  # noqa: F401


@pytest.fixture(scope="session")
def digits_out(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The digits example, fully trained once per session: (output folder, its stdout)."""
    import digits_snn

    out = tmp_path_factory.mktemp("digits")
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert digits_snn.main(["--out", str(out)]) == 0
    return out, buf.getvalue()


class DigitsAnns:
    """The digits example's ANNs (examples/digits_ann.py), each trained on first use, once
    per session (training is reproducible: examples/reproducible.py), as ONNX files."""

    def __init__(self, folder: Path) -> None:
        import digits_ann

        self.folder, self.digits, self._paths = folder, digits_ann.data(), {}

    def path(self, name: str) -> Path:
        import digits_ann

        if name not in self._paths:
            net = {"mlp": digits_ann.mlp, "cnn": digits_ann.cnn}[name]()
            digits_ann.train(net, self.digits.x_train, self.digits.y_train)
            digits_ann.export(net, self.folder / f"{name}.onnx")
            self._paths[name] = self.folder / f"{name}.onnx"
        return self._paths[name]


@pytest.fixture(scope="session")
def digits_anns(tmp_path_factory: pytest.TempPathFactory) -> DigitsAnns:
    return DigitsAnns(tmp_path_factory.mktemp("digits_anns"))
