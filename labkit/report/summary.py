"""What a report is made of: its parameters, the environment, and the trials measured or reused.

A report opens with this header, so a reader knows before any figure how many trials the
run measured itself, how many it took from earlier runs (and from when), with which
parameters, on what machine and software, and where the libraries' log lines went: under
``labkit run``, Dask's, Tornado's and the kernel's messages are kept out of the cells, in
``labkit-run.log`` beside the reports, which the header links.
"""

from __future__ import annotations

import html
import json
import os
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from labkit.common.errors import LabkitError
from labkit.common.logs import ENV as LOG_ENV
from labkit.store import ResultStore, default_path, resolve_store_path
from labkit.store.schema import check_path_text, check_sqlite_file
from labkit.store.secrets import is_secret_name, redact, secret_values


@dataclass
class ExperimentCounts:
    """Trials of one experiment in one report: measured by its runs, or reused from earlier ones."""

    experiment: str
    measured: int = 0
    failed: int = 0
    reused: int = 0
    reused_from: tuple[float, float] | None = None  # started_at of the earliest and latest reused trial

    def describe(self) -> str:
        text = f"{self.experiment}: {self.measured} trial{'s' if self.measured != 1 else ''} measured in this run"
        if self.failed:
            text += f" ({self.failed} not ok)"
        if self.reused:
            if self.reused_from is None:
                when = "dates not recorded"
            else:
                lo, hi = (_date(t) for t in self.reused_from)
                when = lo if lo == hi else f"{lo} to {hi}"
            text += f"; {self.reused} reused from earlier runs ({when})"
        else:
            text += "; none reused"
        return text + "."


@dataclass
class ReportSummary:
    """The header of a report."""

    parameters: dict[str, Any]
    environment: dict[str, Any]
    experiments: list[ExperimentCounts] = field(default_factory=list)
    store: str | None = None
    log: str | None = None  # the library log's file name, beside the report (see run_log)

    @property
    def measured(self) -> int:
        return sum(e.measured for e in self.experiments)

    @property
    def reused(self) -> int:
        return sum(e.reused for e in self.experiments)

    def secrets(self) -> list[str]:
        """The text this header must not show: the environment's secrets and the values of
        secret-named parameters."""
        extra = [str(v) for k, v in self.parameters.items() if is_secret_name(str(k)) and isinstance(v, str)]
        return secret_values(extra=extra)

    def to_metadata(self) -> dict[str, Any]:
        """The header as JSON data, without secrets, for the executed notebook's metadata
        (``nb.metadata["labkit"]``), where an index of reports reads it.

        Returns
        -------
        dict
            ``parameters``; ``environment`` (the snapshot of
            :func:`labkit.cluster.env.capture`: machine, versions, git commit, cluster);
            ``measured`` and ``reused`` (trial counts of the whole report); ``experiments``
            (the same per experiment, with ``reused_from``: epoch seconds of the earliest
            and latest reused trial, or None); ``store`` (its path, or None).

        Examples
        --------
        >>> meta = ReportSummary({"repeats": 2, "api_token": "s3cret-value"}, {"python": "3.11"}).to_metadata()
        >>> meta["parameters"], meta["measured"], meta["experiments"]
        ({'repeats': 2, 'api_token': '<redacted>'}, 0, [])
        """
        data = {
            "parameters": self.parameters,
            "environment": self.environment,
            "measured": self.measured,
            "reused": self.reused,
            "experiments": [
                {
                    "experiment": e.experiment,
                    "measured": e.measured,
                    "failed": e.failed,
                    "reused": e.reused,
                    "reused_from": list(e.reused_from) if e.reused_from else None,
                }
                for e in self.experiments
            ],
            "store": self.store,
        }
        # Through JSON once: a value papermill took but JSON has no form for is kept as its repr.
        return redact(json.loads(json.dumps(data, default=repr)), self.secrets())

    def to_html(self) -> str:
        """The header as HTML, without secrets (see :func:`labkit.store.secrets.redact`)."""
        secrets = self.secrets()
        params = "".join(
            f"<tr><td><code>{html.escape(str(k))}</code></td><td><code>{html.escape(repr(v))}</code></td></tr>"
            for k, v in redact(self.parameters, secrets).items()
        )
        env = redact(self.environment, secrets)
        versions = ", ".join(f"{k} {v}" for k, v in (env.get("versions") or {}).items())
        machine = ", ".join(
            str(x)
            for x in (
                env.get("hostname"),
                env.get("cpu_model"),
                f"{env.get('cpu_count')} cpus" if env.get("cpu_count") else None,
                f"{len(env.get('gpus') or [])} GPU(s)" if env.get("gpus") else "no GPU",
            )
            if x
        )
        cluster = env.get("cluster") or {}
        shape = (
            f"{cluster.get('kind')} cluster, {cluster.get('workers')} workers, {cluster.get('threads')} threads"
            if cluster
            else "not recorded"
        )
        counts = "".join(f"<li>{html.escape(e.describe())}</li>" for e in self.experiments) or (
            "<li>no sweep ran in this notebook</li>"
        )
        total = f"{self.measured} trials measured in this run, {self.reused} reused from earlier runs"
        return (
            "<div class='labkit-report-header'>"
            f"<p><b>{html.escape(total)}.</b></p><ul>{counts}</ul>"
            f"<p><b>Environment:</b> {html.escape(machine)}; {html.escape(shape)}; "
            f"{html.escape(versions)}; git {html.escape(str(env.get('git_commit') or 'not recorded'))}</p>"
            f"<p><b>Store:</b> <code>{html.escape(redact(self.store or 'none', secrets))}</code></p>"
            f"{self._log_html()}"
            f"<details><summary><b>Parameters</b> ({len(self.parameters)})</summary><table>{params}</table></details>"
            "</div>"
        )

    def _log_html(self) -> str:
        """The line that links the library log, relative to the report; "" without one."""
        if not self.log:
            return ""
        name = html.escape(self.log)
        href = html.escape(urllib.parse.quote(self.log))
        return (
            f'<p><b>Library logs:</b> <a href="{href}">{name}</a> '
            "(what Dask, Tornado and the kernel logged during the run)</p>"
        )


