"""Program images with valid checksums and one field changed by HDF5 surgery: every case
exits 2 with one line on stderr naming the entry, no traceback, nothing written.

Cases cover each dataset and attribute the reader converts (types, shapes, sizes), the
embedded target's entries (rehashed, so that only the value is wrong), conv geometry,
core and output references, links (soft, external, hard-link cycles) and a dataset too
large to read. Sparse blocks' own COO fields are fuzzed with the sparse reader's tests.
"""

from __future__ import annotations

import hashlib
import random
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
from fuzzing import inspect_damaged
from snn2hw_emulator import image
from test_compiler import exact_graph, spikes_in
from test_fuzz import SEED, _refused

from snn2hw import compiler


def _retarget(f: h5py.File, pattern: str, repl: str) -> None:
    """Edit the embedded target text and rehash it, so that only the value is wrong."""
    text = f["target_toml"][()].decode()
    new = re.sub(pattern, repl, text, count=1, flags=re.MULTILINE)
    assert new != text, pattern
    del f["target_toml"]
    f.create_dataset("target_toml", data=new)
    f.attrs["target_hash"] = hashlib.sha256(new.encode()).hexdigest()


def _first(f: h5py.File, kind: str, **attrs: object) -> h5py.Group:
    for h in f[kind].values():
        if all(h.attrs.get(k) == v for k, v in attrs.items()):
            return h
    raise AssertionError(f"no {kind} with {attrs}")


def _replace(h: h5py.Group, name: str, data: np.ndarray) -> None:
    del h[name]
    h.create_dataset(name, data=data)


def _set(kind: str, key: str, value: object, **where: object) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        _first(f, kind, **where).attrs[key] = value
    return edit


def _dataset(name: str, make: Callable[[np.ndarray], np.ndarray]
             ) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        h = _first(f, "groups")
        _replace(h, name, make(h[name][()]))
    return edit


def _target(pattern: str, repl: str) -> Callable[[h5py.File], None]:
    return lambda f: _retarget(f, pattern, repl)


def _links(f: h5py.File, kind: str, other: Path) -> None:
    h = _first(f, "groups")
    del h["v0"]
    if kind == "soft":
        h["v0"] = h5py.SoftLink(f"{h.name}/u0")
    elif kind == "external":
        h["v0"] = h5py.ExternalLink(str(other), "/data")
    else:                                      # a hard link back up: a cycle
        h["v0"] = h["u0"]
        h["loop"] = f["groups"]


def _huge(f: h5py.File) -> None:
    h = _first(f, "blocks")
    del h["weights"]
    h.create_dataset("weights", shape=(10**5, 10**5), dtype=np.int32, chunks=(64, 64),
                     compression="gzip")      # never written: a few bytes on disk


CASES: dict[str, Callable[[h5py.File], None]] = {
    "target-decay-bits-string": _target(r"^decay_bits = \d+", 'decay_bits = "12"'),
    "target-state-bits-huge": _target(r"^state_bits = \d+", "state_bits = 4000"),
    "target-cost-string": _target(r"^synop_time_ns = [\d.]+", 'synop_time_ns = "fast"'),
    "target-cost-negative": _target(r"^spike_energy_pj = [\d.]+", "spike_energy_pj = -1.0"),
    "target-estimated-string": _target(r"^estimated = \w+", 'estimated = "no"'),
    "target-mesh": _target(r"^mesh = .*$", "mesh = [8]"),
    "target-no-cost": _target(r"^\[cost\]", "[costs]"),
    "bias-bytes": _dataset("bias_mant", lambda a: np.array([b"x"] * a.size)),
    "bias-float": _dataset("bias_mant", lambda a: a.astype(np.float64) + 0.5),
    "v0-float": _dataset("v0", lambda a: a.astype(np.float32)),
    "u0-2d": _dataset("u0", lambda a: a.reshape(1, -1)),
    "group-size-float": _set("groups", "size", 6.9),
    "group-size-string": _set("groups", "size", "10"),
    "group-shape-negative": _set("groups", "shape", np.array([-2, -5])),
    "group-du-float": _set("groups", "du", 0.5),
    "group-model-int": _set("groups", "model", 3),
    "port-shape": _set("ports", "shape", np.array([2, 4])),   # size 6
    "port-size-zero": _set("ports", "size", 0),
    "port-message-bits-float": _set("ports", "message_bits", 1.5),
    "block-weight-exp-float": _set("blocks", "weight_exp", 0.25),
    "block-source-int": _set("blocks", "source", 7),
    "block-weights-float": lambda f: _replace(_first(f, "blocks"), "weights",
                                              _first(f, "blocks")["weights"][()] + 0.5),
    "block-weights-transposed": lambda f: _replace(_first(f, "blocks"), "weights",
                                                   _first(f, "blocks")["weights"][()].T),
    "block-weights-huge": _huge,
    "core-unknown-group": lambda f: f["cores"]["0"].attrs.__setitem__(
        "groups", ["nobody"]),
    "core-chip-float": lambda f: f["cores"]["0"].attrs.__setitem__("chip", 0.5),
    "core-index-beyond": lambda f: f["cores"].move("0", "999999"),
    "output-unknown-group": _set("outputs", "group", "nobody"),
    "metadata-array": lambda f: f["metadata"].attrs.__setitem__("x", np.arange(3)),
    "order-float": _set("groups", "order", 0.5),
    "soft-link": lambda f: _links(f, "soft", Path()),
    "hard-link-cycle": lambda f: _links(f, "hard", Path()),
}

