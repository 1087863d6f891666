"""Map: neuron groups onto cores and cores onto chips, within the target's limits.

1. Split: a group larger than a core (neurons, or synaptic memory of the blocks
   into it) is cut into row slices, each with its own blocks.
2. Pack: groups, in execution order, share a core while neurons, synaptic memory and
   fan-in axons all fit.
3. Place: cores fill chips; when more than one chip is needed, the core graph
   (edge weight = synapses between cores) is bisected with Kernighan-Lin until each
   part fits a chip, which keeps heavily connected cores together.
4. Check: every design rule (small functions below, limits read from the target) is
   evaluated on the result; all violations are reported together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

import networkx as nx
import numpy as np

from snn2hw.errors import DesignRuleError
from snn2hw.passes.hwmodel import HwBlock, HwGroup, HwNet
from snn2hw.targets import Target
from snn2hw_emulator.program import SynapseBlock, synapse_memory_bits

# --------------------------------------------------------------------------- memory model


def stored_kind(block: HwBlock, target: Target) -> str:
    """How ``block`` is held on ``target``: conv, codebook (where synaptic memory stores
    indices into a shared table), delay_dense, or the smaller of dense and sparse."""
    if block.kind == "conv":
        return "conv"
    if block.kind == "codebook" and target.connectivity.codebook:
        return "codebook"
    if block.delay:
        return "delay_dense"
    w = block.full_scale()
    dense = SynapseBlock("m", "dense", "s", "t", w, num_weight_bits=block.num_weight_bits)
    if target.connectivity.sparse and (not target.connectivity.dense or
                                       synapse_memory_bits(replace(dense, kind="sparse"))
                                       < synapse_memory_bits(dense)):
        return "sparse"
    return "dense"


def storage(block: HwBlock, target: Target) -> tuple[str, int]:
    """(program block kind, synaptic memory bits) for ``block`` on ``target``; the bit
    count is the program image's formula (snn2hw_emulator.program.synapse_memory_bits)."""
    kind = stored_kind(block, target)
    weights = block.weights if kind in ("conv", "codebook") else block.full_scale()
    spec = SynapseBlock("m", kind, "s", "t", weights, num_weight_bits=block.num_weight_bits,
                        codebook=block.codebook if kind == "codebook" else None)
    return kind, synapse_memory_bits(spec)


@dataclass(frozen=True)
class CoreUse:
    index: int
    chip: int
    groups: tuple[str, ...]
    neurons: int
    memory_bits: int
    fan_in: int
    fan_out: int


# --------------------------------------------------------------------------- split and pack


def _fan_in(blocks: list[HwBlock], net: HwNet) -> int:
    """Distinct source neurons with at least one synapse into these blocks."""
    used: dict[str, np.ndarray] = {}
    for b in blocks:
        if b.kind == "conv":
            cols = np.ones(int(np.prod(net.shapes[b.source])), dtype=bool)
        else:
            present = (b.weights >= 0) if b.kind == "codebook" else (b.weights != 0)
            cols = present.any(axis=0)
        used[b.source] = used.get(b.source, np.zeros(cols.size, dtype=bool)) | cols
    return int(sum(int(c.sum()) for c in used.values()))


def _split(net: HwNet, target: Target) -> HwNet:
    groups: list[HwGroup] = []
    blocks: list[HwBlock] = []
    limit_n = target.core.neurons_max
    limit_m = target.core.synapse_memory_bits
    for g in net.groups:
        into = net.blocks_into(g.name)
        mem = sum(storage(b, target)[1] for b in into)
        parts = max(math.ceil(g.size / limit_n), math.ceil(mem / limit_m) if limit_m else 1, 1)
        if parts == 1 or any(b.kind == "conv" for b in into):
            groups.append(g)
            blocks.extend(into)
            continue
        bounds = np.linspace(0, g.size, parts + 1).round().astype(int)
        for k in range(parts):
            rows = slice(int(bounds[k]), int(bounds[k + 1]))
            name = f"{g.name}[{k}]"
            groups.append(replace(g, name=name, index=g.index[rows], shape=(rows.stop - rows.start,),
                                  bias_mant=g.bias_mant[rows], bias_exp=g.bias_exp[rows],
                                  v0=g.v0[rows]))
            for b in into:
                blocks.append(replace(b, name=f"{b.name}[{k}]", target=name,
                                      weights=b.weights[rows],
                                      codebook=b.codebook[rows] if b.codebook is not None
                                      and b.codebook.shape[0] > 1 else b.codebook))
    return net.with_(groups=tuple(groups), blocks=tuple(blocks))


def _pack(net: HwNet, target: Target) -> list[list[str]]:
    cores: list[list[str]] = []
    cur: list[str] = []
    n = mem = 0
    for g in net.groups:
        into = net.blocks_into(g.name)
        g_mem = sum(storage(b, target)[1] for b in into)
        trial = [b for name in cur for b in net.blocks_into(name)] + into
        fits = (cur and n + g.size <= target.core.neurons_max
                and mem + g_mem <= target.core.synapse_memory_bits
                and _fan_in(trial, net) <= target.core.fan_in_axons_max)
        if not fits and cur:
            cores.append(cur)
            cur, n, mem = [], 0, 0
        cur.append(g.name)
        n += g.size
        mem += g_mem
    if cur:
        cores.append(cur)
    return cores


def _traffic(net: HwNet, cores: list[list[str]]) -> nx.Graph:
    where = {g: k for k, names in enumerate(cores) for g in names}
    pop_cores: dict[str, set[int]] = {}
    for g in net.groups:
        pop_cores.setdefault(g.population, set()).add(where[g.name])
    graph = nx.Graph()
    graph.add_nodes_from(range(len(cores)))
    for b in net.blocks:
        dst = where[b.target]
        weight = int(np.count_nonzero(b.weights)) or 1
        for src in pop_cores.get(b.source, ()):
            if src != dst:
                prev = graph.get_edge_data(src, dst, {"weight": 0})["weight"]
                graph.add_edge(src, dst, weight=prev + weight)
    return graph