def run_log() -> str | None:
    """The file name of the library log this ``labkit run`` appends to (named in
    :data:`labkit.common.logs.ENV`, beside the reports), when it exists: the header links it."""
    path = os.environ.get(LOG_ENV)
    return os.path.basename(path) if path and os.path.isfile(path) else None


def _date(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def summarize_run(
    parameters: dict[str, Any], since: float, store: str | os.PathLike[str] | None = None
) -> ReportSummary:
    """The header of a report whose notebook ran from ``since`` (epoch seconds) with ``parameters``.

    Runs that started in the store after ``since`` are this report's; reused trials are the
    ok trials of the same experiments, with the same fingerprint, from earlier runs. Under
    ``labkit run`` the header also links the run's library log (:func:`run_log`).
    """
    summary = _counted(parameters, since, store)
    summary.log = run_log()
    return summary


def _counted(parameters: dict[str, Any], since: float, store: str | os.PathLike[str] | None) -> ReportSummary:
    """The header's trials, environment and store (see :func:`summarize_run`)."""
    from labkit.cluster.env import capture

    try:  # the notebook refuses a bad store parameter itself; the header then names none
        path = resolve_store_path(check_path_text(store or parameters.get("store") or default_path()))
        found = path.is_file()
        if found:
            check_sqlite_file(path)
    except (LabkitError, OSError):
        return ReportSummary(dict(parameters), capture(), store=None)
    summary = ReportSummary(dict(parameters), {}, store=str(path))
    if not found:
        summary.environment = capture()
        return summary
    with ResultStore(path) as db:
        runs = db.runs_frame()
        mine = runs[runs["started_at"] >= since]
        if mine.empty:
            summary.environment = capture()
            return summary
        summary.environment = json.loads(mine["env_json"].iloc[0] or "{}")
        for experiment, group in mine.groupby("experiment", sort=False):
            trials = db.trials_frame(str(experiment))
            configs = [json.loads(c or "{}") for c in group["config_json"]]
            fingerprints = {c.get("fingerprint") for c in configs} - {None}
            points = {p for c in configs for p in c.get("points", [])}
            ours = trials[trials["run_id"].isin(group["run_id"])]
            counts = ExperimentCounts(str(experiment), measured=len(ours), failed=int((ours["status"] != "ok").sum()))
            counts.reused = sum(int(c.get("reused_trials") or 0) for c in configs)
            if counts.reused and "fingerprint" in trials:
                earlier = trials[
                    ~trials["run_id"].isin(group["run_id"])
                    & trials["fingerprint"].isin(fingerprints)
                    & trials["point"].isin(points)
                    & (trials["status"] == "ok")
                ]
                if len(earlier):
                    import pandas as pd

                    started = (earlier["started_at"] - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
                    counts.reused_from = (float(started.min()), float(started.max()))
            summary.experiments.append(counts)
    return summary
