"""The digits example end to end: snnTorch and the float reference agree, and the
compiled network keeps the float accuracy (goals: within 0.5 pp on loihi2 and loihi1,
within 2 pp with 16 shared weight values); the ANNs converted to sigma-delta networks
keep the ANN's accuracy on loihi2 (within 0.5 pp, >= 99% the same class) for less than
the rate-coded SNN costs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from snn2hw import inspect as graph_inspect
from snn2hw import nirio


@pytest.mark.slow
def test_digits_example_agrees(digits_out: tuple[Path, str]) -> None:
    out_dir, out = digits_out
    torch_line = next(line for line in out.splitlines() if "snnTorch forward pass" in line)
    ref_line = next(line for line in out.splitlines() if "snn2hw reference" in line)
    assert torch_line.split(":")[1] == ref_line.split(":")[1]
    assert float(torch_line.split(":")[1].strip(" %")) > 90
    graph = nirio.read(out_dir / "digits.nir")
    assert "LIF" in graph_inspect.graph_table(graph)


@pytest.mark.slow
def test_compiled_digits_keep_float_accuracy(digits_out: tuple[Path, str]) -> None:
    """The quantisation gap is measured where it can be resolved: on all 1,797 images
    (one image = 0.06 pp; the gap between two models on the same inputs needs no held-out
    data), not on the 360 held-out ones, where 0.5 pp is less than two images. Besides
    the accuracy difference (goal: 0.5 pp at 8 bits, 2 pp with 16 shared values) we assert
    per-sample agreement of the predicted class, >= 99% at 8 bits and >= 98% shared,
    which an accuracy difference of zero could hide (wrong both ways)."""
    import digits_compile

    out_dir, _ = digits_out
    rows = digits_compile.evaluate(out_dir / "digits.nir", out_dir / "digits_test.npz",
                                   out_dir / "digits_all.npz")
    print(digits_compile.table(rows))
    assert {(r["target"], r["share"]) for r in rows} >= {("loihi2", None), ("loihi1", None),
                                                          ("loihi2", 16)}
    for r in rows:
        assert r["float"] > 0.9, r                       # held-out accuracy, a sanity floor
        if r["share"]:
            assert r["diff_all"] >= -0.02 and r["agree"] >= 0.98, r
        else:
            assert abs(r["diff_all"]) <= 0.005 and r["agree"] >= 0.99, r


@pytest.mark.slow
def test_digits_sigma_delta_meets_the_goals_and_costs_less(digits_anns: Any) -> None:
    """The issue's goals for the ANN -> sigma-delta conversion, on all 1,797 images (a gap
    between two models on the same inputs needs no held-out data; one image is 0.06 pp):
    the loihi2 emulator's accuracy within 0.5 pp of the ANN and the same class on >= 99%
    of images, for the MLP and the CNN. The network is silent once the float model's
    steps have passed (its "steps to settle" is the model's, measured). And per
    inference it needs fewer synaptic ops and less energy (the emulator's cost model)
    than the rate-coded SNN at T = 32, the sweep's smallest T and so its cheapest: the
    rate-coded figures grow with T, so this holds at whatever T it reaches the ANN
    (the example's cost table gives that T)."""
    import digits_ann

    digits = digits_anns.digits
    for name in ("mlp", "cnn"):
        sd = digits_ann.evaluate_sdnn(name, digits_anns.path(name), digits)
        print(digits_ann.sdnn_table([sd]))
        assert sd["ann"] > 0.93, sd                                  # held-out: sanity floor
        assert abs(sd["emu_ann_diff"]) <= 0.005 and sd["emu_ann_agree"] >= 0.99, sd
        assert sd["float_ann_agree"] >= 0.99, sd
        assert sd["steps"] == sd["model_steps"], sd
        rate = digits_ann.rate_coded_cost(digits_anns.path(name), digits, 32)
        print(name, "rate-coded, T = 32:", rate)
        assert sd["synops"] < rate["synops"] and sd["energy"] < rate["energy"], (sd, rate)
