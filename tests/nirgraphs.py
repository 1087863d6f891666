"""Small NIR graphs for tests, built in code (no binary fixtures)."""

from __future__ import annotations

import itertools

import nir
import numpy as np


def lif(n: int, tau: float = 2e-3, theta: float = 1.0) -> nir.LIF:
    return nir.LIF(tau=np.full(n, tau), r=np.full(n, tau / 1e-4), v_leak=np.zeros(n),
                   v_threshold=np.full(n, theta), v_reset=np.zeros(n))


def cuba(n: int) -> nir.CubaLIF:
    return nir.CubaLIF(tau_syn=np.full(n, 1e-3), tau_mem=np.full(n, 2e-3), r=np.full(n, 20.0),
                       v_leak=np.zeros(n), v_threshold=np.ones(n), v_reset=np.zeros(n),
                       w_in=np.full(n, 10.0))


def feedforward(rng: np.random.Generator, sizes: tuple[int, ...] = (5, 8, 3)) -> nir.NIRGraph:
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(np.array([sizes[0]]))}
    edges, prev = [], "input"
    for k, (a, b) in enumerate(itertools.pairwise(sizes)):
        nodes[f"fc{k}"] = nir.Affine(rng.normal(size=(b, a)), rng.normal(size=b))
        nodes[f"lif{k}"] = lif(b)
        edges += [(prev, f"fc{k}"), (f"fc{k}", f"lif{k}")]
        prev = f"lif{k}"
    nodes["output"] = nir.Output(np.array([sizes[-1]]))
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes, edges, type_check=False)


def recurrent(rng: np.random.Generator, n_in: int = 4, n: int = 6) -> nir.NIRGraph:
    """Input -> fc -> [subgraph: lif <-> w_rec] -> output (the snnTorch RLeaky shape)."""
    sub = nir.NIRGraph({"input": nir.Input(np.array([n])), "lif": lif(n),
                        "w_rec": nir.Linear(rng.normal(size=(n, n))),
                        "output": nir.Output(np.array([n]))},
                       [("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
                       type_check=False)
    nodes = {"input": nir.Input(np.array([n_in])), "fc": nir.Linear(rng.normal(size=(n, n_in))),
             "rnn": sub, "output": nir.Output(np.array([n]))}
    return nir.NIRGraph(nodes, [("input", "fc"), ("fc", "rnn"), ("rnn", "output")],
                        type_check=False)


def conv(rng: np.random.Generator) -> nir.NIRGraph:
    nodes = {
        "input": nir.Input(np.array([2, 8, 8])),
        "conv": nir.Conv2d(None, rng.normal(size=(4, 2, 3, 3)), 1, 1, 1, 1, np.zeros(4)),
        "if0": nir.IF(r=np.ones((4, 8, 8)), v_threshold=np.ones((4, 8, 8))),
        "pool": nir.SumPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0])),
        "flat": nir.Flatten({"input": np.array([4, 4, 4])}, 0, -1),
        "fc": nir.Linear(rng.normal(size=(3, 64))),
        "li": nir.LI(tau=np.full(3, 1e-3), r=np.ones(3), v_leak=np.zeros(3)),
        "output": nir.Output(np.array([3])),
    }
    edges = [("input", "conv"), ("conv", "if0"), ("if0", "pool"), ("pool", "flat"),
             ("flat", "fc"), ("fc", "li"), ("li", "output")]
    return nir.NIRGraph(nodes, edges, type_check=False)
