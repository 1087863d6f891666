"""The benchmark scripts keep running (their figures are not asserted: speed is measured
by running them, not by tests). Each runs in its smallest form in a subprocess, and every
emulator row must print a rate."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _run(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          timeout=600, check=False, cwd=BENCH.parent)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.slow
def test_bench_emulator_runs() -> None:
    out = _run(str(BENCH / "bench_emulator.py"), "--quick", "--repeat", "1")
    rows = [line for line in out.splitlines() if " emulator " in f" {line} "]
    assert len(rows) >= 7, out
    for line in rows:
        assert re.search(r"\s[\d,]+\s", line) and " n/a" not in line, line


@pytest.mark.slow
def test_bench_compile_runs() -> None:
    out = _run(str(BENCH / "bench_compile.py"), "--smoke")
    rows = [line for line in out.splitlines() if line.startswith("dense")]
    assert len(rows) == 2 and all(" loihi2 " in r for r in rows), out
