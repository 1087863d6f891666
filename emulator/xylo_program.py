"""In-memory form of a Xylo program: the chip's three weight matrices and its neurons.

A Xylo core has ``n_in`` input channels, ``n_hidden`` hidden IAF neurons (each with
``n_syn`` synaptic currents, 1 or 2) and ``n_out`` output IAF neurons (one synaptic
current, at most one spike per step). All hidden-to-hidden weights, of every hidden layer
and of recurrence, are one recurrent matrix.

Time convention (xylosim's, docs/xylo.md): steps t = 1..T; input row t-1 is delivered at
step t with no delay; hidden spikes of step t reach hidden and output neurons at step t+1.
Recorded V and I_syn are the values after the step's update and spikes; a hidden neuron's
spike count includes what alias sources copied into it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from snn2hw_emulator.program import OutputPort, Port

FAMILY = "xylo-iaf"
#: The first program-image format version that can hold a Xylo program.
XYLO_VERSION = 4
#: Recordable variables: spike counts, membrane potential, synaptic currents 1 and 2.
RECORDABLE = ("spikes", "v", "i_syn", "i_syn2")
#: The two neuron populations, as group names in results, and the input port's name.
HIDDEN, OUTPUT, INPUT = "hidden", "output", "input"
#: Array fields: name -> number of dimensions.
ARRAYS = {"weights_in": 3, "weights_rec": 3, "weights_out": 2, "dash_mem": 1,
          "dash_syn": 2, "dash_mem_out": 1, "dash_syn_out": 1, "threshold": 1,
          "threshold_out": 1, "bias": 1, "bias_out": 1, "aliases": 1}
SHIFTS = ("weight_shift_in", "weight_shift_rec", "weight_shift_out")


@dataclass(frozen=True, eq=False)
class XyloProgram:
    """Integer parameters of one Xylo network.

    ``weights_in`` (n_in, n_hidden, n_syn), ``weights_rec`` (n_hidden, n_hidden, n_syn),
    ``weights_out`` (n_hidden, n_out): signed 8-bit weights, each matrix shifted left by
    its ``weight_shift_*`` as it is delivered. ``dash_mem`` (n_hidden,), ``dash_syn``
    (n_hidden, n_syn), ``dash_mem_out``/``dash_syn_out`` (n_out,): bit-shift decays.
    ``threshold``/``threshold_out``: int16 thresholds; ``bias``/``bias_out``: added to dv
    each step. ``aliases`` (n_hidden,): the hidden neuron each one's spikes are also
    counted for, -1 for none. ``target_toml`` is the target file's text, embedded verbatim;
    ``target_hash`` the sha256 hex digest of its UTF-8 bytes."""

    target_name: str
    target_hash: str
    target_toml: str
    weights_in: np.ndarray
    weights_rec: np.ndarray
    weights_out: np.ndarray
    weight_shift_in: int
    weight_shift_rec: int
    weight_shift_out: int
    dash_mem: np.ndarray
    dash_syn: np.ndarray
    dash_mem_out: np.ndarray
    dash_syn_out: np.ndarray
    threshold: np.ndarray
    threshold_out: np.ndarray
    bias: np.ndarray
    bias_out: np.ndarray
    aliases: np.ndarray
    metadata: dict[str, str | int | float | bool] = field(default_factory=dict)
    format_version: int = XYLO_VERSION

    family = FAMILY

    @property
    def n_in(self) -> int:
        return int(np.shape(self.weights_in)[0])

    @property
    def n_hidden(self) -> int:
        return int(np.shape(self.weights_rec)[0])

    @property
    def n_out(self) -> int:
        return int(np.shape(self.weights_out)[1])

    @property
    def n_syn(self) -> int:
        return int(np.shape(self.weights_in)[2])

    @property
    def ports(self) -> tuple[Port, ...]:
        """The one input port (event counts per channel), as the device interface reads
        ports of any program."""
        return (Port(INPUT, self.n_in, (self.n_in,)),)

    @property
    def outputs(self) -> tuple[OutputPort, ...]:
        return (OutputPort(OUTPUT, OUTPUT),)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array field as an int64 numpy array."""
        return {k: np.asarray(getattr(self, k), dtype=np.int64) for k in ARRAYS}

    def recordable(self) -> tuple[str, ...]:
        """What a run of this program can record: i_syn2 only with two synapses."""
        return RECORDABLE if self.n_syn == 2 else RECORDABLE[:3]


def is_xylo(program: object) -> bool:
    """True for a Xylo program (the engine, image and devices dispatch on this)."""
    return getattr(program, "family", None) == FAMILY
