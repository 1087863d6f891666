"""Compile the digits SNN (from digits_snn.py) for Loihi targets and measure what
quantisation costs: float reference accuracy vs the bit-accurate emulator, on the
held-out split.

    python examples/digits_compile.py [--out examples/out]

Reads OUT/digits.nir, OUT/digits_test.npz and OUT/digits_all.npz; writes OUT/digits_loihi2/ (the compiled
program, Lava program, quantised graph, report) and OUT/digits_verify.png.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from snn2hw import compiler, nirio, outputs, verify

CONFIGS = (
    ("loihi2", None),
    ("loihi1", None),
    ("loihi2", 16),
    ("loihi1", 16),
)


def evaluate(model: Path, data: Path, every: Path) -> list[dict]:
    """Per target: float and emulator accuracy on the held-out split ``data``, and the
    quantisation gap on all 1,797 images ``every`` (per-sample agreement and accuracy
    difference: a gap needs no held-out data, and 1,797 samples resolve it 5x finer)."""
    graph = nirio.read(model)
    x, y = verify.load_data(data)
    x_all, y_all = verify.load_data(every)
    rows = []
    for target, share in CONFIGS:
        compiled = compiler.compile(graph, compiler.Options(target=target, share=share))
        rep, _ = verify.verify(graph, compiled.program, x, y)
        gap, _ = verify.verify(graph, compiled.program, x_all, y_all)
        rows.append(dict(target=target, share=share,
                         float=rep.accuracy_reference, emulator=rep.accuracy_device,
                         agree=gap.prediction_agreement,
                         diff_all=gap.accuracy_device - gap.accuracy_reference,
                         identical=min(la.identical_fraction for la in gap.layers),
                         cores=compiled.report["cores"]))
    return rows


def table(rows: list[dict]) -> str:
    lines = [f"{'':<21} {'held-out split (360)':^26}  {'all 1,797 images':^30}",
             (f"{'target':<8} {'weights':<12} {'float':>7} {'emulator':>9} {'diff pp':>8}  "
             f"{'same class':>10} {'diff pp':>8} {'spikes':>9} {'cores':>5}")]
    for r in rows:
        weights = f"{r['share']} shared" if r["share"] else "8-bit"
        lines.append(f"{r['target']:<8} {weights:<12} {100 * r['float']:>6.2f}% "
                     f"{100 * r['emulator']:>8.2f}% {100 * (r['emulator'] - r['float']):>+8.2f}  "
                     f"{100 * r['agree']:>9.2f}% {100 * r['diff_all']:>+8.2f} "
                     f"{100 * r['identical']:>8.2f}% {r['cores']:>5}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "out"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    model, data = out / "digits.nir", out / "digits_test.npz"
    rows = evaluate(model, data, out / "digits_all.npz")
    print("Digits SNN: float reference vs emulator after compilation ('spikes': identical "
          "spike entries, lowest layer)")
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
