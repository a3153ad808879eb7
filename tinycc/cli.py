"""The tinycc command line: inspect, run, compile.

Exit codes: 0 ok, 2 bad input or unsupported model/arguments, 3 the model does not fit the
memory budget, 70 internal error (a tinycc bug; rerun with --debug for the traceback).
"""
from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

import numpy as np

from . import __version__
from .arrays import load_arrays
from .errors import EXIT_INTERNAL, EXIT_OK, BadInput, TinyccError
from .target import DEFAULT_STACK_BYTES, TARGETS
from .quant.calibrate import DEFAULT_METHOD as DEFAULT_CALIB_METHOD
from .units import parse_input_shapes, parse_size

EPILOG = """exit codes: 0 ok, 2 bad input or unsupported model, 3 does not fit the memory budget,
70 internal error (please report it with the --debug output)"""


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="the ONNX model file")
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME=DIMS",
                   help="static shape for an input with dynamic dimensions, e.g. x=1x3x96x96 (repeatable)")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")


def _add_quant_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--calib", metavar="FILE",
                   help="calibration data: .npy with a leading sample axis, or .npz keyed by input name")
    p.add_argument("--calib-method", choices=["minmax", "percentile", "mse"], default=None,
                   help=f"activation range estimator (default: {DEFAULT_CALIB_METHOD}, chosen by measurement: "
                        "benchmarks/bench_calibration.py)")
    p.add_argument("--bias-correction", action="store_true", help="empirical bias correction after PTQ")
    p.add_argument("--calib-samples", type=int, default=None, metavar="N",
                   help="use at most N calibration samples")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tinycc", description="Compile ONNX neural networks to C for microcontrollers.",
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"tinycc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("inspect", help="per-layer table: op, output shape, params, MACs, activation bytes",
                       epilog=EPILOG)
    _add_model_args(p)
    p.add_argument("--no-passes", action="store_true", help="show the imported graph before optimization")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("run", help="run a model on an input with the float, int8 (golden) or C engine",
                       epilog=EPILOG)
    _add_model_args(p)
    _add_quant_args(p)
    p.add_argument("--input", required=True, metavar="X.npy",
                   help="input tensor (.npy for one input, .npz keyed by input name); ONNX layout")
    p.add_argument("-o", "--output", metavar="Y.npy", help="where to write the output (.npz for several outputs)")
    p.add_argument("--engine", default="float", choices=["float", "int8", "c", "qemu"],
                   help="float: numpy float reference; int8: integer golden model; c: generated C on the host; "
                        "qemu: generated C cross-compiled for --target and run under QEMU")
    p.add_argument("--target", default=None, choices=TARGETS[1:], metavar="CORE",
                   help="with --engine qemu: the Cortex-M core to emulate, one of " + ", ".join(TARGETS[1:])
                        + " (default cortex-m4; the cortex-m0plus has no QEMU board)")
    p.add_argument("--dequantize", action="store_true", help="quantized engines: write float32 instead of raw int8")
    p.add_argument("--compare", metavar="A,B", help="per-layer comparison of two engines, e.g. float,int8 or int8,c")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("compile", help="compile to a self-contained C project", epilog=EPILOG)
    _add_model_args(p)
    _add_quant_args(p)
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder (created; must not exist or be empty)")
    p.add_argument("--sram", default="256k", metavar="SIZE", help="SRAM budget, e.g. 256k, 320KiB, 1M (default 256k)")
    p.add_argument("--flash", default=None, metavar="SIZE", help="flash budget for weights and code (default: unchecked)")
    p.add_argument("--target", default="host", choices=TARGETS, metavar="TARGET",
                   help="host (default) or a Cortex-M core: " + ", ".join(TARGETS[1:]) + ". A core adds a "
                        "cross build (make arm) whose linker script enforces --flash/--sram; with arm-none-eabi-gcc "
                        "installed the ELF sizes, stack and (under QEMU) instruction counts go into the report")
    p.add_argument("--stack", default=None, metavar="SIZE",
                   help=f"stack reserve of a Cortex-M build, e.g. 1k (default {DEFAULT_STACK_BYTES})")
    p.add_argument("--name", default=None, help="C identifier prefix for the API (default: from the file name)")
    p.add_argument("--force", action="store_true", help="replace OUTDIR if it exists")
    p.set_defaults(func=cmd_compile)
    return parser


# ---- commands -----------------------------------------------------------------------------------
def _load(args):
    from .frontend import load_graph
    from .passes import run_pipeline

    shapes = _parse(parse_input_shapes, args.input_shape, "--input-shape")
    g = load_graph(args.model, shapes)
    return g, run_pipeline(g)


def _parse(fn, value, option):
    try:
        return fn(value)
    except ValueError as exc:
        raise BadInput(f"{option}: {exc}") from None


def cmd_inspect(args) -> int:
    from .inspect import format_table, layer_rows

    raw, g = _load(args)
    if args.no_passes:
        g = raw
    print(format_table(g, layer_rows(g)))
    return EXIT_OK


def read_inputs(path: str, input_names: list[str]) -> dict[str, np.ndarray]:
    return load_arrays(path, input_names, "input file")


def write_outputs(path: str, outputs: dict[str, np.ndarray]) -> None:
    p = Path(path)
    if p.suffix == ".npz":
        np.savez(p, **outputs)
    elif len(outputs) == 1:
        np.save(p, next(iter(outputs.values())))
    else:
        raise BadInput(f"the model has {len(outputs)} outputs; use an .npz output file (-o {p.with_suffix('.npz')})")


def cmd_run(args) -> int:
    from .engines import run_engine, compare_engines

    if args.target and args.engine != "qemu":
        raise BadInput(f"--target {args.target} goes with --engine qemu (the {args.engine} engine runs on this machine)")
    raw, g = _load(args)
    inputs = read_inputs(args.input, g.inputs)
    if args.compare:
        print(compare_engines(g, inputs, args.compare.split(","), args))
        return EXIT_OK
    outputs = run_engine(g, inputs, args.engine, args)
    if args.output:
        write_outputs(args.output, outputs)
    else:
        for name, v in outputs.items():
            print(f"{name}: shape {v.shape} dtype {v.dtype}\n{np.array2string(v, threshold=64)}")
    return EXIT_OK


def cmd_compile(args) -> int:
    from .compiler import compile_model

    sram = _parse(parse_size, args.sram, "--sram")
    flash = _parse(parse_size, args.flash, "--flash") if args.flash else None
    args.stack_bytes = _parse(parse_size, args.stack, "--stack") if args.stack else None
    if args.stack_bytes is not None and args.target == "host":
        raise BadInput("--stack sets the stack reserve of a Cortex-M build: give a --target core too")
    raw, g = _load(args)
    report = compile_model(g, args, sram=sram, flash=flash)
    print(report)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except TinyccError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"tinycc: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("tinycc: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: say so, keep the traceback for --debug
        if args.debug:
            traceback.print_exc()
        print(f"tinycc: internal error: {type(exc).__name__}: {exc}\n"
              "This is a bug in tinycc; rerun with --debug and report the output.", file=sys.stderr)
        return EXIT_INTERNAL
