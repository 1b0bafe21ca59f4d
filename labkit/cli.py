"""The ``labkit`` command: a thin layer over the functions a notebook calls.

labkit run NOTEBOOK [-p NAME VALUE]... [--out DIR] [--no-input] [--fresh]
labkit report DIR
labkit compare A B [--ignore NAME] [--alpha A] [--margin M] [--html PATH]
labkit ls [STORE]
labkit export STORE OUT.{csv,parquet}|FOLDER [--experiment NAME]
labkit prune STORE [--days N]
labkit probe [--workers N] [--store PATH] [--refresh]

Exit codes: 0 done; 1 a notebook's cell failed (its report is still written); 2 a bad
argument or input, said in one line on stderr before anything runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NoReturn


def _prune(args: argparse.Namespace) -> int:
    import time

    from labkit.common.errors import ParameterError
    from labkit.report.listing import existing_store
    from labkit.store import ResultStore

    if not args.days >= 0:  # also refuses NaN
        raise ParameterError("--days", args.days, "a number of days >= 0")
    path = existing_store(args.store)
    with ResultStore(path) as store:
        gone = store.drop_samples(time.time() - args.days * 86400.0)
    print(f"{path}: deleted {gone} monitor samples of runs started over {args.days:g} days ago; trials kept")
    return 0


def _report(args: argparse.Namespace) -> int:
    from labkit.report.index import check_report_dir, write_index

    print(write_index(check_report_dir(args.dir, "dir")))
    return 0


def _export(args: argparse.Namespace) -> int:
    from labkit.common.errors import ParameterError
    from labkit.report.listing import existing_store
    from labkit.store import ResultStore
    from labkit.store.schema import check_path_text

    out = Path(check_path_text(args.out, "out"))
    if out.suffix not in ("", ".csv", ".parquet"):
        raise ParameterError(
            "out", args.out, "a file ending in .csv or .parquet (the trials), or a folder (a Parquet bundle)"
        )
    path = existing_store(args.store)
    try:
        above = next(p for p in out.absolute().parents if p.exists())
        if out.suffix and (out.is_dir() or not out.parent.is_dir()):
            raise ParameterError("out", args.out, "a file path in an existing folder, not a folder")
        if not out.suffix and out.exists() and not out.is_dir():
            raise ParameterError("out", args.out, "a folder for the bundle (this path is a file)")
        if not above.is_dir():
            raise ParameterError("out", args.out, f"a path whose existing part is a folder ({above} is a file)")
    except OSError as e:
        raise ParameterError("out", args.out, f"a usable path ({e.strerror or e})") from None
    with ResultStore(path) as store:
        if args.experiment is not None:
            known = sorted(set(store.runs_frame()["experiment"]))
            if args.experiment not in known:
                raise ParameterError(
                    "--experiment", args.experiment, f"an experiment of this store: {', '.join(known) or 'none'}"
                )
        if out.suffix in (".csv", ".parquet"):
            print(store.export(out, experiment=args.experiment))
        else:
            for written in store.export_bundle(out, experiment=args.experiment).values():
                print(written)
    return 0


def _ls(args: argparse.Namespace) -> int:
    from labkit.report.listing import existing_store, runs_table
    from labkit.store import ResultStore

    path = existing_store(args.store)
    with ResultStore(path) as store:
        table = runs_table(store)
    if table.empty:
        print(f"{path}: no runs")
        return 0
    print(table.to_string(index=False))
    return 0


def _check_probe(args: argparse.Namespace) -> None:
    """Refuse the probe's own options before a cluster starts (the Lab checks its own)."""
    import math

    from labkit.common.errors import ParameterError
    from labkit.store import check_store_path, default_path

    if not (math.isfinite(args.array_mb) and args.array_mb > 0):
        raise ParameterError("--array-mb", args.array_mb, "a finite number of MiB > 0")
    for name, value in (("--matmul-n", args.matmul_n), ("--repeats", args.repeats)):
        if value < 1:
            raise ParameterError(name, value, "an integer >= 1")
    check_store_path(default_path() if args.store is None else args.store)


def _probe(args: argparse.Namespace) -> int:
    from labkit.cluster import Lab
    from labkit.experiment.probing import probe_machine

    _check_probe(args)
    params = {"array_mb": args.array_mb, "matmul_n": args.matmul_n, "repeats": args.repeats}
    if args.address is not None:
        lab = Lab(address=args.address)
    else:
        lab = Lab(workers=args.workers, threads_per_worker=1, dashboard=False)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with lab:
        probe = probe_machine(lab, args.store, refresh=args.refresh, **params)
    if probe.created and probe.created < started:
        print(
            f"cached: these figures were measured {probe.created} on this machine, software and cluster "
            "shape; `labkit probe --refresh` measures again"
        )
    print(probe.table())
    if probe.concurrency is not None:
        print(_ceiling_words(probe.concurrency))
    return 0


