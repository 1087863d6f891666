"""Random program images for emulator and differential tests (built by hand, no compiler)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from snn2hw_emulator.program import Core, NeuronGroup, OutputPort, Port, Program, SynapseBlock

from snn2hw import targets


def _group(rng: np.random.Generator, name: str, n: int, wild: bool) -> NeuronGroup:
    small = rng.random() < 0.5
    du = int(rng.integers(0, 4096 if not small else 512))
    dv = int(rng.integers(0, 4096 if not small else 512))
    vth = int(rng.integers(1, 131072 if wild else 3000))
    reset = rng.random() < 0.2
    return NeuronGroup(
        name=name, model="lif_reset" if reset else "lif", size=n, shape=(n,), du=du, dv=dv,
        vth=vth, bias_mant=rng.integers(-4095, 4096, n) * (rng.random(n) < 0.3),
        bias_exp=rng.integers(0, 8, n), u0=rng.integers(-(2**22), 2**22, n) * (rng.random() < 0.3),
        v0=rng.integers(-(2**22), 2**22, n) * (rng.random() < 0.3),
        reset_interval=int(rng.integers(1, 6)) if reset else 0,
        reset_offset=int(rng.integers(0, 6)) if reset else 0)


def _weights(rng: np.random.Generator, shape: tuple[int, int], mode: str) -> np.ndarray:
    w = rng.integers(-256, 257, shape)
    if mode == "exc":
        w = np.abs(w)
    elif mode == "inh":
        w = -np.abs(w)
    return (w * (rng.random(shape) < 0.6)).astype(np.int32)


def _codebook(rng: np.random.Generator, shape: tuple[int, int], mode: str,
              scope: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(indices (n_tgt, n_src) in -1..K-1, table (R, K)): R = 1 ("layer") or n_tgt
    ("neuron"), K = 1..8, values a little past the 8-bit range (clipping is exercised),
    often with -1 (no synapse) entries."""
    scope = scope or str(rng.choice(["layer", "neuron"]))
    k = int(rng.integers(1, 9))
    table = rng.integers(-300, 301, (1 if scope == "layer" else shape[0], k))
    if mode == "exc":
        table = np.abs(table)
    elif mode == "inh":
        table = -np.abs(table)
    missing = float(rng.choice([0.0, 0.2, 0.5]))
    idx = np.where(rng.random(shape) < missing, -1, rng.integers(0, k, shape))
    return idx.astype(np.int32), table.astype(np.int32)


def _block(rng: np.random.Generator, name: str, src: str, tgt: str, n_src: int, n_tgt: int,
           kind: str, graded: bool, scope: str | None = None) -> SynapseBlock:
    mode = str(rng.choice(["auto", "auto", "mixed", "exc", "inh"]))
    data_mode = mode if mode != "auto" else str(rng.choice(["mixed", "exc", "inh"]))
    delays = rng.integers(0, 6, (n_tgt, n_src)) if kind == "delay_dense" else None
    codebook = None
    if kind == "codebook":
        weights, codebook = _codebook(rng, (n_tgt, n_src), data_mode, scope)
    else:
        weights = _weights(rng, (n_tgt, n_src), data_mode)
    return SynapseBlock(name=name, kind=kind, source=src, target=tgt,  # type: ignore[arg-type]
                        weights=weights, weight_exp=int(rng.integers(-8, 8)),
                        num_weight_bits=int(rng.integers(1, 9)),
                        sign_mode=mode, num_message_bits=8 if graded else 0,  # type: ignore[arg-type]
                        delays=delays, codebook=codebook)


