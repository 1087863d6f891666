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
from pathlib import Path
from typing import Callable, Sequence

from snn2hw import __version__
from snn2hw.errors import Snn2hwError, UserInputError

EXIT_USAGE = 2


# --------------------------------------------------------------------------- commands


def cmd_inspect(args: argparse.Namespace) -> int:
    from snn2hw import files

    kind = files.sniff(args.path)
    if kind == "program":
        from snn2hw import program_inspect
        from snn2hw_emulator import image

        print(program_inspect.program_summary(image.load(args.path)))
    else:
        from snn2hw import inspect as graph_inspect
        from snn2hw import nirio

        print(graph_inspect.graph_table(nirio.read(args.path)))
    return 0


def cmd_targets(args: argparse.Namespace) -> int:
    from snn2hw import targets

    print(targets.targets_table())
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from snn2hw import runio

    program = runio.load_program(args.program)
    inputs = runio.load_inputs(args.input, program)
    record = runio.parse_record(args.record)
    result = runio.run_on_device(program, inputs, device=args.device, steps=args.steps,
                                 record=record, mode=args.mode, progress=not args.quiet)
    runio.save_result(result, args.output)
    print(runio.result_summary(result, program, args.output))
    return 0


def cmd_lava_install(args: argparse.Namespace) -> int:
    from snn2hw import lava_env

    path = lava_env.install(python=args.python, prefix=Path(args.prefix) if args.prefix else None)
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
    p.set_defaults(func=cmd_inspect)


def _add_targets(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("targets", help="list hardware targets and their key limits",
                       description="List the packaged hardware targets with their key limits.")
    p.set_defaults(func=cmd_targets)


def _add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a program image on a device",
                       description="Run a program image on the emulator or on Lava and write "
                       "output spikes (and optionally u, v) to an .npz file.")
    p.add_argument("program", help="program image (.h5)")
    p.add_argument("--input", required=True,
                   help="input spikes: .npy of shape (T, n) or (B, T, n), or .npz with one "
                   "array per input port")
    p.add_argument("--output", required=True, help="where to write the results (.npz)")
    p.add_argument("--steps", type=int, default=None,
                   help="number of timesteps (default: the input's length)")
    p.add_argument("--device", choices=("emulator", "lava"), default="emulator")
    p.add_argument("--mode", choices=("batch", "event"), default="batch",
                   help="emulator mode: batch (all samples at once) or event (one sample at a time, cost proportional to spikes); results are identical")
    p.add_argument("--record", default="spikes",
                   help="comma-separated: spikes,u,v (default: spikes)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_run)


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
    pi.set_defaults(func=cmd_lava_install)
    ps = lsub.add_parser("status", help="show which Lava interpreter would be used")
    ps.set_defaults(func=cmd_lava_status)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="snn2hw",
        description="Deploy trained spiking neural networks to neuromorphic hardware.")
    parser.add_argument("--version", action="version", version=f"snn2hw {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add in (_add_inspect, _add_targets, _add_run, _add_lava):
        add(sub)
    return parser


# --------------------------------------------------------------------------- entry point


def _expected_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [Snn2hwError]
    try:
        from snn2hw_emulator.errors import ProgramError

        errors.append(ProgramError)
    except ImportError:  # the emulator package is part of this distribution
        pass
    return tuple(errors)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
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
