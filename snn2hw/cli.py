"""The `snn2hw` command line.

Every command is a small function taking the parsed arguments. Errors raised on
purpose (snn2hw.errors, snn2hw_emulator.errors) become one line on stderr and
exit code 2; a traceback is shown only with --debug. Heavy modules are imported
inside the commands so that `snn2hw --help` stays fast.
"""

from __future__ import annotations

import argparse
import sys
import traceback
import warnings
from pathlib import Path
from typing import Callable, Sequence

from snn2hw import __version__, cli_args
from snn2hw.devices import names as device_names
from snn2hw.errors import Snn2hwError, UserInputError

EXIT_USAGE = 2
DEFAULT_STEPS = 64             # rate-coded ANN inputs: steps of the rate code


# --------------------------------------------------------------------------- commands


def cmd_inspect(args: argparse.Namespace) -> int:
    from snn2hw import files

    kind = files.sniff(args.path)
    if kind == "program":
        from snn2hw import program_inspect
        from snn2hw_emulator import image

        print(program_inspect.program_summary(image.load(args.path)))
    elif kind in ("onnx", "pt2"):
        print(_ann_table(args.path, kind))
    else:
        from snn2hw import inspect as graph_inspect
        from snn2hw import nirio
        from snn2hw.backends import netx

        from snn2hw.backends import netx_sdnn

        if kind == "netx" and netx_sdnn.is_file(args.path):    # no NIR form: netx's layers
            print(netx_sdnn.table(args.path))
            return 0
        graph = netx.to_graph(args.path) if kind == "netx" else nirio.read(args.path)
        print(graph_inspect.graph_table(graph))
    return 0


def _ann_table(path: str, kind: str) -> str:
    """The layers an ANN file converts from (before normalisation)."""
    from snn2hw.importers import ann, torch_export

    model = ann.from_onnx(path) if kind == "onnx" else torch_export.from_exported(path)
    rows = [f"{kind} ANN, input {model.input_shape}; convert with `snn2hw import {path} "
            "--calibrate X.npy -o MODEL.nir`", f"{'layer':<24} {'kind':<8} weight"]
    for layer in model.layers:
        shape = "" if layer.weight is None else "x".join(map(str, layer.weight.shape))
        rows.append(f"{layer.name[:24]:<24} {layer.kind:<8} {shape}")
    return "\n".join(rows)


def cmd_targets(args: argparse.Namespace) -> int:
    from snn2hw import targets

    print(targets.targets_table())
    return 0


def _netx_program(path: str, args: argparse.Namespace, verify: bool = False
                  ) -> "object | None":
    """A .net file compiled on the fly with its own integers (None for other files); for
    ``verify``, an SDNN file the compiler cannot map yet gives its unmapped program."""
    from snn2hw import files

    if files.sniff(path) != "netx":
        return None
    from snn2hw.backends import netx
    from snn2hw.compiler import Options

    from snn2hw.backends import netx_sdnn

    options = _compile_options(args) if hasattr(args, "target") else Options()
    if verify and netx_sdnn.is_file(path):
        return netx_sdnn.compile_for_verify(path, options)
    return netx.compile_file(path, options)


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
    from snn2hw import runio

    _check_accelerator(args)

    program = _netx_program(args.program, args)
    program = runio.load_program(args.program) if program is None else program.program
    inputs = runio.load_inputs(args.input, program)
    record = runio.parse_record(args.record)
    result = runio.run_on_device(program, inputs, device=args.device, steps=args.steps,
                                 record=record, mode=args.mode, progress=not args.quiet,
                                 accelerator=args.accelerator)
    runio.save_result(result, args.output)
    print(runio.result_summary(result, program, args.output))
    return 0


