"""Export a 20-50-5 LIF net with Norse 1.1.0 and a 20-40-5 LIF net with Sinabs 3.1.3 to NIR.

Run with snn2hw's venv (torch 2.13.0+cpu, nir 1.0.8, nirtorch 2.6) and norse 1.1.0 and
sinabs 3.1.3 installed with `pip install --no-deps --target DIR` (their own requirements
would replace torch by 2.14.1 with CUDA and nir by 1.0.4):

    PYTHONPATH=DIR python make.py OUTDIR
"""
import sys
from pathlib import Path

import nir
import torch

out = Path(sys.argv[1])


def numpy_graph(g):
    """Tensors -> numpy (as nir.read would give back); nothing else changed."""
    for node in g.nodes.values():
        for f in node.__dataclass_fields__:
            v = getattr(node, f)
            if isinstance(v, torch.Tensor):
                setattr(node, f, v.detach().numpy())
    return g


import norse.torch as norse

torch.manual_seed(0)
p = norse.LIFBoxParameters(tau_mem_inv=torch.tensor(100.0), v_th=torch.tensor(1.0),
                           v_leak=torch.tensor(0.0), v_reset=torch.tensor(0.0))
net = norse.SequentialState(torch.nn.Linear(20, 50), norse.LIFBoxCell(p), torch.nn.Linear(50, 5),
                            norse.LIFBoxCell(p))
with torch.no_grad():
    net[0].weight.mul_(15.0)
    net[2].weight.mul_(30.0)
g = numpy_graph(norse.to_nir(net, torch.randn(1, 20)))
nir.write(out / "norse_lif_20_50_5.nir", g, compression=None)   # gzip refuses scalars
torch.save(net.state_dict(), out / "norse_lif_20_50_5.pt")
print("norse", {k: (type(v).__name__, getattr(v, "input_type", None)) for k, v in g.nodes.items()})

import sinabs
import sinabs.layers as sl

torch.manual_seed(0)
snet = torch.nn.Sequential(torch.nn.Linear(20, 40), sl.LIF(tau_mem=torch.tensor(10.0)),
                           torch.nn.Linear(40, 5), sl.LIF(tau_mem=torch.tensor(10.0)))
with torch.no_grad():
    snet[0].weight.mul_(15.0)
    snet[2].weight.mul_(30.0)
sg = numpy_graph(sinabs.to_nir(snet, torch.randn(1, 20)))
nir.write(out / "sinabs_lif_20_40_5.nir", sg, compression=None)
torch.save(snet.state_dict(), out / "sinabs_lif_20_40_5.pt")
print("sinabs", {k: (type(v).__name__, getattr(v, "input_type", None)) for k, v in sg.nodes.items()})
print(sg.metadata, g.metadata)
