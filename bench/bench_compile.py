"""Compile time and peak memory per 10^6 synapses (issue 13 goal: <= 2 s per 10^6).

    python bench/bench_compile.py [--quick | --smoke]

Dense 3-layer LIF nets of 10^4 to 10^6 synapses, the event-camera CNN of issue 13
(2x34x34, 0.9 M synapses in the model's own layers) for loihi2 (kept convolutions) and
loihi1 (unrolled, spatial tiles), and a >= 5 M-synapse conv net (16x16x16 maps, four
5x5 conv layers, loihi2). Prints, per net, the synapses (every non-zero of every
projection, convolutions counted unrolled), cores, the wall time of the whole compile
(best of 3; --quick: 1; --smoke: once, the two smallest nets only, for the test that keeps
this script running; "total" includes compile's cost estimate, an emulator run, that
"passes" leaves out), seconds of passes per 10^6 synapses, and the peak traced memory
(tracemalloc, a separate run) beside the program's own size (sum of its weight arrays).
The PilotNet-sized net (3x66x200, 11.5 M synapses) compiles whole: its convolutions
exceed a loihi2 core and are unrolled to sparse (csr) blocks, 196 cores. ``measure``'s
``upto`` stops a compile before a named pass, for profiling one.
"""

from __future__ import annotations

import itertools
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import nir
import numpy as np

from snn2hw import checker, compiler, ir, pipeline
from snn2hw.levels import Context
from snn2hw.passes import structure
from snn2hw.targets import load

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import conv_nets

DT = 1e-4


def dense_net(n_in: int, hidden: int, n_out: int) -> ir.Graph:
    rng = np.random.default_rng(0)
    lif = lambda n: nir.LIF(tau=np.full(n, 1e-3), r=np.full(n, 10.0),
                            v_leak=np.zeros(n), v_threshold=np.ones(n))
    nodes = {"input": nir.Input(np.array([n_in])),
             "fc1": nir.Affine(rng.normal(size=(hidden, n_in)) * 0.1, rng.normal(size=hidden) * 0.01),
             "h": lif(hidden),
             "fc2": nir.Linear(rng.normal(size=(n_out, hidden)) * 0.1), "o": lif(n_out),
             "output": nir.Output(np.array([n_out]))}
    edges = [("input", "fc1"), ("fc1", "h"), ("h", "fc2"), ("fc2", "o"), ("o", "output")]
    return checker.from_nir(nir.NIRGraph(nodes, edges, type_check=False), metadata={"dt": DT})


def deep_conv_net(layers: int = 4) -> nir.NIRGraph:
    """16x16x16 -> ``layers`` x (Conv2d 16->16 5x5, padding 2 -> IF) -> Flatten -> 10."""
    rng = np.random.default_rng(0)
    shape = (16, 16, 16)
    nodes: dict = {"input": nir.Input(np.array(shape))}
    chain = ["input"]
    for k in range(layers):
        w = rng.normal(size=(16, 16, 5, 5)) * 1.2 / np.sqrt(16 * 25)
        nodes[f"conv{k}"] = nir.Conv2d(None, w, 1, 2, 1, 1, np.zeros(16))
        nodes[f"if{k}"] = nir.IF(r=np.ones(shape), v_threshold=np.ones(shape))
        chain += [f"conv{k}", f"if{k}"]
    nodes["flat"] = nir.Flatten({"input": np.array(shape)}, 0, -1)
    nodes["fc"] = nir.Linear(rng.normal(size=(10, 4096)) * 0.05)
    nodes["out"] = nir.IF(r=np.ones(10), v_threshold=np.ones(10))
    nodes["output"] = nir.Output(np.array([10]))
    chain += ["flat", "fc", "out", "output"]
    return nir.NIRGraph(nodes, list(itertools.pairwise(chain)), type_check=False)


