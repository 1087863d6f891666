"""A netx ``.net`` file as the integers netx runs: the hardware model (``HwNet``) and the
program netx would build, with nothing requantised.

netx builds ``LIF(du=iDecay-1, dv=vDecay, vth=vThMant, bias_mant=bias, bias_exp=6)``
behind ``Dense(optimize_weight_bits(W))`` or ``Conv(flipped W)`` (specs §4.3); here the
same integers become groups and blocks, so compiling one (``netx_compile.py``) only
maps and emits them.
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
from snn2hw_emulator.program import Program

from snn2hw.backends import netx_read, netx_sdnn
from snn2hw.backends.netx_blocks import (
    BIAS_EXP,
    INPUT_BITS,
    META_KEY,
    F,
    assemble,
    conv_block,
    dense_block,
    hw_layout,
    identity,
)
from snn2hw.errors import UnsupportedError, UserInputError
from snn2hw.passes.hwmodel import HwBlock, HwGroup, HwNet
from snn2hw.targets import Target


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
            blocks.append(identity(f"{name}.w", shape))
            info["input_lag"], info["transform"] = 1, layer["transform"]
        elif layer["type"] == "dense":
            blocks.append(dense_block(p, layer, name, prev))
        else:
            blocks.append(conv_block(layer, name, prev))
        groups.append(_group(p, layer, name, len(groups) + 1))
        if layer.get("default_neuron"):
            info["u_differs"].append(name)
        info["groups"].append(name)
        prev = name
    if not groups:
        raise UnsupportedError(f"'{p.name}' has no dense or conv layer",
                               hint="Export a network with at least one neuron layer.")
    return assemble(groups, blocks, port_shape, port_index, info), info


def netx_info(program: Program) -> dict[str, Any] | None:
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


def required_info(program: Program) -> dict[str, Any]:
    """:func:`netx_info`, for code that runs the ``.net`` file behind a program."""
    info = netx_info(program)
    if info is None:
        raise UserInputError(f"the program's '{META_KEY}' metadata is not what compiling a "
                             ".net file writes", hint="Recompile the .net file (snn2hw "
                                                      "compile MODEL.net).")
    return info


def finish(program: Program, info: dict[str, Any]) -> Program:
    """Graded input port where an input layer takes values; netx facts in metadata."""
    ports, blocks = program.ports, program.blocks
    if info["input_lag"]:
        ports = tuple(dataclasses.replace(q, message_bits=INPUT_BITS) for q in ports)
        blocks = tuple(dataclasses.replace(b, num_message_bits=INPUT_BITS)
                       if b.source == "input" else b for b in blocks)
    meta = {**program.metadata, META_KEY: json.dumps(info)}
    return dataclasses.replace(program, ports=ports, blocks=blocks, metadata=meta)


def check_lava_widths(target: Target, path: str | Path) -> None:
    """A ``.net`` file's integers are Lava's arithmetic: a target with other widths would
    run them as other numbers, so it is refused, naming the key."""
    for key, value, lava in target.numeric.lava_mismatches()[:1]:
        raise UnsupportedError(f"'{Path(path).name}' holds Lava's integers ({key} = {lava}), "
                               f"but target '{target.name}' has numeric.{key} = {value}",
                               hint="Compile .net files for a target with Lava's widths "
                                    "(loihi2, loihi1).")


__all__ = [
    "check_lava_widths",
    "finish",
    "netx_info",
    "required_info",
    "to_hwnet",
]
