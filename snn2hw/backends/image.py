"""Backend: a mapped hardware model -> the emulator's program image (``Program``).

Each group becomes a ``NeuronGroup``; each block is cut by the source population's
groups (or its input port) into ``SynapseBlock``s. Shared weights become codebook
blocks where the target's synaptic memory stores indices (``connectivity.codebook``);
elsewhere the looked-up weights are written (dense or sparse; the values are the shared
ones). A block held as a csr matrix (an unrolled convolution) is written as a csr
``sparse`` block, sliced by source group without ever being densified (where the target
stores it dense, the mapper has shown it small). How the host talks to the
program (which NIR index each port/group position holds, and how many steps each
population runs behind the float reference) goes into ``metadata["snn2hw.io"]``
as JSON (snn2hw.iomap), read back by :func:`io_map`.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import scipy.sparse as sp
from snn2hw_emulator.program import Core, NeuronGroup, OutputPort, Port, Program, SynapseBlock

from snn2hw.errors import DesignRuleError
from snn2hw.iomap import IO_KEY, IoMap, Output, Population, read_json
from snn2hw.passes import current_bias
from snn2hw.passes.hwmodel import SIGMA_DELTA_MODELS, HwBlock, HwGroup, HwNet, dense
from snn2hw.passes.storage import storage
from snn2hw.targets import Target


def _columns(net: HwNet, b: HwBlock) -> list[tuple[str, np.ndarray]]:
    """(program source name, NIR indices of the source in that source's order)."""
    if b.source in net.inputs:
        return [(b.source, net.layouts[b.source])]
    return [(g.name, g.index) for g in net.groups_of(b.source)]


def _csr_parts(w: sp.spmatrix, columns: list[tuple[str, np.ndarray]]
               ) -> dict[str, sp.csr_matrix | None]:
    """The csr matrix cut by source: for each (source, NIR indices), the int64 csr matrix
    of those columns in that order, zeros dropped (None: no synapse from that source);
    one pass over the entries, never dense."""
    m = sp.coo_matrix(w)
    keep = m.data != 0
    rows, cols, data = m.row[keep], m.col[keep], m.data[keep].astype(np.int64)
    owner = np.full(w.shape[1], -1, dtype=np.int64)
    local = np.zeros(w.shape[1], dtype=np.int64)
    for k, (_, idx) in enumerate(columns):
        owner[idx], local[idx] = k, np.arange(len(idx))
    who = owner[cols]
    order = np.argsort(who, kind="stable")
    edges = np.searchsorted(who[order], np.arange(len(columns) + 1))
    out = {}
    for k, (src, idx) in enumerate(columns):
        mine = order[edges[k]:edges[k + 1]]
        out[src] = sp.csr_matrix((data[mine], (rows[mine], local[cols[mine]])),
                                 shape=(w.shape[0], len(idx))) if mine.size else None
    return out


def _synapse_blocks(net: HwNet, b: HwBlock, target: Target) -> list[SynapseBlock]:
    kind, _ = storage(b, target)
    out = []
    columns = _columns(net, b)
    parts = _csr_parts(b.weights, columns) if sp.issparse(b.weights) and kind == "sparse" \
        else {}
    for src, cols in columns:
        common: dict[str, Any] = dict(source=src, target=b.target, weight_exp=b.weight_exp,
                                      num_weight_bits=b.num_weight_bits, sign_mode=b.sign_mode,
                                      num_message_bits=b.num_message_bits)
        if kind == "conv":
            out.append(SynapseBlock(name=b.name, kind="conv", weights=b.weights,
                                    conv=dict(b.conv), **common))
            continue
        name = b.name if src == b.source else f"{b.name}<{src}"
        if src in parts:                      # an unrolled convolution: stays csr
            part = parts[src]
            if part is not None:
                out.append(SynapseBlock(name=name, kind="sparse", weights=part, **common))
            continue
        w = np.ascontiguousarray(dense(b.weights[:, cols]))
        present = (w >= 0) if b.codebook is not None else (w != 0)
        if not present.any():
            continue
        if kind == "codebook":
            out.append(SynapseBlock(name=name, kind="codebook", weights=w, codebook=b.codebook,
                                    **common))
            continue
        if b.codebook is not None:       # no codebook memory: the looked-up weights
            w = np.ascontiguousarray(b.full_scale()[:, cols])
        if b.delay:
            out.append(SynapseBlock(name=name, kind="delay_dense", weights=w,
                                    delays=np.full(w.shape, b.delay, dtype=np.int64), **common))
        else:
            out.append(SynapseBlock(name=name, kind=kind, weights=w, **common))
    return out


def _model(g: HwGroup) -> str:
    """The program's neuron model: sigma-delta models as they are, LIF (with reset) else."""
    if g.model in SIGMA_DELTA_MODELS:
        return g.model
    return "lif_reset" if g.reset_interval else "lif"


def io_map(program: Program) -> IoMap:
    """How host arrays in NIR layout map onto the program's ports and groups."""
    return IoMap.from_json(read_json(program.metadata))


def _io_map(net: HwNet) -> IoMap:
    """The io map of ``net``'s program (read back by :func:`io_map`)."""
    graded = {g.population for g in net.groups if g.payload_scale > 0}   # from NIR

    def population(pop: str) -> Population:
        groups = net.groups_of(pop)
        scales = tuple(g.payload_scale for g in groups) if pop in graded else None
        return Population(tuple(g.name for g in groups),
                          tuple(np.concatenate([g.index for g in groups]).tolist()),
                          groups[0].offset, scales)   # execute.py aligns payloads by scale

    def output(pop: str) -> Output:
        p, groups = population(pop), net.groups_of(pop)
        return Output(pop, p.groups, p.index, tuple(g.scale for g in groups),
                      groups[0].model == "readout", p.offset, p.payload_scale)

    return IoMap(ports={p: tuple(net.layouts[p].tolist()) for p in net.inputs},
                 outputs={out: output(pop) for out, pop in net.outputs.items()},
                 populations={pop: population(pop)
                              for pop in dict.fromkeys(g.population for g in net.groups)
                              if not current_bias.is_source(pop)},   # not compiler-made
                 latency=max((g.offset for g in net.groups), default=0))


def build(net: HwNet, target: Target, *, record: dict[str, Any] | None = None) -> Program:
    if any(b.delay for b in net.blocks) and not target.connectivity.delays:
        first = next(b for b in net.blocks if b.delay)
        raise DesignRuleError(f"'{first.name}' needs a synaptic delay of "
                              f"{first.delay} to keep the model's timing, but target "
                              f"'{target.name}' has no delays",
                              hint="Give all paths into a layer the same number of hops.")
    ports = tuple(Port(name=p, size=int(net.layouts[p].size), shape=net.shapes[p],
                       message_bits=int(net.port_bits.get(p, 0))) for p in net.inputs)
    groups = tuple(NeuronGroup(name=g.name, model=_model(g),
                               size=g.size, shape=g.shape, du=g.du, dv=g.dv, vth=g.vth,
                               bias_mant=g.bias_mant, bias_exp=g.bias_exp,
                               u0=np.zeros(g.size, dtype=np.int64), v0=g.v0,
                               reset_interval=g.reset_interval, reset_offset=g.reset_offset,
                               act_mode=g.act_mode, cum_error=g.cum_error,  # type: ignore[arg-type]
                               spike_exp=g.spike_exp, state_exp=g.state_exp)
                   for g in net.groups)
    blocks = tuple(sb for b in net.blocks for sb in _synapse_blocks(net, b, target))
    cores = []
    for core in sorted({g.core for g in net.groups}):
        names = tuple(g.name for g in net.groups if g.core == core)
        chip = next(g.chip for g in net.groups if g.core == core)
        cores.append(Core(index=core, chip=chip, groups=names,
                          blocks=tuple(b.name for b in blocks if b.target in names)))
    outputs = tuple(OutputPort(name=out if len(net.groups_of(pop)) == 1 else f"{out}:{g.name}",
                               group=g.name)
                    for out, pop in net.outputs.items() for g in net.groups_of(pop))
    meta: dict[str, Any] = {IO_KEY: _io_map(net).to_json()}
    if record:
        meta["snn2hw.compile"] = json.dumps(record, default=str)
    return Program(target_name=target.name, target_hash=target.sha256, target_toml=target.toml,
                   ports=ports, groups=groups, blocks=blocks, cores=tuple(cores),
                   outputs=outputs, metadata=meta)


__all__ = ["IO_KEY", "build", "io_map"]
