"""The compiler's IR levels (snn2hw/levels.py): each level's verifier catches a corruption
planted at that level, right after the step that planted it, with --verify-each; without
it the corruption goes on (negative control: found later by another level's verifier, or
not at all). Options are checked against the constants the CLI offers."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import nir
import numpy as np
import pytest

from snn2hw import checker, cli, cli_args, compiler, ir, options, sdnn
from snn2hw.errors import Snn2hwError, UserInputError
from snn2hw.pipeline import DYNAMICS, GRAPH, HWNET, LAYERS, PLACED, PROGRAM, STRUCTURE, Step
from snn2hw.xylo.levels import XYLO_INTEGERS, XYLO_NET, XYLO_PROGRAM

PLANTED = "after step 'plant'"


def _lif() -> ir.Graph:
    rng = np.random.default_rng(0)
    nodes = {"input": nir.Input(np.array([8])), "fc": nir.Linear(rng.normal(size=(4, 8))),
             "lif": nir.LIF(tau=np.full(4, 1e-3), r=np.full(4, 10.0), v_leak=np.zeros(4),
                            v_threshold=np.ones(4)),
             "output": nir.Output(np.array([4]))}
    edges = [("input", "fc"), ("fc", "lif"), ("lif", "output")]
    return checker.from_nir(nir.NIRGraph(nodes, edges, type_check=False), metadata={"dt": 1e-4})


def _sigma_delta() -> ir.Graph:
    rng = np.random.default_rng(1)
    nodes = {"input": nir.Input(np.array([5])), "w": nir.Linear(rng.normal(0, 0.5, (4, 5))),
             "sd": sdnn.node(0.01, "relu", rng.normal(0, 0.1, 4)),
             "output": nir.Output(np.array([4]))}
    edges = [("input", "w"), ("w", "sd"), ("sd", "output")]
    return checker.from_nir(nir.NIRGraph(nodes, edges, type_check=False), metadata={"dt": 1e-3})


def _planted(pipeline: tuple[Step, ...], after: str | None, fn: Callable[[Any, Any], Any],
             level: Any) -> tuple[Step, ...]:
    k = 0 if after is None else [s.name for s in pipeline].index(after) + 1
    return (*pipeline[:k], Step("plant", fn, level), *pipeline[k:])


def _compile(pipeline: tuple[Step, ...], graph: ir.Graph, verify_each: bool
             ) -> compiler.Compiled:
    return compiler.run(pipeline, graph, graph, compiler.Options(verify_each=verify_each))


def _caught(pipeline: tuple[Step, ...], graph: ir.Graph, level: str, match: str) -> str:
    """The error --verify-each raises right after the planted step; and, without it, what
    happens instead (the message of a later error, or "" when it compiles)."""
    with pytest.raises(Snn2hwError) as err:
        _compile(pipeline, graph, verify_each=True)
    text = str(err.value)
    assert f"{PLANTED} ({level} level)" in text and match in text, text
    try:
        _compile(pipeline, graph, verify_each=False)
    except Exception as exc:  # noqa: BLE001 - any later failure is the negative control
        assert PLANTED not in str(exc)
        return str(exc)
    return ""


def test_graph_level_catches_a_shape_mismatch() -> None:
    def plant(g: ir.Graph, ctx: Any) -> ir.Graph:
        return g.replace(nodes={**g.nodes, "fc": nir.Linear(np.ones((4, 9)))})

    later = _caught(_planted(compiler.PIPELINE, None, plant, GRAPH), _lif(), "graph",
                    "'fc' expects [9]")
    assert "after step" not in later        # canonicalise's own shape inference, unlabelled


def test_structure_level_catches_a_wrong_delay() -> None:
    def plant(s: Any, ctx: Any) -> Any:
        p = s.structure.projections[0]
        return s.with_(structure=dataclasses.replace(
            s.structure, projections=(dataclasses.replace(p, delay=3),)))

    pipeline = _planted(compiler.PIPELINE, "canonicalise", plant, STRUCTURE)
    later = _caught(pipeline, _lif(), "structure", "has delay 3; the offsets give 0")
    assert "after step 'discretise' (dynamics level)" in later    # the next new level


def test_dynamics_level_catches_a_decay_out_of_range() -> None:
    def plant(d: Any, ctx: Any) -> Any:
        dyn = d.dynamics["lif"]
        bad = dataclasses.replace(dyn, du=dyn.du + ctx.target.numeric.decay_max)
        return dataclasses.replace(d, dynamics={"lif": bad})

    pipeline = _planted(compiler.PIPELINE, "discretise", plant, DYNAMICS)
    later = _caught(pipeline, _lif(), "dynamics", "'lif': du outside 0..4095")
    assert "after step 'quantise' (hwnet level)" in later     # the integers' rules, later


def test_layers_level_catches_a_negative_bound() -> None:
    def plant(lv: Any, ctx: Any) -> Any:
        b = lv.bounds["sd"]
        return dataclasses.replace(lv, bounds={"sd": dataclasses.replace(b, state=-1.0)})

    pipeline = _planted(compiler.SIGMA_DELTA_PIPELINE, "layers", plant, LAYERS)
    assert _caught(pipeline, _sigma_delta(), "layers", "'sd': bound state = -1.0") == ""


def test_hwnet_level_catches_weights_wider_than_the_target() -> None:
    def plant(net: Any, ctx: Any) -> Any:
        b = dataclasses.replace(net.blocks[0], num_weight_bits=9)
        return net.with_(blocks=(b,))

    pipeline = _planted(compiler.PIPELINE, "quantise", plant, HWNET)
    later = _caught(pipeline, _lif(), "hwnet", "quantised values out of range")
    assert "after step 'map' (placed level)" in later


def test_placed_level_catches_a_group_on_no_core() -> None:
    def plant(net: Any, ctx: Any) -> Any:
        return net.with_(groups=(dataclasses.replace(net.groups[0], core=-1, chip=-1),))

    pipeline = _planted(compiler.PIPELINE, "map", plant, PLACED)
    assert _caught(pipeline, _lif(), "placed", "group(s) lif on no core") == ""   # core -1


def test_program_level_catches_a_threshold_in_the_image() -> None:
    def plant(e: Any, ctx: Any) -> Any:
        g = dataclasses.replace(e.program.groups[0], vth=ctx.target.numeric.vth_max + 1)
        return e.with_(program=dataclasses.replace(e.program, groups=(g,)))

    pipeline = _planted(compiler.PIPELINE, "emit", plant, PROGRAM)
    assert _caught(pipeline, _lif(), "program", "does not fit target 'loihi2'") == ""
    c = _compile(pipeline, _lif(), verify_each=False)      # emitted as it is without
    assert c.program.groups[0].vth > compiler.load_target("loihi2").numeric.vth_max


def test_unplanted_pipelines_pass_every_verifier() -> None:
    assert _compile(compiler.PIPELINE, _lif(), verify_each=True).program.groups
    graph = _sigma_delta()
    c = compiler.run(compiler.SIGMA_DELTA_PIPELINE, graph, graph,
                     compiler.Options(verify_each=True))
    assert {g.model for g in c.program.groups} == {"sigma_delta"}


# --------------------------------------------------------------------------- options


def test_options_are_checked_against_the_cli_choices() -> None:
    parser = cli.build_parser()
    compile_parser = next(a for a in parser._subparsers._group_actions[0].choices.values()
                          if a.prog.endswith("compile"))
    choices = {a.dest: a.choices for a in compile_parser._actions if a.choices}
    assert choices["share_scope"] is options.SHARE_SCOPES is cli_args.SHARE_SCOPES
    assert choices["approximate"] is options.APPROXIMATIONS
    for bad in ({"share_scope": "row"}, {"share_method": "median"}, {"rounding": "up"},
                {"approximations": ("reset-to-one",)}, {"weight_bits": 33},
                {"input_bits": 40}, {"dt": 2.0}, {"target": ""}):
        ((name, _),) = bad.items()
        with pytest.raises(UserInputError, match=rf"Options\({name}="):
            compiler.Options(**bad)
    with pytest.raises(UserInputError, match="'xylo-neuron' does not apply to loihi-lif"):
        compiler.compile(_lif(), compiler.Options(approximations=("xylo-neuron",)))


# --------------------------------------------------------------------------- the Xylo levels


def _bigger_weight(lv: Any, ctx: Any) -> Any:
    arrays = dict(lv.quantised.arrays)
    arrays["weights_in"] = arrays["weights_in"].copy()
    arrays["weights_in"][0, 0, 0] = 500
    return dataclasses.replace(lv, quantised=dataclasses.replace(lv.quantised, arrays=arrays))


def _threshold_out(lv: Any, ctx: Any) -> Any:
    th = lv.program.threshold_out.copy()
    th[0] = 1 << 20
    return dataclasses.replace(lv, program=dataclasses.replace(lv.program, threshold_out=th))


def _narrow_rec(lv: Any, ctx: Any) -> Any:
    net = dataclasses.replace(lv.net, weights_rec=lv.net.weights_rec[:, :-1])
    return dataclasses.replace(lv, net=net)


@pytest.mark.parametrize("after, plant, level, match, later", [
    ("lower", _narrow_rec, XYLO_NET, "weights_rec is", "out of bounds"),   # an IndexError
    ("quantise", _bigger_weight, XYLO_INTEGERS, "weights_in outside (-128, 127)",
     "after step 'emit' (xylo-program level)"),
    ("emit", _threshold_out, XYLO_PROGRAM, "threshold", ""),
])
def test_xylo_levels_catch_a_planted_corruption(monkeypatch: pytest.MonkeyPatch, after: str,
                                                plant: Callable[[Any, Any], Any], level: Any,
                                                match: str, later: str) -> None:
    """The Xylo path's own levels (snn2hw/xylo/levels.py), by the same pass manager."""
    from test_xylo_compile import XN, chain

    from snn2hw.xylo import compile as xylo

    monkeypatch.setattr(xylo, "PIPELINE", _planted(xylo.PIPELINE, after, plant, level))
    graph = chain((4, 6, 3), rec=True)
    with pytest.raises(Snn2hwError) as err:
        compiler.compile(graph, compiler.Options(target="xylo-audio2", approximations=XN,
                                                 verify_each=True))
    assert f"{PLANTED} ({level.name} level)" in str(err.value) and match in str(err.value)
    try:
        compiler.compile(graph, compiler.Options(target="xylo-audio2", approximations=XN))
        found = ""
    except Exception as exc:  # noqa: BLE001 - the negative control: found later or never
        found = str(exc)
    assert PLANTED not in found and later in found


def test_xylo_dump_ir_writes_its_own_levels(tmp_path: Any) -> None:
    from test_xylo_compile import XN, chain

    c = compiler.compile(chain((4, 6, 3)), compiler.Options(
        target="xylo-audio2", approximations=XN, dump_ir=str(tmp_path)))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "00_graph.txt", "01_lower.json", "02_calibrate.json", "03_quantise.json", "04_emit.txt"]
    ints = json.loads((tmp_path / "03_quantise.json").read_text())
    assert ints["level"] == "xylo-integers" and ints["shifts"] == c.quantised.shifts
    assert np.array_equal(ints["arrays"]["weights_out"], c.program.weights_out)
    assert json.loads((tmp_path / "01_lower.json").read_text())["hidden"] == ["n0"]
