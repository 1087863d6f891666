"""Read a ``torch.export`` archive (``.pt2``) as data: JSON and raw tensor bytes, no pickle.

``torch.export.load`` unpickles parts of an archive (its sample inputs, legacy weight
files, weights flagged ``use_pickle``, ``opaque_obj_``/``custom_obj_`` constants), loads
AOTInductor shared libraries and evaluates symbolic shape expressions: opening a crafted
archive with it runs code. This reader imports neither torch nor pickle. It reads, from
the archive root (the folder of the zip's first entry, as torch's reader does):

* ``archive_format`` (must be ``pt2``), ``archive_version`` (``0``), ``byteorder``;
* ``models/model.json``: the serialized ExportedProgram (torch's export schema, major
  version 8), parsed with :func:`json.loads` only;
* ``data/weights/model_weights_config.json`` and
  ``data/constants/model_constants_config.json``, and the raw tensor storages they name
  (``weight_N``, ``tensor_N``), laid out with their dtype, sizes, strides and offset.

Everything else is never opened: ``data/sample_inputs/`` (a pickle), ``data/aotinductor/``,
``extra/``. An archive whose weights or constants need pickle (``use_pickle``, a legacy
``data/weights/model.pt`` or ``data/constants/model.pt``, a custom or opaque object) is
refused with the reason, before any tensor is read.
"""

from __future__ import annotations

import json
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from snn2hw.errors import ModelFileError, Snn2hwError

SCHEMA_MAJOR = 8                     # torch's export schema (torch 2.6 - 2.13 write 8.x)
ARCHIVE_VERSION = "0"
MAX_JSON_BYTES = 128 << 20           # a model.json beyond this is not a small ANN
MAX_TENSOR_BYTES = 1 << 30           # per storage file
MAX_TENSOR_ELEMENTS = 1 << 27        # per tensor, after striding (stride 0 repeats)
MAX_TOTAL_ELEMENTS = 1 << 28         # all tensors together (2 GiB as float64)
#: how to turn a PyTorch model into a file snn2hw reads (not a pickle: files.sniff refuses)
EXPORT_HINT = ("Save it with torch.export.save(torch.export.export(model.eval(), (example,)), "
               "'model.pt2'), or export ONNX with torch.onnx.export(..., dynamo=False).")
RESAVE = ("Save it again with torch.export.save(torch.export.export(model.eval(), "
          "(example,)), 'model.pt2') from a plain nn.Module with tensor weights.")

# torch's ScalarType codes (torch/_export/serde/schema.py) -> numpy dtypes; bfloat16 is
# read as its upper 16 bits of a float32. Complex and float8 types are refused.
_DTYPES = {1: "u1", 2: "i1", 3: "i2", 4: "i4", 5: "i8", 6: "f2", 7: "f4", 8: "f8",
           12: "?", 13: "bf16", 28: "u2", 34: "u4", 35: "u8"}
_STRIDED = 7                         # schema.Layout.Strided
# What a broken zip or JSON raises in zipfile/zlib/json/our own walk over its dicts.
BROKEN = (OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError,
          RuntimeError, ValueError, KeyError, TypeError, IndexError, AttributeError,
          struct.error, OverflowError, ZeroDivisionError)


@dataclass(frozen=True)
class Archive:
    """What snn2hw takes from a ``.pt2``: the graph JSON and the tensors it names."""

    graph: dict[str, Any]               # graph_module.graph: nodes, tensor_values, ...
    tensors: dict[str, np.ndarray]      # graph input name (p_0_weight) -> float64 array
    user_inputs: list[str]              # graph input names fed by the caller


def read(source: str | Path | IO[bytes], label: str) -> Archive:
    """Read an archive from a path or a binary buffer; errors name ``label``."""
    try:
        with zipfile.ZipFile(source) as z:
            return _Reader(z, label).archive()
    except Snn2hwError:
        raise
    except BROKEN as exc:
        raise broken(label, exc) from None


def broken(label: str, exc: BaseException) -> ModelFileError:
    return ModelFileError(f"'{label}' is not a readable torch.export archive "
                          f"({type(exc).__name__}: {' '.join(str(exc).split())[:160]})",
                          hint=RESAVE)


