"""Small netx ``.net`` files written by hand for the netx reader's unit tests."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np


def write_net(path: Path, layers: list[dict], *, bytes_neuron_type: bool = False) -> Path:
    """``/layer/<k>/{type, <fields>, neuron/{type, <fields>}}`` from dicts (consumed); the
    neuron type (default CUBA) as a plain string, or as netx's exporter writes it, an
    ``S10`` array (``bytes_neuron_type``)."""
    with h5py.File(path, "w") as f:
        for k, layer in enumerate(layers):
            h = f.create_group(f"layer/{k}")
            h.create_dataset("type", (1,), "S10", [layer.pop("type").encode()])
            neuron = layer.pop("neuron", None)
            for key, value in layer.items():
                h.create_dataset(key, data=np.asarray(value))
            if neuron is not None:
                n = h.create_group("neuron")
                kind = neuron.pop("type", "CUBA")
                if bytes_neuron_type:
                    n.create_dataset("type", (1,), "S10", [kind.encode()])
                else:
                    n.create_dataset("type", data=kind)
                for key, value in neuron.items():
                    n.create_dataset(key, data=np.asarray(value))
    return path
