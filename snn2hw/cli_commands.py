"""The commands of the `snn2hw` command line: one small function per command, taking the
parsed arguments (cli_parser.py defines them) and returning the exit code. Heavy modules
are imported inside the commands so that `snn2hw --help` stays fast."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from snn2hw.errors import UserInputError

if TYPE_CHECKING:          # `snn2hw --help` imports this module: no numpy at import
    import numpy as np
    from snn2hw_emulator.program import Program

    from snn2hw.compiler import Compiled, Options
    from snn2hw.importers import Conversion
    from snn2hw.ir import Graph

DEFAULT_STEPS = 64             # rate-coded ANN inputs: steps of the rate code

__all__ = ["DEFAULT_STEPS", "cmd_compile", "cmd_import", "cmd_inspect", "cmd_lava_install",
           "cmd_lava_status", "cmd_run", "cmd_targets", "cmd_verify"]


def cmd_inspect(args: argparse.Namespace) -> int:
    from snn2hw import files

    kind = files.sniff(args.path)
    if kind == "program":
        from snn2hw_emulator import image

        from snn2hw import program_inspect

        print(program_inspect.program_summary(image.load(args.path)))
    elif kind in ("onnx", "pt2"):
        print(_ann_table(args.path, kind))
    else:
        from snn2hw import inspect as graph_inspect
        from snn2hw.backends import netx_sdnn
        from snn2hw.importers import load_model

        if kind == "netx" and netx_sdnn.is_file(args.path):    # no NIR form: netx's layers
            print(netx_sdnn.table(args.path))
            return 0
        print(graph_inspect.graph_table(load_model(args.path)))
    return 0


def _ann_table(path: str, kind: str) -> str:
    """The layers an ANN file converts from (before normalisation)."""
    from snn2hw.importers import onnx_ann, torch_export

    model = onnx_ann.from_onnx(path) if kind == "onnx" else torch_export.from_exported(path)
    rows = [(f"{kind} ANN, input {model.input_shape}; convert with `snn2hw import {path} "
            "--calibrate X.npy -o MODEL.nir`"), f"{'layer':<24} {'kind':<8} weight"]
    for layer in model.layers:
        shape = "" if layer.weight is None else "x".join(map(str, layer.weight.shape))
        rows.append(f"{layer.name[:24]:<24} {layer.kind:<8} {shape}")
    return "\n".join(rows)


def cmd_targets(args: argparse.Namespace) -> int:
    from snn2hw import targets

    print(targets.targets_table())
    return 0


def _netx_program(path: str, args: argparse.Namespace, verify: bool = False
                  ) -> Compiled | None:
    """A .net file compiled on the fly with its own integers (None for other files); for
    ``verify``, an SDNN file the compiler cannot map yet gives its unmapped program."""
    from snn2hw import files

    if files.sniff(path) != "netx":
        return None
    from snn2hw.backends import netx_compile, netx_sdnn
    from snn2hw.compiler import Options

    options = _compile_options(args) if hasattr(args, "target") else Options()
    if verify and netx_sdnn.is_file(path):
        return netx_compile.compile_for_verify(path, options)
    return netx_compile.compile_file(path, options)


def _check_accelerator(args: argparse.Namespace) -> None:
    """--accelerator other than cpu: refused before any work where it cannot run here
    (no CUDA device, no torch, another device than the emulator, event mode)."""
    if args.accelerator == "cpu":
        return
    from snn2hw import devices

    if getattr(args, "mode", "batch") != "batch":
        raise UserInputError(f"--mode {args.mode} runs on the CPU only",
                             hint="Use --mode batch with --accelerator.")
    devices.get(args.device, args.accelerator).available()


def cmd_run(args: argparse.Namespace) -> int:
    from snn2hw import devices, runio

    _check_accelerator(args)
    compiled = _netx_program(args.program, args)
    program = runio.load_program(args.program) if compiled is None else compiled.program
    inputs = runio.load_inputs(args.input, program)
    record = runio.parse_record(args.record)
    result = devices.run(program, inputs, device=args.device, steps=args.steps,
                         record=record, mode=args.mode, progress=not args.quiet,
                         accelerator=args.accelerator)
    runio.save_result(result, args.output)
    print(runio.result_summary(result, program, args.output))
    return 0


def _conversion(args: argparse.Namespace) -> Conversion:
    """How an ANN converts, from the command's options (import, compile, verify)."""
    from snn2hw.importers import Conversion

    return Conversion(calibration=args.calibrate, neuron=args.neuron,
                      percentile=args.percentile, reset=args.reset, encoding=args.encoding,
                      approximate=tuple(args.approximate_ann or ()), vth=args.vth,
                      input_bits=args.input_bits)


def _load_model(args: argparse.Namespace) -> Graph:
    """The command's model as a NIR graph (importers.load_model). An SDNN .net file, which
    has no NIR form, is read as a stand-in graph (only its input is used) where the command
    compares devices, not against the float reference."""
    from snn2hw.importers import load_model

    stand_in = getattr(args, "against", "reference") != "reference"
    return load_model(args.model, _conversion(args), sdnn_stand_in=stand_in)


