"""The hardware model in a graph's node metadata and back: ``compile`` annotates its source
graph (:func:`annotate`, written as ``OUT/quantised.nir``), and a graph so annotated gives
back its integers (:func:`hwnet`), so compiling it again changes none of them.

:func:`annotate` stores every group and block of a population in that node's
``metadata["snn2hw"]`` (``hwmodel.to_metadata``) and the pass and target in the graph's
metadata. Layouts follow the quantise pass's rule: a population touched by a convolution
block is in (W, H, C) order, every other one in NIR order.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np

from snn2hw import ir
from snn2hw.errors import UnsupportedError
from snn2hw.passes import current_bias, structure
from snn2hw.passes.hwmodel import HwBlock, HwGroup, HwNet, from_csr_fields, to_metadata
from snn2hw.passes.layout import whc_perm

_INT_GROUP = ("du", "dv", "vth", "offset", "reset_interval", "reset_offset", "core", "chip",
              "spike_exp", "state_exp")
_INT_BLOCK = ("weight_exp", "num_weight_bits", "delay", "num_message_bits")


def _group(name: str, d: dict[str, Any]) -> HwGroup:
    ints = {k: int(d[k]) for k in _INT_GROUP if k in d}
    arrays = {k: np.asarray(d[k], dtype=np.int64) for k in ("index", "bias_mant", "bias_exp",
                                                            "v0")}
    graded = {k: f(d[k]) for k, f in (("act_mode", _text), ("cum_error", bool),
                                       ("payload_scale", float)) if k in d}
    return HwGroup(name=name, population=str(d["population"]),
                   shape=tuple(int(s) for s in np.asarray(d["shape"]).ravel()),
                   model=_text(d["model"]), scale=float(d["scale"]), **arrays, **ints,
                   **graded)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _weights(w: Any) -> Any:
    """A block's weights: an array, or a csr matrix's fields (hwmodel.csr_fields)."""
    if isinstance(w, dict):
        return from_csr_fields(w)
    return np.asarray(w, dtype=np.int64)


def _block(name: str, d: dict[str, Any]) -> HwBlock:
    conv = None
    if "conv" in d:
        conv = {k: (int(v) if np.ndim(v) == 0 else tuple(int(x) for x in np.ravel(v)))
                for k, v in d["conv"].items()}
    return HwBlock(name=name, source=str(d["source"]), target=str(d["target"]),
                   kind=str(d["kind"]), weights=_weights(d["weights"]),
                   sign_mode=str(d["sign_mode"]), recurrent=bool(d.get("recurrent", False)),
                   codebook=None if "codebook" not in d else np.asarray(d["codebook"],
                                                                        dtype=np.int64),
                   conv=conv, **{k: int(d[k]) for k in _INT_BLOCK if k in d})


def hwnet(graph: ir.Graph, target: str) -> HwNet | None:
    """The annotated hardware model for ``target``, or None when the graph carries none
    (or carries one for another target: then it is requantised, with a warning)."""
    stand_in = [name for name, node in graph.nodes.items()
                if "snn2hw.stand_in" in (getattr(node, "metadata", None) or {})]
    if stand_in:                     # backends/netx_sdnn.py: no NIR node models the layer
        raise UnsupportedError(f"node '{stand_in[0]}' stands in for a netx SDNN "
                               "(sigma-delta) layer, which NIR has no node for",
                               node=stand_in[0], hint="Compile the .net file itself "
                               "(snn2hw compile FILE.net --target loihi2).")
    meta = graph.metadata
    if meta.get("snn2hw.pass") != "map":
        return None
    if meta.get("snn2hw.target") != target:
        warnings.warn(f"the graph's integers are for target '{meta.get('snn2hw.target')}'; "
                      f"requantising it for '{target}'", stacklevel=3)
        return None
    groups: list[HwGroup] = []
    blocks: list[HwBlock] = []
    for node in graph.nodes.values():
        hw = (getattr(node, "metadata", None) or {}).get("snn2hw")
        if hw:
            groups += [_group(k, v) for k, v in hw["groups"].items()]
            blocks += [_block(k, v) for k, v in hw["blocks"].items()]
    if not groups:
        return None
    s = structure.analyse(graph)
    convy = {p for b in blocks if b.kind == "conv" for p in (b.source, b.target)} | \
        {g.population for g in groups if len(g.shape) == 3}
    convy = {p for p in convy if p in s.shapes and len(s.shapes[p]) == 3}  # netx (N, 1, 1)
    layouts = {p: whc_perm(s.shapes[p]) if p in convy else np.arange(s.size(p))
               for p in s.populations}
    shapes = {p: tuple(reversed(s.shapes[p])) if p in convy else (s.size(p),)
              for p in s.populations}
    pops = {g.population for g in groups}
    for g in groups:                  # bias sources (passes/current_bias.py): not model nodes
        if g.population not in layouts:
            layouts[g.population], shapes[g.population] = np.arange(g.size), (g.size,)
    inputs = tuple(p for p in s.populations if p not in pops)
    bits = {str(k): int(v) for k, v in dict(meta.get("snn2hw.port_bits", {})).items()}
    return HwNet(tuple(groups), tuple(blocks), layouts, shapes, inputs, dict(s.outputs),
                 {"source": "annotated graph"}, port_bits=bits)


def annotate(graph: ir.Graph, net: HwNet, target: str, port_bits: dict[str, int]
             ) -> ir.Graph:
    """``graph`` with the placed hardware model ``net`` for ``target`` in its nodes'
    metadata (a bias source with the population it feeds) and graded ports' widths."""
    meta = {**dict(graph.metadata), "snn2hw.pass": "map", "snn2hw.target": target}
    if any(port_bits.values()):
        meta["snn2hw.port_bits"] = {k: v for k, v in port_bits.items() if v}
    hw = to_metadata(net)
    nodes = dict(graph.nodes)
    owner = current_bias.owners(net)            # a bias source is stored with what it feeds
    for pop in set(owner.values()):
        node = nodes[pop]
        mine = {"groups": {k: v for k, v in hw["groups"].items()
                           if owner[v["population"]] == pop},
                "blocks": {k: v for k, v in hw["blocks"].items()
                           if hw["groups"][v["target"]]["population"] == pop}}
        nodes[pop] = dataclasses.replace(node, metadata={**(node.metadata or {}), "snn2hw": mine})
    return graph.replace(nodes=nodes, metadata=meta)


__all__ = ["annotate", "hwnet"]
