"""Write a small lava-dl slayer network (CUBA conv -> flatten -> dense -> dense, random
weights) with slayer's own ``export_hdf5``. Runs in the Lava environment (lava-dl):

    python slayer_export.py OUT.net SEED
"""

import sys

import h5py
import torch
from lava.lib.dl import slayer

NEURON = {"threshold": 1.25, "current_decay": 0.25, "voltage_decay": 0.03,
          "requires_grad": False}


def blocks():
    return [slayer.block.cuba.Conv(NEURON, 2, 4, 3, padding=1, weight_scale=2,
                                   weight_norm=False),
            slayer.block.cuba.Flatten(),
            slayer.block.cuba.Dense(NEURON, 4 * 6 * 6, 16, weight_scale=2, weight_norm=False),
            slayer.block.cuba.Dense(NEURON, 16, 5, weight_scale=2, weight_norm=False)]


def main(argv):
    torch.manual_seed(int(argv[1]))
    net = blocks()
    x = (torch.rand(1, 2, 6, 6, 20) < 0.3).float()     # slayer shapes: (N, C, H, W, T)
    for block in net:                                  # a forward pass, as after training,
        x = block(x)                                   # settles slayer's neuron parameters
    with h5py.File(argv[0], "w") as f:
        layer = f.create_group("layer")
        for i, block in enumerate(net):
            block.export_hdf5(layer.create_group(str(i)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