class _Reader:
    def __init__(self, z: zipfile.ZipFile, label: str) -> None:
        self.z, self.label = z, label
        first = z.infolist()[0].filename if z.infolist() else ""
        self.root = first.split("/")[0] + "/" if "/" in first else ""
        self.cache: dict[str, bytes] = {}
        self.elements = 0

    def refuse(self, what: str, hint: str = RESAVE) -> ModelFileError:
        return ModelFileError(f"'{self.label}' {what}", hint=hint)

    def has(self, name: str) -> bool:
        try:
            self.z.getinfo(self.root + name)
            return True
        except KeyError:
            return False

    def entry(self, name: str, limit: int) -> bytes:
        try:
            info = self.z.getinfo(self.root + name)
        except KeyError:
            raise self.refuse(f"has no '{name}' entry; it is not a torch.export archive "
                              "(or was cut short)") from None
        if info.file_size > limit:
            raise self.refuse(f"entry '{name}' holds {info.file_size} bytes, more than the "
                              f"{limit} snn2hw reads", hint="Convert a smaller network.")
        return self.z.read(info)

    def json(self, name: str) -> Any:
        return json.loads(self.entry(name, MAX_JSON_BYTES).decode("utf-8"))

    def archive(self) -> Archive:
        if self.entry("archive_format", 64).decode().strip() != "pt2":
            raise self.refuse("is a zip file but not a torch.export archive (archive_format "
                              "is not 'pt2')")
        version = self.entry("archive_version", 64).decode().strip()
        if version != ARCHIVE_VERSION:
            raise self.refuse(f"has archive version {version!r}; snn2hw reads version "
                              f"{ARCHIVE_VERSION} (torch.export.save of torch 2.6 to 2.13)")
        order = self.entry("byteorder", 64).decode().strip() if self.has("byteorder") \
            else "little"
        if order not in ("little", "big"):
            raise self.refuse(f"names byte order {order!r} (not 'little' or 'big')")
        for legacy in ("data/weights/model.pt", "data/constants/model.pt"):
            if self.has(legacy):
                raise self.refuse(f"keeps its weights in '{legacy}', a pickle (the legacy "
                                  "archive layout); snn2hw does not unpickle model files")
        program = self.json("models/model.json")
        major = program["schema_version"]["major"]
        if major != SCHEMA_MAJOR:
            raise self.refuse(f"uses export schema version {major}; snn2hw reads version "
                              f"{SCHEMA_MAJOR} (torch 2.6 to 2.13)")
        stored = self.payloads("data/weights/", "data/weights/model_weights_config.json",
                               order)
        stored.update(self.payloads("data/constants/",
                                    "data/constants/model_constants_config.json", order))
        gm = program["graph_module"]
        tensors, users = self.inputs(gm["signature"]["input_specs"], stored)
        return Archive(gm["graph"], tensors, users)

    def payloads(self, folder: str, config: str, order: str) -> dict[str, np.ndarray]:
        """Every tensor a payload config lists (fqn -> array); pickled payloads refused."""
        entries = self.json(config)["config"]
        for fqn, meta in entries.items():                 # refuse before reading any
            path = str(meta["path_name"])
            if meta["use_pickle"] or not path.startswith(("weight_", "tensor_")):
                raise self.refuse(f"stores '{fqn}' as a pickled Python object ('{folder}"
                                  f"{path}'); snn2hw does not unpickle model files")
        return {fqn: self.tensor(folder + meta["path_name"], fqn, meta["tensor_meta"], order)
                for fqn, meta in entries.items()}

    def tensor(self, name: str, fqn: str, meta: dict[str, Any], order: str) -> np.ndarray:
        code = meta["dtype"]
        if code not in _DTYPES:
            raise self.refuse(f"stores '{fqn}' with torch dtype code {code}, which snn2hw "
                              "does not read (complex or float8)", hint="Save float weights.")
        if meta.get("layout", _STRIDED) != _STRIDED:
            raise self.refuse(f"stores '{fqn}' in a sparse or MKL-DNN layout",
                              hint="Save dense weights (tensor.to_dense()).")
        sizes = [self.integer(s, fqn) for s in meta["sizes"]]
        strides = [self.integer(s, fqn) for s in meta["strides"]]
        offset = self.integer(meta["storage_offset"], fqn)
        if len(strides) != len(sizes) or min(sizes + strides + [offset]) < 0:
            raise self.refuse(f"gives '{fqn}' sizes {sizes}, strides {strides} and offset "
                              f"{offset}, which do not describe a tensor")
        count = int(np.prod(sizes, dtype=object))
        self.elements += count
        if count > MAX_TENSOR_ELEMENTS or self.elements > MAX_TOTAL_ELEMENTS:
            raise self.refuse(f"gives '{fqn}' {count} elements ({self.elements} so far), "
                              f"more than the {MAX_TENSOR_ELEMENTS} per tensor or "
                              f"{MAX_TOTAL_ELEMENTS} in all snn2hw reads",
                              hint="Convert a smaller network.")
        if name not in self.cache:
            self.cache[name] = self.entry(name, MAX_TENSOR_BYTES)
        return self.strided(self.cache[name], _DTYPES[code], order, sizes, strides, offset,
                            fqn)

    def integer(self, value: dict[str, Any], fqn: str) -> int:
        number = value.get("as_int") if isinstance(value, dict) else None
        if not isinstance(number, int) or isinstance(number, bool):
            raise self.refuse(f"gives '{fqn}' a symbolic or non-integer size ({value})",
                              hint="Export with static shapes.")
        return number

    def strided(self, raw: bytes, code: str, order: str, sizes: list[int],
                strides: list[int], offset: int, fqn: str) -> np.ndarray:
        if not raw or 0 in sizes:                  # torch stores empty and fake tensors so
            return np.zeros(sizes)
        end = "<" if order == "little" else ">"
        dtype = np.dtype(end + ("u2" if code == "bf16" else code))
        if len(raw) % dtype.itemsize:
            raise self.refuse(f"stores '{fqn}' in {len(raw)} bytes, not a whole number of "
                              f"{dtype.itemsize}-byte elements")
        flat = np.frombuffer(raw, dtype=dtype)
        last = offset + sum((n - 1) * s for n, s in zip(sizes, strides))
        if last >= len(flat):
            raise self.refuse(f"gives '{fqn}' a layout reaching element {last} of a "
                              f"{len(flat)}-element storage")
        if code == "bf16":
            flat = (flat.astype(np.uint32) << 16).view(np.float32)
        view = np.lib.stride_tricks.as_strided(flat[offset:], shape=sizes,
                                               strides=[s * flat.itemsize for s in strides])
        out = np.array(view, dtype=np.float64)
        if not np.isfinite(out).all():
            raise self.refuse(f"has NaN or infinite values in '{fqn}'",
                              hint="Check the trained weights.")
        return out

    def inputs(self, specs: list[dict[str, Any]], stored: dict[str, np.ndarray]
               ) -> tuple[dict[str, np.ndarray], list[str]]:
        """Graph input name -> stored tensor; the user inputs' names."""
        tensors: dict[str, np.ndarray] = {}
        users: list[str] = []
        fields = {"parameter": "parameter_name", "buffer": "buffer_name",
                  "tensor_constant": "tensor_constant_name"}
        for spec in specs:
            (kind, body), = spec.items()
            if kind == "user_input":
                users.append(body["arg"]["as_tensor"]["name"] if "as_tensor" in body["arg"]
                             else repr(body["arg"]))
            elif kind == "custom_obj":
                raise self.refuse(f"takes a custom object '{body['custom_obj_name']}' (a "
                                  "pickle); snn2hw does not unpickle model files")
            elif kind in fields:
                fqn = body[fields[kind]]
                if fqn not in stored:
                    raise self.refuse(f"names {kind} '{fqn}' but does not store it")
                tensors[body["arg"]["name"]] = stored[fqn]
        return tensors, users


__all__ = ["BROKEN", "EXPORT_HINT", "MAX_TENSOR_ELEMENTS", "Archive", "broken", "read"]
