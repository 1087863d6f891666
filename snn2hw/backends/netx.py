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
* :func:`to_program` builds the program netx would build from a ``.net`` file (our
  reading of netx's rules, not netx's code), so a file can be run on the emulator or Lava
  and compared with the program it came from.
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

from snn2hw import ir
from snn2hw.backends.image import io_map
from snn2hw.errors import DesignRuleError, ModelFileError, UnsupportedError, UserInputError
from snn2hw.files import atomic_write
from snn2hw_emulator.program import (Core, NeuronGroup, OutputPort, Port, Program,
                                     SynapseBlock, expanded_weights)

BIAS_EXP = 6          # netx's implied bias exponent


def _not_netx(what: str) -> DesignRuleError:
    return DesignRuleError(f"cannot export to netx: {what}",
                           hint="netx holds sequential dense/conv CUBA networks; compile a "
                                "chain without delays, biases off the 64-grid or splits.")


def _effective(block: SynapseBlock) -> np.ndarray:
    w = expanded_weights(block)
    e = block.weight_exp
    if e < 0 and np.any(w % (1 << -e)):
        raise _not_netx(f"block '{block.name}' has weights that are not whole after "
                        f"weight_exp {e}")
    eff = w << e if e >= 0 else w >> -e
    lo, hi = int(eff.min(initial=0)), int(eff.max(initial=0))
    if (lo < 0 < hi and (hi > 254 or lo < -256)) or hi > 255 or lo < -256:
        raise _not_netx(f"block '{block.name}' has effective weights {lo}..{hi}, beyond what "
                        "netx keeps exactly (8 bits)")
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
    """Write ``program`` as a netx ``.net`` file (atomically)."""
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
            raise _not_netx(f"group '{g.name}' has biases that are not multiples of 64")
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
            eff = _effective(b)                  # rows: group order; columns: source order
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


def read(path: str | Path) -> list[dict[str, Any]]:
    """The layers of a ``.net`` file as dicts (values as netx reads them)."""
    p = Path(path)
    if not p.is_file() or not h5py.is_hdf5(p):
        raise ModelFileError(f"'{p}' is not a netx .net (HDF5) file")
    layers = []
    with h5py.File(p, "r") as f:
        if "layer" not in f:
            raise ModelFileError(f"'{p}' has no /layer group", hint="Not a netx network file.")
        for k in range(len(f["layer"])):
            h = f["layer"][str(k)]
            raw = h["type"][()]
            kind = (raw[0] if np.ndim(raw) else raw)
            layer: dict[str, Any] = {"type": kind.decode() if isinstance(kind, bytes) else kind}
            for key in ("shape", "stride", "padding", "dilation", "groups"):
                if key in h:
                    layer[key] = np.asarray(h[key][()])
            for key in ("weight", "bias"):
                if key in h:
                    layer[key] = np.asarray(h[key][()]).astype(int)      # netx truncates
            if "neuron" in h:
                n = h["neuron"]
                ntype = n["type"][()]
                layer["neuron"] = {key: int(n[key][()]) for key in ("iDecay", "vDecay",
                                                                       "vThMant") if key in n}
                layer["neuron"]["type"] = ntype.decode() if isinstance(ntype, bytes) else ntype
                # netx ignores gradedSpike (it runs such layers with binary spikes) and
                # sends graded spikes where messageBits > 0: either way not what we read
                graded = bool(n["gradedSpike"][()]) if "gradedSpike" in n else False
                graded |= "messageBits" in n and int(np.asarray(n["messageBits"][()])) > 0
                if layer["neuron"]["type"] not in ("CUBA", "LOIHI") or graded:
                    raise UnsupportedError(
                        f"layer {k} of '{p}' has {layer['neuron']['type']} neurons"
                        f"{' with graded spikes' if graded else ''}; snn2hw reads CUBA "
                        "(LIF) neurons with binary spikes", node=f"layer{k}",
                        hint="Retrain with slayer's cuba blocks and binary spikes.")
            layers.append(layer)
    return layers