def _chips(graph: nx.Graph, per_chip: int) -> list[list[int]]:
    parts = [sorted(graph.nodes)]
    while any(len(p) > per_chip for p in parts):
        big = max(parts, key=len)
        parts.remove(big)
        a, b = nx.algorithms.community.kernighan_lin_bisection(
            graph.subgraph(big), weight="weight", seed=0)
        parts += [sorted(a), sorted(b)]
    return sorted(parts, key=min)


# --------------------------------------------------------------------------- design rules


@dataclass(frozen=True)
class Violation:
    rule: str
    where: str
    measured: float
    limit: float
    hint: str

    def __str__(self) -> str:
        return f"{self.rule} on {self.where}: {self.measured:g} > {self.limit:g} ({self.hint})"


Rule = Callable[[list[CoreUse], Target], list[Violation]]


def neurons_per_core(cores: list[CoreUse], t: Target) -> list[Violation]:
    return [Violation("neurons per core", f"core {c.index} ({', '.join(c.groups)})", c.neurons,
                      t.core.neurons_max, "a convolution layer cannot be split; unroll it with "
                      "--no-conv or use smaller feature maps")
            for c in cores if c.neurons > t.core.neurons_max]


def synapse_memory_per_core(cores: list[CoreUse], t: Target) -> list[Violation]:
    return [Violation("synaptic memory bits per core", f"core {c.index} ({', '.join(c.groups)})",
                      c.memory_bits, t.core.synapse_memory_bits,
                      "use fewer weight bits (--weight-bits), --share K, or sparser weights")
            for c in cores if c.memory_bits > t.core.synapse_memory_bits]


def fan_in_per_core(cores: list[CoreUse], t: Target) -> list[Violation]:
    return [Violation("fan-in axons per core", f"core {c.index} ({', '.join(c.groups)})",
                      c.fan_in, t.core.fan_in_axons_max,
                      "a neuron cannot take input from that many sources on this target; "
                      "prune its inputs or add an intermediate layer")
            for c in cores if c.fan_in > t.core.fan_in_axons_max]


def fan_out_per_core(cores: list[CoreUse], t: Target) -> list[Violation]:
    return [Violation("fan-out axons per core", f"core {c.index} ({', '.join(c.groups)})",
                      c.fan_out, t.core.fan_out_axons_max,
                      "fewer destination cores per neuron: make the next layers smaller")
            for c in cores if c.fan_out > t.core.fan_out_axons_max]


def chips_per_system(cores: list[CoreUse], t: Target) -> list[Violation]:
    chips = len({c.chip for c in cores})
    return [Violation("chips", f"the system ({len(cores)} cores)", chips, t.chip.chips_max,
                      "the network is larger than the largest system of this target")
            ] if chips > t.chip.chips_max else []


RULES: tuple[Rule, ...] = (neurons_per_core, synapse_memory_per_core, fan_in_per_core,
                           fan_out_per_core, chips_per_system)


def check_rules(cores: list[CoreUse], target: Target) -> list[Violation]:
    return [v for rule in RULES for v in rule(cores, target)]


# --------------------------------------------------------------------------- the pass


def map_to_cores(net: HwNet, target: Target) -> HwNet:
    net = _split(net, target)
    cores = _pack(net, target)
    chips = _chips(_traffic(net, cores), target.chip.cores_max)
    placed: dict[int, tuple[int, int]] = {}
    for chip, members in enumerate(chips):
        for slot, core in enumerate(members):
            placed[core] = (chip, slot)
    order = sorted(range(len(cores)), key=lambda k: placed[k])
    renumber = {old: new for new, old in enumerate(order)}
    groups = []
    where = {g: k for k, names in enumerate(cores) for g in names}
    for g in net.groups:
        k = where[g.name]
        groups.append(replace(g, core=renumber[k], chip=placed[k][0]))
    net = net.with_(groups=tuple(groups))
    uses = usage(net, target)
    violations = check_rules(uses, target)
    if violations:
        raise DesignRuleError(f"the network does not fit target '{target.name}': "
                              + "; ".join(map(str, violations)),
                              hint="Each item names the limit and a way out.")
    report = dict(net.report)
    report["mapping"] = {"cores": len(uses), "chips": len({c.chip for c in uses}),
                         "per_core": [vars(c) | {"groups": list(c.groups)} for c in uses]}
    return net.with_(report=report)


def usage(net: HwNet, target: Target) -> list[CoreUse]:
    """Measured resources per core of a placed network (what the rules check)."""
    by_core: dict[int, list[HwGroup]] = {}
    for g in net.groups:
        by_core.setdefault(g.core, []).append(g)
    dest: dict[str, set[int]] = {}
    group_core = {g.name: g.core for g in net.groups}
    for b in net.blocks:
        dest.setdefault(b.source, set()).add(group_core[b.target])
    out = []
    for core in sorted(by_core):
        gs = by_core[core]
        blocks = [b for g in gs for b in net.blocks_into(g.name)]
        fan_out = sum(g.size * len(dest.get(g.population, set()) - {core}) for g in gs)
        out.append(CoreUse(core, gs[0].chip, tuple(g.name for g in gs), sum(g.size for g in gs),
                           sum(storage(b, target)[1] for b in blocks), _fan_in(blocks, net),
                           fan_out))
    return out


__all__ = ["map_to_cores", "usage", "check_rules", "RULES", "storage", "Violation", "CoreUse"]
