"""Golden program images: what the compiler emits for the examples and for real models is
fixed, so that a refactor (target schema, IR levels, renamed passes) proves it changes
nothing.

Images fingerprinted (``tests/data/golden/images.json``):

* the digits SNN of ``examples/digits_compile.py`` (64-128-10 snnTorch Leaky, exported
  to NIR, written and read back), compiled as that example does: loihi2 and loihi1, 8-bit
  and 16 shared values. Its weights are seeded numpy draws of the trained network's size
  (training takes ~15 s and depends on the CPU's kernel path), so the model is the same
  on every run and machine;
* the hand-built program of ``examples/program_image.py``;
* lava-dl's ``tiny`` and ``oxford`` (CUBA) and ``pilotnet_sdnn_square`` (SDNN) ``.net``
  files from ``tests/data/netx``, compiled for loihi2 with their own integers.

Fingerprint: the sha256 of a canonical dump of the saved HDF5 file, every attribute and
every dataset (path, dtype, shape, bytes) in sorted order, not of the file's bytes. The
bytes are deterministic for one HDF5 library (saving twice gives the same file), but they
also encode the HDF5/h5py/zlib versions' layout and compression, which are not the
program. Two values are normalised, nothing else: in ``metadata['snn2hw.compile']`` the
``passes`` list and the ``snn2hw`` version (they name the pass list and the compiler, which
a refactor may rename), and in ``metadata['snn2hw.netx']`` the ``source`` path of the
``.net`` file (reduced to its file name: the absolute path is where the checkout lies).
A per-entry digest names the first entry that changed.

An *intended* change to the emitted images is regenerated with::

    .venv/bin/python tests/test_golden_images.py --write

and the diff of ``tests/data/golden/images.json`` goes into the commit that changes them.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).with_name("data") / "golden" / "images.json"
NETX = Path(__file__).with_name("data") / "netx"
DIGITS = (("loihi2", None), ("loihi1", None), ("loihi2", 16), ("loihi1", 16))
NETX_FILES = ("tiny", "oxford", "pilotnet_sdnn_square")
#: metadata JSON entries normalised before hashing (module docstring)
DROPPED = {"snn2hw.compile": ("passes", "snn2hw")}


# --------------------------------------------------------------------------- the models


def digits_graph(folder: Path) -> Any:
    """The digits example's network (examples/digits_snn.build) with seeded weights of the
    trained network's scale, exported by snnTorch, written as .nir and read back."""
    import digits_snn
    import torch

    from snn2hw import nirio
    from snn2hw.importers.snntorch import from_snntorch

    net = digits_snn.build()
    rng = np.random.default_rng(20240611)
    with torch.no_grad():
        for layer, scale in ((net[0], 0.35), (net[2], 0.3)):
            layer.weight.copy_(torch.from_numpy(rng.normal(0.02, scale, layer.weight.shape)))
            layer.bias.copy_(torch.from_numpy(rng.normal(0.0, 0.1, layer.bias.shape)))
    net.eval()
    sample = (rng.random((2, 64)) < 0.3).astype(np.float32)
    path = folder / "digits.nir"
    nirio.write(from_snntorch(net, torch.from_numpy(sample)), path)
    return nirio.read(path)


