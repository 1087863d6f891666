"""A lava-dl ``.net`` file as a float NIR graph (LIF/IF/CubaLIF with Affine/Conv2d/Flatten
at scale 2^act_shift), so slayer-trained networks use the whole toolchain."""

from __future__ import annotations

from pathlib import Path

import nir
import numpy as np
from snn2hw_emulator.family import LAVA

from snn2hw import checker, ir
from snn2hw.backends import netx_read, netx_sdnn
from snn2hw.errors import UnsupportedError

__all__ = ["to_graph"]


def to_graph(path: str | Path, *, dt: float = 1e-3,
             input_shape: tuple[int, ...] | None = None, sdnn_stand_in: bool = False
             ) -> ir.Graph:
    """A float NIR graph of a ``.net`` file at scale 2^act_shift (v_float = v_int / 64, in
    Lava's widths: family.LAVA). An input
    layer with neurons becomes a unit Scale into them (its inputs are the values netx
    puts into ``a_in``, in weight units). An SDNN file is refused (NIR has no sigma-delta
    neuron) unless ``sdnn_stand_in``: then its neurons are marked IF stand-ins
    (``netx_sdnn.stand_in``), a graph for its input shape and the compiled integers only."""
    layers = netx_read.read(path)
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
