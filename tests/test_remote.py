"""Existing clusters started with Dask's own command line, by address, scheduler file and TLS; safe defaults.

The clusters here are real processes: ``python -m distributed.cli.dask_scheduler`` and two
``python -m distributed.cli.dask_worker`` on 127.0.0.1 (one thread each), started once for
the test class that uses them and killed at its end, so that one runs at a time; the TLS
one uses a CA and a certificate made here.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cloudpickle
import psutil
import pytest
from distributed import Client
from distributed.security import Security

import labkit
from labkit.common.errors import ClusterError, ParameterError, ParameterTypeError

ROOT = Path(__file__).resolve().parents[1]
# The schedulers here cannot import this module: send its functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])
NOTEBOOK = ROOT / "notebooks" / "13_remote_cluster.ipynb"
# Notebook 13, small: on the cluster at an address, or (without one) on a local cluster.
SMALL = {"tasks": [100, 300], "repeats": 2, "warmup": 0, "experiment": "nb13"}


@dataclass
class CliCluster:
    """A scheduler and its workers, each a process started with Dask's command line."""

    address: str
    scheduler_file: Path
    folder: Path
    security: Security | None = None
    processes: list[subprocess.Popen] = field(default_factory=list)

    def stop(self) -> None:
        for p in self.processes:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.processes:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)

    def logs(self) -> str:
        return "\n".join(f"--- {f.name}\n{f.read_text()[-3000:]}" for f in sorted(self.folder.glob("*.log")))


