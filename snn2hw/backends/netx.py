"""lava-dl netx ``.net`` files: export a compiled program, read one back.

Layout (specs/loihi_fixed_point.md §4): ``/layer/<i>/{type, shape, weight, bias, neuron/
{type, iDecay, vDecay, vThMant, refDelay, gradedSpike}}``; conv layers add ``stride``,
``padding``, ``dilation`` (y, x) and ``groups``. Shapes are (C, H, W); conv weights are in
torch layout (netx flips them for Lava); weights and biases are integers (netx truncates
with ``astype(int)``); no ``messageBits``. netx builds ``LIF(du=iDecay-1, dv=vDecay,
vth=vThMant, bias_mant=bias, bias_exp=6)`` and runs dense weights through
``optimize_weight_bits``, which is exact when effective weights fit 8 bits (mixed:
-256..254; excitatory: 0..255; inhibitory: -256..0).

* :func:`export` writes a program as ``.net`` where it fits netx: one input port, then a
  chain of single-group populations each fed by one dense or conv block from the one
  before, integer effective weights within 8 bits, biases that are multiples of 64, no
  initial voltages, no delays, resets or recurrence. Anything else is an error naming it.
* :func:`read` (``netx_read.py``) gives a file's layers normalised; :func:`to_program` and
  :func:`compile_file` (``netx_compile.py``, from ``netx_hw.py``'s hardware model) build
  the program netx would build from it, with its own integers (our reading of netx's
  rules, not netx's code; ``docs/netx.md``).
* :func:`to_graph` (``netx_graph.py``) reads a ``.net`` file into a float NIR graph
  (LIF/IF/CubaLIF with Affine/Conv2d/Flatten at scale 64), so slayer-trained networks use
  the whole toolchain.
* :func:`run_netx` (``netx_run.py``) runs a file through lava-dl's own netx.

This module is the netx backend's front: the modules named above import nothing from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
from snn2hw_emulator.family import LAVA, LoihiLif
from snn2hw_emulator.program import NeuronGroup, Program, SynapseBlock, expanded_weights, is_sparse

from snn2hw.backends.image import io_map
from snn2hw.backends.netx_blocks import optimize_weight_bits
from snn2hw.backends.netx_compile import compile_file, to_program
from snn2hw.backends.netx_graph import to_graph
from snn2hw.backends.netx_read import read
from snn2hw.backends.netx_run import run_netx
from snn2hw.errors import DesignRuleError
from snn2hw.files import atomic_write

#: netx's implied bias exponent (6): a netx bias is in weight units, i.e. Lava's act_shift.
#: A ``.net`` file holds Lava's arithmetic (family.LAVA), whatever target it is compiled for.
BIAS_EXP = LAVA.act_shift


def _not_netx(what: str) -> DesignRuleError:
    return DesignRuleError(f"cannot export to netx: {what}",
                           hint="netx holds sequential dense/conv CUBA networks; compile a "
                                "chain without delays, biases off the weight-unit grid "
                                f"(multiples of {1 << BIAS_EXP}) or splits.")


def _effective(block: SynapseBlock, f: LoihiLif) -> np.ndarray:
    w = expanded_weights(block)
    if is_sparse(w):                 # a netx dense layer stores the whole matrix anyway
        w = w.toarray()
    e = block.weight_exp
    if e < 0 and np.any(w % (1 << -e)):
        raise _not_netx(f"block '{block.name}' has weights that are not whole after "
                        f"weight_exp {e}")
    eff = w << e if e >= 0 else w >> -e
    lo, hi = int(eff.min(initial=0)), int(eff.max(initial=0))
    top = f.weight_bound                     # netx: -256..254 mixed, else up to 255
    if (lo < 0 < hi and (hi > top - 2 or lo < -top)) or hi > f.weight_max or lo < -top:
        raise _not_netx(f"block '{block.name}' has effective weights {lo}..{hi}, beyond what "
                        f"netx keeps exactly ({f.weight_bits_max} bits)")
    return eff


def _chain(program: Program) -> list[tuple[NeuronGroup, SynapseBlock]]:
    if len(program.ports) != 1:
        raise _not_netx(f"{len(program.ports)} input ports")
    into = {g.name: [b for b in program.blocks if b.target == g.name] for g in program.groups}
    order, prev = [], program.ports[0].name
    for _ in program.groups:
        nxt = [(g, bs[0]) for g in program.groups for bs in [into[g.name]]
               if len(bs) == 1 and bs[0].source == prev]
        if len(nxt) != 1:
            break
        order.append(nxt[0])
        prev = nxt[0][0].name
    if len(order) != len(program.groups) or any(len(v) != 1 for v in into.values()):
        raise _not_netx("the program is not one chain of groups, each fed by the one before")
    return order


def export(program: Program, path: str | Path) -> None:
    """Write ``program`` as a netx ``.net`` file (atomically). netx runs Lava's models, so
    a program whose target has other arithmetic widths is refused, naming the key."""
    from snn2hw_emulator.validate import target_of

    f = target_of(program).numeric
    for key, value, lava in f.lava_mismatches()[:1]:
        raise _not_netx(f"its target's numeric.{key} = {value}, and netx (Lava's models) "
                        f"hard-wires {key} = {lava}")
    io = io_map(program)
    pops = io.populations
    layers: list[dict[str, Any]] = []
    port = program.ports[0]
    in_shape = tuple(reversed(port.shape)) if len(port.shape) == 3 else (port.size,)
    layers.append({"type": "input", "shape": in_shape})
    prev_shape, prev_perm = in_shape, np.asarray(io.ports[port.name])
    for g, b in _chain(program):
        info = next(v for v in pops.values() if v.groups == (g.name,))
        if g.model != "lif" or np.any(g.v0) or np.any(g.u0):
            raise _not_netx(f"group '{g.name}' has initial state or resets")
        if b.kind == "delay_dense":
            raise _not_netx(f"block '{b.name}' has synaptic delays")
        bias = np.asarray(g.bias_mant, dtype=np.int64) << np.asarray(g.bias_exp)
        if np.any(bias % (1 << BIAS_EXP)):
            raise _not_netx(f"group '{g.name}' has biases that are not multiples of "
                            f"{1 << BIAS_EXP}")
        neuron = {"iDecay": g.du + 1, "vDecay": g.dv, "vThMant": g.vth}
        perm = np.asarray(info.index)
        out_shape = tuple(reversed(g.shape)) if len(g.shape) == 3 else (g.size,)
        if b.kind == "conv":
            c = b.conv or {}
            w = np.asarray(b.weights)[:, ::-1, ::-1, :].transpose(0, 3, 2, 1)  # torch xcorr
            layers.append({"type": "conv", "shape": out_shape, "weight": w,
                           "stride": tuple(reversed(c["stride"])),
                           "padding": tuple(reversed(c["padding"])),
                           "dilation": tuple(reversed(c["dilation"])),
                           "groups": int(c["groups"]), "neuron": neuron,
                           "bias": _channel_bias(bias, g, out_shape)})
        else:
            if len(prev_shape) == 3:
                layers.append({"type": "flatten", "shape": (int(np.prod(prev_shape)),)})
            eff = _effective(b, f)               # rows: group order; columns: source order
            w = np.zeros((g.size, eff.shape[1]), dtype=np.int64)
            w[np.ix_(perm, prev_perm)] = eff     # netx: NIR (C, H, W) order on both sides
            nir_bias = np.zeros(g.size, dtype=np.int64)
            nir_bias[perm] = bias >> BIAS_EXP
            layers.append({"type": "dense", "shape": (g.size,), "weight": w,
                           "bias": nir_bias, "neuron": neuron})
        prev_shape, prev_perm = out_shape, perm
    atomic_write(path, lambda tmp: _write(tmp, layers), what="netx file")


def _channel_bias(bias: np.ndarray, g: NeuronGroup, out_shape: tuple[int, ...]
                  ) -> np.ndarray:
    per = (bias >> BIAS_EXP).reshape(g.shape)           # (W, H, C)
    if not np.all(per == per[:1, :1, :]):
        raise _not_netx(f"conv group '{g.name}' has a bias that differs within a channel")
    return per[0, 0, :]


def _write(path: str, layers: list[dict[str, Any]]) -> None:
    with h5py.File(path, "w") as f:
        top = f.create_group("layer")
        for k, layer in enumerate(layers):
            h = top.create_group(str(k))
            h.create_dataset("type", (1,), "S10", [layer["type"].encode("ascii")])
            h.create_dataset("shape", data=np.asarray(layer["shape"], dtype=np.int64))
            for key in ("stride", "padding", "dilation"):
                if key in layer:
                    h.create_dataset(key, data=np.asarray(layer[key], dtype=np.int64))
            if "groups" in layer:
                h.create_dataset("groups", data=int(layer["groups"]))
            for key in ("weight", "bias"):
                if key in layer:
                    h.create_dataset(key, data=np.asarray(layer[key], dtype=np.float32))
            if "neuron" in layer:
                n = h.create_group("neuron")
                n.create_dataset("type", data="CUBA")
                for key, value in layer["neuron"].items():
                    n.create_dataset(key, data=int(value))
                n.create_dataset("refDelay", data=1)
                n.create_dataset("gradedSpike", data=False)


__all__ = ["compile_file", "export", "optimize_weight_bits", "read", "run_netx", "to_graph",
           "to_program"]
