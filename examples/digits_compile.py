"""Compile the digits SNN (from digits_snn.py) for Loihi targets and measure what
quantisation costs: float reference accuracy vs the bit-accurate emulator, on the
held-out split.

    python examples/digits_compile.py [--out examples/out]

Reads OUT/digits.nir and OUT/digits_test.npz; writes OUT/digits_loihi2/ (the compiled
program, Lava program, quantised graph, report) and OUT/digits_verify.png.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


from snn2hw import compiler, nirio, outputs, verify

CONFIGS = (
    ("loihi2", None),
    ("loihi1", None),
    ("loihi2", 16),
    ("loihi1", 16),
)


def evaluate(model: Path, data: Path) -> list[dict]:
    graph = nirio.read(model)
    x, y = verify.load_data(data)
    rows = []
    for target, share in CONFIGS:
        start = time.perf_counter()
        compiled = compiler.compile(graph, compiler.Options(target=target, share=share))
        seconds = time.perf_counter() - start
        rep, _ = verify.verify(graph, compiled.program, x, y)
        rows.append(dict(target=target, share=share, compile_s=seconds,
                         float=rep.accuracy_reference, emulator=rep.accuracy_device,
                         agree=rep.prediction_agreement,
                         identical=min(la.identical_fraction for la in rep.layers),
                         cores=compiled.report["cores"]))
    return rows


def table(rows: list[dict]) -> str:
    lines = [f"{'target':<8} {'weights':<12} {'float':>7} {'emulator':>9} {'diff pp':>8} "
             f"{'same class':>10} {'cores':>5} {'compile':>8}"]
    for r in rows:
        weights = f"{r['share']} shared" if r["share"] else "8-bit"
        lines.append(f"{r['target']:<8} {weights:<12} {100 * r['float']:>6.2f}% "
                     f"{100 * r['emulator']:>8.2f}% {100 * (r['emulator'] - r['float']):>+8.2f} "
                     f"{100 * r['agree']:>9.2f}% {r['cores']:>5} {1000 * r['compile_s']:>6.0f}ms")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "out"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    model, data = out / "digits.nir", out / "digits_test.npz"
    rows = evaluate(model, data)
    print("Digits SNN, held-out split: float reference vs emulator after compilation")
    print(table(rows))
    graph = nirio.read(model)
    compiled = compiler.compile(graph, compiler.Options(target="loihi2"))
    outputs.write_compiled(compiled, out / "digits_loihi2")
    x, y = verify.load_data(data)
    rep, traces = verify.verify(graph, compiled.program, x, y)
    verify.plot(rep, traces, out / "digits_verify.png")
    print(f"wrote {out / 'digits_loihi2'}/ and {out / 'digits_verify.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
