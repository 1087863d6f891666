"""Cost of a Xylo run, priced by the target's ``[cost]`` table (cost.py's events).

Per sample and step: ``synops`` = synapse updates (each input event through each of its
channel's synapses, each hidden spike of the last step through each of its recurrent and
output synapses: what xylosim's ``receiveSpike`` calls), ``active`` = every hidden and
output neuron (the core visits each one every step: Rockpool's cycle model charges a
fixed count per neuron), ``spikes`` = neurons that spiked. One core: no hops. The
shipped Xylo targets give times from Rockpool's cycle model and no energies.
"""

from __future__ import annotations

import numpy as np
from snn2hw_emulator.cost import _ENERGY, _TIME, EVENTS, CostReport
from snn2hw_emulator.target import Target
from snn2hw_emulator.xylo_program import HIDDEN, OUTPUT, XyloProgram
from snn2hw_emulator.xylo_result import XyloResult


def report(program: XyloProgram, target: Target, result: XyloResult, events: np.ndarray
           ) -> CostReport:
    """The cost of ``result`` (xylo_result.XyloResult) for input ``events`` (B, T, n_in)."""
    a = program.arrays()
    fan_in = np.count_nonzero(a["weights_in"], axis=(1, 2))
    fan_hidden = np.count_nonzero(a["weights_rec"], axis=(1, 2)) + \
        np.count_nonzero(a["weights_out"], axis=1)
    hidden = result.spikes[HIDDEN].astype(np.int64)
    b, t = hidden.shape[:2]
    x = np.zeros((b, t, program.n_in), np.int64)
    x[:, :min(t, events.shape[1])] = np.minimum(events[:, :t], target.numeric.input_events_max)
    last = np.concatenate([np.zeros((b, 1, hidden.shape[2]), np.int64), hidden[:, :-1]],
                          axis=1)
    counts = {e: np.zeros((b, t, 1), np.int64) for e in EVENTS}
    counts["synops"][..., 0] = x @ fan_in + last @ fan_hidden
    counts["active"][..., 0] = program.n_hidden + program.n_out
    counts["spikes"][..., 0] = np.count_nonzero(hidden, axis=2) + \
        np.count_nonzero(result.spikes[OUTPUT], axis=2)
    c = target.cost
    latency = sum(counts[e][..., 0] * getattr(c, _TIME[e]) for e in _TIME) + \
        c.barrier_time_ns
    step_energy = sum(counts[e][..., 0] * getattr(c, _ENERGY[e]) for e in _ENERGY) + \
        c.static_power_mw * latency            # mW x ns = pJ
    return CostReport(counts, latency.astype(float), step_energy.sum(axis=1).astype(float),
                      bool(c.estimated), (0,), step_energy.astype(float))
