"""Random Xylo programs and the normative kernel as a runner (no compiler), for the
differential tests against xylosim."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st
from snn2hw_emulator import xylo_kernels as K
from snn2hw_emulator.family import XYLOSIM
from snn2hw_emulator.xylo_program import HIDDEN, OUTPUT, XyloProgram
from snn2hw_emulator.xylo_result import XyloResult


@dataclass(frozen=True)
class Regime:
    """What a random program stresses: sizes, synapses, density, saturation (large shifts
    and weights, 15+ input events), multi-spike (low thresholds), thresholds <= 0,
    aliases, recurrence and biases."""

    seed: int
    n_in: int
    n_hidden: int
    n_out: int
    n_syn: int
    density: float
    wild: bool
    low_threshold: bool
    odd_threshold: bool
    alias: float
    recurrent: bool
    bias: bool


regimes = st.builds(
    Regime, seed=st.integers(0, 2**31), n_in=st.integers(1, 16), n_hidden=st.integers(1, 24),
    n_out=st.integers(1, 8), n_syn=st.sampled_from([1, 2]),
    density=st.sampled_from([0.1, 0.4, 0.9]), wild=st.booleans(),
    low_threshold=st.booleans(), odd_threshold=st.booleans(),
    alias=st.sampled_from([0.0, 0.3, 0.8]), recurrent=st.booleans(), bias=st.booleans())


def random_program(r: Regime) -> XyloProgram:
    rng = np.random.default_rng(r.seed)
    rec = XYLOSIM
    wlo, whi = rec.ranges()["weights_in"]

    def w(*shape: int) -> np.ndarray:
        return rng.integers(wlo, whi + 1, shape) * (rng.random(shape) < r.density)

    nh, ns, no = r.n_hidden, r.n_syn, r.n_out
    # wild: shifted weights of up to 2^14 slam the states into both rails; otherwise
    # thresholds of a few events' worth, so that neurons spike (often several times)
    shifts = rng.integers(4, rec.weight_shift_max + 1, 3) if r.wild else \
        rng.integers(0, 3, 3)
    top = 2 ** (rec.threshold_bits - 1) - 1
    hi = 300 if r.low_threshold else (top if r.wild else 4 * (whi << int(shifts[0])))
    lo = -200 if r.odd_threshold else 1

    def th(n: int) -> np.ndarray:
        return rng.integers(lo, hi + 1, n)

    blo, bhi = rec.ranges()["bias"]
    bias = (lambda n: rng.integers(blo, bhi + 1, n)) if r.bias else (lambda n: np.zeros(n, int))
    dash = rec.ranges()["dash_mem"][1] + 1
    return XyloProgram(
        "xylo-test", "0" * 64, "", w(r.n_in, nh, ns), w(nh, nh, ns) * r.recurrent, w(nh, no),
        int(shifts[0]), int(shifts[1]), int(shifts[2]), rng.integers(0, dash, nh),
        rng.integers(0, dash, (nh, ns)), rng.integers(0, dash, no), rng.integers(0, dash, no),
        th(nh), th(no), bias(nh), bias(no),
        np.where(rng.random(nh) < r.alias, rng.integers(0, nh, nh), -1))


def random_inputs(r: Regime, batch: int, steps: int) -> np.ndarray:
    """Event counts per channel and step; wild regimes send up to 20 (over the cap of 15)."""
    rng = np.random.default_rng(r.seed + 1)
    top = 21 if r.wild else 3
    return rng.integers(0, top, (batch, steps, r.n_in)) * (rng.random((batch, steps,
                                                                        r.n_in)) < 0.5)


def kernel_run(program: XyloProgram, events: np.ndarray) -> XyloResult:
    """The normative kernel, one sample at a time: the same result shapes as the engine."""
    a = {k: v.tolist() for k, v in program.arrays().items()}
    net = K.Net(a["weights_in"], a["weights_rec"], a["weights_out"], program.weight_shift_in,
                program.weight_shift_rec, program.weight_shift_out, a["dash_mem"],
                a["dash_syn"], a["dash_mem_out"], a["dash_syn_out"], a["threshold"],
                a["threshold_out"], a["bias"], a["bias_out"], a["aliases"])
    rows: dict[str, list] = {k: [] for k in ("sh", "so", "vh", "vo", "ih", "io", "i2")}
    for sample in events:
        state = K.NetState.zeros(net)
        per: dict[str, list] = {k: [] for k in rows}
        for x in sample.tolist():
            out = K.step(net, state, x)
            per["sh"].append(list(state.counts))
            per["so"].append(out)
            per["vh"].append(list(state.v))
            per["vo"].append(list(state.v_out))
            per["ih"].append([i[0] for i in state.i_syn])
            per["io"].append(list(state.i_out))
            per["i2"].append([i[-1] for i in state.i_syn])
        for k, values in per.items():
            rows[k].append(values)
    b, t = events.shape[:2]

    def arr(key: str, n: int) -> np.ndarray:
        return np.asarray(rows[key], np.int64).reshape(b, t, n)

    nh, no = program.n_hidden, program.n_out
    i2 = {HIDDEN: arr("i2", nh)} if program.n_syn == 2 else {}
    spikes = {HIDDEN: arr("sh", nh), OUTPUT: arr("so", no)}
    return XyloResult(spikes, {HIDDEN: arr("vh", nh), OUTPUT: arr("vo", no)},
                      {HIDDEN: arr("ih", nh), OUTPUT: arr("io", no)}, i2,
                      {OUTPUT: spikes[OUTPUT]}, {})
