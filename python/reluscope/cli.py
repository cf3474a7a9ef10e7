"""The ``reluscope`` command line.

Every expected failure (a bad option value, a file that cannot be read or
written, a bad ``RELUSCOPE_SIMD``) ends as one line on stderr,
``reluscope <command>: error: <what is wrong>``, and exit status 2. Only a bug
shows a traceback. Exit status 1: an optional dependency is missing.

``--out PREFIX`` writes PREFIX.json and PREFIX.png; a PREFIX that ends in a
folder separator (``--out results/``) names a folder, and the files are
``results/reluscope-<command>.json`` and ``.png``.

A command never overwrites a file silently: every output it would write is
checked before any work is done, and one that exists is refused (exit status 2)
unless ``--force`` is given.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

from ._files import refuse_existing
from .cli_scan import add_command as add_scan_command


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: the usage joins the line when it is one line itself."""

    def error(self, message):
        usage = self.format_usage().strip()
        hint = usage if "\n" not in usage else f"see '{self.prog} --help'"
        self.exit(2, f"{self.prog}: error: {message}; {hint}\n")


def _int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value
    return parse


_positive_int = _int_at_least(1)
_nonnegative_int = _int_at_least(0)


def _jobs(text: str) -> int:
    """Joblib's n_jobs: >= 1, or negative (-1: every core)."""
    value = _int_at_least(-(2**31))(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be >= 1, or negative (-1: every core), got 0")
    return value


def _learning_rate(text: str) -> float:
    from ._validation import float32_hyperparameter

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    try:
        return float32_hyperparameter(value, "lr", low=0.0, low_open=True)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _info(_args) -> int:
    from ._runtime import build_info
    from ._strict_json import dumps

    print(dumps(build_info()))
    return 0


def _demo(args) -> int:
    from .demo import main

    if args.report is not None:
        refuse_existing([args.report], args.force)
    main(report=args.report)
    return 0


def _out_prefix(out: str, command: str) -> str:
    """``--out``, with a folder ("results/") mapped to results/reluscope-<command>."""
    if out.endswith(("/", os.sep)) or (os.altsep and out.endswith(os.altsep)):
        return os.path.join(out, f"reluscope-{command}")
    return out


def _experiment(module_name: str, options, args) -> int:
    """Run experiments.<module_name>.run with the parsed options; print its table.

    ``args``: the parsed command line, for the command's name and ``--force``.
    """
    import importlib

    from .experiments._arguments import output_prefix

    module = importlib.import_module(f".experiments.{module_name}", __package__)
    out = output_prefix(_out_prefix(options.pop("out"), args.command))
    refuse_existing([out + ".json", out + ".png"], args.force)
    result = module.run(out, **options)
    print(module.table(result))
    print(f"wrote {out}.json and {out}.png")
    return 0


def _init_study(args) -> int:
    options = {"out": args.out, "dataset": args.dataset, "n_samples": args.samples,
               "seed": args.seed}
    return _experiment("initialization", options, args)


def _lr_sweep(args) -> int:
    options = {"out": args.out, "dataset": args.dataset, "seeds": args.seeds,
               "epochs": args.epochs, "n_jobs": args.jobs, "max_train": args.max_train}
    if args.lrs:
        options["lrs"] = args.lrs
    return _experiment("learning_rate", options, args)


def _born_dead(args) -> int:
    options = {"out": args.out, "widths": args.widths, "max_depth": args.max_depth,
               "n_networks": args.networks, "init": args.init, "seed": args.seed,
               "abs_fit_networks": args.abs_fit_networks}
    if args.data is not None:
        options["x"] = _load_points(args.data)
    return _experiment("born_dead", options, args)


def _load_points(path: str):
    """Return the points of ``--data`` (a .npy array or a .csv) as (n_points, n_features)."""
    import warnings

    import numpy as np

    if os.path.isdir(path):
        raise ValueError(f"--data {path} is a folder; give a .npy or .csv file")
    is_npy = path.endswith(".npy")
    try:
        with warnings.catch_warnings():
            # loadtxt warns (two lines) on an empty file; the shape check below says it in one.
            warnings.simplefilter("ignore", UserWarning)
            data = np.load(path) if is_npy else np.loadtxt(path, delimiter=",", ndmin=2)
    except (FileNotFoundError, PermissionError):
        raise
    except Exception as error:  # ValueError, UnicodeDecodeError, EOFError, MemoryError...
        what = "a .npy file" if is_npy else "a .csv of numbers"
        raise ValueError(f"--data {path} cannot be read as {what}: "
                         f"{' '.join(str(error).split()) or type(error).__name__}") from None
    if not isinstance(data, np.ndarray):  # np.load read an .npz archive
        data.close()
        raise ValueError(f"--data {path} is an .npz archive, not a .npy array")
    if data.dtype.kind not in "biuf":
        raise ValueError(f"--data {path} holds {data.dtype} values, not real numbers")
    if data.ndim == 0 or data.shape[0] == 0:
        raise ValueError(f"--data {path} holds no points")
    return data.reshape(len(data), -1) if data.ndim == 1 else data


def _compare_remedies(args) -> int:
    return _experiment("remedies", {"out": args.out, "lr": args.lr, "dataset": args.dataset,
                                    "seeds": args.seeds, "epochs": args.epochs,
                                    "n_jobs": args.jobs, "max_train": args.max_train}, args)


_FORCE_HELP = "overwrite output files that exist (default: refuse, exit status 2)"


def _add_experiments(commands) -> None:
    def common(parser, name, dataset=True, jobs=False):
        parser.add_argument("--out", default=f"reluscope-{name}", metavar="PREFIX",
                            help="write PREFIX.json and PREFIX.png (default: %(default)s); "
                                 f"a folder (ending in /) gets reluscope-{name}.json and .png")
        parser.add_argument("--force", action="store_true", help=_FORCE_HELP)
        if dataset:
            parser.add_argument("--dataset", default="auto",
                                choices=["auto", "digits", "fashion-mnist"],
                                help="auto: Fashion-MNIST when installed "
                                     "(/usr/share/datasets/fashion-mnist), else digits "
                                     "(default: %(default)s)")
        if jobs:
            parser.add_argument("--jobs", type=_jobs, default=-1, metavar="N",
                                help="parallel worker processes; negative: every core but "
                                     "|N| - 1 (default: %(default)s, every core)")
            parser.add_argument("--max-train", type=_positive_int, default=4000, metavar="N",
                                help="training samples kept, a seeded subset "
                                     "(default: %(default)s)")

    init = commands.add_parser("init-study", help="signal through 5 ReLU layers under "
                               "several inits, one forward pass")
    common(init, "init-study")
    init.add_argument("--samples", type=_positive_int, default=1000, metavar="N",
                      help="training samples sent through each init's network "
                           "(default: %(default)s)")
    init.add_argument("--seed", type=_nonnegative_int, default=0,
                      help="seed of the networks' weights and the sample (default: %(default)s)")
    init.set_defaults(run=_init_study)

    sweep = commands.add_parser("lr-sweep", help="dead units against the learning rate")
    common(sweep, "lr-sweep", jobs=True)
    sweep.add_argument("--lrs", type=_learning_rate, nargs="+", default=None, metavar="LR",
                       help="learning rates (default: 13 on a log grid from 1e-3 to 10)")
    _add_runs(sweep, "learning rate")
    sweep.set_defaults(run=_lr_sweep)

    born = commands.add_parser("born-dead", help="Monte Carlo P(born dead) of deep narrow "
                               "networks (Lu et al. 2020)")
    common(born, "born-dead", dataset=False)
    born.add_argument("--widths", type=_positive_int, nargs="+", default=[2, 3, 4, 5, 10],
                      metavar="WIDTH", help="hidden-layer widths (default: 2 3 4 5 10)")
    born.add_argument("--max-depth", type=_positive_int, default=50, metavar="DEPTH",
                      help="deepest network, in hidden layers (default: %(default)s)")
    born.add_argument("--networks", type=_positive_int, default=2000, metavar="N",
                      help="networks drawn per width (default: %(default)s)")
    born.add_argument("--init", default="he_normal",
                      help="weight initializer, by name (default: %(default)s)")
    born.add_argument("--abs-fit-networks", type=_nonnegative_int, default=100, metavar="N",
                      help="also train N width-2, 10-layer networks on |x| and count those "
                           "that end constant; 0 skips (default: %(default)s)")
    born.add_argument("--data", default=None, metavar="FILE",
                      help="your own inputs, (n_points, n_features), as .npy or .csv "
                           "(default: 1001 points in [-1, 1])")
    born.add_argument("--seed", type=_nonnegative_int, default=0,
                      help="seed of the networks and the training (default: %(default)s)")
    born.set_defaults(run=_born_dead)

    remedies = commands.add_parser("compare-remedies", help="a large learning rate, plain and "
                                   "with each remedy")
    common(remedies, "compare-remedies", jobs=True)
    remedies.add_argument("--lr", type=_learning_rate, default=0.5,
                          help="the large learning rate every run uses (default: %(default)s)")
    _add_runs(remedies, "remedy")
    remedies.set_defaults(run=_compare_remedies)


def _add_runs(parser, per: str) -> None:
    """--seeds and --epochs of an experiment that trains one run per seed and ``per``."""
    parser.add_argument("--seeds", type=_nonnegative_int, nargs="+", default=[0, 1, 2],
                        metavar="SEED", help=f"one training run per seed and {per} "
                        "(default: 0 1 2)")
    parser.add_argument("--epochs", type=_positive_int, default=10,
                        help="training epochs of each run (default: %(default)s)")


def main(argv: list[str] | None = None) -> int:
    """Run the ``reluscope`` command line on ``argv`` (default: sys.argv); return its exit code."""
    from . import __version__
    from ._runtime import environment_error

    if environment_error is not None:  # a bad RELUSCOPE_SIMD or _CPU_PROFILE, found at import
        print(f"reluscope: error: {_one_line(environment_error)}", file=sys.stderr)
        return 2
    parser = _Parser(
        prog="reluscope", description="Train MLPs and see which ReLU units die, when, and why.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser("demo", help="train one MLP on digits at a sensible and at a "
                               "large learning rate and show its dead units")
    demo.add_argument("--report", metavar="PATH", default=None,
                      help="also write an HTML report of both runs (needs reluscope[plot]; "
                           "default: none)")
    demo.add_argument("--force", action="store_true", help=_FORCE_HELP)
    demo.set_defaults(run=_demo)
    commands.add_parser("info", help="print the build and SIMD information").set_defaults(run=_info)
    _add_experiments(commands)
    add_scan_command(commands)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except BrokenPipeError:
        # The reader went away (`reluscope demo | head`): not an error. Point
        # stdout at /dev/null so the interpreter's final flush stays quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ValueError, OSError) as error:
        # OSError: a file that cannot be read or written (missing, a folder, no permission).
        print(f"reluscope {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except ImportError as error:
        print(f"reluscope: {_one_line(error)}", file=sys.stderr)
        return 1


def _one_line(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror and error.filename:
        text = f"{error.filename}: {error.strerror}"
    else:
        text = str(error)
    return " ".join(text.split())
