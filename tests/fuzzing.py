"""Shared pieces of the fuzz suites (tests/test_fuzz*.py): seeded damage to a file's bytes
and the check that `snn2hw inspect` either reads the result or refuses it in one line."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest


def damaged(data: bytes, rng: random.Random, truncate: bool, flips: int) -> bytes:
    """``data`` cut at a random length (``truncate``), or with 1..``flips`` random bytes
    overwritten."""
    b = bytearray(data)
    if truncate:
        return bytes(b[:rng.randrange(1, len(b))])
    for _ in range(rng.randint(1, flips)):
        b[rng.randrange(len(b))] = rng.randrange(256)
    return bytes(b)


def inspect_damaged(source: Callable[[int], bytes], count: int, *, seed: int, every: int,
                    flips: int, folder: Path, suffix: str,
                    capsys: pytest.CaptureFixture[str], names_file: bool = False) -> int:
    """Run ``snn2hw inspect`` on ``count`` damaged copies of ``source(k)`` (every
    ``every``-th one truncated, the last of each run of ``every``): each exits 0 or 2,
    without a traceback or an internal error, and a refusal is one line (naming the file
    when ``names_file``). Returns how many were refused."""
    from snn2hw.cli import main

    rng = random.Random(seed)
    refused = 0
    for k in range(count):
        path = folder / f"flip{k}{suffix}"
        path.write_bytes(damaged(source(k), rng, k % every == every - 1, flips))
        code = main(["inspect", str(path)])
        err = capsys.readouterr().err
        assert code in (0, 2) and "Traceback" not in err and "internal" not in err, err
        if code == 2:
            refused += 1
            assert err.count("\n") == 1 and (not names_file or path.name in err), err
    return refused
