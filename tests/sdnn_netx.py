"""A program image built straight from a lava-dl SDNN ``.net`` file with the integers
netx builds (lava-dl 0.6 ``netx/hdf5.py``, docs/sigma_delta.md §1), for checking the
emulator's sigma-delta arithmetic against netx on the published networks. A test helper,
not the product's netx reader (snn2hw/backends/netx*.py).

* input layer (SDNN neuron) -> a ``delta`` group (vth = vThMant, spike_exp = state_exp = 6),
  fed by a graded 1x1 identity convolution from the port: one step of latency that netx,
  which puts the input straight into the Delta's ``a_in``, does not have (feed netx the
  input one step later to compare step by step);
* conv -> Lava-layout weights (flipped, (C_out, kW, kH, C_in)), per-channel bias, 16-bit
  graded input (netx's default ``messageBits`` for SDNN);
* flatten + dense -> netx's (c, y, x) flatten order and ``optimize_weight_bits``;
* SDNN neurons -> ``sigma_delta`` groups (RELU, the layer's bias), or ``sigma`` groups for
  ``sigma_output`` layers.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
from pathlib import Path

import h5py
import numpy as np

from snn2hw import targets
from snn2hw.backends.netx import optimize_weight_bits
from snn2hw_emulator.program import Core, NeuronGroup, OutputPort, Port, Program, SynapseBlock

SPIKE_EXP = STATE_EXP = 6       # netx: Network(spike_exp=6), state_exp=6 (hdf5.py:72, 176)
MESSAGE_BITS = 16               # netx's default for SDNN (hdf5.py:168-169)
INPUT_BITS = 24


def unpack(gz: Path, folder: Path) -> Path:
    out = folder / gz.name.removesuffix(".gz")
    with gzip.open(gz) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return out


def _zeros(n: int) -> np.ndarray:
    return np.zeros(n, np.int64)


def _group(name: str, model: str, shape: tuple[int, ...], vth: int, bias: np.ndarray
           ) -> NeuronGroup:
    n = int(np.prod(shape))
    exps = (0, 0) if model == "sigma" else (SPIKE_EXP, STATE_EXP)
    return NeuronGroup(name, model, n, shape, 0, 0, vth, bias, _zeros(n), _zeros(n),  # type: ignore[arg-type]
                       _zeros(n), spike_exp=exps[0], state_exp=exps[1])


def _pair(g: h5py.Group, key: str) -> tuple[int, int]:
    v = np.atleast_1d(g[key][()])
    return (int(v[0]), int(v[0])) if v.size == 1 else (int(v[1]), int(v[0]))   # (x, y)


def _neuron(name: str, g: h5py.Group, shape: tuple[int, ...]) -> NeuronGroup:
    if "sigma_output" in g["neuron"]:
        return _group(name, "sigma", shape, 0, _zeros(int(np.prod(shape))))
    bias = np.zeros(shape)
    if "bias" in g:
        bias[...] = g["bias"][()]                      # per channel (last axis) or neuron
    return _group(name, "sigma_delta", shape, int(g["neuron/vThMant"][()]),
                  np.trunc(bias).astype(np.int64).ravel())


def build(path: Path) -> Program:
    """The program for an SDNN file: input, conv, flatten and dense layers."""
    with h5py.File(path) as f:
        layers = [f["layer"][str(i)] for i in range(len(f["layer"]))]
        inp = layers[0]
        shape = tuple(int(v) for v in inp["shape"][()][::-1])            # (x, y, c)
        n, c = int(np.prod(shape)), shape[-1]
        groups = [_group("L0", "delta", shape, int(inp["neuron/vThMant"][()]), _zeros(n))]
        eye = np.eye(c, dtype=np.int32).reshape(c, 1, 1, c)
        blocks = [SynapseBlock("W0", "conv", "in", "L0", eye, num_message_bits=INPUT_BITS,
                               conv={"stride": (1, 1), "padding": (0, 0),
                                     "dilation": (1, 1), "groups": 1})]
        prev = groups[0]
        for i, g in enumerate(layers[1:], start=1):
            kind = g["type"][()][0].decode()
            if kind == "flatten":
                continue
            name = f"L{i}"
            if kind == "conv":
                out = tuple(int(v) for v in g["shape"][()][::-1])
                w = g["weight"][()][:, :, ::-1, ::-1]
                w = np.trunc(w.reshape(w.shape[:4]).transpose(0, 3, 2, 1)).astype(np.int32)
                blocks.append(SynapseBlock(
                    f"W{i}", "conv", prev.name, name, w, num_message_bits=MESSAGE_BITS,
                    conv={"stride": _pair(g, "stride"), "padding": _pair(g, "padding"),
                          "dilation": _pair(g, "dilation"), "groups": int(g["groups"][()])}))
            elif kind == "dense":
                x, y, ch = prev.shape if len(prev.shape) == 3 else (prev.size, 1, 1)
                order = np.arange(x * y * ch).reshape(ch, y, x).transpose(2, 1, 0).ravel()
                w = np.trunc(g["weight"][()]).astype(np.int64)[:, order]
                full, nwb, wexp = optimize_weight_bits(w)
                out = (int(np.prod(g["shape"][()])),)
                blocks.append(SynapseBlock(f"W{i}", "dense", prev.name, name,
                                           full.astype(np.int32), weight_exp=wexp,
                                           num_weight_bits=nwb, num_message_bits=MESSAGE_BITS))
            else:
                raise ValueError(f"layer {i}: {kind} is not an SDNN layer this helper builds")
            prev = _neuron(name, g, out)
            groups.append(prev)
    t = targets.load("loihi2")       # PilotNet's input layer exceeds a core: larger cores
    toml = t.toml.replace("neurons_max = 8192", "neurons_max = 131072", 1)
    cores = tuple(Core(k, 0, (g.name,), tuple(b.name for b in blocks if b.target == g.name))
                  for k, g in enumerate(groups))
    return Program(f"{t.name}-large-cores", hashlib.sha256(toml.encode()).hexdigest(), toml,
                   (Port("in", n, shape, INPUT_BITS),), tuple(groups), tuple(blocks), cores,
                   (OutputPort("out", groups[-1].name),), {"source": path.name})


def frames(program: Program, steps: int, seed: int) -> np.ndarray:
    """(steps, n) pixel-like values 0..255 that drift over time (a graded input stream)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, program.ports[0].size)
    drift = rng.integers(-20, 21, (steps, base.size)) * (rng.random((steps, base.size)) < 0.3)
    return np.clip(base + np.cumsum(drift, axis=0), 0, 255).astype(np.int32)