def _load_model(args: argparse.Namespace) -> "object":
    """A NIR graph from a .nir or .net file, or converted from an ANN (.onnx or .pt2; needs
    --calibrate)."""
    from snn2hw import files, nirio

    kind = files.sniff(args.model)
    if kind == "nir":
        return nirio.read(args.model)
    if kind == "netx":
        from snn2hw.backends import netx

        # SDNN files have no NIR form: a stand-in graph where only the input is read
        return netx.to_graph(args.model, sdnn_stand_in=getattr(args, "against",
                                                               "reference") != "reference")
    if kind in ("onnx", "pt2"):
        if not args.calibrate:
            raise UserInputError(f"converting an ANN ({kind}) needs calibration data",
                                 hint="Pass --calibrate X.npy with ANN inputs (batch, *shape).")
        from snn2hw.importers import ann
        from snn2hw.verify import load_data

        x = load_data(args.calibrate, analog=True)[0]
        approximate = tuple(args.approximate_ann or ())
        if args.neuron == "sigma-delta":
            from snn2hw.importers import ann_sdnn

            return ann_sdnn.convert(ann.load_model(args.model, approximate), x,
                                    percentile=args.percentile, vth=args.vth,
                                    input_bits=args.input_bits or ann_sdnn.DEFAULT_INPUT_BITS)
        return ann.import_ann(args.model, x, percentile=args.percentile, reset=args.reset,
                              approximate=approximate, encoding=args.encoding)
    raise UserInputError(f"'{args.model}' is a {kind} file; compile and verify take a model "
                         "(.nir, .net, .onnx or .pt2)",
                         hint="Pass the model the program was built from.")


def _encoded(graph: "object", data: "object", steps: int | None) -> "object":
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
        from snn2hw import sdnn

        return ann_sdnn.encode(data, steps or sdnn.settle_steps(graph),
                               float(graph.metadata["input_scale"]),
                               int(graph.metadata["input_bits"]))
    return data


def _compile_options(args: argparse.Namespace) -> "object":
    from snn2hw.compiler import Options

    return Options(target=args.target, dt=args.dt, weight_bits=args.weight_bits,
                   share=args.share, share_scope=args.share_scope,
                   keep_conv=not args.no_conv, approximations=tuple(args.approximate or ()),
                   scale_groups=args.scale_groups, netx=args.netx,
                   allow_saturation=args.allow_saturation,
                   verify_each=getattr(args, "verify_each", False),
                   dump_ir=getattr(args, "dump_ir", None), input_bits=args.input_bits)


def _calibration(args: argparse.Namespace, graph: "object") -> "object":
    if args.calibrate is None:
        return None
    from snn2hw.verify import load_data

    return _encoded(graph, load_data(args.calibrate, analog=True)[0][:256], args.steps)


def cmd_import(args: argparse.Namespace) -> int:
    from snn2hw import inspect as graph_inspect, nirio

    graph = _load_model(args)
    nirio.write(graph, args.output)
    print(graph_inspect.graph_table(graph))
    if graph.metadata.get("encoding") == "delta":
        m = graph.metadata
        print(f"wrote {args.output} (sigma-delta, vth {m['vth']:g} of each layer's scale; "
              f"input: {m['input_bits']}-bit payloads q = round(x * {m['input_scale']:g}), "
              "sent once: the change since the last step)")
    elif "input_scale" in graph.metadata:
        print(f"wrote {args.output} (reset {graph.metadata['reset']}, input scale "
              f"{graph.metadata['input_scale']:g}; rate-code inputs as "
              f"{graph.metadata['encoding']} spikes of p = x / scale)")
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
    from snn2hw import compiler, verify

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
    from snn2hw import shard

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


def _netx_notes(program: "object", args: argparse.Namespace) -> None:
    """What a comparison with netx leaves out or shifts, said before the numbers."""
    from snn2hw.backends.netx_hw import netx_info

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


# --------------------------------------------------------------------------- parser


def _add_inspect(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="show a model (.nir) or a program image",
                       description="Show a NIR model as a table of nodes (types, shapes, "
                       "parameters, neurons, synapses, recurrent loops) or a program image "
                       "(cores, groups, memory per core, cost model).")
    p.add_argument("path", help="a .nir file or a program image (.h5)")
    p.set_defaults(func=cmd_inspect, reads=(("path", "path"),))


