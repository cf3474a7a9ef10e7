"""The ``reluscope`` command line."""

from __future__ import annotations

import argparse
import os
import sys


def _info(_args) -> int:
    from ._runtime import build_info
    from ._strict_json import dumps

    print(dumps(build_info()))
    return 0


def _demo(args) -> int:
    from .demo import main

    main(report=args.report)
    return 0


def _experiment(module_name: str, options) -> int:
    """Run experiments.<module_name>.run with the parsed options; print its table."""
    import importlib

    module = importlib.import_module(f".experiments.{module_name}", __package__)
    out = options.pop("out")
    result = module.run(out, **options)
    print(module.table(result))
    print(f"wrote {out}.json and {out}.png")
    return 0


def _init_study(args) -> int:
    return _experiment("initialization", {"out": args.out, "dataset": args.dataset,
                                          "n_samples": args.samples, "seed": args.seed})


def _lr_sweep(args) -> int:
    options = {"out": args.out, "dataset": args.dataset, "seeds": args.seeds,
               "epochs": args.epochs, "n_jobs": args.jobs, "max_train": args.max_train}
    if args.lrs:
        options["lrs"] = args.lrs
    return _experiment("learning_rate", options)


def _born_dead(args) -> int:
    options = {"out": args.out, "widths": args.widths, "max_depth": args.max_depth,
               "n_networks": args.networks, "init": args.init, "seed": args.seed,
               "abs_fit_networks": args.abs_fit_networks}
    if args.data is not None:
        import numpy as np

        data = (np.load(args.data) if args.data.endswith(".npy")
                else np.loadtxt(args.data, delimiter=",", ndmin=2))
        options["x"] = data.reshape(len(data), -1) if data.ndim == 1 else data
    return _experiment("born_dead", options)


def _compare_remedies(args) -> int:
    return _experiment("remedies", {"out": args.out, "lr": args.lr, "dataset": args.dataset,
                                    "seeds": args.seeds, "epochs": args.epochs,
                                    "n_jobs": args.jobs, "max_train": args.max_train})


def _add_experiments(commands) -> None:
    def common(parser, name, dataset=True, jobs=False):
        parser.add_argument("--out", default=f"reluscope-{name}", metavar="PREFIX",
                            help="write PREFIX.json and PREFIX.png (default: %(default)s)")
        if dataset:
            parser.add_argument("--dataset", default="auto",
                                choices=["auto", "digits", "fashion-mnist"],
                                help="auto: Fashion-MNIST when installed "
                                     "(/usr/share/datasets/fashion-mnist), else digits")
        if jobs:
            parser.add_argument("--jobs", type=int, default=-1,
                                help="parallel worker processes (default: every core)")
            parser.add_argument("--max-train", type=int, default=4000,
                                help="training samples kept, a seeded subset (default 4000)")

    init = commands.add_parser("init-study", help="signal through 5 ReLU layers under "
                               "several inits, one forward pass")
    common(init, "init-study")
    init.add_argument("--samples", type=int, default=1000)
    init.add_argument("--seed", type=int, default=0)
    init.set_defaults(run=_init_study)

    sweep = commands.add_parser("lr-sweep", help="dead units against the learning rate")
    common(sweep, "lr-sweep", jobs=True)
    sweep.add_argument("--lrs", type=float, nargs="+", default=None,
                       help="learning rates (default: 13 on a log grid from 1e-3 to 10)")
    sweep.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    sweep.add_argument("--epochs", type=int, default=10)
    sweep.set_defaults(run=_lr_sweep)

    born = commands.add_parser("born-dead", help="Monte Carlo P(born dead) of deep narrow "
                               "networks (Lu et al. 2020)")
    common(born, "born-dead", dataset=False)
    born.add_argument("--widths", type=int, nargs="+", default=[2, 3, 4, 5, 10])
    born.add_argument("--max-depth", type=int, default=50)
    born.add_argument("--networks", type=int, default=2000, help="networks per width")
    born.add_argument("--init", default="he_normal")
    born.add_argument("--abs-fit-networks", type=int, default=100, metavar="N",
                      help="also train N width-2, 10-layer networks on |x| and count those "
                           "that end constant (default 100; 0 skips)")
    born.add_argument("--data", default=None, metavar="FILE",
                      help="your own inputs, (n_points, n_features), as .npy or .csv "
                           "(default: 1001 points in [-1, 1])")
    born.add_argument("--seed", type=int, default=0)
    born.set_defaults(run=_born_dead)

    remedies = commands.add_parser("compare-remedies", help="a large learning rate, plain and "
                                   "with each remedy")
    common(remedies, "compare-remedies", jobs=True)
    remedies.add_argument("--lr", type=float, default=0.5)
    remedies.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    remedies.add_argument("--epochs", type=int, default=10)
    remedies.set_defaults(run=_compare_remedies)


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
    _add_experiments(commands)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"reluscope {args.command}: {error}", file=sys.stderr)
        return 2
    except ImportError as error:
        print(f"reluscope: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`reluscope demo | head`): not an error. Point
        # stdout at /dev/null so the interpreter's final flush stays quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