def _netx_file(name: str, folder: Path) -> Path:
    path = folder / f"{name}.net"
    with gzip.open(NETX / f"{name}.net.gz") as src, open(path, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return path


def programs(folder: Path) -> dict[str, Callable[[], Any]]:
    """Image name -> a function building its Program."""
    from snn2hw import compiler
    from snn2hw.backends import netx

    def digits(target: str, share: int | None) -> Callable[[], Any]:
        return lambda: compiler.compile(graph, compiler.Options(target=target,
                                                                share=share)).program

    def net(name: str) -> Callable[[], Any]:
        def build() -> Any:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")     # netx files' range notes
                return netx.compile_file(_netx_file(name, folder),
                                         compiler.Options(target="loihi2")).program
        return build

    import program_image

    graph = digits_graph(folder)
    out: dict[str, Callable[[], Any]] = {
        f"digits-{t}-{'8bit' if s is None else f'{s}shared'}": digits(t, s) for t, s in DIGITS}
    out["program_image"] = program_image.build
    out.update({f"netx-{name}": net(name) for name in NETX_FILES})
    return out


# --------------------------------------------------------------------------- fingerprints


def _value_bytes(name: str, value: Any) -> bytes:
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        if name in DROPPED or name == "snn2hw.netx":
            doc = json.loads(value)
            for key in DROPPED.get(name, ()):
                doc.pop(key, None)
            if name == "snn2hw.netx" and "source" in doc:
                doc["source"] = Path(doc["source"]).name
            value = json.dumps(doc, sort_keys=True)
        return b"str:" + value.encode()
    arr = np.asarray(value)
    if arr.dtype.kind == "O":                  # h5py string arrays
        return b"strs:" + "\x00".join(v.decode() if isinstance(v, bytes) else str(v)
                                      for v in arr.ravel()).encode()
    return f"{arr.dtype.str}{arr.shape}:".encode() + np.ascontiguousarray(arr).tobytes()


def _entry(obj: Any) -> bytes:
    """One HDF5 object: its attributes, then (a dataset) its data, then its members."""
    parts = [b"attrs"]
    for key in sorted(obj.attrs):
        parts += [key.encode(), _value_bytes(key, obj.attrs[key])]
    if isinstance(obj, h5py.Dataset):
        parts += [b"data", _value_bytes(obj.name, obj[()])]
    else:
        for key in sorted(obj):
            parts += [b"member", key.encode(), _entry(obj[key])]
    return b"\x01".join(parts)


def fingerprint(path: Path) -> dict[str, Any]:
    """{"sha256": digest of the whole canonical dump, "entries": {top-level entry or
    its member: first 16 hex digits of its digest}}."""
    entries: dict[str, str] = {}
    with h5py.File(path, "r") as f:
        whole = _entry(f)
        entries["/"] = hashlib.sha256(b"\x01".join(
            [k.encode() + _value_bytes(k, f.attrs[k]) for k in sorted(f.attrs)])).hexdigest()[:16]
        for key in sorted(f):
            obj = f[key]
            members = [key] if isinstance(obj, h5py.Dataset) or key == "metadata" else \
                [f"{key}/{m}" for m in sorted(obj)] or [key]
            for m in members:
                entries[m] = hashlib.sha256(_entry(f[m])).hexdigest()[:16]
    return {"sha256": hashlib.sha256(whole).hexdigest(), "entries": entries}


def compute(folder: Path) -> dict[str, Any]:
    from snn2hw_emulator import image

    out = {}
    for name, build in programs(folder).items():
        path = folder / f"{name}.h5"
        image.save(build(), path)
        out[name] = fingerprint(path)
    return out


# --------------------------------------------------------------------------- the test


@pytest.fixture(scope="module")
def current(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return compute(tmp_path_factory.mktemp("golden"))


def test_golden_file_covers_every_image(current: dict[str, Any]) -> None:
    stored = json.loads(GOLDEN.read_text())
    assert sorted(stored) == sorted(current)
    assert len(current) == len(DIGITS) + 1 + len(NETX_FILES)


@pytest.mark.parametrize("name", [f"digits-{t}-{'8bit' if s is None else f'{s}shared'}"
                                  for t, s in DIGITS] + ["program_image"] +
                         [f"netx-{n}" for n in NETX_FILES])
def test_emitted_image_is_unchanged(current: dict[str, Any], name: str) -> None:
    want = json.loads(GOLDEN.read_text())[name]
    got = current[name]
    changed = sorted(k for k in set(want["entries"]) | set(got["entries"])
                     if want["entries"].get(k) != got["entries"].get(k))
    assert got["sha256"] == want["sha256"], (
        f"{name}: {len(changed)} entr{'y' if len(changed) == 1 else 'ies'} changed, first "
        f"{changed[:5]}; if intended, regenerate (see this module's docstring)")
    assert not changed


def test_fingerprint_sees_a_changed_weight(tmp_path: Path) -> None:
    """Negative control: one weight changed by one changes the digest and names its block;
    the dropped pass list does not."""
    import program_image
    from snn2hw_emulator import image

    path = tmp_path / "p.h5"
    image.save(program_image.build(), path)
    before = fingerprint(path)
    with h5py.File(path, "r+") as f:
        w = f["blocks/w_in/weights"][()]
        w[0, 0] += 1
        del f["blocks/w_in/weights"]
        f["blocks/w_in"].create_dataset("weights", data=w)
    after = fingerprint(path)
    assert after["sha256"] != before["sha256"]
    assert [k for k in before["entries"] if before["entries"][k] != after["entries"][k]] == \
        ["blocks/w_in"]
    meta = json.dumps({"options": {"target": "loihi2"}, "passes": ["a"], "snn2hw": "1"})
    other = json.dumps({"options": {"target": "loihi2"}, "passes": ["b"], "snn2hw": "2"})
    assert _value_bytes("snn2hw.compile", meta) == _value_bytes("snn2hw.compile", other)
    assert _value_bytes("snn2hw.compile", meta) != _value_bytes(
        "snn2hw.compile", meta.replace("loihi2", "loihi1"))


def main(argv: list[str]) -> int:
    if argv != ["--write"]:
        print(__doc__)
        return 2
    import tempfile

    sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "examples")]
    import reproducible  # noqa: F401  (as conftest.py: torch's kernels pinned first)

    with tempfile.TemporaryDirectory() as tmp:
        data = compute(Path(tmp))
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN} ({len(data)} images)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
