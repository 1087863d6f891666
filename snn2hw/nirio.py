"""Read and write `.nir` files with errors that name the file, the node and the key."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import nir
import numpy as np

from snn2hw import conventions, params, primitives
from snn2hw.errors import GraphError, ModelFileError, Snn2hwError, UnsupportedError
from snn2hw.files import atomic_write
from snn2hw.ir import Graph, to_nir
from snn2hw.shapes import infer_shapes

_NODE_TYPES = {t.__name__ for t in (*primitives.KNOWN, nir.NIRGraph)}


def _type_of(group: h5py.Group, where: str, path: Path) -> str:
    if "type" not in group:
        raise ModelFileError(f"file '{path}': node '{where}' has no 'type' dataset",
                             node=where, hint="The file is damaged; export the model again.")
    raw = group["type"][()]
    return (raw.decode("utf8", "replace") if isinstance(raw, bytes) else str(raw))


#: Subgraphs nested deeper than this are refused (nir reads them recursively).
MAX_DEPTH = 32
#: Values one dataset may hold, checked from its header before it is read (as for .pt2).
MAX_VALUES = 2**28


def _fields(group: h5py.Group, where: str, path: Path) -> dict[str, object]:
    """A primitive's datasets, sizes checked from their headers before reading."""
    fields: dict[str, object] = {}
    for key, item in group.items():
        if key in ("type", "metadata") or not isinstance(item, h5py.Dataset):
            continue
        if item.size is not None and item.size > MAX_VALUES:
            raise ModelFileError(f"file '{path}': node '{where}' has a '{key}' of shape "
                                 f"{list(item.shape)} ({item.size:.3g} values, more than "
                                 f"{MAX_VALUES})", node=where,
                                 hint="The file is damaged or not a trained network.")
        value = item[()]
        fields[key] = value.decode("utf8", "replace") if isinstance(value, bytes) else value
    return fields


def _scan(group: h5py.Group, where: str, path: Path, depth: int = 0) -> None:
    """Walk the node tree first, so an unknown or broken node is named precisely, and check
    each primitive's parameters before nir builds it (nir asserts on some)."""
    kind = _type_of(group, where, path)
    if kind not in _NODE_TYPES:
        raise UnsupportedError(f"file '{path}': node '{where}' has unknown type '{kind}'",
                               node=where, hint="snn2hw reads the NIR 1.0 primitives: "
                               + ", ".join(sorted(_NODE_TYPES)))
    if kind != "NIRGraph":
        try:
            params.check_fields(kind, _fields(group, where, path), where)
        except GraphError as exc:
            raise exc.with_context(f"file '{path}'") from None
        return
    if depth > MAX_DEPTH:
        raise UnsupportedError(f"file '{path}': subgraphs are nested more than {MAX_DEPTH} "
                               f"deep (under '{where.split('.')[0]}')",
                               hint="Flatten the subgraphs when exporting.")
    for key in ("nodes", "edges"):
        if key not in group:
            raise ModelFileError(f"file '{path}': graph '{where}' has no '{key}'",
                                 node=where, hint="The file is damaged; export it again.")
    for name, child in group["nodes"].items():
        _scan(child, f"{where}.{name}" if where else name, path, depth + 1)


def _open_checked(path: Path) -> None:
    if not path.is_file():
        raise ModelFileError(f"file '{path}' does not exist",
                             hint="Check the path; export a model with nir.write().")
    if not h5py.is_hdf5(path):
        raise ModelFileError(f"file '{path}' is not an HDF5 file, so not a NIR graph",
                             hint="NIR graphs are written with nir.write(path, graph).")
    try:
        with h5py.File(path, "r") as f:
            if "node" not in f:
                raise ModelFileError(f"file '{path}' has no 'node' group: it is HDF5 but not "
                                     "a NIR graph", hint="Export the model with nir.write().")
            _scan(f["node"], "", path)
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:  # h5py: all four
        raise ModelFileError(f"file '{path}' is damaged or truncated ({exc})",
                             hint="Export the model again.") from None


def read(path: str | Path) -> Graph:
    """Read a `.nir` file into a validated, flattened Graph."""
    path = Path(path)
    _open_checked(path)
    try:
        raw = nir.read(path, type_check=False)
    except (OSError, KeyError, ValueError, TypeError, AttributeError, IndexError,
            AssertionError, ArithmeticError, RuntimeError) as exc:  # Recursion, NotImplemented
        raise ModelFileError(f"file '{path}' could not be decoded as NIR "
                             f"({type(exc).__name__}: {exc})",
                             hint="A parameter is missing or malformed; export it again.") from None
    try:
        return conventions.from_exporter(raw)      # Norse/Sinabs conventions, with warnings
    except (GraphError, UnsupportedError) as exc:
        raise exc.with_context(f"file '{path}'") from None


def _metadata_value(key: str, value: Any) -> Any:
    if value is None:
        raise GraphError(f"metadata '{key}' is None, which NIR files cannot store",
                         hint="Remove the key or give it a value.")
    if isinstance(value, Mapping):
        return {str(k): _metadata_value(f"{key}.{k}", v) for k, v in value.items()}
    if isinstance(value, (str, bool, int, float, np.ndarray, np.generic)):
        return value
    if isinstance(value, (list, tuple)):
        return np.asarray(value)
    raise GraphError(f"metadata '{key}' has type {type(value).__name__}, which NIR files "
                     "cannot store", hint="Use str, numbers, bools, arrays or dicts.")


def _with_conv_sizes(graph: Graph) -> dict[str, nir.NIRNode]:
    """nir.write cannot store Conv input_shape=None: fill it from shape inference."""
    shapes = infer_shapes(graph)
    nodes = dict(graph.nodes)
    for name, node in nodes.items():
        if isinstance(node, (nir.Conv1d, nir.Conv2d)) and node.input_shape is None:
            spatial = shapes[name][0][1:]
            size = spatial[0] if isinstance(node, nir.Conv1d) else np.array(spatial)
            nodes[name] = dataclasses.replace(node, input_shape=size)
    return nodes


def write(graph: Graph, path: str | Path) -> None:
    """Write atomically: a temporary file in the same folder, then os.replace."""
    meta = {k: _metadata_value(k, v) for k, v in graph.metadata.items()}
    out = to_nir(graph.replace(nodes=_with_conv_sizes(graph), metadata=meta))
    atomic_write(path, lambda tmp: nir.write(tmp, out), what="model")


__all__ = ["Snn2hwError", "read", "write"]
