"""snnTorch models and a step-by-step runner for equivalence tests and examples."""

from __future__ import annotations

import numpy as np
import snntorch as snn
import snntorch.utils
import torch


def heaviside(x: torch.Tensor) -> torch.Tensor:
    """Forward-only spike function that keeps the dtype (snnTorch's surrogates return
    float32, which would stop a float64 comparison)."""
    return (x > 0).to(x.dtype)


def make(kind: str, reset: str, n_in: int = 5, n_hidden: int = 8, n_out: int = 3,
         seed: int = 0) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    gen = np.random.default_rng(seed)

    def vec(lo: float, hi: float, n: int) -> torch.Tensor:
        return torch.tensor(gen.uniform(lo, hi, n))

    def neuron(n: int) -> torch.nn.Module:
        common = dict(threshold=vec(0.5, 1.5, n), init_hidden=True, reset_mechanism=reset,
                      reset_delay=False, spike_grad=heaviside)
        if kind == "leaky":
            return snn.Leaky(beta=vec(0.5, 0.99, n), **common)
        if kind == "synaptic":
            return snn.Synaptic(alpha=vec(0.3, 0.9, n), beta=vec(0.5, 0.99, n), **common)
        if kind == "rleaky":
            return snn.RLeaky(beta=vec(0.5, 0.99, n), linear_features=n, **common)
        if kind == "rsynaptic":
            return snn.RSynaptic(alpha=vec(0.3, 0.9, n), beta=vec(0.5, 0.99, n),
                                 linear_features=n, **common)
        raise ValueError(kind)

    net = torch.nn.Sequential(torch.nn.Linear(n_in, n_hidden), neuron(n_hidden),
                              torch.nn.Linear(n_hidden, n_out), neuron(n_out))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.mul_(2.0)
    return net.double()


def run(net: torch.nn.Module, x: np.ndarray) -> dict[str, np.ndarray]:
    """Spikes (B, T, n) of every neuron module, by module name, stepping snnTorch."""
    names = {m: name for name, m in net.named_modules()
             if isinstance(m, (snn.Leaky, snn.Synaptic, snn.RLeaky, snn.RSynaptic))}
    record: dict[str, list[np.ndarray]] = {name: [] for name in names.values()}

    def hook(mod, args, out):
        spk = out[0] if isinstance(out, tuple) else out
        record[names[mod]].append(spk.detach().numpy().copy())

    hooks = [m.register_forward_hook(hook) for m in names]
    snn.utils.reset(net)
    with torch.no_grad():
        xt = torch.as_tensor(x, dtype=torch.float64)
        for t in range(xt.shape[1]):
            net(xt[:, t])
    for h in hooks:
        h.remove()
    return {k: np.stack(v, axis=1) for k, v in record.items()}


def run_rsynaptic_as_synaptic(net: torch.nn.Module, x: np.ndarray) -> dict[str, np.ndarray]:
    """snnTorch 1.0.0's RSynaptic(reset_delay=False) forward is broken (specs §3.4.5), so
    drive snnTorch Synaptic neurons (same alpha, beta, threshold, reset) with the
    RSynaptic's own recurrent Linear applied to the previous step's spikes."""
    layers, record, prev = [], {}, {}
    for name, m in net.named_children():
        if isinstance(m, snn.RSynaptic):
            syn = snn.Synaptic(alpha=m.alpha, beta=m.beta, threshold=m.threshold,
                               init_hidden=True, reset_mechanism=m.reset_mechanism,
                               reset_delay=False, spike_grad=heaviside).double()
            layers.append((name, syn, m.recurrent))
        else:
            layers.append((name, m, None))
    for name, m, rec in layers:
        if rec is not None:
            snn.utils.reset(m)
            record[name] = []
    xt = torch.as_tensor(x, dtype=torch.float64)
    with torch.no_grad():
        for t in range(xt.shape[1]):
            h = xt[:, t]
            for name, m, rec in layers:
                if rec is None:
                    h = m(h)
                    continue
                last = prev.get(name, torch.zeros(h.shape[0], rec.out_features,
                                                  dtype=torch.float64))
                h = m(h + rec(last))
                prev[name] = h
                record[name].append(h.numpy().copy())
    return {k: np.stack(v, axis=1) for k, v in record.items()}


def braille_srnn(seed: int = 0) -> torch.nn.Sequential:
    """The shape of the published Braille SRNN (12 -> 38 recurrent CuBa -> 7 CuBa), with
    biases on every input current (nn.Linear's own, and the recurrent Linear's); alpha,
    beta and threshold drawn once per layer (as in the published graphs), reset to zero."""
    torch.manual_seed(seed)
    gen = np.random.default_rng(seed)

    def vec(lo: float, hi: float, n: int) -> torch.Tensor:
        return torch.full((n,), gen.uniform(lo, hi), dtype=torch.float64)

    def neuron(n: int, recurrent: bool) -> torch.nn.Module:
        common = dict(alpha=vec(0.5, 0.9, n), beta=vec(0.7, 0.95, n),
                      threshold=vec(0.8, 1.2, n), init_hidden=True, reset_mechanism="zero",
                      reset_delay=False, spike_grad=heaviside)
        return snn.RSynaptic(linear_features=n, **common) if recurrent else \
            snn.Synaptic(**common)

    net = torch.nn.Sequential(torch.nn.Linear(12, 38), neuron(38, True),
                              torch.nn.Linear(38, 7), neuron(7, False))
    with torch.no_grad():
        net[0].bias.mul_(0.3)
        net[1].recurrent.weight.mul_(0.1)
        net[1].recurrent.bias.mul_(0.3)
        net[2].weight.mul_(0.7)
        net[2].bias.mul_(0.3)
    return net.double()
