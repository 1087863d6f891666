"""What both kinds of lava-dl ``.net`` file (CUBA: netx_hw.py, SDNN: netx_sdnn.py) build
their hardware model from: Lava's arithmetic (a ``.net`` file holds Lava's integers),
netx's dense-weight transformation, the hardware layout of a layer, its synapse blocks,
and the assembled ``HwNet``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from snn2hw_emulator.family import LAVA, LoihiLif

from snn2hw.errors import UnsupportedError
from snn2hw.passes.hwmodel import HwBlock, HwGroup, HwNet

#: A ``.net`` file's integers are Lava's arithmetic (family.LAVA): netx builds Lava's models.
F = LAVA
BIAS_EXP = F.act_shift       # netx's implied bias exponent (6): biases in weight units
INPUT_BITS = F.state_bits    # graded input payload into an input layer, as wide as the
                             # state it lands in (24; Lava: int32 a_in)
META_KEY = "snn2hw.netx"     # program metadata: source file, input lag, groups' netx blocks


def optimize_weight_bits(w: np.ndarray, f: LoihiLif = LAVA) -> tuple[np.ndarray, int, int]:
    """netx's dense-weight transformation as documented (full-scale weights, number of
    weight bits, weight exponent): lossless for effective weights within the full scale.
    In ``f``'s widths (the target's family record; default: Lava's, where netx's figures
    are: B = weight_bits_max = 8, a mixed clip to -256..254, scales 255, 127/-128, -256)."""
    bound = f.weight_bound                        # 2^B: 256
    w = np.asarray(w, dtype=np.int64)
    hi, lo = int(w.max()), int(w.min())
    if (hi > bound - 2 and lo < 0) or (lo < -bound and hi > 0):
        w = np.clip(w, -bound, bound - 2)
        hi, lo = int(w.max()), int(w.min())
    signed = int(lo < 0 <= hi and not hi < 0)
    if hi < 0:
        scale, signed = -bound / lo, 0
    elif lo >= 0:
        scale = f.weight_max / hi
    else:
        scale = min((bound // 2 - 1) / hi, -(bound // 2) / lo)
    bits = math.floor(math.log2(scale)) + signed
    n = f.weight_bits_max
    while n > 0 and np.any(w % (1 << n)):
        n -= 1
    n -= signed
    return w << bits, int(f.weight_bits_max - bits - n), int(-bits)


def hw_layout(shape: tuple[int, ...]) -> tuple[tuple[int, ...], np.ndarray]:
    """Hardware shape ((W, H, C) for images) and the NIR (C, H, W) flat index of each
    hardware position (C order)."""
    if len(shape) != 3:
        n = int(np.prod(shape))
        return (n,), np.arange(n)
    return tuple(reversed(shape)), np.arange(int(np.prod(shape))).reshape(shape).transpose(
        2, 1, 0).ravel()


def identity(name: str, shape: tuple[int, ...]) -> HwBlock:
    if len(shape) == 3:              # 1x1 convolution with an identity kernel (C, 1, 1, C)
        c = shape[0]
        return HwBlock(name, "input", name.split(".")[0], "conv",
                       np.eye(c, dtype=np.int64).reshape(c, 1, 1, c), 0, F.weight_bits_max,
                       "auto",
                       conv={"stride": (1, 1), "padding": (0, 0), "dilation": (1, 1),
                             "groups": 1})
    n = int(np.prod(shape))
    return HwBlock(name, "input", name.split(".")[0], "dense", np.eye(n, dtype=np.int64),
                   0, F.weight_bits_max, "auto")


def dense_block(path: Path, layer: dict[str, Any], name: str, source: str) -> HwBlock:
    k, w = layer["index"], layer["weight"]
    if not np.any(w):
        raise UnsupportedError(f"layer {k} of '{path.name}' has all-zero weights, on which "
                               "netx's optimize_weight_bits fails", node=f"layer{k}",
                               hint="Drop the layer or give it weights.")
    full, nwb, wexp = optimize_weight_bits(w)
    delay = 0
    if "delay" in layer:
        d = np.unique(layer["delay"][w != 0])
        if d.size > 1:
            raise UnsupportedError(f"layer {k} of '{path.name}' has per-synapse delays "
                                   f"({d.min()}..{d.max()}); snn2hw gives a layer one delay",
                                   node=f"layer{k}", hint="Export one delay per layer.")
        delay = int(d[0]) if d.size else 0
    return HwBlock(f"{name}.w", source, name, "dense", full, wexp, nwb, "auto", delay=delay)


def conv_block(layer: dict[str, Any], name: str, source: str) -> HwBlock:
    w = layer["weight"][:, :, ::-1, ::-1].transpose(0, 3, 2, 1)    # torch xcorr -> Lava
    conv = {key: tuple(reversed(layer[key])) for key in ("stride", "padding", "dilation")}
    conv["groups"] = layer["groups"]
    return HwBlock(f"{name}.w", source, name, "conv", np.ascontiguousarray(w), 0,
                   F.weight_bits_max, "auto", conv=conv)


def assemble(groups: list[HwGroup], blocks: list[HwBlock], port_shape: tuple[int, ...],
             port_index: np.ndarray, info: dict[str, Any]) -> HwNet:
    """The hardware model of a netx file's groups and blocks (CUBA here, SDNN in
    ``netx_sdnn``), with the file's integers as the quantise report."""
    layouts = {"input": port_index, **{g.name: g.index for g in groups}}
    shapes = {"input": port_shape, **{g.name: g.shape for g in groups}}
    layers = {g.name: {"neurons": g.size, "scale": g.scale, "limited_by": "netx file",
                       "vth": g.vth, "du": g.du, "dv": g.dv,
                       "inputs": {b.source: {"kind": b.kind, "weight_exp": b.weight_exp,
                                             "bits_used": b.num_weight_bits, "rms_error": 0.0,
                                             "delay": b.delay}
                                  for b in blocks if b.target == g.name}} for g in groups}
    return HwNet(tuple(groups), tuple(blocks), layouts, shapes, ("input",),
                 {"output": groups[-1].name},
                 {"source": "netx", "netx": info, "quantise": layers})


__all__ = [
    "BIAS_EXP",
    "INPUT_BITS",
    "META_KEY",
    "F",
    "assemble",
    "conv_block",
    "dense_block",
    "hw_layout",
    "identity",
    "optimize_weight_bits",
]
