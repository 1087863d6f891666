"""netx ``.net`` files with one field changed by HDF5 surgery (backends/netx_check.py):
``inspect`` and ``compile`` exit 2 with one line naming the layer and field, no
traceback, nothing written. Two published lava-dl files are the starting points: tiny.net
(input neurons + two conv layers, 5-D weights) and oxford.net (two dense layers, no
input layer)."""

from __future__ import annotations

import gzip
import random
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
from fuzzing import inspect_damaged
from test_fuzz import SEED, _refused

from snn2hw.backends import netx_read

DATA = Path(__file__).parent / "data" / "netx"
Edit = Callable[[h5py.File], None]


def _put(layer: str, key: str, data: object) -> Edit:
    def edit(f: h5py.File) -> None:
        h = f["layer"][layer]
        if key in h:
            del h[key]
        h.create_dataset(key, data=data)
    return edit


def _drop(layer: str, key: str) -> Edit:
    return lambda f: f["layer"][layer].__delitem__(key)


def _scale(layer: str, key: str, fn: Callable[[np.ndarray], np.ndarray]) -> Edit:
    def edit(f: h5py.File) -> None:
        data = fn(f["layer"][layer][key][()])
        _put(layer, key, data)(f)
    return edit


def _huge(f: h5py.File) -> None:
    del f["layer/0/weight"]
    f["layer/0"].create_dataset("weight", shape=(10**5, 10**5), dtype=np.float32,
                                chunks=(64, 64), compression="gzip")


#: case -> (file, edit, what the one line must name)
CASES: dict[str, tuple[str, Edit, str]] = {
    "missing-layer-index": ("oxford", lambda f: f["layer"].move("1", "7"), "no layer 1"),
    "conv-no-neuron": ("tiny", _drop("1", "neuron"), "neuron"),
    "conv-no-stride": ("tiny", _drop("1", "stride"), "stride"),
    "conv-no-dilation": ("tiny", _drop("2", "dilation"), "dilation"),
    "conv-padding-negative": ("tiny", _put("1", "padding", np.array([-5, -5])), "padding"),
    "conv-stride-zero": ("tiny", _put("1", "stride", np.array([0, 0])), "stride"),
    "conv-dilation-zero": ("tiny", _put("1", "dilation", np.array([0, 0])), "dilation"),
    "conv-groups-zero": ("tiny", _put("1", "groups", 0), "groups"),
    "conv-groups-5": ("tiny", _put("1", "groups", 5), "groups"),
    "conv-stride-1000": ("tiny", _put("1", "stride", np.array([1000, 1000])), "stride"),
    "conv-channels": ("tiny", _scale("2", "weight", lambda w: w[:, :12]), "input channels"),
    "bias-length": ("oxford", _put("0", "bias", np.zeros(5)), "biases"),
    "bias-nan": ("oxford", _put("0", "bias", np.full(256, np.nan)), "NaN"),
    "shape-zero": ("oxford", _put("0", "shape", np.array([0])), "shape"),
    "shape-1e10": ("oxford", _put("0", "shape", np.array([1e10])), "shape"),
    "shape-string": ("oxford", _put("0", "shape", np.array([b"256"])), "shape"),
    "transposed": ("oxford", _scale("0", "weight", lambda w: w.T), "transposed"),
    "inputs-mismatch": ("oxford", _scale("1", "weight", lambda w: w[:, :100]), "transposed"),
    "weight-nan": ("oxford", _scale("0", "weight", lambda w: np.where(w > 0, np.nan, w)),
                   "NaN"),
    "weight-inf": ("oxford", _scale("1", "weight", lambda w: np.where(w > 0, np.inf, w)),
                   "infinite"),
    "weight-1e30": ("oxford", _scale("0", "weight", lambda w: w * 1e30), "weight"),
    "weight-fraction": ("oxford", _scale("0", "weight", lambda w: w + 0.5), "non-integer"),
    "weight-string": ("oxford", _put("0", "weight", np.array([b"x"] * 4)), "weight"),
    "weight-huge": ("oxford", _huge, "weight"),
    "vth-negative": ("oxford", _put("0/neuron", "vThMant", np.array([-5])), "vThMant"),
    "vth-2-40": ("oxford", _put("0/neuron", "vThMant", np.array([2.0**40])), "vThMant"),
    "vth-half": ("oxford", _put("1/neuron", "vThMant", np.array([0.5])), "vThMant"),
    "vth-cuba-18-bit": ("tiny", _put("1/neuron", "vThMant", np.array([2**18])), "vThMant"),
    "idecay-5000": ("oxford", _put("0/neuron", "iDecay", np.array([5000])), "iDecay"),
    "vdecay-negative": ("tiny", _put("0/neuron", "vDecay", np.array([-1])), "vDecay"),
    "no-type": ("oxford", _drop("1", "type"), "type"),
    "type-number": ("oxford", _put("1", "type", np.array([3])), "type"),
    "delay-nan": ("oxford", _put("0", "delay", np.full(256, np.nan)), "delay"),
    "weight-empty": ("tiny", _put("1", "weight", np.zeros(0)), "empty"),
    "groups-empty": ("tiny", _put("2", "groups", np.zeros(0)), "empty"),
    "neuron-type-empty": ("tiny", _put("2/neuron", "type", np.zeros(0)), "neuron/type"),
    "dense-weight-one-value": ("oxford", _put("0", "weight", np.array([0.0])), "flat"),
    "neuron-dataset": ("oxford", lambda f: (_drop("0", "neuron")(f),
                                            _put("0", "neuron", 1)(f)), "neuron"),
}


@pytest.fixture(scope="module")
def nets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("fuzz-netx")
    out = {}
    for name in ("tiny", "oxford"):
        out[name] = d / f"{name}.net"
        out[name].write_bytes(gzip.decompress((DATA / f"{name}.net.gz").read_bytes()))
        netx_read.read(out[name])                # the unedited files are read
    return out


def test_netx_field_surgery_is_refused(nets: dict[str, Path], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    names = sorted(CASES)
    random.Random(SEED).shuffle(names)
    for name in names:
        src, edit, word = CASES[name]
        bad = tmp_path / f"{name}.net"
        bad.write_bytes(nets[src].read_bytes())
        with h5py.File(bad, "r+") as f:
            edit(f)
        for argv in (["inspect", bad], ["compile", bad, "-o", tmp_path / "out"]):
            err = _refused(argv, tmp_path, capsys)
            assert word in err and bad.name in err, (name, err)
        bad.unlink()


def test_damaged_net_files_are_one_line_errors(nets: dict[str, Path], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Flipped bytes and truncations (seeded): read, or refused in one line; never a
    traceback (h5py's own KeyError/OSError on a corrupt object header included)."""
    files = {name: nets[name].read_bytes() for name in ("tiny", "oxford")}
    refused = inspect_damaged(lambda k: files["tiny" if k % 2 else "oxford"], 16, seed=SEED,
                              every=4, flips=10, folder=tmp_path, suffix=".net",
                              capsys=capsys)
    assert refused >= 4                                # every truncation at least
