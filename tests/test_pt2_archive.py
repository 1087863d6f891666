"""torch.export archives (.pt2) are read as data: crafted archives run no code.

Each crafted archive plants, at one of the places where ``torch.export.load`` unpickles,
a payload whose unpickling creates a marker file. The test first shows that torch's own
loader does run it (so the payload is live), then that snn2hw's ``inspect`` and ``import``
never create the marker, and either refuse the archive with one line (exit 2) or read it
without touching the planted entry (the sample inputs).
"""

from __future__ import annotations

import contextlib
import json
import pickle
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from snn2hw.cli import main
from snn2hw.errors import ModelFileError, UnsupportedError
from snn2hw.importers import pt2_archive
from snn2hw.importers.torch_export import from_exported


class _Payload:
    """Unpickling this creates ``marker`` (stands for any code an attacker would run)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


def _torch_pickle(marker: Path) -> bytes:
    path = marker.with_suffix(".payload")
    torch.save(_Payload(marker), str(path))
    return path.read_bytes()


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2),
                              torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(2 * 4 * 4, 3)).eval()
    path = tmp_path_factory.mktemp("pt2") / "base.pt2"
    torch.export.save(torch.export.export(net, (torch.zeros(1, 1, 6, 6),)), str(path))
    return path


def _entries(path: Path) -> tuple[str, dict[str, bytes]]:
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        return names[0].split("/")[0] + "/", {n: z.read(n) for n in names}


def _write(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return path


def _sample_inputs(root: str, entries: dict[str, bytes], marker: Path) -> None:
    entries[root + "data/sample_inputs/model.pt"] = _torch_pickle(marker)


def _legacy_weights(root: str, entries: dict[str, bytes], marker: Path) -> None:
    entries[root + "data/weights/model.pt"] = _torch_pickle(marker)


def _use_pickle_weight(root: str, entries: dict[str, bytes], marker: Path) -> None:
    name = root + "data/weights/model_weights_config.json"
    config = json.loads(entries[name])
    meta = config["config"][next(iter(config["config"]))]       # the first weight
    meta["use_pickle"] = True
    entries[name] = json.dumps(config).encode()
    entries[root + "data/weights/" + meta["path_name"]] = _torch_pickle(marker)


def _opaque_constant(root: str, entries: dict[str, bytes], marker: Path) -> None:
    name = root + "data/constants/model_constants_config.json"
    config = json.loads(entries[name])
    config["config"]["evil"] = {"path_name": "opaque_obj_0", "is_param": False,
                                "use_pickle": True, "tensor_meta": None}
    entries[name] = json.dumps(config).encode()
    entries[root + "data/constants/opaque_obj_0"] = pickle.dumps(_Payload(marker))


CRAFTED = {"sample-inputs": _sample_inputs, "legacy-weights": _legacy_weights,
           "use-pickle-weight": _use_pickle_weight, "opaque-constant": _opaque_constant}
REFUSAL = {"legacy-weights": "data/weights/model.pt", "use-pickle-weight": "0.weight",
           "opaque-constant": "evil"}


def _crafted(base: Path, tmp_path: Path, kind: str) -> tuple[Path, Path]:
    marker = tmp_path / f"{kind}.marker"
    root, entries = _entries(base)
    CRAFTED[kind](root, entries, marker)
    return _write(tmp_path / f"{kind}.pt2", entries), marker


@pytest.mark.parametrize("kind", sorted(CRAFTED))
def test_torch_export_load_runs_the_planted_payload(base: Path, tmp_path: Path,
                                                    kind: str) -> None:
    """The payloads are live: torch's own loader executes each of them."""
    path, marker = _crafted(base, tmp_path, kind)
    # torch then fails on the payload's return value (AssertionError, SpecViolationError)
    # or loads the archive (opaque constant); either way the payload has already run.
    with contextlib.suppress(Exception):
        torch.export.load(str(path))
    assert marker.exists(), f"torch.export.load did not run the {kind} payload"


@pytest.mark.parametrize("kind", sorted(CRAFTED))
def test_snn2hw_never_runs_the_planted_payload(base: Path, tmp_path: Path, kind: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path, marker = _crafted(base, tmp_path, kind)
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((8, 1, 6, 6)))
    out = tmp_path / "m.nir"
    for argv in (["inspect", str(path)],
                 ["import", str(path), "--calibrate", str(tmp_path / "x.npy"), "-o", str(out)]):
        code = main(argv)
        captured = capsys.readouterr()
        assert not marker.exists(), f"snn2hw {argv[0]} ran the {kind} payload"
        assert "Traceback" not in captured.err
        if kind == "sample-inputs":                   # never opened: the model reads fine
            assert code == 0 and captured.err == ""
        else:
            assert code == 2 and captured.err.count("\n") == 1
            assert REFUSAL[kind] in captured.err and "pickle" in captured.err
    assert out.exists() == (kind == "sample-inputs")


