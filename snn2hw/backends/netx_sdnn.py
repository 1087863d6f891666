"""lava-dl SDNN (sigma-delta) ``.net`` files as the integers netx runs (lava-dl 0.6
``netx/hdf5.py``, docs/sigma_delta.md §1): the hardware model (the netx run: netx_run.py).

netx builds, for an SDNN file (``Network(spike_exp=6)``):

* the input layer -> ``Delta(vth=vThMant, spike_exp=6, state_exp=6)``, fed by the host
  straight into ``a_in``; here a ``delta`` group behind a graded 1x1 identity convolution
  from the input port (24-bit payloads), so the program runs one step behind netx
  (``input_lag`` 1, as for CUBA input layers; ``devices`` aligns);
* conv / dense layers -> the same synapses as for CUBA files (Lava-layout conv kernels;
  ``optimize_weight_bits`` for dense, columns in netx's (c, y, x) flatten order), graded
  with the previous layer's ``messageBits`` (netx's default 16);
* their SDNN neurons -> ``sigma_delta`` groups (``SigmaDelta(vth=vThMant, bias, spike_exp=6,
  state_exp=6)``, act_mode RELU and cum_error False, netx's defaults whatever the file's
  ``activation`` says), or ``sigma`` groups for ``sigma_output`` layers (``Sigma``).

Refused in one line, naming the layer: SDNN networks without an SDNN input layer, SDNN
layers mixed with CUBA ones (the input layer included), delays on SDNN layers, a bias on a
``sigma_output`` layer, thresholds or biases that do not fit the 24-bit state once scaled
by 2^12, and targets without graded spikes (loihi1). NIR has no sigma-delta node: the
graph that goes with a compiled SDNN file holds marked IF stand-ins (:func:`stand_in`),
never read as a model (import, ``verify --against reference`` and recompiling
``quantised.nir`` are refused).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import nir
import numpy as np

from snn2hw import targets
from snn2hw.backends import netx_read
from snn2hw.backends.netx_blocks import (
    INPUT_BITS,
    F,
    assemble,
    conv_block,
    dense_block,
    hw_layout,
    identity,
)
from snn2hw.errors import UnsupportedError
from snn2hw.passes.hwmodel import HwBlock, HwGroup, HwNet
from snn2hw.targets import Target

SPIKE_EXP = STATE_EXP = 6        # netx: Network(spike_exp=6), state_exp=6 (hdf5.py:72, 176)


def is_sdnn(layers: list[dict[str, Any]]) -> bool:
    return any(layer.get("neuron", {}).get("type") == "SDNN" for layer in layers)


def is_file(path: str | Path) -> bool:
    """Whether ``path`` is a readable ``.net`` file with SDNN neurons."""
    return is_sdnn(netx_read.read(path))


def model(layer: dict[str, Any]) -> str:
    """The program's neuron model for an SDNN layer."""
    if layer["type"] == "input":
        return "delta"
    return "sigma" if layer["neuron"]["sigma_output"] else "sigma_delta"


def check_target(target: Target) -> None:
    """Sigma-delta neurons send graded payloads: a target without them is refused."""
    if target.numeric.message_bits_max <= 0:
        raise UnsupportedError(f"{target.name} has no graded spikes; use --target loihi2 "
                               "(sigma-delta (SDNN) neurons send graded payloads)",
                               hint="Compile SDNN .net files for loihi2.")


def _refuse(path: Path, layer: dict[str, Any], what: str, hint: str) -> UnsupportedError:
    k = layer["index"]
    return UnsupportedError(f"layer {k} of '{path.name}' {what}", node=f"layer{k}", hint=hint)


