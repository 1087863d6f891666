"""Import an snnTorch model through snnTorch's own NIR export.

NIR does not carry the reset mechanism or dt, and snnTorch's exporter has known
bugs (specs/nir_semantics.md §3.4). This importer works around them:

* reads ``reset_mechanism`` / ``reset_delay`` from the torch modules and records the
  matching reference reset mode on each neuron node (``metadata["reset"]``):
  ``zero`` -> ``zero``, ``subtract`` -> ``snntorch_subtract`` (bit-compatible);
* refuses ``reset_delay=True`` where it changes behaviour (it cannot be represented);
  a Leaky with reset-to-zero gives identical spikes either way and is accepted;
* broadcasts scalar ``beta``/``alpha``/``threshold`` to the layer shape on a copy of
  the model before exporting (the scalar-parameter export bug);
* refuses modules the exporter would silently drop;
* records ``dt = 1e-4`` (hard-coded by snnTorch's exporter) in the graph metadata.

snnTorch's NIR *import* is never used.
"""

from __future__ import annotations

import copy
import io
import warnings
from collections import Counter
from contextlib import redirect_stdout
from typing import Any

from snn2hw.checker import from_nir
from snn2hw.errors import UnsupportedError, UserInputError
from snn2hw.ir import Graph

SNNTORCH_DT = 1e-4


def _modules() -> tuple[Any, Any, Any]:
    try:
        import snntorch
        import snntorch.utils
        import torch
        from snntorch.export_nir import export_to_nir
    except ImportError as exc:
        raise UnsupportedError(f"importing snnTorch models needs torch and snntorch ({exc})",
                               hint='Install with `pip install "snn2hw[torch]"`.') from None
    return torch, snntorch, export_to_nir


def _kinds(torch: Any, snn: Any) -> tuple[tuple[type, ...], tuple[type, ...]]:
    layers = (torch.nn.Linear, torch.nn.Conv2d, torch.nn.AvgPool2d, torch.nn.Flatten)
    neurons = (snn.Leaky, snn.Synaptic, snn.RLeaky, snn.RSynaptic)
    return layers, neurons


def _check_neuron(name: str, m: Any, snn: Any) -> str:
    kind = type(m).__name__
    mech = m.reset_mechanism
    if mech not in ("zero", "subtract"):
        raise UnsupportedError(f"{kind} '{name}' uses reset_mechanism='{mech}'; snn2hw supports "
                               "'zero' and 'subtract'", node=name,
                               hint="Retrain with reset_mechanism='zero' or 'subtract'.")
    if m.reset_delay and not (type(m) is snn.Leaky and mech == "zero"):
        raise UnsupportedError(f"{kind} '{name}' has reset_delay=True (snnTorch's default): the "
                               "reset lands one step late, which NIR and hardware cannot "
                               "represent", node=name,
                               hint="Construct the layer with reset_delay=False and retrain "
                                    "(or fine-tune) the model.")
    if float(m.graded_spikes_factor) != 1.0:
        raise UnsupportedError(f"{kind} '{name}' has graded_spikes_factor="
                               f"{float(m.graded_spikes_factor)}; only 1.0 is exported",
                               node=name, hint="Fold the factor into the next layer's weights.")
    if m.inhibition or m.state_quant:
        raise UnsupportedError(f"{kind} '{name}' uses inhibition or state_quant, which NIR "
                               "cannot express", node=name, hint="Disable them before export.")
    return "zero" if mech == "zero" else "snntorch_subtract"


def _scan(model: Any, torch: Any, snn: Any) -> dict[str, str]:
    """Check every module; return neuron module name -> reference reset mode."""
    layers, neurons = _kinds(torch, snn)
    resets: dict[str, str] = {}
    inside_neuron: list[str] = []
    for name, m in model.named_modules():
        if any(name.startswith(p + ".") for p in inside_neuron):
            continue  # the recurrent Linear inside RLeaky/RSynaptic
        if isinstance(m, neurons):
            resets[name] = _check_neuron(name, m, snn)
            inside_neuron.append(name)
        elif isinstance(m, (*layers, torch.nn.Sequential)):
            continue
        elif not list(m.children()):
            raise UnsupportedError(f"module '{name}' ({type(m).__name__}) has no NIR export in "
                                   "snnTorch; it would be dropped silently", node=name,
                                   hint="Supported: Linear, Conv2d, AvgPool2d, Flatten, Leaky, "
                                        "Synaptic, RLeaky, RSynaptic inside nn.Sequential.")
    if not resets:
        raise UnsupportedError("the model has no snnTorch neuron layer (Leaky, Synaptic, "
                               "RLeaky, RSynaptic)", hint="Import ANNs with the ONNX/torch path.")
    return resets


