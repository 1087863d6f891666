"""`snn2hw inspect PROGRAM`: cores, groups, memory per core and the cost model."""

from __future__ import annotations

import numpy as np
from snn2hw_emulator.program import (
    Program,
    SynapseBlock,
    is_sparse,
    synapse_mask,
    synapse_memory_bits,
)
from snn2hw_emulator.xylo_program import XyloProgram

#: Bytes of neuron state per compartment (Loihi 1: 24 B per neuron, spec §3).
NEURON_STATE_BYTES = 24


def synapse_count(block: SynapseBlock) -> int:
    """Synapses that exist in memory (the shared kernel for conv)."""
    if block.kind == "conv":
        return int(np.asarray(block.weights).size)
    mask = synapse_mask(block)
    return int(np.count_nonzero(mask.data if is_sparse(mask) else mask))


def _core_rows(program: Program) -> list[str]:
    groups = {g.name: g for g in program.groups}
    blocks = {b.name: b for b in program.blocks}
    rows = []
    for core in program.cores:
        neurons = sum(groups[n].size for n in core.groups)
        syn = sum(synapse_count(blocks[b]) for b in core.blocks)
        kib = (sum(synapse_memory_bits(blocks[b]) for b in core.blocks) / 8
               + neurons * NEURON_STATE_BYTES) / 1024
        rows.append(f"{core.index:>5} {core.chip:>4} {neurons:>8} {syn:>10} {kib:>9.1f}  "
                    f"{', '.join(core.groups)}")
    return rows


def _group_rows(program: Program) -> list[str]:
    into: dict[str, list[str]] = {}
    for b in program.blocks:
        into.setdefault(b.target, []).append(f"{b.source}->{b.kind}")
    return [f"  {g.name:<16} {g.model:<9} n={g.size:<6} du={g.du:<5} dv={g.dv:<5} vth={g.vth:<7}"
            f" in: {', '.join(into.get(g.name, [])) or '-'}" for g in program.groups]


def _cost_lines(program: Program | XyloProgram) -> list[str]:
    from snn2hw_emulator.validate import target_of

    cost = target_of(program).cost            # the embedded target file, validated
    flag = " (estimates)" if cost.estimated else ""
    return [(f"cost model{flag}: {cost.synop_energy_pj} pJ/synop, "
            f"{cost.neuron_active_energy_pj} pJ/active neuron update, "
            f"{cost.hop_energy_pj} pJ/hop, barrier {cost.barrier_time_ns} ns")]


def xylo_summary(program: XyloProgram) -> str:
    """A Xylo program (family xylo-iaf): sizes, shifts, thresholds, dashes, aliases."""
    a = program.arrays()

    def span(x: np.ndarray) -> str:
        return f"{int(x.min())}..{int(x.max())}" if x.size else "-"

    def n(key: str) -> int:
        return int(np.count_nonzero(a[key]))

    head = (f"program image v{program.format_version} (Xylo) for target "
            f"'{program.target_name}' (target sha256 {program.target_hash[:12]}…)")
    sizes = (f"inputs: {program.n_in}   hidden: {program.n_hidden} ({program.n_syn} "
             f"synaptic current(s))   outputs: {program.n_out}")
    weights = (f"weights: in {n('weights_in')}, recurrent {n('weights_rec')}, out "
               f"{n('weights_out')}; shifts in <<{program.weight_shift_in}, rec "
               f"<<{program.weight_shift_rec}, out <<{program.weight_shift_out}")
    hidden = (f"hidden: threshold {span(a['threshold'])}, dash_mem {span(a['dash_mem'])}, "
              f"dash_syn {span(a['dash_syn'])}, bias {span(a['bias'])}, aliases "
              f"{int((a['aliases'] >= 0).sum())}")
    out = (f"output: threshold {span(a['threshold_out'])}, dash_mem "
           f"{span(a['dash_mem_out'])}, dash_syn {span(a['dash_syn_out'])}, bias "
           f"{span(a['bias_out'])}")
    return "\n".join([head, sizes, weights, hidden, out, *_cost_lines(program)])


def program_summary(program: Program | XyloProgram) -> str:
    if isinstance(program, XyloProgram):
        return xylo_summary(program)
    ports = ", ".join(f"{p.name}[{p.size}]" for p in program.ports)
    outs = ", ".join(f"{o.name}<-{o.group}" for o in program.outputs)
    lines = [(f"program image v{program.format_version} for target '{program.target_name}' "
             f"(target sha256 {program.target_hash[:12]}…)"),
             f"inputs: {ports}   outputs: {outs}",
             f"{'core':>5} {'chip':>4} {'neurons':>8} {'synapses':>10} {'mem KiB':>9}  groups",
             *_core_rows(program), "groups:", *_group_rows(program), *_cost_lines(program)]
    return "\n".join(lines)