#: What each case's one line must name.
NAMES = {"target-decay-bits-string": "decay_bits",
         "target-state-bits-huge": "state_bits",
         "target-cost-string": "synop_time_ns",
         "target-cost-negative": "spike_energy_pj",
         "target-estimated-string": "estimated",
         "target-mesh": "mesh",
         "target-no-cost": "cost",
         "bias-bytes": "bias_mant",
         "bias-float": "bias_mant",
         "v0-float": "v0",
         "u0-2d": "u0",
         "group-size-float": "size",
         "group-size-string": "size",
         "group-shape-negative": "shape",
         "group-du-float": "du",
         "group-model-int": "model",
         "port-shape": "shape",
         "port-size-zero": "size",
         "port-message-bits-float": "message_bits",
         "block-weight-exp-float": "weight_exp",
         "block-source-int": "source",
         "block-weights-float": "weights",
         "block-weights-transposed": "weights",
         "block-weights-huge": "weights",
         "core-unknown-group": "nobody",
         "core-chip-float": "chip",
         "core-index-beyond": "core",
         "output-unknown-group": "nobody",
         "metadata-array": "metadata",
         "order-float": "order",
         "soft-link": "soft link",
         "hard-link-cycle": "link"}

#: Conv geometry: (attribute, value); the conv program's first conv block.
CONV_CASES = {
    "stride-0": ("stride", np.array([0, 1])), "stride-1000": ("stride", np.array([1000, 1000])),
    "dilation-0": ("dilation", np.array([0, 0])), "groups-0": ("groups", np.int64(0)),
    "groups-minus-1": ("groups", np.int64(-1)), "groups-3": ("groups", np.int64(3)),
    "padding-minus-5": ("padding", np.array([-5, -5])), "padding-4": ("padding", np.array([4, 4])),
    "stride-scalar": ("stride", np.int64(2)), "groups-float": ("groups", 1.5),
}


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("fuzz-image")
    rng = np.random.default_rng(SEED)
    out = {"dir": d}
    for name, conv in (("dense", False), ("conv", True)):
        graph = exact_graph(rng, 6, 10, 4, recurrent=False, conv=conv)
        program = compiler.compile(graph, compiler.Options(target="loihi2")).program
        image.save(program, d / f"{name}.h5")
        x = spikes_in(rng, graph, 2, 6)
        np.save(d / f"{name}.npy", x.reshape(2, 6, -1))   # run takes (B, T, n)
        out[name], out[f"{name}-spikes"] = d / f"{name}.h5", d / f"{name}.npy"
    return out


def _surgery(src: Path, dst: Path, edit: Callable[[h5py.File], None]) -> Path:
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        edit(f)
    return dst


def _check(bad: Path, spikes: Path, folder: Path, capsys: pytest.CaptureFixture[str]) -> str:
    err = ""
    for argv in (["inspect", bad], ["run", bad, "--input", spikes, "--output",
                                    folder / "out.npz"]):
        err = _refused(argv, folder, capsys)
    return err


def test_valid_images_run(programs: dict[str, Path], tmp_path: Path) -> None:
    """The unedited images load and run: each case below differs in one field only."""
    from snn2hw.cli import main
    for name in ("dense", "conv"):
        prog = image.load(programs[name])
        assert any(b.kind == "conv" for b in prog.blocks) == (name == "conv")
        assert main(["run", str(programs[name]), "--input", str(programs[f"{name}-spikes"]),
                     "--output", str(tmp_path / f"{name}.npz"), "--quiet"]) == 0


def test_field_surgery_is_refused(programs: dict[str, Path], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["data"] = np.zeros(10, np.int32)
    cases = dict(CASES, **{"external-link": lambda f: _links(f, "external", other)})
    for name in sorted(cases, key=lambda _: random.Random(SEED).random()):
        bad = _surgery(programs["dense"], tmp_path / f"{name}.h5", cases[name])
        err = _check(bad, programs["dense-spikes"], tmp_path, capsys)
        bad.unlink()
        assert NAMES.get(name, "external link") in err, (name, err)


def test_conv_geometry_is_refused(programs: dict[str, Path], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    with h5py.File(programs["conv"], "r") as f:
        conv = next(n for n, h in f["blocks"].items() if h.attrs["kind"] == "conv")
    for name, (key, value) in sorted(CONV_CASES.items()):
        bad = _surgery(programs["conv"], tmp_path / f"conv-{name}.h5",
                       lambda f, k=key, v=value: f["blocks"][conv].attrs.__setitem__(k, v))
        err = _check(bad, programs["conv-spikes"], tmp_path, capsys)
        assert conv in err and key in err, err
        bad.unlink()


def test_damaged_program_images_are_one_line_errors(programs: dict[str, Path],
                                                    tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Flipped bytes and truncations (seeded): loaded, or refused in one line; h5py's
    RuntimeError on a corrupt local heap ('Link iteration failed') included."""
    data = programs["dense"].read_bytes()
    refused = inspect_damaged(lambda k: data, 24, seed=SEED, every=4, flips=12,
                              folder=tmp_path, suffix=".h5", capsys=capsys)
    assert refused >= 6                                # every truncation at least


def test_netx_metadata_that_compile_did_not_write(programs: dict[str, Path], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """`run --device netx` reads the program's netx metadata (JSON): bad JSON or missing
    keys are refused in one line before anything runs."""
    from snn2hw.backends.netx_blocks import META_KEY

    for k, text in enumerate(("{not json", "[1, 2]", '{"source": 3}')):
        bad = _surgery(programs["dense"], tmp_path / f"netx-meta{k}.h5",
                       lambda f, t=text: f["metadata"].attrs.__setitem__(META_KEY, t))
        err = _refused(["run", bad, "--input", programs["dense-spikes"], "--output",
                        tmp_path / "out.npz", "--device", "netx"], tmp_path, capsys)
        assert META_KEY in err or "lava" in err.lower(), err      # lava-dl missing: said so
        bad.unlink()
