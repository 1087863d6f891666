"""Compiling a lava-dl ``.net`` file: its own integers (netx_hw.py, netx_sdnn.py) through
the compiler's integer half (``compiler.compile_integer``: ranges, map, emit), or as the
unmapped program netx would build (one layer per core: :func:`to_program`)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from snn2hw_emulator.program import Program

from snn2hw import compiler
from snn2hw.backends import image, netx_sdnn
from snn2hw.backends.netx_blocks import INPUT_BITS
from snn2hw.backends.netx_graph import to_graph
from snn2hw.backends.netx_hw import check_lava_widths, finish, to_hwnet
from snn2hw.compiler import Compiled, Options
from snn2hw.errors import DesignRuleError
from snn2hw.passes.hwmodel import HwNet
from snn2hw.targets import Target, load

__all__ = ["compile_file", "compile_for_verify", "to_program"]


def to_program(path: str | Path, target: Target, *,
               input_shape: tuple[int, ...] | None = None) -> Program:
    """The program netx would build from a ``.net`` file, one group per core, without the
    target's mapping rules (for comparing with netx; :func:`compile_file` maps it): on
    ``netx_sdnn.big_core(target)``, the target's arithmetic with cores that hold any
    layer, since the design rules check every program image."""
    check_lava_widths(target, path)
    net, info = to_hwnet(path, input_shape=input_shape)
    if info.get("sdnn"):
        netx_sdnn.check_target(target)
    target = netx_sdnn.big_core(target)
    net = net.with_(groups=tuple(dataclasses.replace(g, core=k, chip=0)
                                 for k, g in enumerate(net.groups)))
    program = image.build(net, target, record={"source": f"netx:{Path(path).name}"})
    return finish(program, info)


def compile_file(path: str | Path, options: Options | None = None) -> Compiled:
    """``snn2hw compile MODEL.net``: the file's own integers, range-checked (as
    information: netx runs them as they are), mapped onto the target and emitted. A
    convolution whose layer does not fit a core is unrolled to an exact sparse block by
    the map pass (``passes/unroll.py``; lava-dl's PilotNet)."""
    options = options or Options()
    check_lava_widths(load(options.target), path)
    net, info = to_hwnet(path)
    if info.get("sdnn"):                                # sigma-delta: netx_sdnn.py
        return _compile_sdnn(path, net, info, options)
    if info["input_lag"]:          # the graded input synapse (finish), for passes/unroll.py
        net = net.with_(report={**net.report, "message_bits": {"input": INPUT_BITS}})
    compiled = compiler.compile_integer(net, to_graph(path), options)
    compiled.program = finish(compiled.program, info)
    return compiled


def _compile_sdnn(path: str | Path, net: HwNet, info: dict[str, Any], options: Options
                  ) -> Compiled:
    """``snn2hw compile SDNN.net --target loihi2``: the file's integers through
    ``compiler.compile_integer`` (ranges, map, emit), refused for targets without graded
    spikes. The graph that goes with it (``OUT/quantised.nir``) stands in IF nodes for the
    sigma-delta layers (NIR has none); their integers are its node metadata."""
    netx_sdnn.check_target(load(options.target))
    compiled = compiler.compile_integer(net, to_graph(path, sdnn_stand_in=True), options)
    compiled.program = finish(compiled.program, info)
    return compiled


def compile_for_verify(path: str | Path, options: Options) -> Compiled:
    """What ``snn2hw verify SDNN.net`` runs: the compiled program, or, where the compiler
    cannot map the file onto the target yet (a layer larger than a core behind a
    convolution), the unmapped program (one layer per core, on ``netx_sdnn.big_core`` of
    the target) with a line saying so. The integers are the same; only the mapping differs."""
    target = load(options.target)
    netx_sdnn.check_target(target)
    try:
        return compile_file(path, options)
    except DesignRuleError as exc:
        reason = re.sub(r" \([^)]*$", "", str(exc).split(";")[0])   # the first limit
    big = netx_sdnn.big_core(target)
    program = to_program(path, big)
    net, _ = to_hwnet(path)
    net = net.with_(groups=tuple(dataclasses.replace(g, core=k, chip=0)
                                 for k, g in enumerate(net.groups)))
    print(f"{reason}; verifying the unmapped program instead: the file's integers, one "
          f"layer per core, on {big.name} ({netx_sdnn.BIG_CORE} neurons per core)")
    graph = to_graph(path, sdnn_stand_in=True)
    return Compiled(program, net, graph, big, options, {}, ("emit",))
