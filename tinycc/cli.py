"""The tinycc command line: inspect, run, compile, validate.

Exit codes: 0 ok, 2 bad input or unsupported model/arguments, 3 the model does not fit the
memory budget, 70 internal error (a tinycc bug; rerun with --debug for the traceback).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import traceback
from pathlib import Path

import numpy as np

from . import __version__
from .arrays import check_values, load_arrays, split_samples, stack_outputs
from .errors import EXIT_INTERNAL, EXIT_OK, BadInput, TinyccError
from .target import DEFAULT_STACK_BYTES, TARGETS
from .quant import QUANT_CHOICES
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
    p.add_argument("--quant", choices=list(QUANT_CHOICES), default="int8",
                   help="weights: int8 per output channel (default); prom: every pointwise (1x1, stride 1, group "
                        "1) convolution ternary {-1,0,1} with a per-channel scale (PROM), the rest int8; codebook: "
                        "an int8 palette per group of output channels with --codebook-bits indices, decoded a few "
                        "rows at a time; prom+codebook: ternary pointwise convolutions, codebook elsewhere. A "
                        "model whose pointwise weights are stored ternary (QDQ) runs ternary with any of them")
    p.add_argument("--calib", metavar="FILE",
                   help="calibration data: .npy with a leading sample axis, or .npz keyed by input name")
    p.add_argument("--calib-method", choices=["minmax", "percentile", "mse"], default=None,
                   help=f"activation range estimator (default: {DEFAULT_CALIB_METHOD}, chosen by measurement: "
                        "benchmarks/bench_calibration.py)")
    p.add_argument("--bias-correction", action="store_true", help="empirical bias correction after PTQ")
    p.add_argument("--calib-samples", type=int, default=None, metavar="N",
                   help="use at most N calibration samples")
    p.add_argument("--codebook-bits", default=None, metavar="B[,LAYER=B]",
                   help="with --quant codebook or prom+codebook: index bits, 2 to 6 (default 4), with per-layer overrides by "
                        "ONNX node name, e.g. 4,conv1=6")


def _add_patch_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--patch", default="fit", metavar="fit|auto|off|SxRxC",
                   help="patch-based inference of the first layers (MCUNetV2). fit (default): layer by layer "
                        "when that fits --sram, else the patch stage and grid with the fewest extra MACs that "
                        "fits; auto: also for a model that fits, the lowest peak within --patch-overhead "
                        "(only when it lowers the peak); off: always layer by layer; SxRxC forces the first S "
                        "steps on an R x C grid of patches (SxRxC:reuse: overlapping rows kept between patches, "
                        "not recomputed); SxRxC+TxRxC adds a second stage, steps S..T-1 on its own grid over the "
                        "first stage's output buffer (auto finds one where it lowers the peak)")
    p.add_argument("--patch-overhead", default=None, metavar="PCT",
                   help="with --patch auto and a budget that does not bind: at most this many extra MACs "
                        "(default 10%%)")
    p.add_argument("--stream-input", action="store_true",
                   help="the input never sits in SRAM: the patch stage reads the rows and columns each patch needs "
                        "through a callback (PREFIX_invoke_stream in model.h); needs a patch stage that alone reads "
                        "the input (--patch fit then searches like auto; off is refused)")


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
                   help="input tensor (.npy for one input, .npz keyed by input name); ONNX layout. A batch of N "
                        "samples (a leading axis of N, or N in place of a batch dimension of 1) runs each sample "
                        "and writes the outputs stacked the same way")
    p.add_argument("-o", "--output", metavar="Y.npy", help="where to write the output (.npz for several outputs)")
    p.add_argument("--engine", default="float", choices=["float", "int8", "c", "qemu"],
                   help="float: numpy float reference; int8: integer golden model; c: generated C on the host; "
                        "qemu: generated C cross-compiled for --target and run under QEMU")
    p.add_argument("--target", default=None, choices=TARGETS[1:], metavar="CORE",
                   help="with --engine qemu: the Cortex-M core to emulate, one of " + ", ".join(TARGETS[1:])
                        + " (default cortex-m4; the cortex-m0plus has no QEMU board)")
    p.add_argument("--dequantize", action="store_true", help="quantized engines: write float32 instead of raw int8")
    p.add_argument("--compare", metavar="A,B", help="per-layer comparison of two engines, e.g. float,int8 or int8,c")
    p.add_argument("--sram", default=None, metavar="SIZE", help="SRAM budget that --patch fit/auto plan for (as compile)")
    _add_patch_args(p)
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
                   help=f"stack reserve of a Cortex-M build, e.g. 1k (default {DEFAULT_STACK_BYTES}); a multiple of 8, "
                        "and with arm-none-eabi-gcc installed at least the build's static worst case (else exit 3)")
    p.add_argument("--optimize", default="speed", choices=["speed", "size"],
                   help="C builds of the project: speed (default, -O2) or size (-Os, and -DTC_OPTIMIZE_SIZE "
                        "for the kernels). With --target, report.json's flash_by_source and report.md give the "
                        "code bytes of each kernel")
    _add_patch_args(p)
    p.add_argument("--name", default=None, help="C identifier prefix for the API (default: from the file name)")
    p.add_argument("--labels", default=None, metavar="FILE",
                   help="class labels for model.h (PREFIX_LABELS), one per line, as many as output 0 has values "
                        "(default: the model's metadata_props 'labels' or 'class_names', if any)")
    p.add_argument("--export", action="append", default=[], metavar="FLAVOUR",
                   help="also make the project a zephyr module, an arduino library, an esp-idf component, or add a "
                        "cmake example application (repeatable, or comma-separated; see docs/boards.md)")
    p.add_argument("--force", action="store_true",
                   help="replace OUTDIR if it is a project tinycc wrote (it has tinycc's report.json and model.h; "
                        "everything in it is replaced, build products and edits included). A folder that is not "
                        "one, or that holds the model or the --calib file, is refused: nothing is deleted")
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("validate", help="run a data set through the float, int8, C (and QEMU) engines: accuracy, "
                       "agreement, output errors, bit-exactness, the layer where int8 diverges most", epilog=EPILOG)
    _add_model_args(p)
    _add_quant_args(p)
    p.add_argument("--data", required=True, metavar="FILE",
                   help="the data set: .npy (one input) or .npz keyed by input name, with a leading sample axis "
                        "(or N in place of a batch dimension of 1); ONNX layout")
    p.add_argument("--labels", metavar="KEY",
                   help="the key of the labels in the --data .npz (or a .npy file): class indices (N,) or one-hot (N, C)")
    p.add_argument("--engines", default="float,int8,c", metavar="LIST",
                   help="comma-separated, from float, int8, c, qemu (default float,int8,c); c and qemu are checked "
                        "against int8 bit for bit")
    p.add_argument("--target", default=None, choices=TARGETS[1:], metavar="CORE",
                   help="with the qemu engine: the Cortex-M core to emulate (default cortex-m4)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="use the first N samples only")
    p.add_argument("--json", metavar="OUT.json", help="also write the results as JSON")
    p.add_argument("--md", metavar="OUT.md", help="also write the markdown tables to a file")
    p.set_defaults(func=cmd_validate)
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
    return load_arrays(path, input_names, "input file", select=True)


def check_output_file(path: str, outputs: int) -> None:
    """Refuse, before running, an -o that cannot be written (BadInput)."""
    try:
        _check_output_file(Path(path), outputs)
    except OSError as exc:  # e.g. a name too long even to look up
        raise BadInput(f"cannot write -o {path[:80]!r}: {exc.strerror or exc}") from None


def _check_output_file(p: Path, outputs: int) -> None:
    if p.is_dir():
        raise BadInput(f"-o {str(p)!r} is a folder; give a file name, e.g. {str(p / 'y.npy')!r}")
    if p.suffix != ".npz" and outputs != 1:
        raise BadInput(f"the model has {outputs} outputs; use an .npz output file (-o {p.with_suffix('.npz')})")
    parent = p.absolute().parent
    if not parent.is_dir():
        raise BadInput(f"cannot write -o {str(p)!r}: the folder {str(parent)!r} does not exist")
    if not os.access(parent if not p.exists() else p, os.W_OK):
        raise BadInput(f"cannot write -o {str(p)!r}: permission denied")


def write_outputs(path: str, outputs: dict[str, np.ndarray]) -> None:
    """.npz keyed by output name, else .npy, at exactly `path` (numpy would append .npy). A
    regular file is written beside it and renamed, so that a failure leaves no partial file;
    an OSError becomes BadInput."""
    p = Path(path)
    check_output_file(path, len(outputs))

    def save(f):
        if p.suffix == ".npz":
            np.savez(f, **outputs)
        else:
            np.save(f, next(iter(outputs.values())))

    write_file(p, save, "-o ")


def cmd_run(args) -> int:
    from .engines import compare_engines, run_samples

    if args.target and args.engine != "qemu":
        raise BadInput(f"--target {args.target} goes with --engine qemu (the {args.engine} engine runs on this machine)")
    raw, g = _load(args)
    if args.output:
        check_output_file(args.output, len(g.outputs))
    from .compiler import logical_input_shapes

    arrays = read_inputs(args.input, g.inputs)
    check_values(arrays, f"input file {args.input!r}", finite=args.engine != "float" or bool(args.compare))
    samples, mode = split_samples(arrays, logical_input_shapes(g), f"input file {args.input!r}")
    if args.compare:
        if len(samples) != 1:
            raise BadInput(f"--compare takes one sample; the input file holds {len(samples)}")
        print(compare_engines(g, samples[0], args.compare.split(","), args))
        return EXIT_OK
    outputs = stack_outputs(run_samples(g, samples, args.engine, args), mode)
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
    if args.stack_bytes is not None and args.stack_bytes % 8:
        raise BadInput(f"--stack {args.stack}: the stack reserve must be a multiple of 8 bytes (the AAPCS "
                       f"stack alignment), e.g. {(args.stack_bytes + 7) // 8 * 8}")
    from .codegen.export import parse_exports, read_labels_file

    parse_exports(args.export)  # refuse a wrong --export or an unreadable --labels before any work
    if args.labels:
        read_labels_file(args.labels)
    raw, g = _load(args)
    report = compile_model(g, args, sram=sram, flash=flash)
    print(report)
    return EXIT_OK


def cmd_validate(args) -> int:
    import json

    from .compiler import QuantOptions
    from .engines import DEFAULT_QEMU_TARGET, CompiledModel
    from .validate import load_data, mismatches, parse_engines, render_markdown, validate

    engines = parse_engines(args.engines)
    if args.target and "qemu" not in engines:
        raise BadInput(f"--target {args.target} goes with the qemu engine (--engines ...,qemu)")
    if args.limit is not None and args.limit < 1:
        raise BadInput(f"--limit {args.limit}: give a positive number of samples")
    for path in (args.json, args.md):
        if path:
            check_output_file(path, 1)
    raw, g = _load(args)
    samples, labels = load_data(args.data, g, args.labels)
    if args.limit is not None:
        samples = samples[: args.limit]
        labels = labels[: args.limit] if labels is not None else None
    model = CompiledModel(g, QuantOptions.from_args(args))
    result = validate(model, samples, labels, engines, args.target or DEFAULT_QEMU_TARGET,
                      source=Path(args.model).name)
    text = render_markdown(result)
    print(text, end="")
    if args.json:
        write_text(args.json, json.dumps(result, indent=2) + "\n")
    if args.md:
        write_text(args.md, text)
    bad = mismatches(result)
    if bad:
        print(f"tinycc: internal error: the {' and '.join(bad)} output differs from the int8 golden model on some "
              "samples. This is a bug in tinycc; please report it with the model.", file=sys.stderr)
        return EXIT_INTERNAL
    return EXIT_OK


def write_text(path: str, text: str) -> None:
    """A text file written beside `path` and renamed into place (no partial file); OSError -> BadInput."""
    write_file(Path(path), lambda f: f.write(text.encode()))


def write_file(p: Path, save, option: str = "") -> None:
    """Call save(binary file) on a file beside `p`, then rename it into place, so that a failure
    leaves no partial file; a device or a pipe (/dev/stdout) is written directly. An OSError
    becomes BadInput naming the option the path came from."""
    tmp = None
    try:
        if p.exists() and not p.is_file():
            with open(p, "wb") as f:
                save(f)
            return
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name[:200]}.", suffix=".tmp", dir=p.absolute().parent)
        with os.fdopen(fd, "wb") as f:
            save(f)
        os.replace(tmp, p)
        tmp = None
    except OSError as exc:
        raise BadInput(f"cannot write {option}{str(p)!r}: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


class Terminated(BaseException):
    """SIGTERM, raised like KeyboardInterrupt so that temporary files are cleaned up on the way out."""


def _raise_terminated(signum, frame):
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    try:
        return _dispatch(args)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def _dispatch(args) -> int:
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
    except Terminated:
        print("tinycc: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except Exception as exc:  # a bug: say so, keep the traceback for --debug
        if args.debug:
            traceback.print_exc()
        print(f"tinycc: internal error: {type(exc).__name__}: {exc}\n"
              "This is a bug in tinycc; rerun with --debug and report the output.", file=sys.stderr)
        return EXIT_INTERNAL