def _add_targets(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("targets", help="list hardware targets and their key limits",
                       description="List the packaged hardware targets with their key limits.")
    p.set_defaults(func=cmd_targets)


def _add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a program image on a device",
                       description="Run a program image on the emulator or on Lava and write "
                       "output spikes (and optionally u, v) to an .npz file.")
    p.add_argument("program", help="program image (.h5), or a netx network (.net), compiled "
                   "on the fly with its own integers")
    p.add_argument("--input", required=True,
                   help="input spikes: .npy of shape (T, n) or (B, T, n), or .npz with one "
                   "array per input port")
    p.add_argument("--output", required=True, help="where to write the results (.npz)")
    p.add_argument("--steps", type=cli_args.STEPS, default=None,
                   help="number of timesteps, 1 to 1000000 (default: the input's length)")
    p.add_argument("--device", choices=device_names(), default="emulator",
                   help="where to run it (default emulator)")
    _add_accelerator(p)
    p.add_argument("--mode", choices=("batch", "event"), default="batch",
                   help="emulator mode: batch (all samples at once) or event (one sample at a time, cost proportional to spikes); results are identical")
    p.add_argument("--record", default="spikes",
                   help="comma-separated: spikes,u,v (default: spikes)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_run, reads=(("program", "program"), ("input", "--input")),
                   writes=(("output", "--output", "file"),))


def _add_ann_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--percentile", type=cli_args.PERCENTILE, default=99.9,
                   help="ANN conversion: activation percentile used as each layer's scale, "
                   "above 0 and at most 100 (default 99.9)")
    p.add_argument("--reset", default="zero", choices=("zero", "subtract"), help="ANN "
                   "conversion: IF reset (default zero, what Loihi does)")
    p.add_argument("--approximate-ann", action="append", metavar="WHAT",
                   choices=("maxpool-as-avgpool",), help="ANN conversion: accept average "
                   "pooling in place of max pooling")
    p.add_argument("--encoding", default="bernoulli", choices=("bernoulli", "current"),
                   help="ANN conversion: input rate code, Bernoulli spikes (default) or the "
                   "deterministic train of a constant current into an IF encoder")
    p.add_argument("--steps", type=cli_args.STEPS, default=None, help="ANN models: rate-code "
                   f"analog data (calibration, --data) over this many steps (default "
                   f"{DEFAULT_STEPS}; sigma-delta: the input is sent once, and the default is "
                   "the layers it crosses plus one, when the output has settled)")
    p.add_argument("--neuron", default="if", choices=("if", "sigma-delta"), help="ANN "
                   "conversion: rate-coded IF neurons (default) or sigma-delta neurons with "
                   "graded spikes (loihi2; docs/ann_conversion.md)")
    p.add_argument("--vth", type=cli_args.vth, default="auto", help="sigma-delta conversion: "
                   "each layer's threshold as a fraction of its activation scale, or auto "
                   "(default: the largest 2^-k keeping 99.8%% agreement with the ANN on the "
                   "calibration data)")
    p.add_argument("--input-bits", type=cli_args.INPUT_BITS, metavar="B", help="graded input "
                   "ports of signed B-bit payloads (default: what the model's Input declares, "
                   "else binary spikes; a sigma-delta conversion declares 8)")


def _add_compile_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a NIR model (.nir), a netx network (.net) or an ANN "
                   "(.onnx or torch.export .pt2, converted; needs --calibrate)")
    _add_ann_options(p)
    p.add_argument("--target", default="loihi2", help="target name or TOML file "
                   "(default loihi2; see `snn2hw targets`)")
    p.add_argument("--dt", type=cli_args.DT, help="time step in seconds (default: the model's "
                   "metadata, else 1e-4)")
    p.add_argument("--weight-bits", type=cli_args.WEIGHT_BITS, help="weight mantissa bits, "
                   "2 or more (default: the target's maximum)")
    p.add_argument("--share", type=cli_args.SHARE, metavar="K", help="restrict each layer's "
                   "weights to K shared values (codebook)")
    p.add_argument("--share-scope", default="layer", choices=cli_args.SHARE_SCOPES,
                   help="one codebook per layer (default) or per post-synaptic neuron")
    p.add_argument("--calibrate", metavar="X.npy", help="input spikes (B, T, *shape) used to "
                   "choose scales from observed activity instead of worst-case bounds; for "
                   ".onnx models, ANN inputs (B, *shape) for normalisation (rate-coded too)")
    p.add_argument("--scale-groups", type=cli_args.SCALE_GROUPS, default=1, metavar="K",
                   help="finer quantisation: split each population into up to K groups of "
                   "neurons with similar weight magnitudes, each with its own scale and "
                   "threshold")
    p.add_argument("--netx", action="store_true", help="quantise so that the program also "
                   "exports as a lava-dl netx .net file (compile writes OUT/network.net)")
    p.add_argument("--no-conv", action="store_true", help="unroll convolutions into "
                   "explicit synapses even where the target shares kernels")
    p.add_argument("--approximate", action="append", metavar="WHAT",
                   choices=cli_args.APPROXIMATIONS,
                   help="accept a named approximation (repeatable): reset-to-zero, "
                   "cuba-bias, threshold-ge (Loihi targets); xylo-neuron (Xylo targets: "
                   "its IAF neuron, docs/xylo.md)")
    p.add_argument("--allow-saturation", action="store_true", help="warn instead of failing "
                   "when range analysis finds a possible overflow")