def optimize_weight_bits(w: np.ndarray) -> tuple[np.ndarray, int, int]:
    """netx's dense-weight transformation as documented (full-scale weights, number of
    weight bits, weight exponent): lossless for effective weights within 8 bits."""
    w = np.asarray(w, dtype=np.int64)
    hi, lo = int(w.max()), int(w.min())
    if (hi > 254 and lo < 0) or (lo < -256 and hi > 0):
        w = np.clip(w, -256, 254)
        hi, lo = int(w.max()), int(w.min())
    signed = int(lo < 0 <= hi and not hi < 0)
    if hi < 0:
        scale, signed = -256 / lo, 0
    elif lo >= 0:
        scale = 255 / hi
    else:
        scale = min(127 / hi, -128 / lo)
    bits = math.floor(math.log2(scale)) + signed
    n = 8
    while n > 0 and np.any(w % (1 << n)):
        n -= 1
    n -= signed
    return w << bits, int(8 - bits - n), int(-bits)


def _input(layers: list[dict[str, Any]], given: tuple[int, ...] | None
           ) -> tuple[tuple[int, ...], list[tuple[int, dict[str, Any]]]]:
    """The network's input shape (C, H, W) or (n,), and its other layers with their index.
    Without an input layer (slayer exports start at the first block), the shape is
    ``given`` or inferred from the first layer where that is unambiguous."""
    if not layers:
        raise ModelFileError("the .net file has no layers")
    if layers[0]["type"] == "input":
        return tuple(int(s) for s in layers[0]["shape"]), list(enumerate(layers))[1:]
    body = list(enumerate(layers))
    if given is not None:
        return tuple(int(s) for s in given), body
    first = layers[0]
    if first["type"] == "dense":
        return (int(np.asarray(first["weight"]).shape[1]),), body
    if first["type"] == "conv" and np.all(np.asarray(first.get("stride", 1)) == 1):
        w = np.asarray(first["weight"])
        out = np.asarray(first["shape"])[1:]
        pad, dil = (np.broadcast_to(first.get(k, d), (2,)) for k, d in (("padding", 0),
                                                                          ("dilation", 1)))
        hw = out - 2 * pad + dil * (np.asarray(w.shape[2:]) - 1)
        return (int(w.shape[1] * int(first.get("groups", 1))), *map(int, hw)), body
    raise UnsupportedError(f"the .net file has no input layer and its first layer "
                           f"('{first['type']}') does not fix the input size",
                           hint="Export the network with an input layer, or pass "
                                "input_shape=(C, H, W).")


