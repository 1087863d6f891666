"""Norse's own forward pass on fixed input spikes, for the test that reads its export.

    python norse_forward.py tests/data/exporters DIR   (DIR: see make_exports.py)
"""
import sys

sys.path.insert(0, sys.argv[2])  # norse 1.1.0 installed with --no-deps here
import norse.torch as norse
import numpy as np
import torch

out = sys.argv[1]
p = norse.LIFBoxParameters(tau_mem_inv=torch.tensor(100.0), v_th=torch.tensor(1.0),
                           v_leak=torch.tensor(0.0), v_reset=torch.tensor(0.0))
net = norse.SequentialState(torch.nn.Linear(20, 50), norse.LIFBoxCell(p), torch.nn.Linear(50, 5),
                            norse.LIFBoxCell(p))
net.load_state_dict(torch.load(f"{out}/norse_lif_20_50_5.pt"))
x = (np.random.default_rng(0).random((8, 60, 20)) < 0.2).astype(np.float32)
rec = {"1": [], "3": []}
s1 = s3 = None
with torch.no_grad():
    for t in range(x.shape[1]):
        h = net[0](torch.as_tensor(x[:, t]))
        z1, s1 = net[1](h, s1)
        z3, s3 = net[3](net[2](z1), s3)
        rec["1"].append(z1.numpy()); rec["3"].append(z3.numpy())
np.savez_compressed(f"{out}/norse_lif_20_50_5_forward.npz", x=x.astype(np.int8),
                    **{k: np.stack(v, 1).astype(np.int8) for k, v in rec.items()})
print({k: int(np.stack(v).sum()) for k, v in rec.items()})
