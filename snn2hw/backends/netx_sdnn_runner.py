"""Runs a lava-dl SDNN ``.net`` file through netx (lava-dl 0.6, in the Lava environment)
and records every block's payloads and sigma-delta state.

    python netx_sdnn_runner.py NETWORK.net INPUT.npz RESULT.npz

This file runs in the Lava environment and imports only Lava, lava-dl and numpy, never
snn2hw. INPUT.npz holds ``x`` (B, T, n): values for the input layer's ``a_in`` in the
order of netx's input port flattened (Lava's C order of (x, y, c)); per sample they go
from a RingBuffer straight into the input block's neuron (netx leaves ``Input.inp``
unwired). RESULT.npz holds ``<var>/<block>`` (B, T, n) for var in s_out, sigma, act,
residue, error where the block's neuron has that Var, ``model/<block>``, the Python model
class Lava ran, and ``blocks``, the number of blocks.
"""

import sys

import numpy as np

VARS = ("s_out", "sigma", "act", "residue", "error")


def run_sample(net_path, x):
    from lava.lib.dl.netx import hdf5
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.source import RingBuffer
    from lava.proc.monitor.process import Monitor

    steps = x.shape[0]
    net = hdf5.Network(net_config=net_path)
    src = RingBuffer(data=x.T.reshape(tuple(net.inp.shape) + (steps,)).astype(np.int32))
    src.s_out.connect(net.layers[0].neuron.a_in)
    monitors = []
    for k, block in enumerate(net.layers):
        for key in VARS:
            if hasattr(block.neuron, key):
                mon = Monitor()
                mon.probe(getattr(block.neuron, key), steps)
                monitors.append((k, key, mon, block.neuron))
    net.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
    out = {}
    try:
        for k, key, mon, proc in monitors:
            out[f"{key}/{k}"] = np.asarray(mon.get_data()[proc.name][key]).reshape(
                steps, -1)
        for k, block in enumerate(net.layers):
            out[f"model/{k}"] = np.array(block.neuron.model_class.__name__)
        out["blocks"] = np.array(len(net.layers))
    finally:
        net.stop()
    return out


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: netx_sdnn_runner.py NETWORK.net INPUT.npz RESULT.npz\n")
        return 2
    with np.load(argv[1], allow_pickle=False) as f:
        x = f["x"]
    runs = [run_sample(argv[0], x[b]) for b in range(x.shape[0])]
    out = {}
    for key in runs[0]:
        if key.startswith("model/") or key == "blocks":
            out[key] = runs[0][key]
        else:
            out[key] = np.stack([r[key] for r in runs])
    np.savez_compressed(argv[2], **out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