def to_program(path: str | Path, target: Any, *,
               input_shape: tuple[int, ...] | None = None) -> Program:
    """The program netx would build from a ``.net`` file (for the emulator or Lava)."""
    shape, body = _input(read(path), input_shape)
    port = Port("input", int(np.prod(shape)), tuple(reversed(shape)) if len(shape) == 3
                else (int(np.prod(shape)),))
    groups, blocks, prev, prev_shape = [], [], port.name, port.shape
    for k, layer in body:
        if layer["type"] == "flatten":
            continue
        if layer["type"] not in ("dense", "conv"):
            raise UnsupportedError(f"layer {k} has type '{layer['type']}'; netx itself only "
                                   "builds input, dense, conv and flatten")
        nrn = layer["neuron"]
        out = tuple(int(s) for s in layer["shape"])
        hw_shape = tuple(reversed(out)) if len(out) == 3 else (int(np.prod(out)),)
        size = int(np.prod(out))
        bias = layer.get("bias", np.zeros(1, dtype=int))
        if layer["type"] == "conv":
            bias = np.broadcast_to(bias.reshape(1, 1, -1), hw_shape).ravel()
            w = np.asarray(layer["weight"])[:, :, ::-1, ::-1].transpose(0, 3, 2, 1)
            conv = {key: tuple(int(v) for v in reversed(np.broadcast_to(layer[key], (2,))))
                    for key in ("stride", "padding", "dilation")}
            conv["groups"] = int(layer.get("groups", 1))
            blocks.append(SynapseBlock(f"b{k}", "conv", prev, f"layer{k}", w.copy(),
                                       conv=conv))
        else:
            w = np.asarray(layer["weight"]).reshape(size, -1)
            if len(prev_shape) == 3:      # netx connects (W,H,C) -> (C,H,W) -> flatten
                w = w.reshape(size, prev_shape[2], prev_shape[1], prev_shape[0])
                w = w.transpose(0, 3, 2, 1).reshape(size, -1)
            full, nwb, wexp = optimize_weight_bits(w)
            blocks.append(SynapseBlock(f"b{k}", "dense", prev, f"layer{k}", full,
                                       weight_exp=wexp, num_weight_bits=nwb))
        bias = np.broadcast_to(bias.ravel(), (size,)).astype(np.int64)
        groups.append(NeuronGroup(f"layer{k}", "lif", size, hw_shape, nrn["iDecay"] - 1,
                                  nrn["vDecay"], nrn["vThMant"], bias,
                                  np.full(size, BIAS_EXP), np.zeros(size, dtype=np.int64),
                                  np.zeros(size, dtype=np.int64)))
        prev, prev_shape = f"layer{k}", hw_shape
    cores = tuple(Core(i, 0, (g.name,), tuple(b.name for b in blocks if b.target == g.name))
                  for i, g in enumerate(groups))
    return Program(target.name, target.sha256, target.toml, (port,), tuple(groups),
                   tuple(blocks), cores, (OutputPort("output", groups[-1].name),),
                   {"source": f"netx:{Path(path).name}"})


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
             input_shape: tuple[int, ...] | None = None) -> ir.Graph:
    """A float NIR graph of a ``.net`` file at scale 64 (v_float = v_int / 64)."""
    shape, body = _input(read(path), input_shape)
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(np.array(shape))}
    edges, prev = [], "input"
    for k, layer in body:
        if layer["type"] not in ("dense", "conv", "flatten"):
            raise UnsupportedError(f"layer {k} has type '{layer['type']}'; snn2hw reads "
                                   "input, dense, conv and flatten layers", node=f"layer{k}")
        name = f"layer{k}"
        if layer["type"] == "flatten":
            nodes[name] = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0)
            edges.append((prev, name))
            prev, shape = name, (int(np.prod(shape)),)
            continue
        out = tuple(int(s) for s in layer["shape"])
        w = np.asarray(layer["weight"], dtype=float)
        nrn = layer["neuron"]
        if layer["type"] == "conv":
            bias = np.asarray(layer.get("bias", np.zeros(out[0])), dtype=float)
            nodes[f"{name}.w"] = nir.Conv2d(
                input_shape=np.array(shape[1:]), weight=w, stride=layer["stride"],
                padding=layer["padding"], dilation=layer["dilation"],
                groups=int(layer.get("groups", 1)), bias=bias)
        else:
            bias = np.broadcast_to(np.asarray(layer.get("bias", 0), dtype=float), out)
            nodes[f"{name}.w"] = nir.Affine(w.reshape(out[0], -1), bias.copy())
        nodes[name] = _neuron(name, nrn, out, dt)
        edges += [(prev, f"{name}.w"), (f"{name}.w", name)]
        prev, shape = name, out
    nodes["output"] = nir.Output(np.array(shape))
    edges.append((prev, "output"))
    return ir.from_nir(nir.NIRGraph(nodes, edges, type_check=False),
                       metadata={"dt": dt, "reset": "zero", "source": f"netx:{Path(path).name}"})


def _neuron(name: str, nrn: dict[str, int], shape: tuple[int, ...], dt: float) -> nir.NIRNode:
    ones = np.ones(shape)
    theta = ones * nrn["vThMant"]
    a_syn, a_mem = nrn["iDecay"] / 4096, nrn["vDecay"] / 4096
    if a_mem >= 1:
        raise UnsupportedError(f"layer '{name}' has vDecay 4096 (no voltage memory), which a "
                               "NIR neuron cannot express", node=name)
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


__all__ = ["export", "read", "to_program", "to_graph", "run_netx", "optimize_weight_bits"]
