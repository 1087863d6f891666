"""A netx ``.net`` file as the integers netx runs: the hardware model (``HwNet``) and the
program netx would build, with nothing requantised.

netx builds ``LIF(du=iDecay-1, dv=vDecay, vth=vThMant, bias_mant=bias, bias_exp=6)``
behind ``Dense(optimize_weight_bits(W))`` or ``Conv(flipped W)`` (specs §4.3); here the
same integers become groups and blocks, so :func:`compile_file` only maps and emits them.
Two places differ from netx by construction, and both are stated where they apply:

* An input layer with neurons takes the host's values straight into ``a_in`` in netx.
  Hardware input arrives through synapses, so the program has a graded identity synapse
  in front of it (a 1x1 identity convolution for images): every layer runs exactly one
  step behind netx (:data:`INPUT_LAG` in the program's metadata; ``devices`` aligns).
* netx's default readout (a dense layer without neurons: du = -1, dv = 4096, vth 2^17)
  lies outside Loihi's registers; it becomes du = 4095, dv = 0, vth = 2^17 - 1, whose v and
  spikes equal netx's while |v| < (2^17 - 1) << 6 (netx: v = u = sum of inputs; here u
  holds the step's input and v sums it). Its ``u`` is not netx's.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
from snn2hw_emulator.family import LAVA

from snn2hw.backends import netx_read
from snn2hw.errors import UnsupportedError, UserInputError
from snn2hw.passes.hwmodel import HwBlock, HwGroup, HwNet

#: A ``.net`` file's integers are Lava's arithmetic (family.LAVA): netx builds Lava's models.
F = LAVA
BIAS_EXP = F.act_shift       # netx's implied bias exponent (6): biases in weight units
INPUT_BITS = F.state_bits    # graded input payload into an input layer, as wide as the
                             # state it lands in (24; Lava: int32 a_in)
META_KEY = "snn2hw.netx"     # program metadata: source file, input lag, groups' netx blocks


def hw_layout(shape: tuple[int, ...]) -> tuple[tuple[int, ...], np.ndarray]:
    """Hardware shape ((W, H, C) for images) and the NIR (C, H, W) flat index of each
    hardware position (C order)."""
    if len(shape) != 3:
        n = int(np.prod(shape))
        return (n,), np.arange(n)
    return tuple(reversed(shape)), np.arange(int(np.prod(shape))).reshape(shape).transpose(
        2, 1, 0).ravel()


def _identity(name: str, shape: tuple[int, ...]) -> HwBlock:
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


def _dense_block(path: Path, layer: dict[str, Any], name: str, source: str) -> HwBlock:
    from snn2hw.backends.netx import optimize_weight_bits

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


def _conv_block(layer: dict[str, Any], name: str, source: str) -> HwBlock:
    w = layer["weight"][:, :, ::-1, ::-1].transpose(0, 3, 2, 1)    # torch xcorr -> Lava
    conv = {key: tuple(reversed(layer[key])) for key in ("stride", "padding", "dilation")}
    conv["groups"] = layer["groups"]
    return HwBlock(f"{name}.w", source, name, "conv", np.ascontiguousarray(w), 0,
                   F.weight_bits_max, "auto", conv=conv)


def _group(path: Path, layer: dict[str, Any], name: str, offset: int) -> HwGroup:
    shape, index = hw_layout(layer["shape"])
    nrn, k = layer["neuron"], layer["index"]
    bias = np.asarray(layer.get("bias", np.zeros(1, dtype=np.int64)), dtype=np.int64)
    if layer["type"] == "conv":
        bias = np.broadcast_to(bias, shape).ravel()                 # channel fastest
    bias = np.broadcast_to(bias.ravel(), index.shape).copy()
    du, dv, vth, model = nrn["iDecay"] - F.du_offset, nrn["vDecay"], nrn["vThMant"], "lif"
    if layer.get("default_neuron"):
        if np.any(bias):
            raise UnsupportedError(f"layer {k} of '{path.name}' has a bias on netx's default "
                                   "integrator (no neuron group), which Loihi's registers "
                                   "cannot hold", node=name, hint="Give the layer a neuron "
                                   "group (iDecay, vDecay, vThMant).")
        du, dv, vth, model = F.du_forget, 0, F.vth_max, "readout"
    i_decay = du + F.du_offset
    for what, value, ok in (("iDecay", i_decay, F.du_offset <= i_decay <= F.decay_one),
                            ("vDecay", dv, 0 <= dv <= F.decay_max),
                            ("vThMant", vth, 0 <= vth <= F.vth_max)):
        if not ok:
            raise UnsupportedError(f"layer {k} of '{path.name}' has {what} {value}, outside "
                                   f"Loihi's registers (iDecay {F.du_offset}..{F.decay_one}, "
                                   f"vDecay 0..{F.decay_max}, vThMant < 2^{F.vth_mant_bits})",
                                   node=name, hint="Retrain with decays and threshold in range.")
    zeros = np.zeros(index.size, dtype=np.int64)
    return HwGroup(name, name, index, shape, model, du, dv, vth, F.act_scale, bias,
                   np.full(index.size, BIAS_EXP, dtype=np.int64), zeros, offset)


def to_hwnet(path: str | Path, *, input_shape: tuple[int, ...] | None = None
             ) -> tuple[HwNet, dict[str, Any]]:
    """The file's integers as a hardware model, and what the program needs to know about
    netx (input lag, per-group notes) for :data:`META_KEY`."""
    from snn2hw.backends import netx_sdnn

    p = Path(path)
    layers = netx_read.read(p)
    if netx_sdnn.is_sdnn(layers):                       # sigma-delta: netx_sdnn.py
        return netx_sdnn.to_hwnet(p, layers, input_shape)
    shape, body = netx_read.input_shape(layers, input_shape)
    port_shape, port_index = hw_layout(shape)
    groups: list[HwGroup] = []
    blocks: list[HwBlock] = []
    info: dict[str, Any] = {"source": str(p.resolve()), "input_lag": 0, "groups": [],
                            "u_differs": [], "transform": None}
    prev = "input"
    for layer in body:
        if layer["type"] == "flatten":
            continue
        name = f"layer{layer['index']}"
        if layer["type"] == "input" and groups:
            raise UnsupportedError(f"layer {layer['index']} of '{p.name}' is an input layer "
                                   "after other layers", node=name,
                                   hint="netx networks are sequential with the input first.")
        if layer["type"] == "input":
            blocks.append(_identity(f"{name}.w", shape))
            info["input_lag"], info["transform"] = 1, layer["transform"]
        elif layer["type"] == "dense":
            blocks.append(_dense_block(p, layer, name, prev))
        else:
            blocks.append(_conv_block(layer, name, prev))
        groups.append(_group(p, layer, name, len(groups) + 1))
        if layer.get("default_neuron"):
            info["u_differs"].append(name)
        info["groups"].append(name)
        prev = name
    if not groups:
        raise UnsupportedError(f"'{p.name}' has no dense or conv layer",
                               hint="Export a network with at least one neuron layer.")
    return assemble(groups, blocks, port_shape, port_index, info), info


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


def netx_info(program: Any) -> dict[str, Any] | None:
    """The netx facts (:data:`META_KEY`) a program compiled from a ``.net`` file carries,
    parsed once; None when it has none or they are not what :func:`to_hwnet` writes."""
    try:
        info = json.loads(str(program.metadata[META_KEY]))
    except (KeyError, ValueError):
        return None
    ok = (isinstance(info, dict) and isinstance(info.get("source"), str)
          and isinstance(info.get("input_lag"), int) and isinstance(info.get("groups"), list)
          and isinstance(info.get("u_differs"), list))
    return info if ok else None


def required_info(program: Any) -> dict[str, Any]:
    """:func:`netx_info`, for code that runs the ``.net`` file behind a program."""
    info = netx_info(program)
    if info is None:
        raise UserInputError(f"the program's '{META_KEY}' metadata is not what compiling a "
                             ".net file writes", hint="Recompile the .net file (snn2hw "
                                                      "compile MODEL.net).")
    return info


def finish(program: Any, info: dict[str, Any]) -> Any:
    """Graded input port where an input layer takes values; netx facts in metadata."""
    ports, blocks = program.ports, program.blocks
    if info["input_lag"]:
        ports = tuple(dataclasses.replace(q, message_bits=INPUT_BITS) for q in ports)
        blocks = tuple(dataclasses.replace(b, num_message_bits=INPUT_BITS)
                       if b.source == "input" else b for b in blocks)
    meta = {**program.metadata, META_KEY: json.dumps(info)}
    return dataclasses.replace(program, ports=ports, blocks=blocks, metadata=meta)


def check_lava_widths(target: Any, path: str | Path) -> None:
    """A ``.net`` file's integers are Lava's arithmetic: a target with other widths would
    run them as other numbers, so it is refused, naming the key."""
    for key, value, lava in target.numeric.lava_mismatches()[:1]:
        raise UnsupportedError(f"'{Path(path).name}' holds Lava's integers ({key} = {lava}), "
                               f"but target '{target.name}' has numeric.{key} = {value}",
                               hint="Compile .net files for a target with Lava's widths "
                                    "(loihi2, loihi1).")


def to_program(path: str | Path, target: Any, *,
               input_shape: tuple[int, ...] | None = None) -> Any:
    """The program netx would build from a ``.net`` file, one group per core, without the
    target's mapping rules (for comparing with netx; :func:`compile_file` maps it): on
    ``netx_sdnn.big_core(target)``, the target's arithmetic with cores that hold any
    layer, since the design rules check every program image."""
    from snn2hw.backends import image, netx_sdnn

    check_lava_widths(target, path)
    net, info = to_hwnet(path, input_shape=input_shape)
    if info.get("sdnn"):
        netx_sdnn.check_target(target)
    target = netx_sdnn.big_core(target)
    net = net.with_(groups=tuple(dataclasses.replace(g, core=k, chip=0)
                                 for k, g in enumerate(net.groups)))
    program = image.build(net, target, record={"source": f"netx:{Path(path).name}"})
    return finish(program, info)


def compile_file(path: str | Path, options: Any = None) -> Any:
    """``snn2hw compile MODEL.net``: the file's own integers, range-checked (as
    information: netx runs them as they are), mapped onto the target and emitted. A
    convolution whose layer does not fit a core is unrolled to an exact sparse block by
    the map pass (``passes/unroll.py``; lava-dl's PilotNet)."""
    from snn2hw import compiler
    from snn2hw.backends import netx
    from snn2hw.targets import load

    options = options or compiler.Options()
    check_lava_widths(load(options.target), path)
    net, info = to_hwnet(path)
    if info.get("sdnn"):                                # sigma-delta: netx_sdnn.py
        from snn2hw.backends import netx_sdnn

        return netx_sdnn.compile_file(path, net, info, options)
    if info["input_lag"]:          # the graded input synapse (finish), for passes/unroll.py
        net = net.with_(report={**net.report, "message_bits": {"input": INPUT_BITS}})
    compiled = compiler.compile_integer(net, netx.to_graph(path), options)
    compiled.program = finish(compiled.program, info)
    return compiled





def run_program(program: Any, inputs: Any, steps: int | None, record: tuple[str, ...]
                ) -> Any:
    """Run the ``.net`` file ``program`` was compiled from through lava-dl's own netx, on
    the program's time axis and group names (the ``netx`` device). Where the file's input
    layer has neurons, the host's values reach them one step later than netx would put them
    there (the program's input synapse), so netx is given the input one step later too.
    For netx's default readout (module docstring) netx's ``u`` is the running sum of the
    input; its per-step increment ``u[t] - u[t-1]`` (the step's input << 6) is what the
    program's ``u`` holds, and that is what is reported as its ``u``."""
    from snn2hw.backends import netx
    from snn2hw.backends.lava import LavaResult

    info = required_info(program)
    x = np.asarray(inputs["input"] if isinstance(inputs, dict) else inputs, dtype=np.int64)
    steps = x.shape[1] if steps is None else int(steps)
    x = np.concatenate([x, np.zeros((x.shape[0], max(0, steps - x.shape[1]), x.shape[2]),
                                    x.dtype)], axis=1)[:, :steps]
    if info["input_lag"]:
        x = np.concatenate([np.zeros_like(x[:, :1]), x[:, :-1]], axis=1)
    if info.get("sdnn"):                                # sigma-delta: netx_sdnn.py
        from snn2hw.backends import netx_sdnn

        return netx_sdnn.run_program(program, x, record)
    shape = program.ports[0].shape
    got = netx.run_netx(info["source"], x, input_shape=shape if len(shape) == 3 else None)
    res = LavaResult(spikes={})
    where = _positions(program, info)
    for k, name in enumerate(info["groups"]):
        for g in (g for g in program.groups if g.name == name or g.name.startswith(name + "[")):
            for var in (v for v in record if v in got):      # CUBA: spikes, u, v
                arr = got[var][k][:, :, where[g.name]]
                if var == "u" and name in info["u_differs"]:
                    arr = np.diff(arr.astype(np.int64), axis=1, prepend=0)
                getattr(res, var)[g.name] = arr.astype(np.int8 if var == "spikes" else np.int32)
    res.outputs = {o.name: res.spikes[o.group] for o in program.outputs if o.group in res.spikes}
    return res


def _positions(program: Any, info: dict[str, Any]) -> dict[str, np.ndarray]:
    """Per program group: where its neurons sit in its netx layer's output (the layer's
    hardware order). A layer cut into spatial tiles (an unrolled convolution) holds
    positions that are not contiguous; the program's io map gives each part's NIR
    indices."""
    from snn2hw.backends.image import io_map

    net, _ = to_hwnet(info["source"])
    pops = io_map(program)["populations"]
    sizes = {q.name: q.size for q in program.groups}
    out: dict[str, np.ndarray] = {}
    for g in net.groups:
        pos = np.argsort(g.index)                       # NIR index -> position
        nir = np.asarray(pops[g.name]["index"], dtype=np.int64)
        start = 0
        for part in pops[g.name]["groups"]:
            out[part] = pos[nir[start:start + sizes[part]]]
            start += sizes[part]
    return out


__all__ = ["META_KEY", "assemble", "compile_file", "finish", "hw_layout", "netx_info",
           "required_info", "run_program", "to_hwnet", "to_program"]
