"""Headless failures and secrets: what ``labkit run`` leaves behind when a notebook fails, and
what reports and stores must never hold.

A notebook that raises makes ``labkit run`` exit non-zero and still write the executed
notebook and an HTML report that shows the failing cell and its exception. Notebooks run
here with secrets planted in their environment, as a JupyterLab, a TLS setup or a CI job
plants them: ``JUPYTER_TOKEN``, a Dask TLS client key (its path, and a private key in it),
a ``PASSWORD``, and a token in URL parameters (a Dask dashboard link template that adds
``?token={JUPYTER_TOKEN}``, as JupyterHub setups do, and a notebook parameter). The executed
notebook, the HTML and every text column of every table of the store are scanned for them.
"""

from __future__ import annotations

import contextlib
import html
import os
import re
import secrets
import sqlite3
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "notebooks" / "00_quickstart.ipynb"

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], dict[str, str]]:
    """An environment with secrets in it, and the secrets to look for (name -> text)."""
    tmp_path = tmp_path_factory.mktemp("secrets")
    token = secrets.token_hex(24)
    password = "pw-" + secrets.token_urlsafe(12)
    url_token = secrets.token_hex(16)
    key = tmp_path / "tls" / f"client-key-{secrets.token_hex(4)}.pem"
    key.parent.mkdir()
    key_body = secrets.token_urlsafe(48)
    key.write_text(f"-----BEGIN PRIVATE KEY-----\n{key_body}\n-----END PRIVATE KEY-----\n")
    env = {
        **os.environ,
        "JUPYTER_TOKEN": token,
        "PASSWORD": password,
        "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY": str(key),
        "DASK_DISTRIBUTED__DASHBOARD__LINK": "http://127.0.0.1:8888/proxy/{port}/status?token={JUPYTER_TOKEN}",
    }
    env.pop("LABKIT_STORE", None)
    found = {
        "JUPYTER_TOKEN": token,
        "PASSWORD": password,
        "the TLS key's path": str(key),
        "the TLS key": key_body,
        "the URL token": url_token,
    }
    return env, found


def labkit_run(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "labkit", "run", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=560
    )


def notebook(path: Path, *cells: str, parameters: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell(parameters)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, *(nbformat.v4.new_code_cell(c) for c in cells)]
    nbformat.write(nb, path)
    return path


def text_of(page: str) -> str:
    """What an HTML page shows: its text without tags (code is split into highlighted spans)."""
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def leaks(text: str, found: dict[str, str]) -> list[str]:
    return [name for name, value in found.items() if value in text or html.escape(value) in text]


def store_leaks(path: Path, found: dict[str, str]) -> dict[str, list[str]]:
    """The secrets found in any text of any row of any table of a SQLite file."""
    out: dict[str, list[str]] = {}
    with contextlib.closing(sqlite3.connect(path)) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert {"runs", "trials"} <= set(tables)
        for table in tables:
            for row in conn.execute(f"SELECT * FROM {table}"):
                for value in row:
                    text = value.decode(errors="replace") if isinstance(value, bytes) else value
                    if isinstance(text, str) and (names := leaks(text, found)):
                        out.setdefault(table, []).extend(names)
    return out


FAILING_CELL = 'raise ConnectionError(f"lost the scheduler at {api_url}: {reason}")'


def test_a_failing_notebook_exits_nonzero_and_its_report_shows_the_failing_cell(
    tmp_path: Path, planted: tuple[dict[str, str], dict[str, str]]
) -> None:
    env, found = planted
    src = notebook(
        tmp_path / "fails.ipynb",
        "print('before the failure:', reason)",
        FAILING_CELL,
        "print('never printed')",
        parameters='api_url = "https://example.org/api"\nreason = "unknown"',
    )
    api_url = f"https://example.org/api?user=ann&token={found['the URL token']}"
    done = labkit_run(
        str(src),
        "-p",
        "api_url",
        api_url,
        "-p",
        "reason",
        "gone",
        "--out",
        str(tmp_path / "out"),
        env=env,
        cwd=tmp_path,
    )

    assert done.returncode == 1, done.stderr[-3000:]
    assert "ConnectionError: lost the scheduler at https://example.org/api?user=ann&token=<redacted>" in done.stderr
    assert not leaks(done.stdout + done.stderr, found)
    executed = nbformat.read(tmp_path / "out" / "fails.ipynb", as_version=4)
    failing = [c for c in executed.cells if c.cell_type == "code" and c.source == FAILING_CELL]
    assert len(failing) == 1 and failing[0].outputs[0]["output_type"] == "error"
    assert failing[0].outputs[0]["ename"] == "ConnectionError"
    assert not any(c.outputs for c in executed.cells if c.source == "print('never printed')")

    page = (tmp_path / "out" / "fails.html").read_text()
    shown = text_of(page)
    assert FAILING_CELL in shown  # the failing cell's source
    assert "lost the scheduler at https://example.org/api?user=ann&token=<redacted>: gone" in shown
    assert "An Exception was encountered at" in shown  # papermill's banner, which links to the cell
    assert "before the failure: gone" in shown
    assert not leaks(page, found)
    assert not leaks((tmp_path / "out" / "fails.ipynb").read_text(), found)