def _add_import(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="convert an ANN (ONNX, torch.export) or a netx network "
                       "into a spiking NIR model",
                       description="ANN-to-SNN conversion with data-based normalisation: "
                       "rate-coded IF neurons, integrator readout (see docs/ann_conversion.md); "
                       "or read a lava-dl netx .net network into NIR.")
    p.add_argument("model", help="an ANN (.onnx, or a torch.export archive .pt2) or a lava-dl "
                   "netx network (.net)")
    p.add_argument("--calibrate", metavar="X.npy",
                   help="ANN: inputs (batch, *shape) for normalisation (required)")
    p.add_argument("-o", "--output", required=True, metavar="MODEL.nir")
    _add_ann_options(p)
    p.set_defaults(func=cmd_import, reads=(("model", "model"), ("calibrate", "--calibrate")),
                   writes=(("output", "-o", "file"),))


def _add_compile(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compile", help="compile a model for a target",
                       description="Discretise, quantise, map and emit a program image, a "
                       "Lava program, the quantised graph and a report.")
    _add_compile_options(p)
    p.add_argument("-o", "--output", required=True, metavar="OUT/", help="output folder, "
                   "new or from an earlier compile: it is replaced as a whole once everything "
                   "is written, and left as it was when compiling fails")
    p.add_argument("--dump-ir", metavar="DIR", help="write each IR level in its own form, "
                   "as each pass ends (docs/compiler.md): a failing compile writes here only")
    p.add_argument("--verify-each", action="store_true", help="run the level's verifier "
                   "after every pass")
    p.set_defaults(func=cmd_compile, reads=(("model", "model"), ("calibrate", "--calibrate")),
                   writes=(("output", "-o", "compiled"), ("dump_ir", "--dump-ir", "folder")))


def _add_accelerator(p: argparse.ArgumentParser) -> None:
    p.add_argument("--accelerator", default="cpu", choices=("cpu", "cuda", "cpu-torch"),
                   help="where --device emulator computes (batch mode): cpu (default), cuda "
                   "(a CUDA GPU, torch), cpu-torch (the same torch code on the CPU); identical "
                   "results")


def _add_verify(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="float reference vs compiled program on data",
                       description="Compile MODEL, run the float reference and the device on "
                       "the same data, print accuracy of each, per-layer spike agreement and "
                       "saturation.")
    _add_compile_options(p)
    p.add_argument("--data", required=True, metavar="X.npy", help="input spikes (B, T, *shape)"
                   "; or an .npz with 'spikes' (and 'labels')")
    p.add_argument("--labels", metavar="y.npy", help="integer class labels (B,)")
    p.add_argument("--device", default="emulator", choices=device_names())
    _add_accelerator(p)
    p.add_argument("--against", default="reference", choices=("reference", *device_names()),
                   help="compare with the float reference (default) or run the same program "
                   "on another device: bit-identical, or the first divergence (exit 1)")
    p.add_argument("--limit", type=cli_args.LIMIT, help="use only the first N samples")
    p.add_argument("--workers", type=cli_args.WORKERS, default=1, metavar="N",
                   help="split the samples into shards verified in N processes (the same "
                   "report as 1, the default)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="verify the shards on the Dask "
                   "cluster at ADDRESS (tcp://host:8786; the same report; a .npy input is "
                   "read by the workers at its path)")
    p.add_argument("--png", metavar="FILE.png", help="write a figure comparing them")
    p.add_argument("--report", metavar="DIR", help="write DIR/report.html (self-contained) "
                   "with rasters, agreement, weight errors, core utilisation and cost figures")
    p.set_defaults(func=cmd_verify, reads=(("model", "model"), ("calibrate", "--calibrate"),
                                           ("data", "--data"), ("labels", "--labels")),
                   writes=(("png", "--png", "file"), ("report", "--report", "report")))


