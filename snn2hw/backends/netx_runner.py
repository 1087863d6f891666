"""Runs a lava-dl netx ``.net`` file through netx itself (lava-dl 0.6, in the Lava env).

    python netx_runner.py NETWORK.net INPUT.npz RESULT.npz

This file runs in the Lava environment and imports only Lava, lava-dl and numpy, never
snn2hw. INPUT.npz holds ``spikes`` (B, T, n): input spikes in the order of netx's input
port flattened (x, y, f for images, Lava's C order). For every sample it builds
``lava.lib.dl.netx.hdf5.Network(net_config=NETWORK.net)`` (with ``input_shape`` (x, y, f)
from INPUT.npz when given: netx needs it for files without an input layer), feeds it from a
RingBuffer (into the input layer's neurons' ``a_in`` where the first block is netx's
``Input``, whose own port netx leaves unconnected; its tutorials do the same),
monitors every block's neuron (spikes, u, v), runs ``Loihi2SimCfg(select_tag="fixed_pt")``
and stores ``s<sample>/<var>/<layer>`` arrays of shape (T, n), where layer is the block's
position in ``Network.layers``.
"""

import sys

import numpy as np

RECORD = (("spikes", "s_out"), ("u", "u"), ("v", "v"))


def run_sample(net_path, spikes, input_shape):
    from lava.lib.dl.netx import hdf5
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.source import RingBuffer
    from lava.proc.monitor.process import Monitor

    steps = spikes.shape[0]
    net = hdf5.Network(net_config=net_path, input_shape=input_shape)
    shape = tuple(net.inp.shape)
    source = RingBuffer(data=spikes.T.reshape(shape + (steps,)).astype(np.int32))
    if type(net.layers[0]).__name__ == "Input":      # netx: Input.inp is not wired
        source.s_out.connect(net.layers[0].neuron.a_in)
    else:
        source.s_out.connect(net.inp)
    monitors = []
    for k, block in enumerate(net.layers):
        for var, key in RECORD:
            mon = Monitor()
            mon.probe(getattr(block.neuron, key), steps)
            monitors.append((k, var, key, mon, block.neuron))
    net.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
    out = {}
    try:
        for k, var, key, mon, proc in monitors:
            data = np.asarray(mon.get_data()[proc.name][key])
            out[f"{var}/{k}"] = data.reshape(steps, -1)
    finally:
        net.stop()
    return out


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: netx_runner.py NETWORK.net INPUT.npz RESULT.npz\n")
        return 2
    with np.load(argv[1], allow_pickle=False) as f:
        spikes = f["spikes"]
        shape = tuple(int(s) for s in f["input_shape"]) if "input_shape" in f else None
    results = {}
    for sample in range(spikes.shape[0]):
        for key, value in run_sample(argv[0], spikes[sample], shape).items():
            results[f"s{sample}/{key}"] = value
    np.savez_compressed(argv[2], **results)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
