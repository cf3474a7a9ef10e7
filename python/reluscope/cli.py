"""The ``reluscope`` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys


def _info(_args) -> int:
    from ._runtime import build_info

    print(json.dumps(build_info(), indent=2))
    return 0


def _demo(args) -> int:
    from .demo import main

    main(report=args.report)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="reluscope", description="Train MLPs and see which ReLU units die, when, and why.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="train one MLP on digits at a sensible and at a "
                               "large learning rate and show its dead units")
    demo.add_argument("--report", metavar="PATH", default=None,
                      help="also write an HTML report of both runs (needs reluscope[plot])")
    demo.set_defaults(run=_demo)
    commands.add_parser("info", help="print the build and SIMD information").set_defaults(run=_info)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except ImportError as error:
        print(f"reluscope: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`reluscope demo | head`): not an error. Point
        # stdout at /dev/null so the interpreter's final flush stays quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
