"""Malformed .nir files: every case exits 2 with one line naming the node, the problem and
the fix; no traceback (nir's own AssertionError/OverflowError/RecursionError included), and
nothing written.

Each case is one HDF5 edit of a valid file (conv, CubaLIF, sum pooling, Affine, LIF,
Linear, LI), so that it differs from a working model in one thing.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest
from fuzzing import inspect_damaged
from test_fuzz import SEED, _refused

from snn2hw import checker, ir, nirio
from snn2hw.cli import main
from snn2hw.errors import GraphError


def _valid(rng: np.random.Generator) -> ir.Graph:
    def ones(*shape: int) -> np.ndarray:
        return np.ones(shape)

    nodes = {
        "input": nir.Input(np.array([1, 6, 6])),
        "conv": nir.Conv2d(input_shape=np.array([6, 6]), weight=rng.random((2, 1, 3, 3)),
                           stride=np.array([1, 1]), padding=np.array([1, 1]),
                           dilation=np.array([1, 1]), groups=1, bias=np.zeros(2)),
        "c1": nir.CubaLIF(tau_syn=2e-3 * ones(2, 6, 6), tau_mem=4e-3 * ones(2, 6, 6),
                          r=ones(2, 6, 6), v_leak=0 * ones(2, 6, 6), v_threshold=ones(2, 6, 6),
                          v_reset=0 * ones(2, 6, 6), w_in=ones(2, 6, 6)),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                              padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type={"input": np.array([2, 3, 3])}, start_dim=0),
        "fc": nir.Affine(rng.random((4, 18)), rng.random(4)),
        "lif": nir.LIF(tau=2e-3 * ones(4), r=ones(4), v_leak=0 * ones(4), v_threshold=ones(4),
                       v_reset=0 * ones(4)),
        "ro": nir.Linear(rng.random((3, 4))),
        "li": nir.LI(tau=5e-3 * ones(3), r=ones(3), v_leak=0 * ones(3)),
        "output": nir.Output(np.array([3])),
    }
    return checker.from_nir(nir.NIRGraph(nodes, list(itertools.pairwise(nodes)), type_check=False),
                            metadata={"dt": 1e-3})


# node, dataset, new value, what the error must say
CASES: dict[str, tuple[str, str, object, str]] = {
    "weight-0d": ("fc", "weight", np.float64(1.0), "Affine node 'fc': weight has shape []"),
    "weight-1d": ("fc", "weight", np.ones(18), "weight has shape [18] (1 dimension(s))"),
    "linear-1d": ("ro", "weight", np.ones(4), "Linear node 'ro': weight has shape [4]"),
    "conv-weight-3d": ("conv", "weight", np.ones((2, 1, 3)), "expected (out, in/groups, kh"),
    "tau-length": ("lif", "tau", np.full(5, 2e-3), "unequal shapes (tau [5], r [4]"),
    "r-length": ("lif", "r", np.ones(3), "LIF node 'lif': parameters have unequal shapes"),
    "conv-stride-0": ("conv", "stride", np.array([0, 0]), "stride [0, 0] must be whole"),
    "input-shape-3d": ("input", "shape", np.ones((2, 2, 2)), "input"),
    "conv-stride-neg": ("conv", "stride", np.array([-1, 1]), "stride [-1, 1]"),
    "conv-stride-frac": ("conv", "stride", np.array([1.5, 1.0]), "stride [1.5, 1.0]"),
    "conv-dilation-0": ("conv", "dilation", np.array([0, 0]), "dilation [0, 0]"),
    "conv-padding-neg": ("conv", "padding", np.array([-5, -5]), "padding [-5, -5]"),
    "conv-groups-0": ("conv", "groups", np.int64(0), "groups 0 must be"),
    "conv-groups-3": ("conv", "groups", np.int64(3), "groups 3 does not divide the 2"),
    "conv-bias-length": ("conv", "bias", np.zeros(3), "bias has shape [3] but the weight"),
    "bias-5-for-4": ("fc", "bias", np.ones(3), "Affine node 'fc': bias has shape [3]"),
    "weight-nan": ("fc", "weight", np.full((4, 18), np.nan), "'weight' has non-finite"),
    "weight-inf": ("fc", "weight", np.full((4, 18), -np.inf), "'weight' has non-finite"),
    "weight-huge": ("fc", "weight", np.full((4, 18), 1e30), "values up to 1e+30"),
    "weight-complex": ("fc", "weight", np.ones((4, 18)) + 1j, "dtype complex128"),
    "weight-string": ("fc", "weight", b"abc", "parameter 'weight' has dtype"),
    "bias-nan": ("fc", "bias", np.full(4, np.nan), "'bias' has non-finite"),
    "tau-0": ("lif", "tau", np.zeros(4), "LIF node 'lif': parameter 'tau' must be > 0"),
    "tau-neg": ("li", "tau", -np.ones(3), "LI node 'li': parameter 'tau' must be > 0"),
    "tau-syn-0": ("c1", "tau_syn", np.zeros((2, 6, 6)), "'tau_syn' must be > 0"),
    "tau-huge": ("li", "tau", np.full(3, 1e300), "'tau' has values up to 1e+300"),
    "threshold-0": ("lif", "v_threshold", np.zeros(4), "fires without input"),
    "threshold-neg": ("c1", "v_threshold", -np.ones((2, 6, 6)), "node 'c1': v_threshold -1"),
    "threshold-at-rest": ("lif", "v_leak", np.array([0.0, 1.0, 0.0, 0.0]),
                          "v_threshold 1 (neuron 1) is not above the resting potential 1"),
    "dt-fast": ("", "metadata/dt", b"fast", "metadata dt = 'fast' is not a positive number"),
    "dt-0": ("", "metadata/dt", np.float64(0.0), "dt = 0.0 is not a positive"),
    "dt-neg": ("", "metadata/dt", np.float64(-1e-3), "dt = -0.001"),
    "dt-nan": ("", "metadata/dt", np.float64(np.nan), "dt = nan"),
    "dt-array": ("", "metadata/dt", np.ones(3), "dt = an array [3]"),
    "pool-stride-0": ("pool", "stride", np.array([0, 0]), "SumPool2d node 'pool': stride"),
    "pool-kernel-0": ("pool", "kernel_size", np.array([0, 0]), "kernel_size [0, 0]"),
    "pool-padding-neg": ("pool", "padding", np.array([-3, -3]), "padding [-3, -3]"),
    "input-shape-0": ("input", "shape", np.array([0, 6, 6]), "Input node 'input': shape"),
    "input-shape-huge": ("input", "shape", np.array([1, 10**6, 10**6]), "values per sample"),
    "weight-dataset-huge": ("fc", "weight", "huge", "more than 268435456"),
}


def _edit(path: Path, node: str, key: str, value: object) -> None:
    with h5py.File(path, "r+") as f:
        group = f["node/nodes"][node] if node else f["node"]
        del group[key]
        if isinstance(value, str):              # a dataset announcing 2^30 values
            group.create_dataset(key, shape=(2**15, 2**15), dtype="f8", chunks=(64, 64),
                                 compression="gzip")
        else:
            group.create_dataset(key, data=value)


def _nested(path: Path, depth: int) -> None:
    with h5py.File(path, "r+") as f:
        group = f["node/nodes"]
        for k in range(depth):
            sub = group.create_group(f"g{k}")
            sub.create_dataset("type", data=b"NIRGraph")
            sub.create_dataset("edges", data=np.zeros((0, 2), dtype="S1"))
            group = sub.create_group("nodes")


@pytest.fixture(scope="module")
def valid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("nir") / "valid.nir"
    nirio.write(_valid(np.random.default_rng(SEED)), path)
    return path


def test_the_unedited_file_reads_and_compiles(valid: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(valid)]) == 0
    assert main(["compile", str(valid), "-o", str(tmp_path / "out"), "--allow-saturation"]) == 0
    capsys.readouterr()


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_nir_is_a_one_line_error(valid: Path, tmp_path: Path, case: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    node, key, value, expected = CASES[case]
    path = tmp_path / f"{case}.nir"
    shutil.copy(valid, path)
    _edit(path, node, key, value)
    for argv in (["inspect", path], ["compile", path, "-o", tmp_path / "out"],
                 ["verify", path, "--data", tmp_path / "x.npy"]):
        err = _refused(argv, tmp_path, capsys)
        assert expected in err and path.name in err, err


def test_deeply_nested_subgraphs_are_refused_before_nir_recurses(
        valid: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nested.nir"
    shutil.copy(valid, path)
    _nested(path, 600)
    err = _refused(["inspect", path], tmp_path, capsys)
    assert "nested more than 32 deep (under 'g0')" in err and len(err) < 300, err


def test_checks_do_not_rely_on_assert(valid: Path, tmp_path: Path) -> None:
    """Under python -O nir's asserts vanish; our checks still refuse a 1-D weight."""
    path = tmp_path / "weight-1d.nir"
    shutil.copy(valid, path)
    _edit(path, "fc", "weight", np.ones(18))
    proc = subprocess.run([sys.executable, "-O", "-m", "snn2hw.cli", "inspect", str(path)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "weight has shape [18]" in proc.stderr


def test_integer_and_bool_parameters_are_still_read(valid: Path, tmp_path: Path) -> None:
    for dtype in (np.int64, np.bool_):
        path = tmp_path / f"{dtype.__name__}.nir"
        shutil.copy(valid, path)
        _edit(path, "fc", "weight", np.ones((4, 18), dtype=dtype))
        assert np.array_equal(nirio.read(path).nodes["fc"].weight, np.ones((4, 18)))


def test_graphs_built_in_python_get_the_same_checks() -> None:
    g = _valid(np.random.default_rng(SEED))
    nodes = dict(g.nodes)
    bad = {"fc": nir.Affine(np.ones((4, 18)), np.ones(5)),
           "conv": nir.Conv2d(input_shape=None, weight=np.ones((2, 1, 3, 3)),
                              stride=np.array([0, 1]), padding=np.array([1, 1]),
                              dilation=np.array([1, 1]), groups=1, bias=np.zeros(2))}
    for name, node in bad.items():
        with pytest.raises(GraphError, match=f"node '{name}'"):
            checker.validate(g.replace(nodes={**nodes, name: node}))
    with pytest.raises(GraphError, match="dt = 'fast'"):
        checker.validate(g.replace(metadata={"dt": "fast"}))


def test_damaged_nir_files_are_one_line_errors(valid: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Flipped bytes and truncations (seeded): read, or refused in one line; h5py's
    RuntimeError on a corrupt local heap or link table included."""
    data = valid.read_bytes()
    refused = inspect_damaged(lambda k: data, 24, seed=SEED, every=4, flips=12,
                              folder=tmp_path, suffix=".nir", capsys=capsys)
    assert refused >= 6                                # every truncation at least
