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
  :func:`compile_file` (``netx_hw.py``) build the program netx would build from it, with
  its own integers (our reading of netx's rules, not netx's code; ``docs/netx.md``).
* :func:`to_graph` reads a ``.net`` file into a float NIR graph (LIF/IF/CubaLIF with
  Affine/Conv2d/Flatten at scale 64), so slayer-trained networks use the whole toolchain.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

import h5py
import nir
import numpy as np
from snn2hw_emulator.family import LAVA, LoihiLif
from snn2hw_emulator.program import NeuronGroup, Program, SynapseBlock, expanded_weights, is_sparse

from snn2hw import checker, ir
from snn2hw.backends import netx_read
from snn2hw.backends.image import io_map
from snn2hw.backends.netx_hw import compile_file, to_program
from snn2hw.backends.netx_read import read
from snn2hw.errors import DesignRuleError, UnsupportedError, UserInputError
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
    pops = io["populations"]
    layers: list[dict[str, Any]] = []
    port = program.ports[0]
    in_shape = tuple(reversed(port.shape)) if len(port.shape) == 3 else (port.size,)
    layers.append({"type": "input", "shape": in_shape})
    prev_shape, prev_perm = in_shape, np.asarray(io["ports"][port.name])
    for g, b in _chain(program):
        info = next(v for v in pops.values() if v["groups"] == [g.name])
        if g.model != "lif" or np.any(g.v0) or np.any(g.u0):
            raise _not_netx(f"group '{g.name}' has initial state or resets")
        if b.kind == "delay_dense":
            raise _not_netx(f"block '{b.name}' has synaptic delays")
        bias = np.asarray(g.bias_mant, dtype=np.int64) << np.asarray(g.bias_exp)
        if np.any(bias % (1 << BIAS_EXP)):
            raise _not_netx(f"group '{g.name}' has biases that are not multiples of "
                            f"{1 << BIAS_EXP}")
        neuron = {"iDecay": g.du + 1, "vDecay": g.dv, "vThMant": g.vth}
        perm = np.asarray(info["index"])
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


# --------------------------------------------------------------------------- reading
# read (netx_read.py): the layers, normalised; to_program and compile_file (netx_hw.py):
# the file's integers as netx runs them.

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


RUNNER = Path(__file__).with_name("netx_runner.py")


def run_netx(path: str | Path, spikes: Any, *, input_shape: tuple[int, ...] | None = None,
             timeout: float = 1800) -> dict[str, list[np.ndarray]]:
    """Run a ``.net`` file through lava-dl's own netx (``hdf5.Network``) on Lava's
    fixed-point CPU models, in the Lava environment (``snn2hw lava install --netx``).

    ``spikes`` (B, T, n) are in the order of netx's input port flattened (Lava's C order of
    its (x, y, f) shape); ``input_shape`` (x, y, f) is only needed when the file has no
    input layer. Returns ``{"spikes"|"u"|"v": [per block (B, T, n)]}`` in block order.
    """
    from snn2hw import lava_env

    python = lava_env.netx_interpreter()
    x = np.asarray(spikes)
    if x.ndim != 3:
        raise UserInputError(f"netx input spikes have shape {x.shape}; expected (B, T, n)")
    with tempfile.TemporaryDirectory(prefix="snn2hw-netx-") as tmp:
        script, data, result = (Path(tmp) / n for n in ("run.py", "in.npz", "out.npz"))
        shutil.copyfile(RUNNER, script)            # not beside snn2hw/backends/lava.py
        extra = {} if input_shape is None else {"input_shape": np.asarray(input_shape)}
        np.savez(data, spikes=x.astype(np.int32), **extra)
        lava_env.run_script(python, [str(script), str(path), str(data), str(result)],
                            timeout=timeout, what=f"the netx run of '{path}'",
                            hint="Check the file with `snn2hw inspect`; netx builds input, "
                                 "dense, conv and flatten layers.")
        with np.load(result) as f:
            blocks = len({k.split("/")[2] for k in f.files})
            return {var: [np.stack([f[f"s{b}/{var}/{k}"] for b in range(len(x))])
                          for k in range(blocks)] for var in ("spikes", "u", "v")}