def make_tls(folder: Path) -> dict[str, Path]:
    """A temporary CA and one certificate for 127.0.0.1 signed by it (scheduler, workers and client share it)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    valid = {
        "not_valid_before": now - datetime.timedelta(minutes=5),
        "not_valid_after": now + datetime.timedelta(days=1),
    }

    def certificate(subject: str, key, issuer: str, issuer_key, extension) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(valid["not_valid_before"])
            .not_valid_after(valid["not_valid_after"])
            .add_extension(*extension)
        )
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = certificate(
        "labkit test CA", ca_key, "labkit test CA", ca_key, (x509.BasicConstraints(ca=True, path_length=None), True)
    )
    san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    cert = certificate("127.0.0.1", key, "labkit test CA", ca_key, (san, False))
    files = {"ca": folder / "ca.pem", "cert": folder / "cert.pem", "key": folder / "key.pem"}
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    files["key"].write_bytes(pem)
    files["key"].chmod(0o600)
    return files


def start_cli_cluster(folder: Path, tls: dict[str, Path] | None = None, workers: int = 2) -> CliCluster:
    """``dask scheduler`` and ``workers`` x ``dask worker`` on 127.0.0.1; returns once all workers are running."""
    folder.mkdir(parents=True)
    scheduler_file = folder / "scheduler.json"
    tls_args = (
        ["--tls-ca-file", str(tls["ca"]), "--tls-cert", str(tls["cert"]), "--tls-key", str(tls["key"])] if tls else []
    )
    protocol = ["--protocol", "tls"] if tls else []
    py = [sys.executable, "-m"]

    def start(args: list[str], log: str) -> subprocess.Popen:
        with open(folder / log, "w") as out:
            return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=folder)

    procs = [
        start(
            [*py, "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0", *protocol]
            + ["--scheduler-file", str(scheduler_file), "--dashboard-address", "127.0.0.1:0", *tls_args],
            "scheduler.log",
        )
    ]
    for i in range(workers):  # they wait for the scheduler file
        args = [*py, "distributed.cli.dask_worker", "--scheduler-file", str(scheduler_file), "--nthreads", "1"]
        args += ["--host", "127.0.0.1", "--no-dashboard", "--name", f"w{i}", "--local-directory", str(folder / f"w{i}")]
        procs.append(start(args + protocol + tls_args, f"worker-{i}.log"))
    security = None
    if tls:
        security = Security(
            tls_ca_file=str(tls["ca"]),
            tls_client_cert=str(tls["cert"]),
            tls_client_key=str(tls["key"]),
            require_encryption=True,
        )
    cluster = CliCluster("", scheduler_file, folder, security, procs)
    try:
        deadline = time.monotonic() + 120
        while not scheduler_file.exists():
            assert time.monotonic() < deadline and procs[0].poll() is None, "the scheduler did not start"
            time.sleep(0.1)
        time.sleep(0.1)  # written at once, but let it land
        cluster.address = json.loads(scheduler_file.read_text())["address"]
        with Client(cluster.address, security=security, timeout=60) as client:
            client.wait_for_workers(workers, timeout=120)
    except BaseException as e:  # whatever failed, stop the processes first
        logs = cluster.logs()
        cluster.stop()
        if not isinstance(e, Exception):
            raise
        pytest.fail(f"the command-line cluster did not start ({e}):\n{logs}")
    return cluster


@pytest.fixture(scope="class")
def plain(tmp_path_factory):
    cluster = start_cli_cluster(tmp_path_factory.mktemp("cli") / "plain")
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="class")
def tls(tmp_path_factory, tls_files):
    cluster = start_cli_cluster(tmp_path_factory.mktemp("cli") / "tls", tls=tls_files)
    yield cluster
    cluster.stop()


def _left_on_scheduler(dask_scheduler) -> tuple[list[str], list[str]]:
    return sorted(dask_scheduler.plugins), sorted(dask_scheduler.extensions)


def scheduler_state(cluster: CliCluster) -> tuple[list[str], list[str]]:
    """The scheduler's plugin and extension names, asked by a Client of the test's own."""
    with Client(cluster.address, security=cluster.security, timeout=30) as client:
        return client.run_on_scheduler(_left_on_scheduler)


def stored(store: Path, experiment: str) -> list[tuple]:
    with sqlite3.connect(store) as db:
        return db.execute("SELECT status, workers, amount FROM trials WHERE experiment = ?", (experiment,)).fetchall()


def small_sweep(store: Path, experiment: str) -> labkit.Sweep:
    return labkit.Sweep(
        "task-overhead", grid={"tasks": [100, 300]}, repeats=2, warmup=0, experiment=experiment, store=store
    )


def check_trials(results, store: Path, experiment: str) -> None:
    assert list(results.frame["status"]) == ["ok"] * 4
    rows = stored(store, experiment)
    assert sorted(rows) == [("ok", 2, 100.0)] * 2 + [("ok", 2, 300.0)] * 2


def _add_task_stream(dask_scheduler) -> int:
    from distributed.diagnostics.task_stream import TaskStreamPlugin

    plugin = TaskStreamPlugin(dask_scheduler)
    dask_scheduler.add_plugin(plugin)
    return id(plugin)


def _task_stream_id(dask_scheduler) -> int | None:
    plugin = dask_scheduler.plugins.pop("task-stream", None)
    return None if plugin is None else id(plugin)


def test_tls_options_are_checked_before_connecting(tls_files, tmp_path):
    files = {"tls_ca_file": str(tls_files["ca"]), "tls_client_cert": str(tls_files["cert"])}
    files["tls_client_key"] = str(tls_files["key"])
    nowhere = "tls://127.0.0.1:1"  # nothing listens there: a check that passed would end in ClusterError
    with pytest.raises(ParameterError, match="security=None"):
        labkit.Lab(address=nowhere)
    with pytest.raises(ParameterError, match="address='tcp://127.0.0.1:1'.*tls://"):
        labkit.Lab(address="tcp://127.0.0.1:1", security=Security(require_encryption=True, **files))
    with pytest.raises(ParameterError, match="security.tls_ca_file"):
        labkit.Lab(address=nowhere, security=Security(**{**files, "tls_ca_file": str(tmp_path / "missing.pem")}))
    with pytest.raises(ParameterTypeError, match="security"):
        labkit.Lab(address=nowhere, security=files)
    with pytest.raises(ParameterError, match="security"):
        labkit.Lab(cluster=object(), security=Security(**files))
    with pytest.raises(ParameterError, match="address"):
        labkit.Lab(address="carrier-pigeon://127.0.0.1:1")
    garbage = tmp_path / "scheduler.json"
    garbage.write_text("not json")
    with pytest.raises(ParameterError, match="scheduler_file"):
        labkit.Lab(scheduler_file=garbage)


def test_a_cluster_the_lab_starts_can_use_tls():
    with labkit.Lab(workers=1, processes=False, dashboard=False, security=Security.temporary()) as lab:
        assert lab.info()["scheduler"].startswith("tls://127.0.0.1:")
        assert lab.client.submit(sum, [1, 2, 3]).result() == 6


def _listening(pids: set[int]) -> set[tuple[int, str, int]]:
    out = set()
    for pid in pids:
        for c in psutil.Process(pid).net_connections(kind="inet"):
            if c.status == psutil.CONN_LISTEN:
                out.add((pid, c.laddr.ip, c.laddr.port))
    return out


def test_open_lab_without_an_address_starts_a_local_cluster_and_says_so():
    with labkit.open_lab(workers=1) as lab:
        assert lab.kind == "local" and lab.workers == 1
        assert labkit.connection_note(lab).startswith("No address or scheduler file was given: this run uses a local")
    with pytest.raises(labkit.ParameterError, match="scheduler_file"):
        labkit.open_lab(scheduler_file="/nonexistent/scheduler.json")


def test_a_default_lab_listens_on_loopback_only():
    before = _listening({os.getpid()})
    with labkit.Lab(workers=2) as lab:
        workers = set(lab.client.run(os.getpid).values())
        assert len(workers) == 2 and os.getpid() not in workers
        sockets = _listening({os.getpid(), *workers}) - before
        dashboard = int(lab.dashboard_link.split(":")[2].split("/")[0])
    assert {pid for pid, _, _ in sockets} == {os.getpid(), *workers}  # the scheduler's and every worker's
    assert (os.getpid(), "127.0.0.1", dashboard) in sockets
    assert {ip for _, ip, _ in sockets} == {"127.0.0.1"}, sockets


def test_make_lab_binds_jupyterlab_to_loopback():
    lines = (ROOT / "Makefile").read_text().splitlines()
    recipe = lines[lines.index(next(line for line in lines if line.startswith("lab:"))) + 1]
    assert "jupyter lab" in recipe and "--ip=127.0.0.1" in recipe.split()


class TestTlsCluster:
    """A scheduler and workers that speak TLS only, with a CA and certificate made here."""

    def test_sweep_over_tls_leaves_the_scheduler_as_it_was(self, tls, tmp_path):
        assert tls.address.startswith("tls://127.0.0.1:")
        before = scheduler_state(tls)
        store = tmp_path / "labkit.db"
        with labkit.Lab(address=tls.address, security=tls.security) as lab:
            assert lab.kind == "remote" and lab.workers == 2 and lab.threads == 2
            assert lab.info()["scheduler"] == tls.address
            check_trials(small_sweep(store, "tls").run(lab, live=False), store, "tls")
            during = scheduler_state(tls)
            assert "task-stream" in during[0] and "task-stream" not in before[0]  # labkit did add one
        assert scheduler_state(tls) == before

    def test_plain_connection_to_the_tls_scheduler_is_refused(self, tls):
        plain_address = tls.address.replace("tls://", "tcp://")
        with pytest.raises(ClusterError) as err:
            labkit.Lab(address=plain_address, connect_timeout=3)
        assert plain_address in str(err.value) and "tls://" in str(err.value)


class TestPlainCluster:
    """A scheduler and workers over plain TCP, reached by scheduler file and by address."""

    def test_sweep_by_scheduler_file_keeps_a_plugin_that_was_there(self, plain, tmp_path):
        store = tmp_path / "labkit.db"
        with Client(plain.address, timeout=30) as owner:
            theirs = owner.run_on_scheduler(_add_task_stream)
            before = scheduler_state(plain)
            with labkit.Lab(scheduler_file=plain.scheduler_file) as lab:
                assert lab.info()["scheduler"] == plain.address
                check_trials(small_sweep(store, "by-file").run(lab, live=False), store, "by-file")
            assert scheduler_state(plain) == before
            assert owner.run_on_scheduler(_task_stream_id) == theirs  # the same plugin, now removed by its owner

    def test_notebook_13_runs_against_the_cli_cluster(self, plain, tmp_path, notebooks_store):
        before = scheduler_state(plain)
        store = notebooks_store.path  # shared with the other notebooks: read by experiment
        result = notebooks_store.run(NOTEBOOK, {**SMALL, "address": plain.address}, tmp_path)
        assert result.ok, result.error
        html = result.html.read_text()
        assert f"Connected to the Dask scheduler at {plain.address}" in html
        assert sorted(stored(store, "nb13")) == [("ok", 2, 100.0)] * 2 + [("ok", 2, 300.0)] * 2
        assert scheduler_state(plain) == before