def _encoded(graph: Graph, data: np.ndarray, steps: int | None) -> np.ndarray:
    """Analog ANN inputs (B, *shape) of a converted graph -> its rate code (B, T, *shape),
    or, for a sigma-delta conversion, its graded input payloads."""
    import numpy as np

    from snn2hw.importers import ann, ann_sdnn

    shape = tuple(int(s) for s in graph.nodes["input"].output_type["output"])
    method = graph.metadata.get("encoding")
    if np.ndim(data) != 1 + len(shape):
        return data
    if method in ann.ENCODINGS:
        return ann.encode(data, steps or DEFAULT_STEPS, float(graph.metadata["input_scale"]),
                          seed=1, method=method)
    if method == "delta":
        from snn2hw.sdnn_sim import settle_steps

        return ann_sdnn.encode(data, steps or settle_steps(graph),
                               float(graph.metadata["input_scale"]),
                               int(graph.metadata["input_bits"]))
    return data


def _compile_options(args: argparse.Namespace) -> Options:
    from snn2hw.compiler import Options

    return Options(target=args.target, dt=args.dt, weight_bits=args.weight_bits,
                   share=args.share, share_scope=args.share_scope,
                   keep_conv=not args.no_conv, approximations=tuple(args.approximate or ()),
                   scale_groups=args.scale_groups, netx=args.netx,
                   allow_saturation=args.allow_saturation,
                   verify_each=getattr(args, "verify_each", False),
                   dump_ir=getattr(args, "dump_ir", None), input_bits=args.input_bits)


def _calibration(args: argparse.Namespace, graph: Graph) -> np.ndarray | None:
    if args.calibrate is None:
        return None
    from snn2hw.verify import load_data

    return _encoded(graph, load_data(args.calibrate, analog=True)[0][:256], args.steps)


def cmd_import(args: argparse.Namespace) -> int:
    from snn2hw import inspect as graph_inspect
    from snn2hw import nirio

    graph = _load_model(args)
    nirio.write(graph, args.output)
    print(graph_inspect.graph_table(graph))
    m = graph.metadata
    if m.get("encoding") == "delta":
        print(f"wrote {args.output} (sigma-delta, vth {m['vth']:g} of each layer's scale; "
              f"input: {m['input_bits']}-bit payloads q = round(x * {m['input_scale']:g}), "
              "sent once: the change since the last step)")
    elif "input_scale" in m:
        print(f"wrote {args.output} (reset {m['reset']}, input scale {m['input_scale']:g}; "
              f"rate-code inputs as {m['encoding']} spikes of p = x / scale)")
    else:
        print(f"wrote {args.output}")
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    from snn2hw import compiler, outputs

    compiled = _netx_program(args.model, args)      # a .net file: its own integers
    if compiled is None:
        graph = _load_model(args)
        compiled = compiler.compile(graph, _compile_options(args),
                                    calibration=_calibration(args, graph))
    out = outputs.write_compiled(compiled, args.output)
    print(outputs.summary(compiled.report), end="")
    print(f"wrote {out}/: {', '.join(outputs.files(compiled))}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from snn2hw import compiler, shard, verify

    _check_accelerator(args)
    graph = _load_model(args)
    sharded = args.workers > 1 or bool(args.scheduler)
    data, labels = verify.load_data(args.data, args.labels, analog=True, mmap=sharded)
    if args.limit:
        data, labels = data[:args.limit], (labels[:args.limit] if labels is not None else None)
    data = _encoded(graph, data, args.steps)
    compiled = _netx_program(args.model, args, verify=True)   # a .net file: its integers
    if compiled is None:
        compiled = compiler.compile(graph, _compile_options(args),
                                    calibration=_calibration(args, graph))
    print(f"compiled for {compiled.target.name}: {compiled.report['cores']} core(s)")
    _netx_notes(compiled.program, args)
    if sharded:
        return shard.cli_verify(args, graph, compiled, data, labels)
    if args.against != "reference":
        if args.against == args.device:
            raise UserInputError(f"--device and --against are both '{args.device}'",
                                 hint="Compare two different devices, or against reference.")
        comparison = verify.compare_devices(compiled.program, data, labels, device=args.device,
                                            against=args.against, accelerator=args.accelerator)
        print(comparison.table())
        return 0 if comparison.divergence is None else 1
    report, traces = verify.verify(graph, compiled.program, data, labels, device=args.device,
                                   dt=args.dt, accelerator=args.accelerator)
    print(report.table())
    return shard.write_figures(args, graph, compiled, report, traces)


def _netx_notes(program: Program, args: argparse.Namespace) -> None:
    """What a comparison with netx leaves out or shifts, said before the numbers."""
    from snn2hw.backends.netx_run import netx_info

    info = netx_info(program)
    if "netx" not in (args.device, args.against) or info is None:
        return
    if info["input_lag"]:
        print("netx gets the input one step later: the program's input layer is fed "
              "through a synapse, netx's straight into a_in")
    for name in info["u_differs"]:
        print(f"u of {name}: netx's default integrator sums its input in u, the program "
              "in v; netx's u is compared as its per-step increment (the step's input << 6)")


def cmd_lava_install(args: argparse.Namespace) -> int:
    from snn2hw import lava_env

    path = lava_env.install(python=args.python, prefix=Path(args.prefix) if args.prefix else None,
                            netx=args.netx)
    print(f"Lava environment ready: {path}")
    return 0


def cmd_lava_status(args: argparse.Namespace) -> int:
    from snn2hw import lava_env

    print(lava_env.describe())
    return 0
