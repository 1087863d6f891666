"""The pass manager: runs a straight list of named steps, each a function from one IR level
to the next (:mod:`snn2hw.levels`), verifying and dumping the levels as it goes.

Verification: the starting level always; after a step, the verifier of the level it
returns when that level is new (the first step into Structure, HwNet, Placed, ...), and
after every step with ``Options(verify_each=True)`` (``--verify-each``). A verifier's
error names the step after which it failed. ``Options(dump_ir=DIR)`` (``--dump-ir DIR``)
writes the starting level as ``00_<level>.<ext>`` and each step's result as
``NN_<step>.<ext>`` in that level's own form (:mod:`snn2hw.dumps`), as the step ends, so
a failing compile leaves what it reached.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snn2hw import dumps, paths, verifiers
from snn2hw.errors import Snn2hwError
from snn2hw.levels import Context


@dataclass(frozen=True)
class Level:
    """An IR level: its name, its verifier and its dump."""

    name: str
    verify: Callable[[Any, Context], None]
    dump: Callable[[Any, Context], tuple[str, str]]


GRAPH = Level("graph", verifiers.graph, dumps.graph)
STRUCTURE = Level("structure", verifiers.structure, dumps.structure)
DYNAMICS = Level("dynamics", verifiers.dynamics, dumps.dynamics)
LAYERS = Level("layers", verifiers.layers, dumps.layers)
HWNET = Level("hwnet", verifiers.hwnet, dumps.hwnet)
PLACED = Level("placed", verifiers.placed, dumps.placed)
PROGRAM = Level("program", verifiers.program, dumps.program)


@dataclass(frozen=True)
class Step:
    """A named pass and the level it returns."""

    name: str
    run: Callable[[Any, Context], Any]
    level: Level


def _write(folder: Path | None, stem: str, level: Level, ir: Any, ctx: Context) -> None:
    if folder is not None:
        suffix, text = level.dump(ir, ctx)
        (folder / f"{stem}.{suffix}").write_text(text, encoding="utf-8")


def _verify(step: str, level: Level, ir: Any, ctx: Context) -> None:
    try:
        level.verify(ir, ctx)
    except Snn2hwError as exc:
        raise exc.with_context(f"after step '{step}' ({level.name} level)") from None


def run(steps: tuple[Step, ...], ir: Any, start: Level, ctx: Context
        ) -> tuple[Any, dict[str, float], list[str]]:
    """Run ``steps`` on ``ir`` (a level ``start``); returns the last level, the seconds per
    step (its verification included) and the warnings raised on the way (re-issued)."""
    folder = Path(ctx.options.dump_ir) if ctx.options.dump_ir else None
    if folder is not None:
        paths.output_folder(folder, "dump_ir").mkdir(parents=True, exist_ok=True)
    start.verify(ir, ctx)
    _write(folder, f"00_{start.name}", start, ir, ctx)
    timings: dict[str, float] = {}
    level = start
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for k, step in enumerate(steps, 1):
            begin = time.perf_counter()
            ir = step.run(ir, ctx)
            if ctx.options.verify_each or step.level is not level:
                _verify(step.name, step.level, ir, ctx)
            level = step.level
            timings[step.name] = time.perf_counter() - begin
            _write(folder, f"{k:02d}_{step.name}", level, ir, ctx)
    for w in caught:
        warnings.warn(w.message, w.category, stacklevel=3)
    return ir, timings, [str(w.message) for w in caught]


__all__ = ["DYNAMICS", "GRAPH", "HWNET", "LAYERS", "PLACED", "PROGRAM", "STRUCTURE", "Level",
           "Step", "run"]
