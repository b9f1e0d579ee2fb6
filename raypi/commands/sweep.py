"""``raypi sweep`` and the sweep scripts' shared command line (``sweeps/*.py``).

How to run a sweep is ``LaunchOptions``: its flags are made from its fields (their docstrings
the help, ``raypi.commands._options``), so the command line cannot drift from the library's
defaults. Only where to find the sweep and its data, and what to do instead of running it
(``--dry-run``), are flags of their own.
"""

from __future__ import annotations

import argparse
import sys

from raypi.commands import _options
from raypi.sweep.trackers import tracker_arg

_AUTO_YES_NO = {"auto": None, "yes": True, "no": False}
_LAUNCH_FLAGS = {
    "use_gpu": {"flags": ("--gpu",), "choices": tuple(_AUTO_YES_NO), "default": "auto"},
    "stack": {"flags": ("--stack",), "choices": tuple(_AUTO_YES_NO), "default": "auto"},
    "cluster_file": {"flags": ("--cluster-file",), "default": None, "metavar": "YAML"},
    "ordinary_gpu_resource": {
        "flags": ("--ordinary-gpu-resource",), "default": None, "metavar": "NAME"
    },
    "verbose": {"flags": ("-v", "--verbose"), "action": "count", "default": 0},
    "trackers": {
        "flags": ("--tracker",), "action": "append", "type": tracker_arg, "default": [],
        "metavar": "mlflow[=URI]|wandb",
    },
}  # fmt: skip
"""``LaunchOptions`` fields whose flag is not the plain ``--field-name VALUE``."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``sweep`` subcommand.

    Args:
        subparsers: The ``raypi`` command's subparsers.
    """
    parser = subparsers.add_parser(
        "sweep",
        help="run or resume a sweep (teachers once, then students) on Ray Tune",
        description="Run the sweep a YAML config describes (see sweeps/configs/) on a local Ray "
        "or a cluster (--address); rerunning it skips the trials already recorded. Results go "
        "to <storage>/<sweep name>/trials.parquet and epochs.parquet.",
    )
    add_sweep_arguments(parser, default_config=None)
    parser.add_argument(
        "--search",
        action="store_true",
        help="search λ and τ of the students with Optuna instead of running the grid",
    )
    parser.add_argument(
        "--samples", type=int, default=8, help="students per grid point with --search"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the sweep; return the exit code (1 when some trials failed)."""
    return run_search_from_args(args) if args.search else run_from_args(args)


def sweep_parser(description: str, default_config: str | None) -> argparse.ArgumentParser:
    """Return a parser with the sweep options.

    Args:
        description: The script's help text.
        default_config: Config used without ``--config``.

    Returns:
        The parser.
    """
    parser = argparse.ArgumentParser(description=description)
    add_sweep_arguments(parser, default_config)
    return parser


def add_sweep_arguments(parser: argparse.ArgumentParser, default_config: str | None) -> None:
    """Add the options every sweep entry point takes: where, and ``LaunchOptions``' flags.

    Args:
        parser: The parser to extend.
        default_config: Config used without ``--config`` (the demo's); None makes it required.
    """
    from raypi.sweep.launch import LaunchOptions

    parser.add_argument(
        "--config", default=default_config, required=default_config is None,
        help=f"sweep config YAML (local or s3://); default: {default_config}",
    )  # fmt: skip
    parser.add_argument(
        "--smoke-test", action="store_true",
        help="run the smallest sweep of the same shape (one of everything, two epochs)",
    )  # fmt: skip
    _options.add_address(parser, "the sweep")
    parser.add_argument(
        "--data-store", default=None, metavar="URI",
        help="where the datasets and feature stores are (local or s3://): the value of "
        "${RAYPI_DATA} in the config's data paths (default: the RAYPI_DATA environment variable)",
    )  # fmt: skip
    parser.add_argument(
        "--data", type=_data_override, action="append", default=[],
        metavar="NAME=ROOT,FEATURES",
        help="dataset root and feature store of dataset NAME, replacing the config's (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--storage", default=None,
        help="folder or s3:// prefix for results and Tune storage (default ./results)",
    )  # fmt: skip
    parser.add_argument(
        "--no-dashboard", action="store_true", help="start a local Ray without its dashboard"
    )
    # Every setting of how the sweep runs is a field of LaunchOptions: its flags are made from it.
    _options.add_arguments(parser, LaunchOptions, overrides=_LAUNCH_FLAGS)
    _add_dry_run_arguments(parser)


def _add_dry_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the trials per stage and method, the bytes they read, the FLOP and "
        "GPU-hours and the resources they ask for, without starting Ray (with --address it "
        "asks that cluster whether --gpu auto means GPUs)",
    )
    parser.add_argument(
        "--gpu-tflops", type=_tflops, default=8.0,
        help="sustained TFLOP/s assumed for --dry-run's GPU-hours (default 8, a T4 class); "
        "per precision as fp32=20,tf32=60,bf16=120",
    )  # fmt: skip


def launch_options(args: argparse.Namespace):
    """Return the ``LaunchOptions`` given on the command line."""
    from raypi.sweep.launch import LaunchOptions

    values = _options.values(args, LaunchOptions)
    values["use_gpu"] = _AUTO_YES_NO[values["use_gpu"]]
    values["stack"] = _AUTO_YES_NO[values["stack"]]
    values["trackers"] = tuple(values["trackers"])
    return LaunchOptions(**values)


def _data_override(value: str) -> tuple[str, tuple[str, str]]:
    name, _, paths = value.partition("=")
    root, _, features = paths.partition(",")
    if not (name and root and features):
        raise argparse.ArgumentTypeError(f"expected NAME=ROOT,FEATURES, got {value!r}")
    return name, (root, features)


def _tflops(text: str):
    """``--gpu-tflops``: one number, or per precision (``raypi.sweep.cost.parse_tflops``)."""
    from raypi.sweep.cost import parse_tflops

    try:
        rates = parse_tflops(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return rates["*"] if list(rates) == ["*"] else rates


def checked_spec(path: str, args: argparse.Namespace | None = None):
    """Return the sweep spec of ``path``, or None after printing why it cannot run.

    Args:
        path: The sweep YAML.
        args: Parsed sweep options: ``--data-store`` and ``--data`` set its data paths.

    Returns:
        The spec; None when the file is missing or invalid (the caller exits with 2).
    """
    from raypi.sweep.config import DATA_STORE_VARIABLE, ConfigError, load_spec, with_data

    store = getattr(args, "data_store", None)
    try:
        spec = load_spec(path, {DATA_STORE_VARIABLE: store} if store else None)
        return with_data(spec, dict(getattr(args, "data", None) or []))
    except (ConfigError, FileNotFoundError) as error:
        print(f"raypi sweep: {error}", file=sys.stderr)
        return None


def print_dry_run(args: argparse.Namespace, spec) -> int:
    """Print what the sweep would run and cost, without starting Ray; return 0."""
    from raypi.sweep.cost import dry_run, format_dry_run, format_pack_reads

    spec = spec.smoke() if args.smoke_test else spec
    options = launch_options(args)
    decision = dry_run_gpu(args)
    print(decision.line())
    costs = dry_run(spec, options, use_gpu=decision.use_gpu, gpu_tflops=args.gpu_tflops)
    print(format_dry_run(spec.name, costs, args.gpu_tflops))
    if options.packs:
        print(format_pack_reads(spec, options))
    return 0


def dry_run_gpu(args: argparse.Namespace):
    """Decide ``--gpu`` for a dry run by the rule the run uses (``raypi.cluster``).

    With ``--address`` the cluster is asked (joined, read, left: nothing is started);
    with ``--cluster-file`` only, its node types count; else the GPUs of this machine.
    """
    from raypi import cluster

    if args.address is None:
        return cluster.local_gpu_decision(args.use_gpu, args.cluster_file)
    import ray

    cluster.connect(args.address, quiet=True)
    try:
        return cluster.gpu_decision(args.use_gpu, args.cluster_file)
    finally:
        ray.shutdown()


def run_from_args(args: argparse.Namespace) -> int:
    """Run the sweep the command line describes and print where its results are.

    Args:
        args: Parsed sweep options.

    Returns:
        Exit code: 0 when every trial is ok, 1 when some failed or the results storage gave
        out, 2 for a config that cannot run (nothing started, nothing written).
    """
    from raypi.sweep.launch import run_sweep

    return _run_parsed(args, run_sweep)


def run_search_from_args(args: argparse.Namespace) -> int:
    """Run the λ/τ search the command line describes (needs ``args.samples``).

    Args:
        args: Parsed sweep options plus ``samples``.

    Returns:
        Exit code: 0 when every trial is ok, 1 when some failed, 2 for a config that cannot
        run.
    """
    from raypi.sweep.search import SearchSpace, run_lambda_search

    return _run_parsed(args, run_lambda_search, space=SearchSpace(samples=args.samples))


def _run_parsed(args: argparse.Namespace, launcher, **extra) -> int:
    """Check the config, then print its dry run or run it with ``launcher``; the exit code."""
    spec = checked_spec(args.config, args)
    if spec is None:
        return 2
    if args.dry_run:
        return _guarded(lambda: print_dry_run(args, spec))
    return _guarded(
        lambda: launcher(
            spec,
            storage=args.storage,
            address=args.address,
            smoke_test=args.smoke_test,
            options=launch_options(args),
            dashboard=not args.no_dashboard,
            **extra,
        )
    )


def _guarded(run) -> int:
    """Run a sweep, print its summary and return the exit code; storage faults in one line.

    Returns:
        0 when every trial is ok (or a dry run printed), 1 when some failed or the results
        storage gave out (full, or unreachable past its retry budget: a rerun continues), 2
        when another driver holds the results folder, the features cannot serve the trials,
        no Ray cluster answers at ``--address``, a node runs other software, or a tracker
        cannot be reached.
    """
    from raypi import io
    from raypi.cluster import ClusterUnreachableError
    from raypi.features.store import StoreError
    from raypi.sweep.lock import SweepLockedError
    from raypi.sweep.node_versions import VersionMismatchError
    from raypi.sweep.trackers import TrackerError

    refused = (
        SweepLockedError, StoreError, ClusterUnreachableError, VersionMismatchError, TrackerError
    )  # fmt: skip
    try:
        outcome = run()
        if isinstance(outcome, int):  # a dry run, printed
            return outcome
    except refused as error:
        print(f"raypi sweep: {error}", file=sys.stderr)
        return 2
    except (io.StorageUnavailableError, io.StorageFullError) as error:
        print(f"raypi sweep: stopped: {error}", file=sys.stderr)
        return 1
    print(outcome.summary())
    return 0 if outcome.failed == 0 else 1