def random_program(seed: int, *, layers: int = 3, max_size: int = 12, target: str = "loihi2",
                   graded: bool | None = None, recurrent: bool | None = None,
                   wild: bool | None = None, kinds: Sequence[str] | None = None,
                   scope: str | None = None) -> Program:
    """Port -> [block -> LIF group] x layers, optional recurrent block on the middle group.
    Sign modes, weight bits 1..8, weight_exp -8..7, sparse and delayed blocks, LIFReset,
    graded 8-bit input, and "wild" parameters that saturate v and wrap u. ``kinds``: the
    block kinds to draw from (also for the recurrent block; default: dense, sparse,
    delay_dense between layers and a dense recurrent block, drawn as before so that a seed
    keeps its program); ``scope``: codebook tables "layer" (R = 1) or "neuron"
    (R = n_target), default drawn per block."""
    rng = np.random.default_rng(seed)
    graded = bool(rng.random() < 0.3) if graded is None else graded
    recurrent = bool(rng.random() < 0.4) if recurrent is None else recurrent
    wild = bool(rng.random() < 0.3) if wild is None else wild
    sizes = [int(x) for x in rng.integers(2, max_size + 1, layers + 1)]
    port = Port("in", sizes[0], (sizes[0],), 8 if graded else 0)
    groups, blocks, prev = [], [], "in"
    for k in range(layers):
        g = _group(rng, f"L{k}", sizes[k + 1], wild)
        kind = str(rng.choice(["dense", "dense", "sparse", "delay_dense"] if kinds is None
                              else list(kinds)))
        blocks.append(_block(rng, f"W{k}", prev, g.name, sizes[k], sizes[k + 1], kind,
                             graded and k == 0, scope))
        groups.append(g)
        prev = g.name
    if recurrent:
        mid = groups[len(groups) // 2]
        kind = "dense" if kinds is None else str(rng.choice(list(kinds)))
        blocks.append(_block(rng, "Wrec", mid.name, mid.name, mid.size, mid.size, kind, False,
                             scope))
    t = targets.load(target)
    cores = tuple(Core(i, 0, (g.name,), tuple(b.name for b in blocks if b.target == g.name))
                  for i, g in enumerate(groups))
    return Program(target_name=t.name, target_hash=t.sha256, target_toml=t.toml, ports=(port,),
                   groups=tuple(groups), blocks=tuple(blocks), cores=cores,
                   outputs=(OutputPort("out", groups[-1].name),), metadata={"seed": seed})


def with_block(program: Program, block: SynapseBlock) -> Program:
    """``program`` with one more block, placed on the core of its target group (the image
    checks that every block sits there)."""
    cores = tuple(Core(c.index, c.chip, c.groups, (*c.blocks, block.name))
                  if block.target in c.groups else c for c in program.cores)
    return dataclasses.replace(program, blocks=(*program.blocks, block), cores=cores)


def codebook_program(seed: int, *, scope: str | None = None, graded: bool | None = None,
                     recurrent: bool | None = None, wild: bool | None = None) -> Program:
    """A random program whose blocks (the recurrent one too) are all codebook blocks."""
    return random_program(seed, graded=graded, recurrent=recurrent, wild=wild,
                          kinds=("codebook",), scope=scope)


def one_block_program(block: SynapseBlock, n_source: int, n_target: int, *,
                      message_bits: int = 0) -> Program:
    """Port "in" -> ``block`` -> one LIF group "L0" (no leak, high threshold): for
    hand-computed checks of a single block."""
    group = NeuronGroup(name="L0", model="lif", size=n_target, shape=(n_target,), du=4095,
                        dv=0, vth=100000, bias_mant=np.zeros(n_target, np.int64),
                        bias_exp=np.zeros(n_target, np.int64), u0=np.zeros(n_target, np.int64),
                        v0=np.zeros(n_target, np.int64))
    t = targets.load("loihi2")
    if n_source > t.core.fan_in_axons_max:     # wide sums: on cores that hold them (the
        from snn2hw.backends import netx_sdnn  # design rules check every image)

        t = netx_sdnn.big_core(t)
    return Program(t.name, t.sha256, t.toml, (Port("in", n_source, (n_source,), message_bits),),
                   (group,), (block,), (Core(0, 0, ("L0",), (block.name,)),),
                   (OutputPort("out", "L0"),))


def random_inputs(program: Program, seed: int, batch: int, steps: int,
                  rate: float = 0.3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    port = program.ports[0]
    if port.message_bits:
        return (rng.integers(-200, 200, (batch, steps, port.size)) *
                (rng.random((batch, steps, port.size)) < rate)).astype(np.int32)
    return (rng.random((batch, steps, port.size)) < rate).astype(np.int8)


def conv_program(seed: int, *, stride: int = 1, padding: int = 1, groups: int = 1,
                 graded: bool = False) -> Program:
    """Port (X, Y, C) -> Conv (Lava layout) -> LIF (X', Y', C') -> Dense -> LIF."""
    rng = np.random.default_rng(seed)
    x, y, c, co, k = 6, 5, 2 * groups, 2 * groups, 3
    xo = (x + 2 * padding - k) // stride + 1
    yo = (y + 2 * padding - k) // stride + 1
    conv_w = rng.integers(-60, 61, (co, k, k, c // groups)).astype(np.int32)
    g1 = _group(rng, "C0", xo * yo * co, False)
    g1 = NeuronGroup(**{**g1.__dict__, "shape": (xo, yo, co), "model": "lif", "vth": 40,
                        "reset_interval": 0, "reset_offset": 0})
    g2 = _group(rng, "D0", 4, False)
    blocks = (SynapseBlock("Wc", "conv", "in", "C0", conv_w, num_message_bits=8 if graded else 0,
                           conv={"stride": (stride, stride), "padding": (padding, padding),
                                 "dilation": (1, 1), "groups": groups}),
              _block(rng, "Wd", "C0", "D0", g1.size, 4, "dense", False))
    t = targets.load("loihi2")
    cores = (Core(0, 0, ("C0",), ("Wc",)), Core(1, 0, ("D0",), ("Wd",)))
    return Program(t.name, t.sha256, t.toml, (Port("in", x * y * c, (x, y, c),
                                                   8 if graded else 0),),
                   (g1, g2), blocks, cores, (OutputPort("out", "D0"),), {"seed": seed})
