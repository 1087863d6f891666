"""Compile time for networks of 10^4 to 10^6 synapses (issue goal: 10^6 in <= 2 s).

    python bench/bench_compile.py

Prints, per size, the wall time of each compiler pass (best of 3) for loihi2.
"""

from __future__ import annotations

import time

import nir
import numpy as np

from snn2hw import compiler, ir

DT = 1e-4


def network(n_in: int, hidden: int, n_out: int) -> ir.Graph:
    rng = np.random.default_rng(0)
    lif = lambda n: nir.LIF(tau=np.full(n, 1e-3), r=np.full(n, 10.0),  # noqa: E731
                            v_leak=np.zeros(n), v_threshold=np.ones(n))
    nodes = {"input": nir.Input(np.array([n_in])),
             "fc1": nir.Affine(rng.normal(size=(hidden, n_in)) * 0.1, rng.normal(size=hidden) * 0.01),
             "h": lif(hidden),
             "fc2": nir.Linear(rng.normal(size=(n_out, hidden)) * 0.1), "o": lif(n_out),
             "output": nir.Output(np.array([n_out]))}
    edges = [("input", "fc1"), ("fc1", "h"), ("h", "fc2"), ("fc2", "o"), ("o", "output")]
    return ir.from_nir(nir.NIRGraph(nodes, edges, type_check=False), metadata={"dt": DT})


def main() -> None:
    print(f"{'synapses':>10} {'cores':>5} {'total s':>8}  per pass (s)")
    for n_in, hidden, n_out in ((100, 90, 10), (300, 300, 100), (1000, 900, 100)):
        graph = network(n_in, hidden, n_out)
        best, timings, cores = float("inf"), {}, 0
        for _ in range(3):
            graph = network(n_in, hidden, n_out)       # fresh graph: no cached analysis
            start = time.perf_counter()
            c = compiler.compile(graph, compiler.Options(target="loihi2"))
            total = time.perf_counter() - start
            if total < best:
                best, timings, cores = total, c.timings, c.report["cores"]
        synapses = n_in * hidden + hidden * n_out
        per = "  ".join(f"{k} {v:.3f}" for k, v in timings.items())
        print(f"{synapses:>10,} {cores:>5} {best:>8.3f}  {per}")


if __name__ == "__main__":
    main()