def test_crafted_archive_reads_the_same_model_as_the_original(base: Path,
                                                             tmp_path: Path) -> None:
    path, _ = _crafted(base, tmp_path, "sample-inputs")
    a, b = from_exported(base), from_exported(path)
    assert [layer.name for layer in a.layers] == [layer.name for layer in b.layers]
    for la, lb in zip(a.layers, b.layers):
        assert (la.weight is None and lb.weight is None) or np.array_equal(la.weight, lb.weight)


def _edit_config(base: Path, tmp_path: Path, edit) -> Path:
    root, entries = _entries(base)
    name = root + "data/weights/model_weights_config.json"
    config = json.loads(entries[name])
    edit(config["config"]["4.weight"])
    entries[name] = json.dumps(config).encode()
    return _write(tmp_path / "edited.pt2", entries)


@pytest.mark.parametrize("edit, message", [
    (lambda m: m.update(path_name="custom_obj_0"), "pickled Python object"),
    (lambda m: m["tensor_meta"].update(dtype=10), "dtype code 10"),
    (lambda m: m["tensor_meta"].update(layout=1), "sparse"),
    (lambda m: m["tensor_meta"]["sizes"].__setitem__(0, {"as_expr": {"expr_str": "s0"}}),
     "symbolic"),
    (lambda m: m["tensor_meta"].update(storage_offset={"as_int": 10 ** 6}), "reaching element"),
    (lambda m: m["tensor_meta"].update(sizes=[{"as_int": 10 ** 9}] * 2,
                                       strides=[{"as_int": 0}] * 2), "more than the"),
    (lambda m: m.pop("tensor_meta"), "not a readable torch.export archive"),
])
def test_malformed_payload_configs_are_one_line_errors(base: Path, tmp_path: Path, edit,
                                                       message: str) -> None:
    with pytest.raises(ModelFileError, match=message) as err:
        from_exported(_edit_config(base, tmp_path, edit))
    assert "\n" not in str(err.value)


def test_nan_weights_version_and_truncation_are_refused(base: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    root, entries = _entries(base)
    config = json.loads(entries[root + "data/weights/model_weights_config.json"])
    weight = root + "data/weights/" + config["config"]["4.weight"]["path_name"]
    bad = dict(entries)
    bad[weight] = np.full(len(entries[weight]) // 4, np.nan, np.float32).tobytes()
    with pytest.raises(ModelFileError, match="NaN"):
        from_exported(_write(tmp_path / "nan.pt2", bad))
    bad = dict(entries)
    bad[root + "archive_version"] = b"7"
    with pytest.raises(ModelFileError, match="archive version '7'"):
        from_exported(_write(tmp_path / "v7.pt2", bad))
    data = base.read_bytes()
    for k, cut in enumerate((len(data) // 2, len(data) - 30)):
        broken = tmp_path / f"cut{k}.pt2"
        broken.write_bytes(data[:cut])
        assert main(["inspect", str(broken)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err


def test_reader_does_not_import_torch(base: Path) -> None:
    import subprocess

    code = ("import sys; from snn2hw.importers.torch_export import from_exported; "
            f"from_exported({str(base)!r}); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False" and out.stderr == ""
    assert pt2_archive.read(base, "b").user_inputs == ["input"]


def test_missing_entry_is_one_line_without_torch_logging(base: Path, tmp_path: Path) -> None:
    """torch.export.load logged its own traceback for a missing record before failing;
    snn2hw prints one line (checked in a subprocess: torch's log handler writes to the
    stderr it saw at import, which capsys would not capture)."""
    import subprocess

    root, entries = _entries(base)
    del entries[root + "data/weights/weight_0"]
    path = _write(tmp_path / "missing.pt2", entries)
    proc = subprocess.run([sys.executable, "-m", "snn2hw.cli", "inspect", str(path)],
                          check=False, capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "data/weights/weight_0" in proc.stderr and "Traceback" not in proc.stderr


def test_layer_outputs_beyond_the_limit_are_refused_before_allocating(base: Path,
                                                                     tmp_path: Path) -> None:
    root, entries = _entries(base)
    name = root + "models/model.json"
    program = json.loads(entries[name])
    conv = next(n for n in program["graph_module"]["graph"]["nodes"] if "conv2d" in n["target"])
    conv["inputs"].append({"name": "padding", "arg": {"as_ints": [4000, 4000]}, "kind": 1})
    entries[name] = json.dumps(program).encode()
    with pytest.raises(UnsupportedError, match="values per sample, more than"):
        from_exported(_write(tmp_path / "padded.pt2", entries))