def _add_lava(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lava", help="manage the Lava (Python 3.10) environment",
                       description="Lava 0.10 needs Python 3.10; snn2hw runs Lava programs in a "
                       "dedicated environment.")
    lsub = p.add_subparsers(dest="lava_command", metavar="{install,status}")
    lsub.required = True
    pi = lsub.add_parser("install", help="create the Lava environment (idempotent)",
                         description="Create a Python 3.10 virtual environment with "
                         "lava-nc==0.10.0. Finds Python 3.10 on PATH or through pyenv "
                         "unless --python is given.")
    pi.add_argument("--python", default=None, help="path to a Python 3.10 interpreter")
    pi.add_argument("--prefix", default=None, help="where to create the environment")
    pi.add_argument("--netx", action="store_true", help="also install lava-dl 0.6 (netx), to "
                    "run .net files through netx itself (about 4 GB: torch 2.3 CUDA build)")
    pi.set_defaults(func=cmd_lava_install)
    ps = lsub.add_parser("status", help="show which Lava interpreter would be used")
    ps.set_defaults(func=cmd_lava_status)


def build_parser() -> argparse.ArgumentParser:
    parser = cli_args.Parser(
        prog="snn2hw",
        description="Deploy trained spiking neural networks to neuromorphic hardware.")
    parser.add_argument("--version", action="version", version=f"snn2hw {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add in (_add_import, _add_compile, _add_verify, _add_run, _add_inspect, _add_targets, _add_lava):
        add(sub)
    return parser


# --------------------------------------------------------------------------- entry point


def _check_paths(args: argparse.Namespace) -> None:
    """Every path the command writes (its parser's ``writes``: attribute, option, kind),
    checked before it reads or computes anything, so a long run never fails at its end;
    and the paths it reads (``reads``: attribute, option), for length."""
    from snn2hw import paths

    for dest, option in getattr(args, "reads", ()):
        if getattr(args, dest) is not None:
            paths.input_path(getattr(args, dest), option)

    for dest, option, kind in getattr(args, "writes", ()):
        path = getattr(args, dest)
        if path is None:
            continue
        if kind == "file":
            paths.output_file(path, option)
        elif kind == "compiled":
            from snn2hw.outputs import NAMES

            paths.output_folder(path, option, replaces=NAMES)
        else:
            from snn2hw.report import FILES

            paths.output_folder(path, option, files=FILES if kind == "report" else ())
    if getattr(args, "dump_ir", None) and paths.inside(args.dump_ir, args.output):
        raise UserInputError(f"--dump-ir '{args.dump_ir}' is inside -o '{args.output}', which "
                             "is replaced as a whole", hint="Dump elsewhere, e.g. --dump-ir ir/.")


def _expected_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [Snn2hwError]
    try:
        from snn2hw_emulator.errors import ProgramError

        errors.append(ProgramError)
    except ImportError:  # the emulator package is part of this distribution
        pass
    return tuple(errors)


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: object = None, line: str | None = None) -> None:
    print(f"snn2hw: warning: {_one_line(message)}", file=sys.stderr)


def _one_line(exc: BaseException | Warning | str) -> str:
    return " ".join(str(exc).split())


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    warnings.showwarning = _show_warning
    try:
        _check_paths(args)
        return func(args)
    except _expected_errors() as exc:
        if args.debug:
            traceback.print_exc()
        print(f"snn2hw: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("snn2hw: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug in snn2hw, not bad input: say so plainly
        if args.debug:
            traceback.print_exc()
        else:
            print(f"snn2hw: internal error: {type(exc).__name__}: {_one_line(exc)} "
                  "(please report it; rerun with --debug for the traceback)", file=sys.stderr)
        return 1


__all__ = ["main", "build_parser", "UserInputError"]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
