"""lava-dl SDNN (sigma-delta) ``.net`` files as the integers netx runs (lava-dl 0.6
``netx/hdf5.py``, docs/sigma_delta.md §1): the hardware model and the netx run.

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
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from snn2hw.backends import netx_read
from snn2hw.errors import UnsupportedError
from snn2hw.passes.hwmodel import HwBlock, HwGroup, HwNet

SPIKE_EXP = STATE_EXP = 6        # netx: Network(spike_exp=6), state_exp=6 (hdf5.py:72, 176)
RUNNER = Path(__file__).with_name("netx_sdnn_runner.py")
#: What the netx device reads per SDNN block (Lava's Var names; spikes = s_out).
NETX_VARS = {"spikes": "s_out", "sigma": "sigma", "act": "act", "residue": "residue",
             "error": "error"}


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


def check_target(target: Any) -> None:
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
    arithmetic (netx_hw.F: a ``.net`` file's family record)."""
    from snn2hw.backends.netx_hw import F, hw_layout

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
    metadata (``netx_hw.META_KEY``; ``"sdnn": True`` selects this module's netx run)."""
    from snn2hw.backends import netx_hw

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
    port_shape, port_index = netx_hw.hw_layout(shape)
    groups: list[HwGroup] = []
    blocks: list[HwBlock] = []
    info: dict[str, Any] = {"source": str(path.resolve()), "input_lag": 1, "groups": [],
                            "u_differs": [], "transform": body[0].get("transform"),
                            "sdnn": True, "models": [], "shapes": []}
    prev, bits = "input", netx_hw.INPUT_BITS
    for layer in body:
        if layer["type"] == "flatten":
            continue
        name = f"layer{layer['index']}"
        if layer["type"] == "input" and groups:
            raise _refuse(path, layer, "is an input layer after other layers",
                          "netx networks are sequential with the input first.")
        if layer["type"] == "input":
            block = netx_hw._identity(f"{name}.w", shape)
        elif layer["type"] == "dense":
            block = netx_hw._dense_block(path, layer, name, prev)
        else:
            block = netx_hw._conv_block(layer, name, prev)
        blocks.append(dataclasses.replace(block, num_message_bits=bits))
        groups.append(_group(path, layer, name, len(groups) + 1))
        info["groups"].append(name)
        info["models"].append(groups[-1].model)
        info["shapes"].append(list(layer["shape"]))
        prev, bits = name, layer["neuron"]["messageBits"]
    return netx_hw.assemble(groups, blocks, port_shape, port_index, info), info


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


def run_netx(path: str | Path, x: np.ndarray, timeout: float = 1800
             ) -> dict[str, list[np.ndarray]]:
    """``x`` (B, T, n) into netx's input layer's ``a_in`` (Lava's C order of (x, y, c));
    returns ``{var: [per block (B, T, n), or None where the block lacks that Var]}`` for
    NETX_VARS' keys, and ``"model"``: the Lava model class each block ran."""
    from snn2hw import lava_env

    python = lava_env.netx_interpreter()
    with tempfile.TemporaryDirectory(prefix="snn2hw-netx-sdnn-") as tmp:
        script, data, result = (Path(tmp) / n for n in ("run.py", "in.npz", "out.npz"))
        shutil.copyfile(RUNNER, script)
        np.savez(data, x=np.asarray(x).astype(np.int32))
        lava_env.run_script(python, [str(script), str(path), str(data), str(result)],
                            timeout=timeout, what=f"the netx run of '{path}'",
                            hint="Check the file with `snn2hw inspect`; run `snn2hw lava "
                                 "install --netx` if lava-dl is missing.")
        with np.load(result, allow_pickle=False) as f:
            blocks = int(f["blocks"])
            out: dict[str, list[np.ndarray]] = {
                var: [f[f"{key}/{k}"] if f"{key}/{k}" in f.files else None
                      for k in range(blocks)] for var, key in NETX_VARS.items()}
            out["model"] = [str(f[f"model/{k}"]) for k in range(blocks)]
    return out


#: The Lava 0.10 model each program model's rules are (docs/sigma_delta.md §1).
LAVA_MODELS = {"delta": "PyDeltaModelFixed", "sigma_delta": "PySigmaDeltaModelFixed",
               "sigma": "PySigmaModelFixed"}


def check_models(ran: list[str], models: list[str]) -> None:
    """netx must have run, block by block, the Lava models whose rules the program
    follows (another fixed-point model, e.g. a later Lava's corrected SigmaDelta, would
    make a comparison meaningless)."""
    from snn2hw.devices import DeviceError

    want = [LAVA_MODELS[m] for m in models]
    bad = [(k, r, w) for k, (r, w) in enumerate(zip(ran, want)) if r != w]
    if bad or len(ran) != len(want):
        k, r, w = bad[0] if bad else (min(len(ran), len(want)), "?", "?")
        raise DeviceError(f"netx ran {r} for block {k}, where the program follows {w} "
                          f"({len(ran)} blocks run, {len(want)} expected)",
                          hint="Use the Lava 0.10 / lava-dl 0.6 environment (snn2hw lava "
                               "install --netx), whose models docs/sigma_delta.md describes.")


def columns(program: Any) -> dict[str, tuple[int, np.ndarray]]:
    """Per program group: its netx block and the block's flat positions (Lava's C order of
    (x, y, c)) it holds, in the group's order (a layer the mapper split into groups or
    tiles gets each group's own positions)."""
    from snn2hw.backends.image import io_map
    from snn2hw.backends.netx_hw import hw_layout, required_info

    info = required_info(program)
    io = io_map(program)
    sizes = {g.name: g.size for g in program.groups}
    out = {}
    for k, name in enumerate(info["groups"]):
        pop = io["populations"][name]
        netx_pos = np.argsort(hw_layout(tuple(info["shapes"][k]))[1])   # NIR index -> column
        nir_index, start = np.asarray(pop["index"]), 0
        for g in pop["groups"]:
            out[g] = (k, netx_pos[nir_index[start:start + sizes[g]]])
            start += sizes[g]
    return out


def run_program(program: Any, x: np.ndarray, record: tuple[str, ...]) -> Any:
    """The netx device for an SDNN program: ``x`` (B, T, n) already delayed by the input
    lag. Each program group gets its :func:`columns` of every recorded variable its model
    has."""
    from snn2hw_emulator.kernels import STATE_VARS

    from snn2hw.backends.lava import LavaResult
    from snn2hw.backends.netx_hw import required_info

    info = required_info(program)
    got = run_netx(info["source"], x)
    check_models(got["model"], info["models"])
    models = {g.name: g.model for g in program.groups}
    res = LavaResult(spikes={})
    for g, (k, cols) in columns(program).items():
        for var in record:
            if var != "spikes" and var not in STATE_VARS[models[g]]:
                continue
            arr = got[var][k]
            if arr is not None:
                getattr(res, var)[g] = arr[:, :, cols].astype(np.int32)
    res.outputs = {o.name: res.spikes[o.group] for o in program.outputs if o.group in res.spikes}
    return res

def compile_file(path: str | Path, net: HwNet, info: dict[str, Any], options: Any) -> Any:
    """``snn2hw compile SDNN.net --target loihi2``: the file's integers through
    ``compiler.compile_integer`` (ranges, map, emit), refused for targets without graded
    spikes. The graph that goes with it (``OUT/quantised.nir``) stands in IF nodes for the
    sigma-delta layers (NIR has none); their integers are its node metadata."""
    from snn2hw import compiler
    from snn2hw.backends import netx, netx_hw
    from snn2hw.targets import load

    check_target(load(options.target))
    compiled = compiler.compile_integer(net, netx.to_graph(path, sdnn_stand_in=True), options)
    compiled.program = netx_hw.finish(compiled.program, info)
    return compiled


def stand_in(name: str, nrn: dict[str, Any], shape: tuple[int, ...]) -> Any:
    """The NIR node a sigma-delta layer's hardware model is stored under (NIR has no
    sigma-delta neuron): an IF node marked as a stand-in, never a model of the layer."""
    import nir

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


__all__ = ["big_core", "check_models", "check_target", "columns", "compile_file", "compile_for_verify", "is_file", "is_sdnn", "model", "refuse_graph",
           "run_netx", "run_program", "stand_in", "table", "to_hwnet"]


#: Neurons per core of the unmapped program's target (PilotNet's largest layer: 18816).
BIG_CORE = 131072


#: Synaptic memory bits and fan-in/fan-out axons per core of that target (the design
#: rules check them on every program image it loads).
BIG_CORE_LIMITS = {"synapse_memory_bits": 1 << 40, "fan_in_axons_max": 1 << 30,
                   "fan_out_axons_max": 1 << 30}


def big_core(target: Any) -> Any:
    """``target`` with cores of BIG_CORE neurons, and synaptic memory and axons to hold any
    layer (named ``<name>-bigcore``): the target the unmapped program (one layer per core)
    runs on where a layer exceeds a core. Its arithmetic is the target's; a target already
    named ``*-bigcore`` keeps its name."""
    from snn2hw import targets

    name = target.name if target.name.endswith("-bigcore") else f"{target.name}-bigcore"
    toml = target.toml.replace(f'name = "{target.name}"', f'name = "{name}"', 1)
    toml = re.sub(r"(?m)^neurons_max = \d+", f"neurons_max = {BIG_CORE}", toml, count=1)
    for key, value in BIG_CORE_LIMITS.items():
        toml = re.sub(rf"(?m)^{key} = \d+", f"{key} = {value}", toml, count=1)
    return targets.parse(toml, name)


def compile_for_verify(path: str | Path, options: Any) -> Any:
    """What ``snn2hw verify SDNN.net`` runs: the compiled program, or, where the compiler
    cannot map the file onto the target yet (a layer larger than a core behind a
    convolution), the unmapped program (one layer per core, on :func:`big_core` of the
    target) with a line saying so. The integers are the same; only the mapping differs."""
    from snn2hw import compiler
    from snn2hw.backends import netx, netx_hw
    from snn2hw.errors import DesignRuleError
    from snn2hw.targets import load

    target = load(options.target)
    check_target(target)
    try:
        return netx_hw.compile_file(path, options)
    except DesignRuleError as exc:
        reason = re.sub(r" \([^)]*$", "", str(exc).split(";")[0])   # the first limit
    big = big_core(target)
    program = netx_hw.to_program(path, big)
    net, _ = netx_hw.to_hwnet(path)
    net = net.with_(groups=tuple(dataclasses.replace(g, core=k, chip=0)
                                 for k, g in enumerate(net.groups)))
    print(f"{reason}; verifying the unmapped program instead: the file's integers, one "
          f"layer per core, on {big.name} ({BIG_CORE} neurons per core)")
    graph = netx.to_graph(path, sdnn_stand_in=True)
    return compiler.Compiled(program, net, graph, big, options, {}, ("emit",))
