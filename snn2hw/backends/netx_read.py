"""Reading lava-dl netx ``.net`` files: the layers as netx builds them, in integers.

:func:`read` gives every layer normalised (specs/loihi_fixed_point.md §4): dense weights
(out, in) (a 1-D weight is netx's ``reshape(out, -1)``), conv weights (C_out, C_in/groups,
kH, kW) in torch layout (a trailing kernel dimension of size 1 dropped, as netx's
``reshape(shape[:4])`` does), biases flat per neuron (dense) or per channel (conv), neuron
parameters as ints, delays (out, in) clamped to 62 as netx does. What netx itself builds
is read the way netx builds it:

* ``input`` with a ``neuron`` group: an input *layer of neurons* whose ``a_in`` takes the
  host's (graded) values directly, without a synapse (netx's ``Input`` block; its
  ``weight``/``bias`` are a transform netx leaves to the user, reported but not applied).
  Without a neuron group it only fixes the input shape.
* ``dense`` without a ``neuron`` group: netx's default non-leaky integrator (iDecay 0,
  vDecay 4096, vThMant ``1 << 18 - 1`` = 131072), which never spikes (v clips at
  2^23 - 1 < 131072 << 6).
* ``refDelay`` and ``gradedSpike`` are ignored, as netx ignores them on the CPU.
* SDNN (sigma-delta) neurons: ``{"type": "SDNN", "vThMant", "messageBits" (default 16, as
  netx), "sigma_output", "activation"}`` (:func:`_sdnn`); an SDNN input layer is netx's
  Delta, a ``sigma_output`` layer its Sigma, every other SDNN layer a SigmaDelta
  (``backends/netx_sdnn.py`` builds them).

Anything else (RF neurons, graded output spikes on CUBA neurons, per-neuron thresholds or
decays, recurrent/complex/pooling layers) is a one-line :class:`UnsupportedError` naming
the layer and the feature.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
from snn2hw_emulator.family import LAVA

from snn2hw.backends import netx_check
from snn2hw.errors import ModelFileError, UnsupportedError

#: netx's neuron for a dense layer without a ``neuron`` group (hdf5.py ``create_dense``):
#: iDecay 0, vDecay 4096 (a decay of one in Lava's widths, family.LAVA); its vThMant is
#: written ``1 << 18 - 1``, which Python reads as ``1 << 17`` (one past the 17-bit range).
DEFAULT_NEURON = {"type": "CUBA", "iDecay": 0, "vDecay": LAVA.decay_one,
                  "vThMant": LAVA.vth_max + 1}
MAX_DELAY = 62                     # netx clamps delays to 62 (DelayDense max_delay)


def _refuse(path: Path, k: int, what: str, hint: str = "") -> UnsupportedError:
    return UnsupportedError(f"layer {k} of '{path.name}' {what}", node=f"layer{k}",
                            hint=hint or "snn2hw reads netx's input, dense, conv and flatten "
                                         "layers with CUBA neurons.")


def _text(value: Any) -> str:
    raw = value[()] if isinstance(value, h5py.Dataset) else value
    raw = raw[0] if np.ndim(raw) else raw
    return raw.decode("ascii") if isinstance(raw, bytes) else str(raw)


def _int(path: Path, k: int, group: h5py.Group, key: str) -> int:
    """A neuron parameter netx passes as one value to its LIF process."""
    values = np.unique(np.asarray(group[key][()]).ravel())
    if values.size != 1:
        raise _refuse(path, k, f"has per-neuron {key} ({values.size} different values); "
                      "snn2hw gives a layer one value", hint="Export one value per layer.")
    if values[0] != np.round(values[0]):
        raise _refuse(path, k, f"has a non-integer {key} ({values[0]})",
                      hint="netx needs integer neuron parameters; re-export the network.")
    return int(values[0])


def _neuron(path: Path, k: int, h: h5py.Group) -> dict[str, Any]:
    n = h["neuron"]
    kind = _text(n["type"]) if "type" in n else "?"
    if kind == "SDNN":
        return _sdnn(path, k, n)
    if kind not in ("CUBA", "LOIHI"):
        raise _refuse(path, k, f"has {kind} neurons; snn2hw reads CUBA (LIF) neurons")
    graded = "messageBits" in n and int(np.asarray(n["messageBits"][()])) > 0
    if graded:           # netx then sends graded spikes, which a CUBA readout of ours does not
        raise _refuse(path, k, "has CUBA neurons with graded spikes (messageBits > 0)",
                      hint="Export with binary spikes (no messageBits), as slayer does.")
    missing = [key for key in ("iDecay", "vDecay", "vThMant") if key not in n]
    if missing:
        raise _refuse(path, k, f"has a neuron group without {', '.join(missing)}",
                      hint="netx needs iDecay, vDecay and vThMant for CUBA neurons.")
    return {"type": "CUBA", **{key: _int(path, k, n, key)
                               for key in ("iDecay", "vDecay", "vThMant")}}


def _sdnn(path: Path, k: int, n: h5py.Group) -> dict[str, Any]:
    """netx's SDNN neuron (hdf5.py:164-189): ``vThMant``, ``messageBits`` (netx's default
    16), ``sigma_output`` (a Sigma process, whose group netx reads no vThMant from).
    ``activation`` is kept for display only: netx leaves SigmaDelta's act_mode at RELU
    whatever it says."""
    sigma = "sigma_output" in n
    if "vThMant" not in n and not sigma:
        raise _refuse(path, k, "has an SDNN neuron group without vThMant",
                      hint="netx needs vThMant for SDNN neurons.")
    vth = _int(path, k, n, "vThMant") if "vThMant" in n else 0
    if vth < 0:
        raise _refuse(path, k, f"has an SDNN threshold vThMant {vth} < 0",
                      hint="Sigma-delta thresholds are magnitudes; export vThMant >= 0.")
    bits = _int(path, k, n, "messageBits") if "messageBits" in n else 16
    if not 0 < bits <= 32:
        raise _refuse(path, k, f"has SDNN neurons with messageBits {bits}, outside 1..32",
                      hint="Sigma-delta neurons send graded payloads of 1..32 bits.")
    return {"type": "SDNN", "vThMant": vth, "messageBits": bits, "sigma_output": sigma,
            "activation": _text(n["activation"]) if "activation" in n else "relu"}


def _ints(h: h5py.Group, key: str) -> np.ndarray:
    return np.asarray(h[key][()]).astype(np.int64)          # netx: astype(int), truncation


def _pair(h: h5py.Group, key: str, default: int) -> tuple[int, int]:
    """A conv geometry entry as the file has it, (y, x)."""
    v = np.asarray(h[key][()]) if key in h else np.asarray(default)
    v = np.broadcast_to(v.ravel() if v.size > 1 else v.reshape(()), (2,))
    return int(v[0]), int(v[1])


def _delay(path: Path, k: int, h: h5py.Group, shape: tuple[int, int]) -> np.ndarray:
    d = np.asarray(h["delay"][()]).astype(np.int64)
    d = np.clip(d, 0, MAX_DELAY)
    if d.ndim == 0:
        return np.full(shape, int(d), dtype=np.int64)
    if d.ndim == 1 and d.size == shape[0]:
        return np.repeat(d.reshape(-1, 1), shape[1], axis=1)
    if d.ndim == 1 and d.size == shape[1]:
        return np.repeat(d.reshape(1, -1), shape[0], axis=0)
    if d.shape == shape:
        return d
    raise _refuse(path, k, f"has delays of shape {d.shape} for weights {shape}",
                  hint="netx takes a scalar, per-output, per-input or per-synapse delay.")


def _layer(path: Path, k: int, h: h5py.Group) -> dict[str, Any]:
    kind = _text(h["type"]) if "type" in h else "?"
    layer: dict[str, Any] = {"type": kind, "index": k}
    if "shape" in h:
        layer["shape"] = tuple(int(s) for s in np.asarray(h["shape"][()]).ravel())
    if kind == "flatten":
        return layer
    if kind == "input":
        if "neuron" in h:
            layer["neuron"] = _neuron(path, k, h)
            layer["transform"] = {key: int(np.asarray(h[key][()]).ravel()[0]) if key in h
                                  else default for key, default in (("weight",
                                                                     1 << LAVA.act_shift),
                                                                    ("bias", 0))}
        return layer
    if kind not in ("dense", "conv"):
        why = ("is not built by netx either" if kind in ("pool", "convT", "unpool", "average",
                                                         "concat", "dense_comp")
               else "is not read by snn2hw")
        raise _refuse(path, k, f"has type '{kind}', which {why}")
    if "shape" not in layer or "weight" not in h:
        raise _refuse(path, k, f"is a {kind} layer without a shape or weight",
                      hint="The file is incomplete; re-export it.")
    if "neuron" in h:
        layer["neuron"] = _neuron(path, k, h)
    elif kind == "dense":
        layer["neuron"], layer["default_neuron"] = dict(DEFAULT_NEURON), True
    else:
        raise _refuse(path, k, "is a conv layer without a neuron group",
                      hint="netx needs a neuron group on conv layers.")
    w = _ints(h, "weight")
    size = int(np.prod(layer["shape"]))
    if kind == "dense":
        w = w.reshape(size, -1) if w.ndim == 1 else w
        if w.ndim != 2 or w.shape[0] != size:
            raise _refuse(path, k, f"has a dense weight of shape {w.shape} for {size} neurons",
                          hint="netx needs (out, in) dense weights.")
        if "delay" in h:
            layer["delay"] = _delay(path, k, h, w.shape)
    else:
        if w.ndim == 5 and w.shape[4] == 1:
            w = w[..., 0]                                  # netx: reshape(shape[:4])
        if w.ndim != 4 or len(layer["shape"]) != 3:
            raise _refuse(path, k, f"has a conv weight of shape {w.shape} and output shape "
                          f"{layer['shape']}", hint="netx needs (C_out, C_in, kH, kW) "
                          "weights and a (C, H, W) shape.")
        for key, default in (("stride", 1), ("padding", 0), ("dilation", 1)):
            layer[key] = _pair(h, key, default)
        layer["groups"] = int(np.asarray(h["groups"][()]).ravel()[0]) if "groups" in h else 1
    layer["weight"] = w
    if "bias" in h:
        layer["bias"] = _bias(path, k, _ints(h, "bias"), kind, layer["shape"])
    return layer


def _bias(path: Path, k: int, bias: np.ndarray, kind: str, shape: tuple[int, ...]
          ) -> np.ndarray:
    """Per neuron (dense: netx passes it as it is) or per channel (conv)."""
    flat = bias.ravel()
    want = shape[0] if kind == "conv" else int(np.prod(shape))
    if kind == "conv" and flat.size == int(np.prod(shape)):
        per = flat.reshape(shape)                        # neuron-wise, (C, H, W)
        if np.all(per == per[:, :1, :1]):
            return per[:, 0, 0].copy()
    if flat.size == want or flat.size == 1:
        return np.broadcast_to(flat, (want,)).copy()
    raise _refuse(path, k, f"has a bias of shape {bias.shape} for a {kind} layer of shape "
                  f"{shape}", hint="netx takes one bias per neuron (dense) or per channel "
                                   "(conv).")


def read(path: str | Path) -> list[dict[str, Any]]:
    """The layers of a ``.net`` file, normalised as described in the module docstring."""
    p = Path(path)
    if not p.is_file() or not h5py.is_hdf5(p):
        raise ModelFileError(f"'{p}' is not a netx .net (HDF5) file",
                             hint="A git-LFS pointer must be fetched first (git lfs pull).")
    with h5py.File(p, "r") as f:
        if "layer" not in f or not len(f["layer"]):
            raise ModelFileError(f"'{p}' has no /layer group", hint="Not a netx network file.")
        netx_check.check(p, f)                 # every field's type and range, before reading
        return [_layer(p, k, f["layer"][str(k)]) for k in range(len(f["layer"]))]


def input_shape(layers: list[dict[str, Any]], given: tuple[int, ...] | None
                ) -> tuple[tuple[int, ...], list[dict[str, Any]]]:
    """The network's input shape (C, H, W) or (n,), and the layers after a neuron-less
    input layer. Without an input layer (slayer exports start at the first block), the
    shape is ``given`` or inferred from the first layer where that is unambiguous."""
    if layers[0]["type"] == "input" and "shape" not in layers[0]:
        if "neuron" in layers[0]:
            raise UnsupportedError("layer 0 is an input layer with neurons but no shape",
                                   node="layer0", hint="netx needs the input layer's shape "
                                                       "(C, H, W) or (n,).")
        layers = layers[1:]                    # netx: an input layer without shape is a no-op
    if not layers:
        raise UnsupportedError("the .net file has no layer after its input layer",
                               hint="Export a network with at least one dense or conv layer.")
    first = layers[0]
    if first["type"] == "input":
        shape = tuple(first["shape"])
        return (shape, layers) if "neuron" in first else (shape, layers[1:])
    if given is not None:
        return tuple(int(s) for s in given), layers
    if first["type"] == "dense":
        return (int(first["weight"].shape[1]),), layers
    if first["type"] == "conv" and first["stride"] == (1, 1):
        w = first["weight"]
        out = np.asarray(first["shape"][1:])
        pad, dil = np.asarray(first["padding"]), np.asarray(first["dilation"])
        hw = out - 2 * pad + dil * (np.asarray(w.shape[2:]) - 1)
        return (int(w.shape[1] * first["groups"]), *map(int, hw)), layers
    raise UnsupportedError(f"the .net file has no input layer and its first layer "
                           f"('{first['type']}') does not fix the input size",
                           hint="Export the network with an input layer, or pass "
                                "input_shape=(C, H, W).")


__all__ = ["DEFAULT_NEURON", "input_shape", "read"]