def _ceiling_words(c: Any) -> str:
    """The cores' own ceiling with its interval, and whether it was kept as this machine's."""
    from labkit.analysis.intervals import ratio_estimate, show
    from labkit.probes.concurrency import load_words

    said = []
    for k in c.ks[1:]:
        e = ratio_estimate(list(c.rates[k]), list(c.rates[1]))
        said.append(f"{k} at once {show(e.value, e.lo, e.hi, suffix='×')}" + (f" ({e.note})" if e.note else ""))
    kept = "not kept as this machine's ceiling" if c.under_load else "kept as this machine's ceiling"
    figures = "; ".join(said) or "one core: nothing to compare"
    return f"cores' own ceiling (single-thread matmuls against 1 alone): {figures}; {load_words(c.load, c.under_load)}; {kept}"


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("labkit")
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose errors are one line that says where to find the usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="labkit", description="A scaling lab for Dask: run experiments, keep results, write reports.")
    parser.add_argument("--version", action="version", version=f"labkit {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    from labkit.report.run_command import add_run_parser

    add_run_parser(sub)
    _add_report_parser(sub)

    from labkit.report.compare import add_compare_parser

    add_compare_parser(sub)
    _add_ls_parser(sub)
    _add_export_parser(sub)
    _add_prune_parser(sub)
    _add_probe_parser(sub)
    return parser


def _add_report_parser(sub: Any) -> None:
    """``labkit report DIR``."""
    report = sub.add_parser("report", help="write DIR/index.html: every executed notebook in DIR, readable offline")
    report.add_argument("dir", help="a folder of executed notebooks, e.g. the --out of `labkit run`")
    report.set_defaults(func=_report)


def _add_ls_parser(sub: Any) -> None:
    """``labkit ls [STORE]``."""
    ls = sub.add_parser("ls", help="list a store's experiments and runs: date, status, environment, trial counts")
    ls.add_argument(
        "store", nargs="?", default=None, help="the SQLite store (default: results/labkit.db or $LABKIT_STORE)"
    )
    ls.set_defaults(func=_ls)


def _add_prune_parser(sub: Any) -> None:
    """``labkit prune STORE [--days N]``."""
    prune = sub.add_parser(
        "prune", help="delete the raw monitor samples of old runs; runs, trials and their summaries stay"
    )
    prune.add_argument("store", help="the SQLite store, e.g. results/labkit.db")
    prune.add_argument("--days", type=float, default=30.0, help="keep the samples of runs started since (default: 30)")
    prune.set_defaults(func=_prune)


def _add_export_parser(sub: Any) -> None:
    """``labkit export STORE OUT.{csv,parquet}|FOLDER [--experiment NAME]``."""
    export = sub.add_parser(
        "export", help="write a store's trials to CSV/Parquet, or a Parquet bundle of all tables to a folder"
    )
    export.add_argument("store", help="the SQLite store, e.g. results/labkit.db")
    export.add_argument(
        "out", help="a file ending in .csv or .parquet (trials), or a folder (trials, samples, time splits, alerts)"
    )
    export.add_argument("--experiment", default=None, help="only this experiment")
    export.set_defaults(func=_export)


def _add_probe_parser(sub: Any) -> None:
    """``labkit probe [--workers N] [--store PATH] [--refresh]``."""
    probe = sub.add_parser("probe", help="measure memory bandwidth, FLOP/s, task overhead and network; print a table")
    probe.add_argument("--workers", type=int, default=2, help="workers of the local cluster to probe (default: 2)")
    probe.add_argument("--address", default=None, help="probe a running scheduler instead, e.g. tcp://host:8786")
    probe.add_argument("--store", default=None, help="store that caches the result (default: results/labkit.db)")
    probe.add_argument("--refresh", action="store_true", help="measure again even if a cached probe exists")
    probe.add_argument("--array-mb", type=float, default=64.0, help="MiB per STREAM array (default: 64)")
    probe.add_argument("--matmul-n", type=int, default=1024, help="matrix side for FLOP/s (default: 1024)")
    probe.add_argument("--repeats", type=int, default=5, help="timed iterations per probe (default: 5)")
    probe.set_defaults(func=_probe)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``labkit`` command with ``argv`` (default: the process's); return its exit code:
    0 done, 1 a notebook's cell failed (its report is written), 2 a bad argument or input,
    told in one line on stderr before anything runs."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help, --version, or a usage error already printed
        return 0 if e.code is None else e.code if isinstance(e.code, int) else 2
    from labkit.common.errors import LabkitError, one_line
    from labkit.store.secrets import redact_text

    try:
        return int(args.func(args))
    except LabkitError as e:
        print(f"labkit: {redact_text(one_line(str(e)))}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
