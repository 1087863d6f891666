"""NIR files as other frameworks write them: known exporter conventions, read with a warning.

NIR leaves some choices to the exporter, and the exporters disagree
(specs/nir_semantics.md §1.3, §3.5). Each convention read here warns, saying what was
assumed:

* **A leading batch dimension of 1** in an Input or Output type (Norse 1.1 writes
  ``Input([1, 20])`` for 20 inputs): NIR types exclude the batch, so it is dropped where
  the graph only type-checks without it.
* **Scalar parameters** (Norse 1.1 and Sinabs 3.1 write 0-d tau, r, thresholds): broadcast
  to the layer.
* **tau conventions** of an exporter named by the graph's metadata (``source``,
  ``exporter`` or ``framework``: ``norse`` or ``sinabs``) or recognised by its fingerprint:
  - Norse 1.1 writes ``tau = dt * tau_mem`` (norse#411) with its dt (1e-3 unless
    metadata ``dt`` says otherwise); fingerprint: the batch dimension above, which only
    Norse writes, and a tau that is shorter than dt as written;
  - Sinabs 3.1 writes tau in time steps, with r = 1 and the exact (exponential) update;
    fingerprint: every LIF has r = 1 and tau >= 1 "second" (10^4 steps at dt = 1e-4, a
    time constant no other exporter writes).
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import nir
import numpy as np

from snn2hw.checker import from_nir
from snn2hw.errors import GraphError
from snn2hw.ir import Graph

NORSE_DT = 1e-3
DEFAULT_DT = 1e-4
_TAU_NODES = (nir.LIF, nir.LI, nir.CubaLIF, nir.CubaLI)
_NEURONS = (*_TAU_NODES, nir.IF, nir.I)


def _named_source(meta: dict[str, Any]) -> str | None:
    for key in ("source", "exporter", "framework"):
        value = str(meta.get(key, "")).lower()
        for name in ("norse", "sinabs", "snntorch"):
            if name in value:
                return name
    return None


def _without_batch(raw: nir.NIRGraph) -> tuple[nir.NIRGraph, list[str]]:
    nodes, notes = dict(raw.nodes), []
    for name, node in raw.nodes.items():
        if isinstance(node, (nir.Input, nir.Output)):
            shape = np.asarray(node.input_type.get("input", []))
            if shape.ndim == 1 and shape.size >= 2 and int(shape[0]) == 1:
                nodes[name] = type(node)(shape[1:], metadata=dict(node.metadata or {}))
                notes.append(f"'{name}' {shape.tolist()} -> {shape[1:].tolist()}")
    return nir.NIRGraph(nodes, list(raw.edges), metadata=dict(raw.metadata or {}),
                        type_check=False), notes


def _scalars(raw: nir.NIRGraph) -> list[str]:
    out = []
    for name, node in raw.nodes.items():
        if isinstance(node, _NEURONS):
            params = [f.name for f in dataclasses.fields(node) if f.name not in
                      ("input_type", "output_type", "metadata")]
            if any(np.ndim(getattr(node, p)) == 0 for p in params
                   if getattr(node, p) is not None):
                out.append(name)
    return out


def _retau(raw: nir.NIRGraph, factor: float) -> nir.NIRGraph:
    nodes = dict(raw.nodes)
    for name, node in raw.nodes.items():
        if isinstance(node, _TAU_NODES):
            changes = {f: np.asarray(getattr(node, f), dtype=float) * factor
                       for f in ("tau", "tau_mem", "tau_syn") if hasattr(node, f)}
            nodes[name] = dataclasses.replace(node, **changes)
    return nir.NIRGraph(nodes, list(raw.edges), metadata=dict(raw.metadata or {}),
                        type_check=False)


def _lifs(raw: nir.NIRGraph) -> list[Any]:
    return [n for n in raw.nodes.values() if isinstance(n, _TAU_NODES)]


def _norse(raw: nir.NIRGraph, meta: dict[str, Any], why: str) -> tuple[nir.NIRGraph, dict, str]:
    dt = float(meta.get("dt", NORSE_DT))
    return _retau(raw, 1.0 / dt), {"dt": dt}, (
        f"{why}: tau read as Norse 1.1 writes it, dt * tau (norse#411), at Norse's dt = {dt:g} "
        f"s (tau divided by {dt:g})")


def _sinabs(raw: nir.NIRGraph, meta: dict[str, Any], why: str) -> tuple[nir.NIRGraph, dict, str]:
    dt = float(meta.get("dt", DEFAULT_DT))
    return _retau(raw, dt), {"dt": dt, "integrator": "exact"}, (
        f"{why}: tau read as Sinabs writes it, in time steps (tau x dt, dt = {dt:g} s), with "
        "Sinabs's exact update (alpha = exp(-1/tau)); Sinabs's multi-spike, v >= threshold "
        "and subtractive reset are not in the file: NIR's binary spike, v > threshold and "
        "reset to zero are used")


def _tau_convention(raw: nir.NIRGraph, batch: bool) -> tuple[nir.NIRGraph, dict, str | None]:
    meta = dict(raw.metadata or {})
    named = _named_source(meta)
    lifs = _lifs(raw)
    if named == "norse":
        return _norse(raw, meta, "metadata names Norse")
    if named == "sinabs":
        return _sinabs(raw, meta, "metadata names Sinabs")
    if named or not lifs:
        return raw, {}, None
    dt = float(meta.get("dt", DEFAULT_DT))
    taus = [np.asarray(getattr(n, f), dtype=float) for n in lifs
            for f in ("tau", "tau_mem", "tau_syn") if hasattr(n, f)]
    if batch and all(np.all(t < dt) for t in taus):
        return _norse(raw, meta, f"a batch dimension (only Norse writes one) and tau < dt = "
                      f"{dt:g}")
    ones = all(np.all(np.asarray(n.r, dtype=float) == 1) for n in lifs if hasattr(n, "r"))
    if ones and all(np.all(t >= 1.0) for t in taus):
        return _sinabs(raw, meta, "every tau >= 1 s with r = 1 (Sinabs's time steps)")
    return raw, {}, None


def from_exporter(raw: nir.NIRGraph) -> Graph:
    """``checker.from_nir`` after reading the known exporter conventions, each with a warning."""
    notes = []
    batch = False
    try:
        from_nir(raw)
    except GraphError as exc:
        stripped, dims = _without_batch(raw)
        if not dims:
            raise
        try:
            from_nir(stripped)
        except GraphError:
            raise exc from None
        raw, batch = stripped, True
        notes.append("a leading batch dimension of 1 dropped (as Norse 1.1 writes it): "
                     + ", ".join(dims))
    scalars = _scalars(raw)
    if scalars:
        notes.append("scalar parameters broadcast to their layers: " + ", ".join(scalars))
    raw, meta, note = _tau_convention(raw, batch)
    if note:
        notes.append(note)
    for text in notes:
        warnings.warn(f"NIR exporter convention: {text}", stacklevel=3)
    graph = from_nir(raw)
    return graph.replace(metadata={**dict(graph.metadata), **meta}) if meta else graph


__all__ = ["NORSE_DT", "from_exporter"]