def _broadcast_parameters(model: Any, sample: Any, torch: Any, snn: Any) -> None:
    """Give every neuron per-element beta/alpha/threshold (fixes the scalar export bug)."""
    _, neurons = _kinds(torch, snn)
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = [m.register_forward_hook(lambda mod, args, out, n=name: shapes.__setitem__(
        n, tuple(args[0].shape[1:]))) for name, m in model.named_modules()
        if isinstance(m, neurons)]
    with torch.no_grad():
        model(sample)
    for h in hooks:
        h.remove()
    for name, m in model.named_modules():
        if not isinstance(m, neurons):
            continue
        for attr in ("beta", "alpha", "threshold"):
            value = getattr(m, attr, None)
            if value is None:
                continue
            full = torch.broadcast_to(torch.as_tensor(value).detach(), shapes[name]).clone()
            if isinstance(value, torch.nn.Parameter):
                setattr(m, attr, torch.nn.Parameter(full, requires_grad=value.requires_grad))
            else:
                setattr(m, attr, full)


def _detached_state(model: Any, torch: Any) -> dict[int, Any]:
    """deepcopy memo replacing hidden states that are autograd non-leaves (left by a
    training step) with detached copies, so the user's model is copied, not touched."""
    memo: dict[int, Any] = {}
    for m in model.modules():
        for value in [*vars(m).values(), *m._buffers.values()]:
            if isinstance(value, torch.Tensor) and not value.is_leaf:
                memo[id(value)] = value.detach().clone()
    return memo


def _node_name(nodes: dict[str, Any], module_name: str) -> str | None:
    for cand in (module_name, f"{module_name}.lif"):
        if cand in nodes:
            return cand
    return None


def from_snntorch(model: Any, sample: Any) -> Graph:
    """Import an snnTorch model (``nn.Sequential`` of layers and ``init_hidden=True``
    neurons). ``sample`` is one input batch (B, *input_shape) used for tracing."""
    torch, snn, export_to_nir = _modules()
    if not isinstance(model, torch.nn.Module):
        raise UserInputError(f"expected a torch.nn.Module, got {type(model).__name__}")
    sample = torch.as_tensor(sample)
    resets = _scan(model, torch, snn)
    work = copy.deepcopy(model, memo=_detached_state(model, torch)).eval()
    for m in work.modules():
        if isinstance(m, snn.RSynaptic):
            # snnTorch 1.0.0's RSynaptic forward crashes with reset_delay=False (§3.4.5);
            # the forward here only traces shapes, and the reset mode was read above.
            m.reset_delay = True
    snn.utils.reset(work)
    _broadcast_parameters(work, sample.to(next(work.parameters()).dtype), torch, snn)
    snn.utils.reset(work)
    log = io.StringIO()
    try:
        with redirect_stdout(log), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # nirtorch's old tracer
            exported = export_to_nir(work, sample.to(next(work.parameters()).dtype),
                                     ignore_dims=[0])
    except Exception as exc:  # noqa: BLE001 (the exporter raises bare ValueError, ...)
        raise UnsupportedError(f"snnTorch's NIR export failed: {exc}",
                               hint="Check layer shapes and use per-neuron parameters.") from None
    for module_name, mode in resets.items():
        node = _node_name(exported.nodes, module_name)
        if node is None:
            raise UnsupportedError(f"snnTorch's export lost the neuron layer '{module_name}'",
                                   node=module_name, hint="Wrap the model in nn.Sequential.")
        exported.nodes[node].metadata = {**(exported.nodes[node].metadata or {}), "reset": mode}
    common = Counter(resets.values()).most_common(1)[0][0]
    meta = {"dt": SNNTORCH_DT, "reset": common, "source": f"snntorch {snn.__version__}"}
    return from_nir(exported, metadata=meta)
