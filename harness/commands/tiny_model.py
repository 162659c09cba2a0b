"""phi3-harness tiny-model: build the embedded tiny Phi-3 folder and print its path."""

from __future__ import annotations

import argparse

from harness.model.default_model import DEFAULT_SEED, default_model_dir
from harness.model.tiny.build import build_tiny_model
from harness.model.tiny.spec import LAYOUTS, PRECISIONS, SIZES

HELP = "build the embedded tiny Phi-3 model folder (random weights, real format) and print its path"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size", choices=tuple(SIZES), default="tiny",
                        help="tiny (default; overhead-bound) or small (two Phi-3-mini-shaped layers, 203 MB of "
                             "int4 weights: decode is memory-bound; ~600 MB on disk, built in under a minute)")
    parser.add_argument("--precision", choices=PRECISIONS, default=None,
                        help="weights: fp32, fp16 or int4 (MatMulNBits); default fp32 (int4 with --size small), "
                             "fp16 with --layout dml")
    parser.add_argument("--layout", choices=LAYOUTS, default="cpu",
                        help="cpu: rotary inside attention; dml: DirectML build form (position_ids, fp16)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="weight seed (default %(default)s)")
    parser.add_argument("--emit-bytes", action="store_true",
                        help="LM head that also generates byte-fallback pieces and special tokens "
                             "(tests streaming on what real models emit)")
    parser.add_argument("--out", default=None, help="folder to write (default: the cache folder the harness uses)")


def run(args: argparse.Namespace) -> int:
    # DirectML builds are fp16 (there is no fp32 dml folder), so the default follows the layout.
    precision = args.precision or ("int4" if args.size == "small" else "fp16" if args.layout == "dml" else "fp32")
    if args.out is None:
        path = default_model_dir(precision=precision, layout=args.layout, seed=args.seed, size=args.size,
                                 emit_bytes=args.emit_bytes)
    else:
        path = build_tiny_model(args.out, precision=precision, layout=args.layout, seed=args.seed, size=args.size,
                                emit_bytes=args.emit_bytes)
    print(path)
    return 0
