"""Map: neuron groups onto cores and cores onto chips, within the target's limits.

0. Unroll (``passes/unroll.py``): a kept convolution into or out of a group that
   exceeds a core becomes an exact csr block (same effective integers), so that group
   can be split; which and why goes into the report (``unrolled``, and per layer).
1. Split (``passes/partition.py``): every group is cut into as few parts as keep each
   part's neurons, synaptic memory, fan-in axons (distinct source neurons reaching it)
   and fan-out axons (destination cores its neurons actually reach) within a core;
   unrolled convolution layers are cut into spatial tiles with all channels. A part's
   synaptic memory is the image's own count (``passes/storage.py``, which the unroller
   reads too).
2. Pack: parts, in execution order, share a core while all four fit.
3. Place: cores fill chips; when more than one chip is needed, the core graph
   (edge weight = synapses between cores) is bisected with Kernighan-Lin until each
   part fits a chip, which keeps heavily connected cores together.
4. Check: every core design rule (snn2hw_emulator/rules.py, limits read from the target)
   is evaluated on the result; all violations are reported together.
"""

from __future__ import annotations

from dataclasses import replace

import networkx as nx
import numpy as np
import scipy.sparse as sp
from snn2hw_emulator.rules import CORE_RULES, CoreUse, Rule, Subject, Violation, check

from snn2hw.errors import DesignRuleError
from snn2hw.passes import partition, unroll
from snn2hw.passes.hwmodel import HwGroup, HwNet
from snn2hw.passes.storage import storage
from snn2hw.targets import Target


def _traffic(net: HwNet, cores: list[list[str]]) -> nx.Graph:
    where = {g: k for k, names in enumerate(cores) for g in names}
    pop_cores: dict[str, set[int]] = {}
    for g in net.groups:
        pop_cores.setdefault(g.population, set()).add(where[g.name])
    graph = nx.Graph()
    graph.add_nodes_from(range(len(cores)))
    for b in net.blocks:
        dst = where[b.target]
        weight = int(np.count_nonzero(b.weights.data if sp.issparse(b.weights)
                                      else b.weights)) or 1
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
# The rules are snn2hw_emulator/rules.py's (one list, run here on the placed hardware
# model, on the emitted program and by the emulator on every image it loads).

RULES: tuple[Rule, ...] = CORE_RULES


def check_rules(cores: list[CoreUse], target: Target) -> list[Violation]:
    """Every core rule's violations for these measured cores."""
    return check(Subject((), (), (), cores), target, CORE_RULES)


# --------------------------------------------------------------------------- the pass


def map_to_cores(net: HwNet, target: Target) -> HwNet:
    net, planner = unroll.unroll_and_plan(net, target)
    net, plans = planner.run()
    cores = partition.pack(net, target, storage)
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
                         "per_core": [vars(c) | {"groups": list(c.groups)} for c in uses],
                         "layers": layers(net, plans, uses),
                         "unrolled": dict(net.report.get("unrolled", {}))}
    return net.with_(report=report)


def usage(net: HwNet, target: Target) -> list[CoreUse]:
    """Measured resources per core of a placed network (what the rules check). A source
    neuron spends one output axon per other core it has a synapse on; a core spends one
    input axon per distinct source neuron with a synapse on it."""
    by_core: dict[int, list[HwGroup]] = {}
    for g in net.groups:
        by_core.setdefault(g.core, []).append(g)
    sizes = {p: int(np.prod(s)) for p, s in net.shapes.items()}
    group_core = {g.name: g.core for g in net.groups}
    reached: dict[tuple[str, int], np.ndarray] = {}    # (source, core) -> neurons reaching it
    for b in net.blocks:
        key = (b.source, group_core[b.target])
        cols = partition.present_columns(b, sizes[b.source])
        reached[key] = reached[key] | cols if key in reached else cols
    out = []
    for core in sorted(by_core):
        gs = by_core[core]
        blocks = [b for g in gs for b in net.blocks_into(g.name)]
        fan_out = sum(int(mask[g.index].sum()) for g in gs
                      for (src, dst), mask in reached.items()
                      if src == g.population and dst != core)
        out.append(CoreUse(core, gs[0].chip, tuple(g.name for g in gs), sum(g.size for g in gs),
                           sum(storage(b, target)[1] for b in blocks),
                           partition.fan_in(blocks, sizes), fan_out))
    return out


def layers(net: HwNet, plans: dict[str, partition.Plan], uses: list[CoreUse]
           ) -> list[dict[str, object]]:
    """Per population: neurons, parts, cores used, the limit that set the number of
    parts, and a lower bound on cores (neurons and synaptic memory alone); ``unrolled``:
    why a convolution into it was unrolled ("" where none was)."""
    unrolled = net.report.get("unrolled", {})
    out = []
    for pop in dict.fromkeys(g.population for g in net.groups):
        mine = [p for p in plans.values() if p.population == pop]
        cores = {g.core for g in net.groups_of(pop)}
        binding = sorted({p.binding for p in mine})
        out.append({"population": pop, "neurons": sum(g.size for g in net.groups_of(pop)),
                    "parts": sum(len(p.rows) for p in mine), "cores": len(cores),
                    "lower_bound": sum(p.lower_bound for p in mine),
                    "binding": ", ".join(binding),
                    "fan_out_max": max(c.fan_out for c in uses if c.index in cores),
                    "fan_in_max": max(c.fan_in for c in uses if c.index in cores),
                    "unrolled": "; ".join(u["reason"] for u in unrolled.values()
                                          if u["population"] == pop)})
    return out


__all__ = [
    "RULES",
    "CoreUse",
    "Violation",
    "check_rules",
    "layers",
    "map_to_cores",
    "storage",
    "usage",
]