def _compile(graph: ir.Graph, target: str, data: np.ndarray | None, upto: str | None
             ) -> tuple[dict[str, float], dict, list]:
    """Timings, report and program blocks of a compile (``upto``: stop before that pass,
    run through the pass list by hand)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if upto is None:
            c = compiler.compile(graph, compiler.Options(target=target), calibration=data)
            return c.timings, c.report, list(c.program.blocks)
        names = [step.name for step in compiler.PIPELINE]
        steps = compiler.PIPELINE[:names.index(upto)]
        ctx = Context(load(target), compiler.Options(target=target), data)
        placed, timings, _ = pipeline.run(steps, graph, pipeline.GRAPH, ctx)
        return timings, {"cores": placed.report["mapping"]["cores"]}, []


def measure(name: str, make, target: str, data: np.ndarray | None, repeats: int,
            upto: str | None = None) -> None:
    best, timings, report, blocks = float("inf"), {}, {}, []
    for _ in range(repeats):
        graph = make()                                    # a fresh graph every time
        start = time.perf_counter()
        t, r, b = _compile(graph, target, data, upto)
        if time.perf_counter() - start < best:
            best, timings, report, blocks = time.perf_counter() - start, t, r, b
    graph = make()
    synapses = sum(p.synapses for p in structure.analyse(graph).projections)
    tracemalloc.start()
    _compile(graph, target, data, upto)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    size = sum(_nbytes(b.weights) + (b.delays.nbytes if b.delays is not None else 0)
               for b in blocks)
    mega = synapses / 1e6
    passes = sum(timings.values())
    per = "  ".join(f"{k} {v:.2f}" for k, v in timings.items())
    print(f"{name:<22} {target:<7} {synapses:>10,} {report['cores']:>5} {best:>8.2f} "
          f"{passes:>8.2f} {passes / mega:>7.2f} {peak / 2**20:>9.1f} "
          f"{peak / 2**20 / mega:>8.1f} {size / 2**20:>9.1f}   {per}")


def _nbytes(w: object) -> int:
    """A block's weight storage: a dense array, or a csr matrix's three arrays."""
    if hasattr(w, "indptr"):
        return int(w.data.nbytes + w.indices.nbytes + w.indptr.nbytes)
    return int(w.nbytes)


def main() -> None:
    smoke = "--smoke" in sys.argv
    repeats = 1 if "--quick" in sys.argv or smoke else 3
    print(f"{'net':<22} {'target':<7} {'synapses':>10} {'cores':>5} {'total s':>8} "
          f"{'passes s':>8} {'s/1e6':>7} {'peak MiB':>9} {'MiB/1e6':>8} {'prog MiB':>9}"
          "   per pass (s)")
    for n_in, hidden, n_out in ((100, 90, 10), (300, 300, 100), (1000, 900, 100)):
        measure(f"dense {n_in}-{hidden}-{n_out}", lambda a=(n_in, hidden, n_out): dense_net(*a),
                "loihi2", None, repeats)
        if smoke and n_in == 300:
            return
    events = conv_nets.events((2, 34, 34), 4, 20, 0.05)
    cnn = lambda: checker.from_nir(conv_nets.event_cnn(gain=1.0, fc_gain=2.5),
                                   metadata={"dt": 1e-3})
    measure("event CNN", cnn, "loihi2", events, repeats)
    measure("event CNN", cnn, "loihi1", events, 1)
    deep = lambda: checker.from_nir(deep_conv_net(), metadata={"dt": 1e-3})
    measure("conv 4x 5x5 16x16x16", deep, "loihi2", conv_nets.events((16, 16, 16), 2, 10, 0.05),
            repeats)
    pilot = lambda: checker.from_nir(conv_nets.pilotnet(), metadata={"dt": 1e-3})
    measure("PilotNet", pilot, "loihi2", conv_nets.events((3, 66, 200), 2, 8, 0.05), 1)


if __name__ == "__main__":
    main()