def _group(path: Path, layer: dict[str, Any], name: str, offset: int) -> HwGroup:
    """The layer's sigma-delta group; its scaled vth and bias must fit the state of Lava's
    arithmetic (netx_blocks.F: a ``.net`` file's family record)."""
    shape, index = hw_layout(layer["shape"])
    kind, nrn = model(layer), layer["neuron"]
    bias = np.zeros(index.size, dtype=np.int64)
    if kind == "sigma_delta" and "bias" in layer:
        b = np.asarray(layer["bias"], dtype=np.int64)
        bias = np.broadcast_to(b, shape).ravel() if layer["type"] == "conv" else \
            np.broadcast_to(b.ravel(), index.shape)
        bias = bias.copy()
    vth = 0 if kind == "sigma" else nrn["vThMant"]
    k = 0 if kind == "sigma" else SPIKE_EXP + STATE_EXP
    limit = F.state_half
    for what, value in (("vThMant", vth), ("|bias|", int(np.abs(bias).max(initial=0)))):
        if value << k >= limit:
            raise _refuse(path, layer, f"has {what} {value}, which scaled by 2^{k} (netx's "
                          f"spike_exp + state_exp) exceeds the {F.state_bits}-bit state",
                          f"Retrain with {what} below {limit >> k}.")
    zeros = np.zeros(index.size, dtype=np.int64)
    return HwGroup(name, name, index, shape, kind, 0, 0, vth, F.act_scale, bias, zeros.copy(),
                   zeros, offset, spike_exp=k // 2, state_exp=k // 2)


def to_hwnet(path: Path, layers: list[dict[str, Any]],
             input_shape: tuple[int, ...] | None = None) -> tuple[HwNet, dict[str, Any]]:
    """The SDNN file's integers as a hardware model, and the netx facts for the program's
    metadata (``netx_blocks.META_KEY``; ``"sdnn": True`` selects netx_run's SDNN run)."""
    for layer in layers:
        nrn = layer.get("neuron")
        if layer["type"] == "flatten" or (layer["type"] == "input" and nrn is None):
            continue
        if nrn is None or nrn["type"] != "SDNN" or layer.get("default_neuron"):
            kind = "no" if nrn is None or layer.get("default_neuron") else nrn["type"]
            raise _refuse(path, layer, f"has {kind} neurons in an SDNN network",
                          "snn2hw reads networks whose layers are all SDNN or all CUBA; "
                          "export one kind.")
        if "delay" in layer:
            raise _refuse(path, layer, "has synaptic delays on SDNN neurons",
                          "Export the SDNN network without delays.")
        if nrn["sigma_output"] and np.any(layer.get("bias", 0)):
            raise _refuse(path, layer, "has a bias on a sigma_output layer (Lava's Sigma "
                          "has none)", "Drop the bias or the sigma_output flag.")
    shape, body = netx_read.input_shape(layers, input_shape)
    if not body or body[0]["type"] != "input":
        raise UnsupportedError(f"'{path.name}' is an SDNN network without an SDNN input "
                               "layer (netx would send its input as binary spikes)",
                               hint="Export the network with its input layer (slayer's "
                                    "sigma-delta input block).")
    port_shape, port_index = hw_layout(shape)
    groups: list[HwGroup] = []
    blocks: list[HwBlock] = []
    info: dict[str, Any] = {"source": str(path.resolve()), "input_lag": 1, "groups": [],
                            "u_differs": [], "transform": body[0].get("transform"),
                            "sdnn": True, "models": [], "shapes": []}
    prev, bits = "input", INPUT_BITS
    for layer in body:
        if layer["type"] == "flatten":
            continue
        name = f"layer{layer['index']}"
        if layer["type"] == "input" and groups:
            raise _refuse(path, layer, "is an input layer after other layers",
                          "netx networks are sequential with the input first.")
        if layer["type"] == "input":
            block = identity(f"{name}.w", shape)
        elif layer["type"] == "dense":
            block = dense_block(path, layer, name, prev)
        else:
            block = conv_block(layer, name, prev)
        blocks.append(dataclasses.replace(block, num_message_bits=bits))
        groups.append(_group(path, layer, name, len(groups) + 1))
        info["groups"].append(name)
        info["models"].append(groups[-1].model)
        info["shapes"].append(list(layer["shape"]))
        prev, bits = name, layer["neuron"]["messageBits"]
    return assemble(groups, blocks, port_shape, port_index, info), info


def table(path: str | Path) -> str:
    """``snn2hw inspect`` of an SDNN file: one row per layer as netx builds it."""
    layers = netx_read.read(path)
    head = (f"{'layer':<8} {'type':<8} {'shape':<16} {'neuron':<12} {'vth':>5} "
            f"{'graded bits':>11}  activation")
    rows = [f"netx SDNN network '{Path(path).name}' (sigma-delta, graded spikes)", head,
            "-" * len(head)]
    for layer in layers:
        nrn = layer.get("neuron")
        shape = "x".join(map(str, layer.get("shape", ())))
        if nrn is None:
            rows.append(f"layer{layer['index']:<3} {layer['type']:<8} {shape:<16}")
            continue
        kind = model(layer) if nrn["type"] == "SDNN" else nrn["type"]
        vth = "-" if kind == "sigma" else str(nrn.get("vThMant", "-"))
        bits = nrn.get("messageBits", 0)
        rows.append(f"layer{layer['index']:<3} {layer['type']:<8} {shape:<16} {kind:<12} "
                    f"{vth:>5} {bits:>11}  {nrn.get('activation', '')}")
    rows.append("compile with `snn2hw compile FILE.net --target loihi2 -o OUT`; netx runs "
                "every SigmaDelta with act_mode RELU and spike_exp = state_exp = 6")
    return "\n".join(rows)


def stand_in(name: str, nrn: dict[str, Any], shape: tuple[int, ...]) -> nir.IF:
    """The NIR node a sigma-delta layer's hardware model is stored under (NIR has no
    sigma-delta neuron): an IF node marked as a stand-in, never a model of the layer."""
    ones = np.ones(shape)
    return nir.IF(r=ones, v_threshold=ones * max(nrn.get("vThMant", 0), 1), v_reset=0 * ones,
                  metadata={"snn2hw.stand_in": f"netx SDNN layer '{name}': a sigma-delta "
                            "neuron, which NIR has no node for; its integers are in "
                            "metadata['snn2hw']"})


def refuse_graph(path: str | Path, layers: list[dict[str, Any]]) -> None:
    """An SDNN file has no NIR form (import, verify against the float reference)."""
    first = next(layer for layer in layers if layer.get("neuron", {}).get("type") == "SDNN")
    raise UnsupportedError(f"layer {first['index']} of '{Path(path).name}' has SDNN "
                           "(sigma-delta) neurons, which NIR has no node for",
                           node=f"layer{first['index']}",
                           hint="Compile, run or verify the .net file itself (snn2hw compile "
                                "FILE.net --target loihi2; verify --device netx --against "
                                "emulator).")


#: Neurons per core of the unmapped program's target (PilotNet's largest layer: 18816).
BIG_CORE = 131072


#: Synaptic memory bits and fan-in/fan-out axons per core of that target (the design
#: rules check them on every program image it loads).
BIG_CORE_LIMITS = {"synapse_memory_bits": 1 << 40, "fan_in_axons_max": 1 << 30,
                   "fan_out_axons_max": 1 << 30}


def big_core(target: Target) -> Target:
    """``target`` with cores of BIG_CORE neurons, and synaptic memory and axons to hold any
    layer (named ``<name>-bigcore``): the target the unmapped program (one layer per core)
    runs on where a layer exceeds a core. Its arithmetic is the target's; a target already
    named ``*-bigcore`` keeps its name."""
    name = target.name if target.name.endswith("-bigcore") else f"{target.name}-bigcore"
    toml = target.toml.replace(f'name = "{target.name}"', f'name = "{name}"', 1)
    toml = re.sub(r"(?m)^neurons_max = \d+", f"neurons_max = {BIG_CORE}", toml, count=1)
    for key, value in BIG_CORE_LIMITS.items():
        toml = re.sub(rf"(?m)^{key} = \d+", f"{key} = {value}", toml, count=1)
    return targets.parse(toml, name)


__all__ = ["BIG_CORE", "big_core", "check_target", "is_file", "is_sdnn", "model", "refuse_graph",
           "stand_in", "table", "to_hwnet"]
