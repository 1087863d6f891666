"""Spiking CNNs of published shapes with random weights (issue 13): a Sinabs-style
event-camera CNN and a PilotNet-sized conv net, as NIR graphs."""

from __future__ import annotations

import itertools

import nir
import numpy as np


def _if(shape: tuple[int, ...]) -> nir.IF:
    return nir.IF(r=np.ones(shape), v_threshold=np.ones(shape))


def _conv(rng: np.random.Generator, c_out: int, c_in: int, k: int, stride: int, pad: int,
          gain: float) -> nir.Conv2d:
    w = rng.normal(size=(c_out, c_in, k, k)) * gain / np.sqrt(c_in * k * k)
    return nir.Conv2d(None, w, stride, pad, 1, 1, np.zeros(c_out))


def event_cnn(seed: int = 0, gain: float = 2.5, fc_gain: float | None = None
              ) -> nir.NIRGraph:
    """2x34x34 -> Conv 2->16 5x5/2 -> IF -> Conv 16->16 3x3 -> IF -> SumPool 2 -> Conv
    16->8 3x3 -> IF -> SumPool 2 -> Flatten -> 128->256 -> IF -> 256->10 -> IF
    (8,970 neurons, 0.9 M synapses; padding 1 on every conv)."""
    rng = np.random.default_rng(seed)
    fc = gain if fc_gain is None else fc_gain
    nodes = {
        "input": nir.Input(np.array([2, 34, 34])),
        "conv1": _conv(rng, 16, 2, 5, 2, 1, gain), "if1": _if((16, 16, 16)),
        "conv2": _conv(rng, 16, 16, 3, 1, 1, gain), "if2": _if((16, 16, 16)),
        "pool2": nir.SumPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0])),
        "conv3": _conv(rng, 8, 16, 3, 1, 1, gain / 2), "if3": _if((8, 8, 8)),
        "pool3": nir.SumPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0])),
        "flat": nir.Flatten({"input": np.array([8, 4, 4])}, 0, -1),
        "fc1": nir.Affine(rng.normal(size=(256, 128)) * fc / np.sqrt(128), np.zeros(256)),
        "if4": _if((256,)),
        "fc2": nir.Affine(rng.normal(size=(10, 256)) * fc / np.sqrt(256), np.zeros(10)),
        "if5": _if((10,)),
        "output": nir.Output(np.array([10])),
    }
    chain = ["input", "conv1", "if1", "conv2", "if2", "pool2", "conv3", "if3", "pool3", "flat",
             "fc1", "if4", "fc2", "if5", "output"]
    return nir.NIRGraph(nodes, list(itertools.pairwise(chain)), type_check=False)


def pilotnet(seed: int = 0, gain: float = 2.5) -> nir.NIRGraph:
    """3x66x200 -> five 3x3 stride-2 convs (24, 36, 48, 64, 64; IF after each) -> 100 -> 50
    -> 10 dense (IF after each)."""
    rng = np.random.default_rng(seed)
    nodes: dict = {"input": nir.Input(np.array([3, 66, 200]))}
    chain = ["input"]
    c, h, w = 3, 66, 200
    for k, c_out in enumerate((24, 36, 48, 64, 64), 1):
        h, w = (h - 3) // 2 + 1, (w - 3) // 2 + 1
        nodes[f"conv{k}"] = _conv(rng, c_out, c, 3, 2, 0, gain)
        nodes[f"if{k}"] = _if((c_out, h, w))
        chain += [f"conv{k}", f"if{k}"]
        c = c_out
    nodes["flat"] = nir.Flatten({"input": np.array([c, h, w])}, 0, -1)
    chain.append("flat")
    n_in = c * h * w
    for k, n in enumerate((100, 50, 10), 1):
        nodes[f"fc{k}"] = nir.Affine(rng.normal(size=(n, n_in)) * gain / np.sqrt(n_in),
                                     np.zeros(n))
        nodes[f"d{k}"] = _if((n,))
        chain += [f"fc{k}", f"d{k}"]
        n_in = n
    nodes["output"] = nir.Output(np.array([10]))
    chain.append("output")
    return nir.NIRGraph(nodes, list(itertools.pairwise(chain)), type_check=False)


def events(shape: tuple[int, ...], batch: int, steps: int, rate: float, seed: int = 1
           ) -> np.ndarray:
    """Random binary event input (batch, time, *shape)."""
    return (np.random.default_rng(seed).random((batch, steps, *shape)) < rate).astype(float)