def to_graph(path: str | Path, *, dt: float = 1e-3,
             input_shape: tuple[int, ...] | None = None, sdnn_stand_in: bool = False
             ) -> ir.Graph:
    """A float NIR graph of a ``.net`` file at scale 2^act_shift (v_float = v_int / 64, in
    Lava's widths: family.LAVA). An input
    layer with neurons becomes a unit Scale into them (its inputs are the values netx
    puts into ``a_in``, in weight units). An SDNN file is refused (NIR has no sigma-delta
    neuron) unless ``sdnn_stand_in``: then its neurons are marked IF stand-ins
    (``netx_sdnn.stand_in``), a graph for its input shape and the compiled integers only."""
    from snn2hw.backends import netx_sdnn

    layers = read(path)
    if netx_sdnn.is_sdnn(layers) and not sdnn_stand_in:
        netx_sdnn.refuse_graph(path, layers)
    shape, body = netx_read.input_shape(layers, input_shape)
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(np.array(shape))}
    edges, prev = [], "input"
    for layer in body:
        name = f"layer{layer['index']}"
        if layer["type"] == "flatten":
            nodes[name] = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0)
            edges.append((prev, name))
            prev, shape = name, (int(np.prod(shape)),)
            continue
        out = tuple(int(s) for s in layer["shape"])
        if layer["type"] == "input":
            nodes[f"{name}.w"] = nir.Scale(np.ones(out))
        elif layer["type"] == "conv":
            nodes[f"{name}.w"] = nir.Conv2d(
                input_shape=np.array(shape[1:]), weight=layer["weight"].astype(float),
                stride=layer["stride"], padding=layer["padding"],
                dilation=layer["dilation"], groups=layer["groups"],
                bias=np.asarray(layer.get("bias", np.zeros(out[0])), dtype=float))
        else:
            out = (int(np.prod(out)),)
            bias = np.broadcast_to(np.asarray(layer.get("bias", 0), dtype=float), out)
            nodes[f"{name}.w"] = nir.Affine(layer["weight"].astype(float), bias.copy())
        nodes[name] = _neuron(name, layer["neuron"], out, dt)
        edges += [(prev, f"{name}.w"), (f"{name}.w", name)]
        prev, shape = name, out
    nodes["output"] = nir.Output(np.array(shape))
    edges.append((prev, "output"))
    meta = {"dt": dt, "reset": "zero", "source": f"netx:{Path(path).name}"}
    return checker.from_nir(nir.NIRGraph(nodes, edges, type_check=False), metadata=meta)


def _neuron(name: str, nrn: dict[str, int], shape: tuple[int, ...], dt: float) -> nir.NIRNode:
    if nrn["type"] == "SDNN":
        from snn2hw.backends import netx_sdnn

        return netx_sdnn.stand_in(name, nrn, shape)
    ones = np.ones(shape)
    theta = ones * nrn["vThMant"]
    a_syn, a_mem = nrn["iDecay"] / LAVA.decay_one, nrn["vDecay"] / LAVA.decay_one
    if nrn["iDecay"] == 0 and a_mem >= 1:     # netx's default integrator: v = u = sum of input
        return nir.IF(r=ones, v_threshold=theta, v_reset=0 * ones)
    if a_mem >= 1:
        raise UnsupportedError(f"layer '{name}' has vDecay {nrn['vDecay']} (no voltage memory), "
                               "which a NIR neuron cannot express", node=name)
    if a_syn >= 1:                 # no current memory: u = input each step
        if a_mem == 0:
            return nir.IF(r=ones, v_threshold=theta, v_reset=0 * ones)
        return nir.LIF(tau=ones * dt / a_mem, r=ones / a_mem, v_leak=0 * ones,
                       v_threshold=theta, v_reset=0 * ones)
    if a_mem == 0 or a_syn == 0:
        raise UnsupportedError(f"layer '{name}' is a current-based neuron with iDecay "
                               f"{nrn['iDecay']} and vDecay {nrn['vDecay']}, which NIR's "
                               "CubaLIF cannot express (infinite time constant)", node=name)
    return nir.CubaLIF(tau_syn=ones * dt / a_syn, tau_mem=ones * dt / a_mem, r=ones / a_mem,
                       v_leak=0 * ones, v_threshold=theta, v_reset=0 * ones,
                       w_in=ones / a_syn)

__all__ = ["export", "read", "to_program", "to_graph", "run_netx", "optimize_weight_bits",
           "compile_file"]
