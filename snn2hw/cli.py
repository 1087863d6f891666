"""The `snn2hw` command line.

Every command is a small function taking the parsed arguments (cli_commands.py; the
parser: cli_parser.py). Errors raised on purpose (snn2hw.errors, snn2hw_emulator.errors)
become one line on stderr and exit code 2; a traceback is shown only with --debug. Heavy
modules are imported inside the commands so that `snn2hw --help` stays fast.
"""

from __future__ import annotations

import argparse
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence

from snn2hw.cli_parser import build_parser
from snn2hw.errors import Snn2hwError, UserInputError

EXIT_USAGE = 2


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
    except Exception as exc:  # noqa: BLE001 (a bug in snn2hw, not bad input: say so plainly)
        if args.debug:
            traceback.print_exc()
        else:
            print(f"snn2hw: internal error: {type(exc).__name__}: {_one_line(exc)} "
                  "(please report it; rerun with --debug for the traceback)", file=sys.stderr)
        return 1


__all__ = ["UserInputError", "build_parser", "main"]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
