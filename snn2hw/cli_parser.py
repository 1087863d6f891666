"""The `snn2hw` command line's parser: one ``_add_<command>`` per command, each naming the
files the command reads and writes (``reads``/``writes``: cli.py checks them before
anything runs) and the function that runs it (cli_commands.py)."""

from __future__ import annotations

import argparse

from snn2hw import __version__, cli_args
from snn2hw import cli_commands as commands
from snn2hw.devices import names as device_names

__all__ = ["build_parser"]


def _add_inspect(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="show a model (.nir) or a program image",
                       description="Show a NIR model as a table of nodes (types, shapes, "
                       "parameters, neurons, synapses, recurrent loops) or a program image "
                       "(cores, groups, memory per core, cost model).")
    p.add_argument("path", help="a .nir file or a program image (.h5)")
    p.set_defaults(func=commands.cmd_inspect, reads=(("path", "path"),))


def _add_targets(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("targets", help="list hardware targets and their key limits",
                       description="List the packaged hardware targets with their key limits.")
    p.set_defaults(func=commands.cmd_targets)


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
                   help="emulator mode: batch (all samples at once) or event (one sample at a "
                   "time, cost proportional to spikes); results are identical")
    p.add_argument("--record", default="spikes",
                   help="comma-separated: spikes,u,v (default: spikes)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=commands.cmd_run, reads=(("program", "program"), ("input", "--input")),
                   writes=(("output", "--output", "file"),))


def _add_ann_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--percentile", type=cli_args.PERCENTILE, default=99.9,
                   help="ANN conversion: activation percentile used as each layer's scale, "
                   "above 0 and at most 100 (default 99.9)")
    p.add_argument("--reset", default="zero", choices=cli_args.RESETS, help="ANN "
                   "conversion: IF reset (default zero, what Loihi does)")
    p.add_argument("--approximate-ann", action="append", metavar="WHAT",
                   choices=cli_args.ANN_APPROXIMATIONS, help="ANN conversion: accept average "
                   "pooling in place of max pooling")
    p.add_argument("--encoding", default="bernoulli", choices=cli_args.ENCODINGS,
                   help="ANN conversion: input rate code, Bernoulli spikes (default) or the "
                   "deterministic train of a constant current into an IF encoder")
    p.add_argument("--steps", type=cli_args.STEPS, default=None, help="ANN models: rate-code "
                   f"analog data (calibration, --data) over this many steps (default "
                   f"{commands.DEFAULT_STEPS}; sigma-delta: the input is sent once, and the "
                   "default is the layers it crosses plus one, when the output has settled)")
    p.add_argument("--neuron", default="if", choices=cli_args.NEURONS, help="ANN "
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
    p.set_defaults(func=commands.cmd_import,
                   reads=(("model", "model"), ("calibrate", "--calibrate")),
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
    p.set_defaults(func=commands.cmd_compile,
                   reads=(("model", "model"), ("calibrate", "--calibrate")),
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
    p.set_defaults(func=commands.cmd_verify,
                   reads=(("model", "model"), ("calibrate", "--calibrate"), ("data", "--data"),
                          ("labels", "--labels")),
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
    pi.set_defaults(func=commands.cmd_lava_install)
    ps = lsub.add_parser("status", help="show which Lava interpreter would be used")
    ps.set_defaults(func=commands.cmd_lava_status)


def build_parser() -> argparse.ArgumentParser:
    parser = cli_args.Parser(
        prog="snn2hw",
        description="Deploy trained spiking neural networks to neuromorphic hardware.")
    parser.add_argument("--version", action="version", version=f"snn2hw {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add in (_add_import, _add_compile, _add_verify, _add_run, _add_inspect, _add_targets,
                _add_lava):
        add(sub)
    return parser