ADOPTED = [
    "import labkit\n"
    "from distributed import LocalCluster\n"
    "cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address='127.0.0.1:0')\n"
    "lab = labkit.Lab(cluster=cluster)\n"
    "lab",
    "print('dashboard:', lab.dashboard_link)\nprint('api:', api_url)",
    "results = labkit.Sweep('task-overhead', grid={'tasks': [4]}, repeats=2, warmup=0, experiment='secrets',\n"
    "                       store=store).run(lab, live=False)\n"
    "print(len(results.frame), 'trials')",
    "lab.close()\ncluster.close()",
]


@pytest.fixture(scope="module")
def adopted_run(tmp_path_factory: pytest.TempPathFactory, planted: tuple[dict[str, str], dict[str, str]]):
    """A notebook that adopts a cluster (whose dashboard link carries the token), runs a small
    sweep and prints a URL with a token, run headless with the secrets planted."""
    env, found = planted
    tmp_path = tmp_path_factory.mktemp("adopted")
    src = notebook(
        tmp_path / "adopted.ipynb", *ADOPTED, parameters='store = "results/labkit.db"\napi_url = "https://example.org"'
    )
    store = tmp_path / "secrets.db"
    api_url = f"https://example.org/api?token={found['the URL token']}"
    done = labkit_run(
        str(src),
        "-p",
        "store",
        str(store),
        "-p",
        "api_url",
        api_url,
        "--out",
        str(tmp_path / "out"),
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp_path / "out", store, found


def test_reports_never_hold_the_token_passwords_or_tls_keys(adopted_run) -> None:
    out, _, found = adopted_run
    executed = (out / "adopted.ipynb").read_text()
    page = (out / "adopted.html").read_text()
    shown = text_of(page)
    assert "2 trials" in shown and "dashboard: http://127.0.0.1:8888/proxy/" in shown
    assert "status?token=<redacted>" in shown and "api: https://example.org/api?token=<redacted>" in shown
    assert not leaks(executed, found), leaks(executed, found)
    assert not leaks(page, found), leaks(page, found)


def test_stores_never_hold_the_token_passwords_or_tls_keys(adopted_run) -> None:
    _, store, found = adopted_run
    with contextlib.closing(sqlite3.connect(store)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM trials WHERE status = 'ok'").fetchone()[0] == 2
    assert store_leaks(store, found) == {}


def test_the_quickstart_keeps_no_secret_in_its_report_or_store(
    tmp_path: Path, planted: tuple[dict[str, str], dict[str, str]]
) -> None:
    env, found = planted
    store = tmp_path / "qs.db"
    done = labkit_run(
        str(QUICKSTART),
        *("-p", "n", "[128, 256]", "-p", "chunk", "64", "-p", "repeats", "2"),
        *("-p", "store", str(store), "--out", str(tmp_path / "reports")),
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    page = (tmp_path / "reports" / "00_quickstart.html").read_text()
    assert "8 trials measured in this run" in page
    assert not leaks(page, found)
    assert not leaks((tmp_path / "reports" / "00_quickstart.ipynb").read_text(), found)
    assert store_leaks(store, found) == {}


def test_redaction_takes_out_what_it_must_and_keeps_the_rest() -> None:
    from labkit.store.schema import Trial
    from labkit.store.secrets import REDACTED, redact, redact_text

    env = {"JUPYTER_TOKEN": "0123456789abcdef", "PGPASSWORD": "hunter22", "TOKENIZERS_PARALLELISM": "false"}
    from labkit.store.secrets import secret_values

    found = secret_values(env)
    assert found == ["0123456789abcdef", "hunter22"]  # "false" is too short to be searched for
    text = (
        "http://h:8888/lab?token=0123456789abcdef and tcp://ann:hunter22@h:8786 "
        "https://h/x?a=1&amp;api_key=k-1 -----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY----- "
        "8 tokens, false, http://127.0.0.1:8787/status"
    )
    out = redact_text(text, found)
    assert "0123456789abcdef" not in out and "hunter22" not in out and "k-1" not in out and "abc" not in out
    assert out.count(REDACTED) == 4
    assert out.endswith("8 tokens, false, http://127.0.0.1:8787/status")
    nested = redact({"env": {"AWS_SECRET_ACCESS_KEY": "x", "n_tokens": 3}, "urls": ["u?sig=zz"]}, found)
    assert nested == {"env": {"AWS_SECRET_ACCESS_KEY": REDACTED, "n_tokens": 3}, "urls": [f"u?sig={REDACTED}"]}
    trial = Trial("r", "e", "w", "{}", {}, 0, 1, 1, None, "error", error="no answer from tcp://ann:hunter22@h:1")
    assert trial.error == f"no answer from tcp://ann:{REDACTED}@h:1"
