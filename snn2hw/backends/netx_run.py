"""Running a ``.net`` file through lava-dl's own netx (``hdf5.Network``) on Lava's
fixed-point CPU models, in the Lava environment with lava-dl (``snn2hw lava install
--netx``): the ``netx`` device, on the time axis and group names of the program compiled
from the file.

Where the file's input layer has neurons, the host's values reach them one step later
than netx would put them there (the program's input synapse), so netx is given the input
one step later too. For netx's default readout (netx_hw.py) netx's ``u`` is the running
sum of the input; its per-step increment ``u[t] - u[t-1]`` (the step's input << 6) is
what the program's ``u`` holds, and that is what is reported as its ``u``. SDNN files
record their payloads and every sigma-delta state variable (docs/sigma_delta.md).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from snn2hw_emulator.kernels import STATE_VARS
from snn2hw_emulator.program import Program
from snn2hw_emulator.result import Result, recorded

from snn2hw import lava_env
from snn2hw.backends.image import io_map
from snn2hw.backends.netx_blocks import META_KEY, hw_layout
from snn2hw.backends.netx_hw import netx_info, required_info, to_hwnet
from snn2hw.errors import DeviceError, UserInputError

RUNNER = Path(__file__).with_name("netx_runner.py")
SDNN_RUNNER = Path(__file__).with_name("netx_sdnn_runner.py")
#: What the netx device reads per SDNN block (Lava's Var names; spikes = s_out).
NETX_VARS = {"spikes": "s_out", "sigma": "sigma", "act": "act", "residue": "residue",
             "error": "error"}
#: The Lava 0.10 model each program model's rules are (docs/sigma_delta.md §1).
LAVA_MODELS = {"delta": "PyDeltaModelFixed", "sigma_delta": "PySigmaDeltaModelFixed",
               "sigma": "PySigmaModelFixed"}

__all__ = ["LAVA_MODELS", "META_KEY", "check_models", "columns", "netx_info", "run_netx",
           "run_program", "run_sdnn_netx"]


def run_netx(path: str | Path, spikes: np.ndarray, *,
             input_shape: tuple[int, ...] | None = None,
             timeout: float = 1800) -> dict[str, list[np.ndarray]]:
    """Run a CUBA ``.net`` file through netx.

    ``spikes`` (B, T, n) are in the order of netx's input port flattened (Lava's C order of
    its (x, y, f) shape); ``input_shape`` (x, y, f) is only needed when the file has no
    input layer. Returns ``{"spikes"|"u"|"v": [per block (B, T, n)]}`` in block order.
    """
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


def run_sdnn_netx(path: str | Path, x: np.ndarray, timeout: float = 1800
                  ) -> dict[str, list[np.ndarray | None] | list[str]]:
    """An SDNN file through netx: ``x`` (B, T, n) into netx's input layer's ``a_in``
    (Lava's C order of (x, y, c)); returns ``{var: [per block (B, T, n), or None where the
    block lacks that Var]}`` for NETX_VARS' keys, and ``"model"``: the Lava model class
    each block ran."""
    python = lava_env.netx_interpreter()
    with tempfile.TemporaryDirectory(prefix="snn2hw-netx-sdnn-") as tmp:
        script, data, result = (Path(tmp) / n for n in ("run.py", "in.npz", "out.npz"))
        shutil.copyfile(SDNN_RUNNER, script)
        np.savez(data, x=np.asarray(x).astype(np.int32))
        lava_env.run_script(python, [str(script), str(path), str(data), str(result)],
                            timeout=timeout, what=f"the netx run of '{path}'",
                            hint="Check the file with `snn2hw inspect`; run `snn2hw lava "
                                 "install --netx` if lava-dl is missing.")
        with np.load(result, allow_pickle=False) as f:
            blocks = int(f["blocks"])
            out: dict[str, list[np.ndarray | None] | list[str]] = {
                var: [f[f"{key}/{k}"] if f"{key}/{k}" in f.files else None
                      for k in range(blocks)] for var, key in NETX_VARS.items()}
            out["model"] = [str(f[f"model/{k}"]) for k in range(blocks)]
    return out


def check_models(ran: list[str], models: list[str]) -> None:
    """netx must have run, block by block, the Lava models whose rules the program
    follows (another fixed-point model, e.g. a later Lava's corrected SigmaDelta, would
    make a comparison meaningless)."""
    want = [LAVA_MODELS[m] for m in models]
    bad = [(k, r, w) for k, (r, w) in enumerate(zip(ran, want)) if r != w]
    if bad or len(ran) != len(want):
        k, r, w = bad[0] if bad else (min(len(ran), len(want)), "?", "?")
        raise DeviceError(f"netx ran {r} for block {k}, where the program follows {w} "
                          f"({len(ran)} blocks run, {len(want)} expected)",
                          hint="Use the Lava 0.10 / lava-dl 0.6 environment (snn2hw lava "
                               "install --netx), whose models docs/sigma_delta.md describes.")


def run_program(program: Program, inputs: Mapping[str, np.ndarray] | np.ndarray,
                steps: int | None, record: tuple[str, ...]) -> Result:
    """Run the ``.net`` file ``program`` was compiled from through netx, on the program's
    time axis and group names (module docstring)."""
    info = required_info(program)
    x = np.asarray(inputs["input"] if isinstance(inputs, Mapping) else inputs, dtype=np.int64)
    steps = x.shape[1] if steps is None else int(steps)
    x = np.concatenate([x, np.zeros((x.shape[0], max(0, steps - x.shape[1]), x.shape[2]),
                                    x.dtype)], axis=1)[:, :steps]
    if info["input_lag"]:
        x = np.concatenate([np.zeros_like(x[:, :1]), x[:, :-1]], axis=1)
    if info.get("sdnn"):
        return _run_sdnn(program, x, record)
    shape = program.ports[0].shape
    got = run_netx(info["source"], x, input_shape=shape if len(shape) == 3 else None)
    rec: dict[str, dict[str, np.ndarray]] = {var: {} for var in record}
    where = _positions(program, info)
    for k, name in enumerate(info["groups"]):
        for g in (g for g in program.groups if g.name == name or g.name.startswith(name + "[")):
            for var in (v for v in record if v in got):      # CUBA: spikes, u, v
                arr = got[var][k][:, :, where[g.name]]
                if var == "u" and name in info["u_differs"]:
                    arr = np.diff(arr.astype(np.int64), axis=1, prepend=0)
                rec[var][g.name] = arr.astype(np.int8 if var == "spikes" else np.int32)
    return recorded(program, rec)


def _positions(program: Program, info: dict[str, object]) -> dict[str, np.ndarray]:
    """Per program group: where its neurons sit in its netx layer's output (the layer's
    hardware order). A layer cut into spatial tiles (an unrolled convolution) holds
    positions that are not contiguous; the program's io map gives each part's NIR
    indices."""
    net, _ = to_hwnet(str(info["source"]))
    pops = io_map(program).populations
    sizes = {q.name: q.size for q in program.groups}
    out: dict[str, np.ndarray] = {}
    for g in net.groups:
        pos = np.argsort(g.index)                       # NIR index -> position
        nir = np.asarray(pops[g.name].index, dtype=np.int64)
        start = 0
        for part in pops[g.name].groups:
            out[part] = pos[nir[start:start + sizes[part]]]
            start += sizes[part]
    return out


def columns(program: Program) -> dict[str, tuple[int, np.ndarray]]:
    """Per program group of an SDNN program: its netx block and the block's flat positions
    (Lava's C order of (x, y, c)) it holds, in the group's order (a layer the mapper split
    into groups or tiles gets each group's own positions)."""
    info = required_info(program)
    io = io_map(program)
    sizes = {g.name: g.size for g in program.groups}
    out = {}
    for k, name in enumerate(info["groups"]):
        pop = io.populations[name]
        netx_pos = np.argsort(hw_layout(tuple(info["shapes"][k]))[1])   # NIR index -> column
        nir_index, start = np.asarray(pop.index), 0
        for g in pop.groups:
            out[g] = (k, netx_pos[nir_index[start:start + sizes[g]]])
            start += sizes[g]
    return out


def _run_sdnn(program: Program, x: np.ndarray, record: tuple[str, ...]) -> Result:
    """The netx device for an SDNN program: ``x`` (B, T, n) already delayed by the input
    lag. Each program group gets its :func:`columns` of every recorded variable its model
    has."""
    info = required_info(program)
    got = run_sdnn_netx(info["source"], x)
    check_models([str(m) for m in got["model"]], info["models"])
    models = {g.name: g.model for g in program.groups}
    rec: dict[str, dict[str, np.ndarray]] = {var: {} for var in record}
    for g, (k, cols) in columns(program).items():
        for var in record:
            if var != "spikes" and var not in STATE_VARS[models[g]]:
                continue
            arr = got[var][k]
            if isinstance(arr, np.ndarray):
                rec[var][g] = arr[:, :, cols].astype(np.int32)
    return recorded(program, rec)
