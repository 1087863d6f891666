"""Training that gives the same weights on every run and every machine of this kind.

Seeds alone are not enough on a CPU. PyTorch picks its kernels by the processor's
instruction set (ATen's AVX512/AVX2 code paths, MKL's GEMM branches, oneDNN's JIT), and
different kernels add in different orders, so one machine with AVX-512 and one without
train different networks from the same seed. Intra-op threads split sums too. So
:func:`pin_kernels` pins one code path that every x86-64 CPU with AVX2 runs
identically, and it must run before ``torch`` is imported:

* ``ATEN_CPU_CAPABILITY=avx2``: ATen's vectorised kernels at AVX2 width, on any CPU
  that has AVX2, with or without AVX-512;
* ``MKL_CBWR=AVX2``: MKL's conditional numerical reproducibility mode on the AVX2 branch;
* ``ONEDNN_MAX_CPU_ISA=AVX2``: oneDNN (convolutions) no wider than AVX2.

:func:`training` then fixes what is left inside the process: the seeds of torch and
numpy, ``torch.use_deterministic_algorithms(True)`` and one intra-op thread while
training (restored afterwards), so the result does not depend on ``OMP_NUM_THREADS`` or
the number of cores. A CPU without AVX2 gets a warning: it trains on another code path,
and its figures may differ from the README's.

These settings are for the examples and tests that train; snn2hw itself trains nothing.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import warnings
from collections.abc import Iterator

PINS = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def pin_kernels() -> None:
    """Pin PyTorch's CPU code path (see the module text). Call before importing torch."""
    if "torch" in sys.modules and any(os.environ.get(k) != v for k, v in PINS.items()):
        raise RuntimeError("reproducible.pin_kernels() must run before torch is imported "
                           "(import the 'reproducible' module first)")
    os.environ.update(PINS)


@contextlib.contextmanager
def training(seed: int) -> Iterator[None]:
    """Seeded, deterministic, single-threaded torch for the duration of a training run."""
    import numpy as np
    import torch

    capability = torch.backends.cpu.get_cpu_capability()
    if capability != "AVX2":
        warnings.warn(f"training on the {capability} code path, not AVX2: the weights may "
                      f"differ from other machines' (see examples/reproducible.py)",
                      stacklevel=3)
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


pin_kernels()
