"""Random program images mixing sigma-delta and LIF groups, graded and binary blocks,
dense, sparse and conv (built by hand, no compiler), for emulator and Lava tests."""

from __future__ import annotations

import numpy as np
import programs
from snn2hw_emulator.program import Core, NeuronGroup, OutputPort, Port, Program, SynapseBlock

from snn2hw import targets


def sd_group(rng: np.random.Generator, name: str, shape: tuple[int, ...],
             model: str = "sigma_delta") -> NeuronGroup:
    """A sigma-delta group (``model`` "delta": no bias; "sigma": no parameters): vth 0
    (netx's choice: send every change) 20% of the time, else 1..63; spike_exp 0..3,
    state_exp 0..6, sparse small biases, RELU (70%) or UNIT, cum_error 30% of the time."""
    n = int(np.prod(shape))
    zeros = np.zeros(n, np.int64)
    plain = model == "sigma"
    return NeuronGroup(
        name=name, model=model, size=n, shape=shape, du=0, dv=0,  # type: ignore[arg-type]
        vth=0 if plain or rng.random() < 0.2 else int(rng.integers(1, 64)),
        bias_mant=zeros if model != "sigma_delta" else
        rng.integers(-40, 41, n) * (rng.random(n) < 0.5), bias_exp=zeros,
        u0=zeros, v0=zeros, act_mode="relu" if rng.random() < 0.7 else "unit",
        cum_error=not plain and bool(rng.random() < 0.3),
        spike_exp=0 if plain else int(rng.integers(0, 4)),
        state_exp=0 if plain else int(rng.integers(0, 7)))


def _lif_group(rng: np.random.Generator, name: str, shape: tuple[int, ...]) -> NeuronGroup:
    g = programs._group(rng, name, int(np.prod(shape)), False)
    return NeuronGroup(**{**g.__dict__, "shape": shape})


def _dense(rng: np.random.Generator, name: str, src: str, tgt: str, n_src: int, n_tgt: int,
           graded: bool, from_sd: bool) -> SynapseBlock:
    mode = str(rng.choice(["auto", "auto", "mixed", "exc", "inh"]))
    data_mode = mode if mode != "auto" else str(rng.choice(["mixed", "exc", "inh"]))
    kind = "sparse" if rng.random() < 0.25 else "dense"
    wexp = int(rng.integers(-8, -1)) if from_sd and graded else int(rng.integers(-4, 3))
    return SynapseBlock(name=name, kind=kind, source=src, target=tgt,  # type: ignore[arg-type]
                        weights=programs._weights(rng, (n_tgt, n_src), data_mode),
                        weight_exp=wexp, num_weight_bits=int(rng.integers(1, 9)),
                        sign_mode=mode,  # type: ignore[arg-type]
                        num_message_bits=int(rng.choice([8, 16, 24])) if graded else 0)


def _conv(rng: np.random.Generator, name: str, src: str, tgt: str, c_in: int, c_out: int,
          stride: int, graded: bool, from_sd: bool) -> SynapseBlock:
    span = 8 if from_sd else 60                    # keeps Lava's float64 -> int32 cast exact
    w = rng.integers(-span, span + 1, (c_out, 3, 3, c_in)).astype(np.int32)
    return SynapseBlock(name=name, kind="conv", source=src, target=tgt, weights=w,
                        num_message_bits=16 if graded else 0,
                        conv={"stride": (stride, stride), "padding": (1, 1),
                              "dilation": (1, 1), "groups": 1})


