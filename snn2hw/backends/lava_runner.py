"""Standalone Lava program: runs snn2hw program data with lava-nc 0.10 (Python 3.10).

    python run.py PROGRAM.npz RESULT.npz [--hardware]

This file is copied verbatim next to its data by ``snn2hw.backends.lava.emit``. It
imports only Lava, numpy and scipy (a Lava dependency), never snn2hw.

PROGRAM.npz holds one or more jobs. ``jobs`` is a JSON list; job j describes its
ports, groups, blocks and steps, and its arrays are stored as ``j<j>/<name>``.
For every job and sample it builds the process graph (RingBuffer sources, Dense /
Sparse / DelayDense / Conv synapses, LIF / LIFReset neurons, Monitors), runs
``Loihi2SimCfg(select_tag="fixed_pt")`` (or ``Loihi2HwCfg`` with --hardware), and
stores ``j<j>/s<sample>/<var>/<group>`` arrays of shape (T, n). Sigma-delta, delta and
sigma groups are ``SigmaDelta``, ``Delta`` and ``Sigma`` processes; they record spikes
(payloads) and their state variables (``STATE_VARS``). Codebook blocks arrive
already expanded (kind "dense", full-scale looked-up weights): Lava has no codebook
memory.
"""

import json
import sys

import numpy as np


def _lava():
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.conv.process import Conv
    from lava.proc.dense.process import DelayDense, Dense
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF, LIFReset
    from lava.proc.monitor.process import Monitor
    from lava.proc.sdn.process import ActivationMode, Delta, Sigma, SigmaDelta
    from lava.proc.sparse.process import Sparse
    from lava.utils.weightutils import SignMode
    return dict(RunSteps=RunSteps, Loihi2SimCfg=Loihi2SimCfg, Conv=Conv, Dense=Dense,
                DelayDense=DelayDense, RingBuffer=RingBuffer, LIF=LIF, LIFReset=LIFReset,
                Monitor=Monitor, Sparse=Sparse, SignMode=SignMode, SigmaDelta=SigmaDelta,
                ActivationMode=ActivationMode, Delta=Delta, Sigma=Sigma)


SIGN = {"mixed": "MIXED", "exc": "EXCITATORY", "inh": "INHIBITORY"}
STATE_VARS = {"lif": ("u", "v"), "lif_reset": ("u", "v"),
              "sigma_delta": ("sigma", "act", "residue", "error"),
              "delta": ("act", "residue", "error"), "sigma": ("sigma",)}


def _has(model, var):
    """spikes for every group, then each model's own state variables."""
    return var == "spikes" or var in STATE_VARS[model]


def _sigma_delta(L, g, bias):
    """Lava's SigmaDelta / Delta / Sigma with the program's process arguments (they scale
    vth and bias by 2^(spike_exp + state_exp) themselves)."""
    if g["model"] == "sigma":
        return L["Sigma"](shape=tuple(g["shape"]))        # Sigma and Delta take no name
    if g["model"] == "delta":
        return L["Delta"](shape=tuple(g["shape"]), vth=int(g["vth"]),
                          cum_error=bool(g["cum_error"]), spike_exp=int(g["spike_exp"]),
                          state_exp=int(g["state_exp"]))
    mode = L["ActivationMode"].RELU if g["act_mode"] == "relu" else L["ActivationMode"].UNIT
    return L["SigmaDelta"](shape=tuple(g["shape"]), vth=int(g["vth"]), bias=bias,
                           act_mode=mode, cum_error=bool(g["cum_error"]),
                           spike_exp=int(g["spike_exp"]), state_exp=int(g["state_exp"]),
                           name=g["name"])


def _neurons(L, job, arrays, j):
    procs = {}
    for g in job["groups"]:
        name = g["name"]
        if g["model"] in ("sigma_delta", "delta", "sigma"):
            bias = arrays[f"j{j}/{name}/bias_mant"].reshape(g["shape"])
            procs[name] = _sigma_delta(L, g, bias)
            continue
        kw = dict(shape=tuple(g["shape"]), du=int(g["du"]), dv=int(g["dv"]), vth=int(g["vth"]),
                  bias_mant=arrays[f"j{j}/{name}/bias_mant"].reshape(g["shape"]),
                  bias_exp=arrays[f"j{j}/{name}/bias_exp"].reshape(g["shape"]),
                  u=arrays[f"j{j}/{name}/u0"].reshape(g["shape"]),
                  v=arrays[f"j{j}/{name}/v0"].reshape(g["shape"]), name=name)
        if g["model"] == "lif_reset":
            procs[name] = L["LIFReset"](reset_interval=int(g["reset_interval"]),
                                        reset_offset=int(g["reset_offset"]), **kw)
        else:
            procs[name] = L["LIF"](**kw)
    return procs


def _synapse(L, b, arrays, j):
    w = arrays[f"j{j}/{b['name']}/weights"]
    kw = dict(num_message_bits=int(b["num_message_bits"]), name=b["name"])
    if b["kind"] == "conv":
        c = b["conv"]
        return L["Conv"](weight=w, input_shape=tuple(b["source_shape"]),
                         padding=tuple(c["padding"]), stride=tuple(c["stride"]),
                         dilation=tuple(c["dilation"]), groups=int(c["groups"]), **kw)
    kw.update(weight_exp=int(b["weight_exp"]), num_weight_bits=int(b["num_weight_bits"]))
    if b["sign_mode"] in SIGN:
        kw["sign_mode"] = getattr(L["SignMode"], SIGN[b["sign_mode"]])
    if b["kind"] == "sparse":          # COO arrays: the matrix is never dense here
        from scipy.sparse import csr_matrix
        rows = arrays[f"j{j}/{b['name']}/rows"]
        cols = arrays[f"j{j}/{b['name']}/cols"]
        return L["Sparse"](weights=csr_matrix((w, (rows, cols)), shape=tuple(b["shape"])),
                           **kw)
    if b["kind"] == "delay_dense":
        delays = arrays[f"j{j}/{b['name']}/delays"].astype(int)
        return L["DelayDense"](weights=w, delays=delays, **kw)
    if b["kind"] != "dense":   # codebook blocks are expanded to "dense" before emitting
        raise ValueError(f"block {b['name']}: unknown synapse kind {b['kind']!r}")
    return L["Dense"](weights=w, **kw)


def _out_port(port, shape, want):
    """Reshape a port when the flat/shaped layouts differ (C-order, as Lava's flatten)."""
    if tuple(shape) == tuple(want):
        return port
    return port.reshape(tuple(want))


def run_sample(L, job, arrays, j, sample, hardware):
    steps = int(job["steps"])
    sources = {}
    shapes = {}
    for p in job["ports"]:
        data = arrays[f"j{j}/in/{p['name']}"][sample]          # (T_in, size)
        full = np.zeros((p["size"], steps), dtype=np.int32)
        n = min(steps, data.shape[0])
        full[:, :n] = data[:n].T
        sources[p["name"]] = L["RingBuffer"](data=full.reshape(tuple(p["shape"]) + (steps,)))
        shapes[p["name"]] = tuple(p["shape"])
    neurons = _neurons(L, job, arrays, j)
    for g in job["groups"]:
        shapes[g["name"]] = tuple(g["shape"])
    for b in job["blocks"]:
        syn = _synapse(L, b, arrays, j)
        src = sources[b["source"]] if b["source"] in sources else neurons[b["source"]]
        want_in = syn.s_in.shape
        _out_port(src.s_out, shapes[b["source"]], want_in).connect(syn.s_in)
        _out_port(syn.a_out, syn.a_out.shape, shapes[b["target"]]).connect(
            neurons[b["target"]].a_in)
    monitors = []
    for g in job["groups"]:
        proc = neurons[g["name"]]
        for var in job["record"]:
            if not _has(g["model"], var):
                continue
            mon = L["Monitor"]()
            mon.probe(proc.s_out if var == "spikes" else getattr(proc, var), steps)
            monitors.append((g["name"], var, mon, proc))
    anchor = next(iter(neurons.values()))
    if hardware:
        from lava.magma.core.run_configs import Loihi2HwCfg
        cfg = Loihi2HwCfg()
    else:
        cfg = L["Loihi2SimCfg"](select_tag="fixed_pt")
    anchor.run(condition=L["RunSteps"](num_steps=steps), run_cfg=cfg)
    out = {}
    try:
        for name, var, mon, proc in monitors:
            key = "s_out" if var == "spikes" else var
            data = np.asarray(mon.get_data()[proc.name][key])
            out[f"j{j}/s{sample}/{var}/{name}"] = data.reshape(steps, -1)
    finally:
        anchor.stop()
    return out


def main(argv):
    hardware = "--hardware" in argv
    args = [a for a in argv if a != "--hardware"]
    if len(args) != 2:
        sys.stderr.write("usage: run.py PROGRAM.npz RESULT.npz [--hardware]\n")
        return 2
    L = _lava()
    with np.load(args[0], allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    jobs = json.loads(str(arrays.pop("jobs")))
    results = {}
    for j, job in enumerate(jobs):
        for sample in range(int(job["batch"])):
            results.update(run_sample(L, job, arrays, j, sample, hardware))
    np.savez_compressed(args[1], **results)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