def sigma_delta_program(seed: int, *, conv: bool, sd_share: float = 0.6,
                        force: str | None = None) -> Program:
    """in -> [conv -> G0 -> conv (stride 2) -> G1 ->] or [dense/sparse -> G0 -> G1 ->]
    dense -> G2 -> dense -> G3, each group graded with probability ``sd_share`` (else
    LIF, LIFReset too), at least one of each kind; a graded group is sigma-delta, or
    (30%, not in the conv layers) a delta or sigma group (``force``: G2's model); blocks
    from a graded group are graded 85% of the time (binary ones see any non-zero payload
    as a spike), blocks from a LIF group 30%; the port is graded (8-bit) half the time; a
    recurrent dense block on G1 (dense variant) one time in three."""
    rng = np.random.default_rng(seed)
    kinds = ["sd" if rng.random() < sd_share else "lif" for _ in range(4)]
    if "sd" not in kinds:
        kinds[int(rng.integers(0, 4))] = "sd"
    if "lif" not in kinds:
        kinds[int(rng.integers(0, 4))] = "lif"
    models = [("sigma_delta" if rng.random() < 0.7 or (conv and k < 2) else
               str(rng.choice(["delta", "sigma"]))) if kind == "sd" else "lif"
              for k, kind in enumerate(kinds)]
    if force is not None:                      # layer G2 (always dense-fed) gets this model
        kinds[2], models[2] = ("lif" if force == "lif" else "sd"), force
        if kinds.count("lif") in (0, 4):
            kinds[0 if force != "lif" else 1] = "lif" if force != "lif" else "sd"
            models[0 if force != "lif" else 1] = "lif" if force != "lif" else "sigma_delta"
    graded_in = bool(rng.random() < 0.5)
    if conv:
        shapes = [(5, 4, 2), (5, 4, 2), (3, 2, 3), (int(rng.integers(3, 9)),),
                  (int(rng.integers(2, 7)),)]
    else:
        shapes = [(int(x),) for x in rng.integers(3, 12, 5)]
    port = Port("in", int(np.prod(shapes[0])), shapes[0], 8 if graded_in else 0)
    groups: list[NeuronGroup] = []
    blocks: list[SynapseBlock] = []
    prev, prev_sd = "in", False
    for k in range(4):
        shape = shapes[k + 1]
        g = (sd_group(rng, f"G{k}", shape, models[k]) if kinds[k] == "sd" else
             _lif_group(rng, f"G{k}", shape))
        graded = graded_in if k == 0 else bool(rng.random() < (0.85 if prev_sd else 0.3))
        n_src = int(np.prod(shapes[k]))
        if conv and k < 2:
            blocks.append(_conv(rng, f"W{k}", prev, g.name, shapes[k][2], shape[2], 1 + k,
                                graded, prev_sd))
        else:
            blocks.append(_dense(rng, f"W{k}", prev, g.name, n_src, g.size, graded, prev_sd))
        groups.append(g)
        prev, prev_sd = g.name, kinds[k] == "sd"
    if not conv and rng.random() < 1 / 3:
        g1 = groups[1]
        blocks.append(_dense(rng, "Wrec", g1.name, g1.name, g1.size, g1.size,
                             g1.model != "lif", g1.model != "lif"))
    t = targets.load("loihi2")
    cores = tuple(Core(i, 0, (g.name,), tuple(b.name for b in blocks if b.target == g.name))
                  for i, g in enumerate(groups))
    return Program(target_name=t.name, target_hash=t.sha256, target_toml=t.toml, ports=(port,),
                   groups=tuple(groups), blocks=tuple(blocks), cores=cores,
                   outputs=(OutputPort("out", groups[-1].name),), metadata={"seed": seed})


def conv_bound_ok(program: Program, spikes: dict[str, np.ndarray]) -> bool:
    """Every conv block's sums stay below 2^31 (where Lava's float64 -> int32 cast is
    exact): max |source value| times the largest per-output-channel sum of |weights|."""
    for b in program.blocks:
        if b.kind != "conv" or b.source not in spikes:
            continue
        top = int(np.abs(spikes[b.source]).max(initial=0))
        w = np.abs(np.asarray(b.weights, np.int64)).reshape(b.weights.shape[0], -1).sum(1)
        if top * int(w.max()) >= 2**31:
            return False
    return True
