"""Bad input, fuzzed: Lab, Sweep, workload parameters, grids, store paths and the command line.

Hypothesis drives labkit's public API with bad values. Each one must be refused with a
labkit error (:class:`labkit.LabkitError`) whose message is one line naming the parameter,
not chained to a traceback from deep inside, before any cluster work starts (no Dask
scheduler, worker, nanny, cluster or client is made, no child process appears) and with
nothing written to a store (a populated store keeps its bytes and trials; a refused store
path is not created). The command line answers exit code 2 and one line on stderr.

Cases that are refused badly today are listed at the end, one per pytest case, marked
``xfail(strict=True)`` with the fix they need. The number of cases run is printed when the
module ends (``fuzz cases run: N``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import math
import os
import sqlite3
import string
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import labkit
from labkit import workloads
from labkit.cli import main as cli_main
from labkit.common.errors import LabkitError
from labkit.store import ResultStore, Trial

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "notebooks" / "00_quickstart.ipynb"
RUN: Counter[str] = Counter()
SERIAL = itertools.count()  # unique file names across examples

FUZZ = settings(
    max_examples=40,
    deadline=None,
    database=None,  # no .hypothesis folder in the project
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module", autouse=True)
def count_cases(request: pytest.FixtureRequest):
    yield
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    text = f"fuzz cases run: {sum(RUN.values())} ({', '.join(f'{k} {v}' for k, v in sorted(RUN.items()))})"
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        if reporter is not None:
            reporter.write_line(text)
        else:
            print(text)


# -- what "refused" means ------------------------------------------------------------------


def _dask_objects() -> list[Any]:
    from distributed import Client, Nanny, Scheduler, Worker
    from distributed.deploy.spec import SpecCluster

    return [*SpecCluster._instances, *Scheduler._instances, *Worker._instances, *Nanny._instances, *Client._instances]


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def refused(call: Callable[[], Any], *names: str) -> LabkitError:
    """``call()`` must raise a labkit error naming one of ``names``, having started nothing."""
    RUN[sys._getframe(1).f_code.co_name] += 1
    before = _dask_objects()  # held, so that their ids stay theirs
    known = {id(o) for o in before}
    kids = _children()
    try:
        made = call()
    except LabkitError as e:
        error = e
    except Exception as e:  # noqa: BLE001 - the point of the test
        pytest.fail(f"raw {type(e).__name__} instead of a labkit error: {e}")
    else:
        close = getattr(made, "close", None)
        if callable(close):
            close()
        pytest.fail(f"accepted: {made!r}")
    # The error (and its traceback, holding whatever was made) is alive: a cluster or client
    # started and closed again would still be in Dask's registries here.
    started = [type(o).__name__ for o in _dask_objects() if id(o) not in known]
    assert not started, f"refused only after starting {started}: {error}"
    assert not (_children() - kids), f"refused only after starting processes: {error}"
    message = str(error)
    assert "\n" not in message, message
    assert any(n in message for n in names), f"{message!r} names none of {names}"
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__), (
        f"{message} chains {error.__context__!r}"
    )
    return error


def named(name: str) -> str:
    """How a message names a parameter: as written, or escaped when it is not printable."""
    return name if name.isprintable() else repr(name)[1:-1]


def cli(*argv: str) -> tuple[int, str]:
    """``labkit ARGV`` in this process: exit code and stderr."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli_main(list(argv))
    return code, err.getvalue()


def cli_refused(*argv: str, names: tuple[str, ...]) -> str:
    RUN[sys._getframe(1).f_code.co_name] += 1
    kids = _children()
    known = {id(o) for o in _dask_objects()}
    code, err = cli(*argv)
    assert code == 2, (argv, code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("labkit"), err
    assert any(n in lines[0] for n in names), f"{lines[0]!r} names none of {names}"
    assert not [o for o in _dask_objects() if id(o) not in known], f"{argv} started a cluster"
    assert not (_children() - kids), f"{argv} started processes"
    return lines[0]


# -- bad values ------------------------------------------------------------------------------

NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
HUGE_INTS = st.one_of(st.integers(min_value=2**63), st.integers(max_value=-(2**63) - 1))
OBJECTS = st.sampled_from([None, [], {}, (), b"bytes", object(), {1, 2}, 1j, [1, 2]])
TEXT = st.text(max_size=24)
NOT_BOOL = st.one_of(st.integers(), st.floats(), TEXT, st.sampled_from([None, [], {}, b"x", [True]]))


def not_a_count(low: int = 1) -> st.SearchStrategy[Any]:
    """Anything but an int >= ``low``."""
    return st.one_of(
        st.integers(max_value=low - 1),
        st.floats(),
        st.booleans(),
        TEXT,
        OBJECTS.filter(lambda v: v is not None),
    )


def not_seconds() -> st.SearchStrategy[Any]:
    """Anything but None or a finite number of seconds > 0."""
    return st.one_of(
        st.floats(max_value=0.0),
        st.integers(max_value=0),
        st.sampled_from([math.nan, -math.inf]),
        st.booleans(),
        TEXT,
        OBJECTS.filter(lambda v: v is not None),
    )


def bad_parameter(w: Any, key: str) -> st.SearchStrategy[Any]:
    """Values of a workload parameter that its default, choices, minimum and maximum refuse."""
    default = w.defaults[key]
    choices = getattr(w, "choices", {}).get(key)
    low = getattr(w, "minimum", {}).get(key)
    high = getattr(w, "maximum", {}).get(key)
    other = OBJECTS.filter(lambda v: v is not None)
    if isinstance(default, bool):
        return st.one_of(st.integers(), st.floats(), TEXT, st.none(), other)
    if isinstance(default, str):
        wrong = st.one_of(st.integers(), st.floats(), st.booleans(), st.none(), other)
        if choices:
            return st.one_of(wrong, TEXT.filter(lambda t: t not in choices))
        return st.one_of(wrong, TEXT.map(lambda t: t + "\x00"))
    numeric = isinstance(default, (int, float))
    options = [TEXT, st.none(), st.booleans(), other, HUGE_INTS]
    if isinstance(default, int):
        options.append(st.floats())  # an int parameter takes ints only
    if isinstance(default, float):
        options.append(NON_FINITE)
    if numeric and choices:
        options.append(st.integers(-(2**63), 2**63 - 1).filter(lambda v: v not in choices))
    if numeric and low is not None:
        if isinstance(default, int):
            options.append(st.integers(-(2**63), math.ceil(low) - 1))
        else:
            options.append(st.floats(min_value=-1e300, max_value=low, exclude_max=True, allow_nan=False))
    if numeric and high is not None:
        options.append(st.floats(min_value=high, max_value=1e300, exclude_min=True, allow_nan=False))
    return st.one_of(options)


# -- a store that must stay as it is ---------------------------------------------------------


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding one run and one trial, which no refused call may change."""
    path = tmp_path_factory.mktemp("fuzz") / "kept.db"
    with ResultStore(path) as store:
        run = store.start_run("kept", "array-sum", env={}, config={})
        store.add_trial(
            Trial(run, "kept", "array-sum", "{}", {}, 0, 1, 1, "numpy", "ok", wall_s=1.0, amount=1.0, unit="bytes")
        )
        store.end_run(run)
    return path


def fingerprint(path: Path) -> tuple[str, list[str], int]:
    """The store's bytes, its files (a -wal would hold writes) and its trial count, read
    without touching it (``immutable``: no lock, no -shm)."""
    files = sorted(p.name for p in path.parent.glob(path.name + "*"))
    with contextlib.closing(sqlite3.connect(f"file:{path}?immutable=1", uri=True)) as conn:
        trials = conn.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
    return hashlib.sha256(path.read_bytes()).hexdigest(), files, trials


@pytest.fixture
def unchanged(kept: Path):
    before = fingerprint(kept)
    yield kept
    assert fingerprint(kept) == before and before[2] == 1


def sweep(**overrides: Any) -> Callable[[], Any]:
    """A Sweep of array-sum with good arguments, but for ``overrides``."""
    kwargs: dict[str, Any] = {"grid": {"size_mb": [1.0]}, "repeats": 1, "warmup": 0}
    workload = overrides.pop("workload", "array-sum")
    kwargs.update(overrides)
    return lambda: labkit.Sweep(workload, **kwargs)


# -- Lab --------------------------------------------------------------------------------------


@FUZZ
@given(name=st.sampled_from(["workers", "threads_per_worker"]), value=not_a_count())
def test_lab_refuses_bad_counts(name: str, value: Any) -> None:
    refused(lambda: labkit.Lab(**{name: value}, processes=False, dashboard=False), name)


def _parses_as_memory(value: Any) -> bool:
    from dask.utils import parse_bytes

    try:
        return value == "auto" or parse_bytes(value) > 0
    except Exception:  # noqa: BLE001 - anything parse_bytes refuses
        return False


@FUZZ
@given(
    value=st.one_of(
        st.integers(max_value=0),
        st.floats(max_value=0.0, allow_infinity=False),
        st.sampled_from([math.nan, False]),
        TEXT.filter(lambda t: not _parses_as_memory(t)),
    )  # inf, True and non-text objects: see the cases at the end
)
def test_lab_refuses_bad_memory_limits(value: Any) -> None:
    refused(lambda: labkit.Lab(workers=1, memory_limit=value, processes=False, dashboard=False), "memory_limit")


def _no_port_or_scheme(text: str) -> str:
    return text.replace(":", "").replace("/", "")


@FUZZ
@given(
    value=st.one_of(
        st.integers(),
        st.floats(),
        st.just(b"tcp://127.0.0.1:8786"),
        OBJECTS.filter(lambda v: v is not None),
        st.just(""),  # a blank one: see the cases at the end
        st.builds(
            "{}://{}:8786".format,
            st.text(string.ascii_lowercase, min_size=1, max_size=8).filter(
                lambda s: s not in ("tcp", "tls", "inproc", "ucx", "ws", "wss")
            ),
            TEXT.map(_no_port_or_scheme),
        ),
        st.sampled_from(["tcp://", "tls://", "://host:8786"]),  # "tcp://:": see the cases at the end
    )
)
def test_lab_refuses_malformed_addresses(value: Any) -> None:
    refused(lambda: labkit.Lab(address=value, connect_timeout=1), "address")


@FUZZ
@given(kind=st.sampled_from(["missing", "folder", "garbage", "no-address", "bad-address"]), content=st.binary())
def test_lab_refuses_bad_scheduler_files(kind: str, content: bytes, tmp_path: Path) -> None:
    path = tmp_path / f"scheduler-{next(SERIAL)}.json"
    if kind == "folder":
        path.mkdir()
    elif kind == "garbage":
        path.write_bytes(b"\x00not json" + content)
    elif kind == "no-address":
        path.write_text('{"type": "Scheduler", "id": "x"}')
    elif kind == "bad-address":
        path.write_text('{"address": 8786}')
    refused(lambda: labkit.Lab(scheduler_file=path, connect_timeout=1), "scheduler_file")


@FUZZ
@given(name=st.sampled_from(["connect_timeout", "start_timeout"]), value=not_seconds())
def test_lab_refuses_bad_timeouts(name: str, value: Any) -> None:
    refused(lambda: labkit.Lab(workers=1, processes=False, dashboard=False, **{name: value}), name)


# -- Sweep ------------------------------------------------------------------------------------


@FUZZ
@given(value=st.one_of(TEXT.filter(lambda t: t not in workloads.names()), st.integers(), st.floats(), OBJECTS))
def test_sweep_refuses_unknown_workloads(value: Any, unchanged: Path) -> None:
    refused(sweep(workload=value, store=unchanged), "workload")


@FUZZ
@given(
    grid=st.one_of(
        st.integers(),
        TEXT,
        st.none(),
        st.just({}),
        st.just([]),
        st.lists(st.one_of(st.integers(), TEXT, st.just({})), min_size=1, max_size=3),
        st.just([{"size_mb": 1.0}, {"chunk_mb": 1.0}]),
        st.dictionaries(st.sampled_from(["size_mb", "chunk_mb", "workers"]), st.just([]), min_size=1),
        st.dictionaries(
            TEXT.filter(lambda k: k not in ("size_mb", "chunk_mb", "dtype", "backend", "workers")),
            st.just([1.0]),
            min_size=1,
        ),
    )
)
def test_sweep_refuses_bad_grid_shapes(grid: Any, unchanged: Path) -> None:
    names = ("grid", *(map(named, grid) if isinstance(grid, dict) else ()))
    refused(sweep(grid=grid, store=unchanged), *names)


@FUZZ
@given(value=not_a_count(), explicit=st.booleans())
def test_sweep_refuses_bad_worker_counts_in_grids(value: Any, explicit: bool, unchanged: Path) -> None:
    # An unhashable value, or one equal to 1 (True, 1.0), in a list of points: see the cases at the end.
    if explicit and not isinstance(value, (list, dict, set)) and value != 1:
        grid: Any = [{"workers": 1, "size_mb": 1.0}, {"workers": value, "size_mb": 1.0}]
    else:
        grid = {"workers": [1, value], "size_mb": [1.0]}
    refused(sweep(grid=grid, store=unchanged), "workers")


@FUZZ
@given(
    params=st.one_of(
        st.dictionaries(
            TEXT.filter(lambda k: k not in ("size_mb", "chunk_mb", "dtype", "backend")), st.integers(), min_size=1
        ),
        st.just({"workers": 2}),
    )
)
def test_sweep_refuses_bad_fixed_params(params: dict[str, Any], unchanged: Path) -> None:
    refused(sweep(params=params, store=unchanged), *map(named, params))


@FUZZ
@given(name=st.sampled_from(["repeats", "warmup"]), value=not_a_count(0))
def test_sweep_refuses_bad_repeats_and_warmups(name: str, value: Any, unchanged: Path) -> None:
    if value == "auto" or (name == "repeats" and value == 0):
        value = -1
    refused(sweep(**{name: value}, store=unchanged), name)


@FUZZ
@given(
    setting=st.one_of(
        st.tuples(
            st.just("ci_target"),
            st.one_of(st.floats(max_value=0.0), st.floats(min_value=1.0), st.just(math.nan), TEXT, st.none()),
        ),
        st.tuples(st.just("max_repeats"), st.one_of(st.integers(max_value=5), st.floats(), TEXT, st.booleans())),
    )
)
def test_sweep_refuses_bad_auto_repeat_settings(setting: tuple[str, Any], unchanged: Path) -> None:
    name, value = setting
    refused(sweep(repeats="auto", store=unchanged, **{name: value}), name)


@FUZZ
@given(name=st.sampled_from(["timeout_s", "budget_s"]), value=not_seconds())
def test_sweep_refuses_bad_seconds(name: str, value: Any, unchanged: Path) -> None:
    refused(sweep(**{name: value}, store=unchanged), name)


@FUZZ
@given(
    setting=st.one_of(
        st.tuples(st.just("order"), st.one_of(TEXT.filter(lambda t: t not in ("rounds", "sequential")), OBJECTS)),
        st.tuples(st.just("seed"), st.one_of(st.floats(), TEXT, st.booleans(), OBJECTS)),
        st.tuples(
            st.just("reuse"),
            st.one_of(TEXT.filter(lambda t: t not in ("same", "any", "none")), OBJECTS.filter(lambda o: o is not None)),
        ),
        st.tuples(
            st.just("keep_inputs"),
            st.one_of(st.floats(max_value=0.0, exclude_max=True), st.floats(min_value=1.0), NON_FINITE, TEXT),
        ),
        st.tuples(st.just("experiment"), st.one_of(st.text(" \t\n", max_size=3), st.integers(), OBJECTS)),
    )
)
def test_sweep_refuses_bad_settings(setting: tuple[str, Any], unchanged: Path) -> None:
    name, value = setting
    if name == "experiment" and value is None:
        value = ""
    refused(sweep(**{name: value}, store=unchanged), name)


# -- store paths ------------------------------------------------------------------------------


@st.composite
def bad_store(draw: st.DrawFn, folder: Path) -> tuple[Any, Path | None]:
    """A bad store argument, and the path that must not appear (or change) after the refusal."""
    n = next(SERIAL)
    kind = draw(
        st.sampled_from(["folder", "proc", "deep", "not-sqlite", "nul", "type", "long", "fifo", "device", "blank"])
    )
    name = draw(st.text(string.ascii_letters + string.digits + "-_ é", min_size=1, max_size=12)).strip() or "x"
    if kind == "folder":
        (folder / f"d{n}").mkdir()
        return folder / f"d{n}", None
    if kind == "proc":
        return f"/proc/{name}.db", Path(f"/proc/{name}.db")
    if kind == "deep":
        return folder / f"missing{n}" / "deeper" / f"{name}.db", folder / f"missing{n}"
    if kind == "not-sqlite":
        path = folder / f"f{n}.db"
        path.write_bytes(b"not a database" + draw(st.binary(max_size=64)))
        return path, None
    if kind == "nul":
        return str(folder / f"{name}\x00.db"), None
    if kind == "type":
        return draw(st.one_of(st.integers(), st.floats(), st.just(b"/tmp/x.db"), OBJECTS.filter(bool))), None
    if kind == "long":
        return str(folder / ("x" * 300 + ".db")), None
    if kind == "fifo":
        path = folder / f"p{n}.db"
        os.mkfifo(path)
        return path, None
    if kind == "device":
        return "/dev/null", None
    return draw(st.text(" \t", max_size=2)), None


@FUZZ
@given(data=st.data())
def test_sweep_refuses_bad_store_paths(data: st.DataObject, tmp_path: Path) -> None:
    store, absent = data.draw(bad_store(tmp_path))
    before = absent.exists() if absent is not None else None
    refused(sweep(store=store), "store")
    if absent is not None:
        assert absent.exists() == before


@FUZZ
@given(data=st.data())
def test_result_store_refuses_bad_paths(data: st.DataObject, tmp_path: Path) -> None:
    store, absent = data.draw(bad_store(tmp_path))
    before = absent.exists() if absent is not None else None
    refused(lambda: ResultStore(store), "store")
    if absent is not None:
        assert absent.exists() == before


# -- workload parameters ----------------------------------------------------------------------


@settings(FUZZ, max_examples=150)
@given(data=st.data(), route=st.sampled_from(["grid", "params"]))
def test_every_workload_refuses_bad_parameter_values(data: st.DataObject, route: str, unchanged: Path) -> None:
    name = data.draw(st.sampled_from(workloads.names()), label="workload")
    w = workloads.get(name)
    key = data.draw(st.sampled_from(sorted(w.defaults)), label="parameter")
    value = data.draw(bad_parameter(w, key), label="value")
    if route == "grid":
        refused(lambda: labkit.Sweep(name, grid={key: [value]}, store=unchanged), named(key))
    else:
        refused(lambda: labkit.Sweep(name, grid={"workers": [1]}, params={key: value}, store=unchanged), named(key))


@FUZZ
@given(data=st.data())
def test_every_workload_refuses_unknown_parameters(data: st.DataObject, unchanged: Path) -> None:
    name = data.draw(st.sampled_from(workloads.names()), label="workload")
    w = workloads.get(name)
    key = data.draw(TEXT.filter(lambda k: k not in w.defaults and k != "workers"), label="parameter")
    refused(lambda: labkit.Sweep(name, grid={key: [1]}, store=unchanged), named(key))


# -- Sweep.run: what it is given at run time --------------------------------------------------


@pytest.fixture(scope="module")
def small_lab():
    with labkit.Lab(workers=1, threads_per_worker=1, processes=False, dashboard=False) as lab:
        yield lab


@settings(FUZZ, max_examples=20)
@given(value=st.one_of(st.floats(max_value=0.0), TEXT, st.booleans(), OBJECTS.filter(bool)))  # NaN: see the end
def test_sweep_run_refuses_bad_intervals_before_touching_the_store(value: Any, small_lab: Any, tmp_path: Path) -> None:
    store = tmp_path / f"run-{next(SERIAL)}.db"
    s = labkit.Sweep("task-overhead", grid={"tasks": [2]}, repeats=1, warmup=0, store=store)
    refused(lambda: s.run(small_lab, live=False, interval=value), "interval")
    assert not store.exists()


# -- the command line -------------------------------------------------------------------------


@st.composite
def bad_run_arguments(draw: st.DrawFn, folder: Path) -> tuple[list[str], tuple[str, ...]]:
    """``labkit run`` arguments with one bad part, and what the message must name."""
    n = next(SERIAL)
    out = str(folder / f"out{n}")
    nb = str(QUICKSTART)
    kind = draw(
        st.sampled_from(["missing", "folder", "garbage", "suffix", "out-file", "out-under-file", "timeout", "kernel"])
        | st.sampled_from(["param", "yaml", "yaml-file", "argparse"])
    )
    if kind == "missing":
        return [str(folder / f"nope{n}.ipynb"), "--out", out], ("notebook",)
    if kind == "folder":
        (folder / f"dir{n}.ipynb").mkdir()
        return [str(folder / f"dir{n}.ipynb"), "--out", out], ("notebook",)
    if kind in ("garbage", "suffix"):
        path = folder / (f"bad{n}.ipynb" if kind == "garbage" else f"bad{n}.txt")
        path.write_bytes(draw(st.sampled_from([b"", b"{}", b"[]", b"null", b'{"nbformat": 4}', b"\xff\xfe"])))
        return [str(path), "--out", out], ("notebook",)
    if kind == "out-file":
        (folder / f"file{n}").write_text("x")
        return [nb, "--out", str(folder / f"file{n}")], ("out",)
    if kind == "out-under-file":
        (folder / f"file{n}").write_text("x")
        return [nb, "--out", str(folder / f"file{n}" / "reports")], ("out",)
    if kind == "timeout":
        value = draw(st.one_of(st.floats(max_value=0.0), st.sampled_from([math.nan, math.inf, -math.inf])))
        return [nb, "--out", out, "--timeout", repr(value)], ("timeout",)
    if kind == "kernel":
        name = draw(st.text(string.ascii_letters + string.digits + "-_. é", min_size=1, max_size=16))
        return [nb, "--out", out, "--kernel", f"no-such-kernel-{name}"], ("kernel",)
    if kind == "param":
        name = draw(
            TEXT.filter(
                lambda t: (
                    t not in ("workers", "sizes_mb", "chunk_mb", "repeats", "warmup", "experiment", "store")
                    and not t.startswith("-")
                )
            )
        )
        return [nb, "--out", out, "-p", name, draw(TEXT.filter(lambda t: not t.startswith("-")))], ("parameter",)
    if kind == "yaml":
        text = draw(st.sampled_from(["[1, 2]", "{a: [1", "- x", "3", "'text'", "{{x}}", "[" * 3000]))
        return [nb, "--out", out, "-y", text], ("-y",)
    if kind == "yaml-file":
        path = folder / f"params{n}.yaml"
        content = draw(st.sampled_from([None, b"\xd0\xcf\x11\xe0 binary", b"[1, 2]", b"{a: [1"]))
        if content is not None:
            path.write_bytes(content)
        return [nb, "--out", out, "-f", str(path)], ("-f",)
    option = draw(st.sampled_from(["--timeout", "-p"]))
    return [nb, "--out", out, option, *(["soon"] if option == "--timeout" else [])], (option,)


@settings(FUZZ, max_examples=50)
@given(data=st.data())
def test_cli_run_refuses_bad_arguments_before_anything_runs(data: st.DataObject, tmp_path: Path) -> None:
    args, names = data.draw(bad_run_arguments(tmp_path))
    cli_refused("run", *args, names=names)
    out = Path(args[args.index("--out") + 1]) if "--out" in args else None
    if out is not None and not out.is_file():
        assert not out.exists(), f"{args}: {out} was created"


@settings(FUZZ, max_examples=60)
@given(data=st.data(), command=st.sampled_from(["ls", "export"]))
def test_cli_ls_and_export_refuse_bad_stores(data: st.DataObject, command: str, tmp_path: Path) -> None:
    store, absent = data.draw(bad_store(tmp_path))
    if not isinstance(store, (str, os.PathLike)) or not str(store).strip():
        store = str(tmp_path / f"never{next(SERIAL)}.db")
        absent = Path(store)
    before = absent.exists() if absent is not None else None
    args = [command, os.fspath(store)] + ([str(tmp_path / "trials.csv")] if command == "export" else [])
    cli_refused(*args, names=("store",))
    if absent is not None:
        assert absent.exists() == before


@settings(FUZZ, max_examples=40)
@given(
    out=st.one_of(
        st.builds(
            "{}.{}".format,
            st.text(string.ascii_letters, min_size=1, max_size=6),
            st.sampled_from(["json", "txt", "db", "xlsx"]),
        ),
        st.just("missing-folder/deeper/trials.csv"),
        st.just("a-folder.csv"),
        st.just("a-file"),
    ),
    experiment=st.one_of(st.none(), TEXT.filter(lambda t: t != "kept" and not t.startswith("-"))),
)
def test_cli_export_refuses_bad_outputs_and_experiments(
    out: str, experiment: Any, unchanged: Path, tmp_path: Path
) -> None:
    (tmp_path / "a-folder.csv").mkdir(exist_ok=True)
    (tmp_path / "a-file").write_text("x")
    target = tmp_path / out
    before = sorted(p.name for p in tmp_path.iterdir())
    good_out = out in ("a-file",) and experiment is not None
    args = ["export", str(unchanged), str(target if not good_out else tmp_path / "t.csv")]
    if experiment is not None:
        args += ["--experiment", experiment]
    names = ("--experiment",) if good_out else ("out", "--experiment")
    cli_refused(*args, names=names)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@settings(FUZZ, max_examples=40)
@given(
    option=st.sampled_from(["--workers", "--array-mb", "--matmul-n", "--repeats", "--address", "--store"]),
    data=st.data(),
)
def test_cli_probe_refuses_bad_options_before_a_cluster_starts(
    option: str, data: st.DataObject, tmp_path: Path
) -> None:
    if option in ("--workers", "--matmul-n", "--repeats"):
        value = str(data.draw(st.one_of(st.integers(max_value=0), st.sampled_from(["two", "1.5", "", "nan"]))))
        names: tuple[str, ...] = (option, option.lstrip("-").replace("-", "_"))
    elif option == "--array-mb":
        value = data.draw(st.sampled_from(["nan", "inf", "-inf", "0", "-1", "lots", "1e400"]))
        names = (option,)
    elif option == "--address":
        value = data.draw(st.sampled_from(["", "foo://host:1", "tcp://", "://x"]))
        names = ("address",)
    else:
        store, _ = data.draw(bad_store(tmp_path))
        if not isinstance(store, (str, os.PathLike)) or not str(store).strip():
            store = "/proc/nope.db"
        value = os.fspath(store)
        names = ("store",)
    extra = [] if option == "--store" else ["--store", str(tmp_path / "probe.db")]
    cli_refused("probe", option, value, *extra, names=names)


@pytest.mark.parametrize(
    "args, names",
    [
        (["run", "missing.ipynb"], ("notebook",)),
        (["export", "/proc/none.db", "x.json"], ("out",)),
        (["probe", "--array-mb", "nan"], ("--array-mb",)),
        (["probe", "--workers", "two"], ("--workers",)),
    ],
)
def test_the_command_answers_exit_2_and_one_line(args: list[str], names: tuple[str, ...], tmp_path: Path) -> None:
    RUN["test_the_command_answers_exit_2_and_one_line"] += 1
    done = subprocess.run(
        [sys.executable, "-m", "labkit", *args], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert any(n in lines[0] for n in names), lines[0]
    assert not (tmp_path / "results").exists() and not (tmp_path / "reports").exists()


# -- refused badly today: each case with the fix it needs -------------------------------------


OPENED: list[int] = []


def _fd_of_a_scheduler_file(tmp: Path) -> int:
    (tmp / "scheduler.json").write_text('{"address": "tcp://127.0.0.1:1"}')
    OPENED.append(os.open(tmp / "scheduler.json", os.O_RDONLY))
    return OPENED[-1]


FIX_LAUNCH = "labkit/cluster/launch.py"
FIX_LAB = "labkit/cluster/lab.py"
FIX_SWEEP = "labkit/experiment/sweep.py"

#: (call given a temporary folder, what the message must name, the fix it needs)
KNOWN: dict[str, tuple[Callable[[Path, pytest.FixtureRequest], Any], tuple[str, ...], str]] = {
    "lab-memory-inf": (
        lambda tmp, req: labkit.Lab(workers=1, memory_limit=math.inf, processes=False),
        ("memory_limit",),
        f"{FIX_LAUNCH} check_memory: parse_bytes(inf) raises OverflowError, which is not caught",
    ),
    "lab-memory-list": (
        lambda tmp, req: labkit.Lab(workers=1, memory_limit=[1], processes=False),
        ("memory_limit",),
        f"{FIX_LAUNCH} check_memory: parse_bytes([1]) raises AttributeError, which is not caught",
    ),
    "lab-memory-bool": (
        lambda tmp, req: labkit.Lab(workers=1, memory_limit=True, processes=False, dashboard=False),
        ("memory_limit",),
        f"{FIX_LAUNCH} check_memory: True passes as 1 byte; refuse bools",
    ),
    "lab-address-blank": (
        lambda tmp, req: labkit.Lab(address=" ", connect_timeout=1),
        ("address",),
        f"{FIX_LAUNCH} check_address: a blank address reaches Client (raw ValueError)",
    ),
    "lab-address-no-port": (
        lambda tmp, req: labkit.Lab(address="tcp://:", connect_timeout=1),
        ("address",),
        f"{FIX_LAUNCH} check_address: check host and port with distributed's parse_host_port before Client",
    ),
    "lab-address-port-not-a-number": (
        lambda tmp, req: labkit.Lab(address="tcp://host:port", connect_timeout=1),
        ("address",),
        f"{FIX_LAUNCH} check_address: check host and port with distributed's parse_host_port before Client",
    ),
    "lab-scheduler-file-descriptor": (
        lambda tmp, req: labkit.Lab(scheduler_file=_fd_of_a_scheduler_file(tmp), connect_timeout=1),
        ("scheduler_file",),
        f"{FIX_LAB}: an int passes os.path.exists as a file descriptor (0 reads stdin); refuse non-paths",
    ),
    "lab-cluster-not-a-cluster": (
        lambda tmp, req: labkit.Lab(cluster=object()),
        ("cluster",),
        f"{FIX_LAB}: refuse a cluster without scheduler_address and scale before Client(cluster)",
    ),
    "lab-dashboard-address-int": (
        lambda tmp, req: labkit.Lab(workers=1, processes=False, dashboard_address=8787),
        ("dashboard_address",),
        f"{FIX_LAB}: dashboard_address=8787 raises AttributeError (rpartition); check str host:port first",
    ),
    "lab-dashboard-address-bad-port": (
        lambda tmp, req: labkit.Lab(workers=1, processes=False, dashboard_address="127.0.0.1:abc"),
        ("dashboard_address",),
        f"{FIX_LAB}: 'host:abc' fails only when the scheduler starts (RuntimeError); check the port first",
    ),
    "lab-unknown-keyword": (
        lambda tmp, req: labkit.Lab(workers=1, processes=False, worker=2),
        ("worker",),
        f"{FIX_LAB}: a misspelt keyword reaches Dask (TypeError after the scheduler started); check "
        "cluster_kwargs against LocalCluster's, Worker's and Nanny's signatures",
    ),
    "lab-processes-not-bool": (
        lambda tmp, req: labkit.Lab(workers=1, processes="no", dashboard=False),
        ("processes",),
        f"{FIX_LAB}: processes='no' is truthy and starts processes; require a bool",
    ),
    "sweep-params-not-a-dict": (
        lambda tmp, req: labkit.Sweep("array-sum", grid={"size_mb": [1.0]}, params="size_mb", store=tmp / "s.db"),
        ("params",),
        f"{FIX_SWEEP}: dict(params) raises ValueError first; check isinstance(params, dict) (resolve_params does)",
    ),
    "sweep-points-unhashable": (
        lambda tmp, req: labkit.Sweep("array-sum", grid=[{"size_mb": [1.0, 2.0]}], store=tmp / "s.db"),
        ("size_mb",),
        f"{FIX_SWEEP}: dict.fromkeys over point values raises TypeError for a list value; check each point",
    ),
    "sweep-points-true-is-one": (
        lambda tmp, req: labkit.Sweep(
            "array-sum", grid=[{"workers": 1, "size_mb": 1.0}, {"workers": True, "size_mb": 1.0}], store=tmp / "s.db"
        ),
        ("workers",),
        f"{FIX_SWEEP}: dict.fromkeys merges True into 1 (and 1.0), so a point's True is never checked",
    ),
    "sweep-timeout-inf": (
        lambda tmp, req: labkit.Sweep("array-sum", grid={"size_mb": [1.0]}, timeout_s=math.inf, store=tmp / "s.db"),
        ("timeout_s",),
        "labkit/experiment/timing.py check_seconds: inf (or > threading.TIMEOUT_MAX) passes, and every "
        "trial then fails with OverflowError in Future.result(timeout=...)",
    ),
    "sweep-timeout-past-timeout-max": (
        lambda tmp, req: labkit.Sweep(
            "array-sum", grid={"size_mb": [1.0]}, timeout_s=threading.TIMEOUT_MAX * 2, store=tmp / "s.db"
        ),
        ("timeout_s",),
        "labkit/experiment/timing.py check_seconds: refuse timeout_s > threading.TIMEOUT_MAX",
    ),
    "sweep-run-interval-nan": (
        lambda tmp, req: labkit.Sweep("task-overhead", grid={"tasks": [2]}, store=tmp / "s.db").run(
            req.getfixturevalue("small_lab"), live=False, interval=math.nan
        ),
        ("interval",),
        f"{FIX_SWEEP} run: interval <= 0 is False for NaN, so NaN passes and the run starts; use not interval > 0",
    ),
    "sweep-run-not-a-lab": (
        lambda tmp, req: labkit.Sweep("task-overhead", grid={"tasks": [2]}, store=tmp / "s.db").run(None, live=False),
        ("lab",),
        f"{FIX_SWEEP} run: None reaches capture() (AttributeError) after the store was created; check the lab first",
    ),
    "synthetic-serial-fraction-one": (
        lambda tmp, req: labkit.Sweep("synthetic", grid={"serial_fraction": [1.0]}, store=tmp / "s.db"),
        ("serial_fraction",),
        "labkit/workloads/synthetic.py: serial_fraction >= 1 is refused in setup, on the cluster; move that "
        "check to check_params",
    ),
    "target-accuracy-above-one": (
        lambda tmp, req: labkit.Sweep("ddp-train", grid={"target_accuracy": [1.5]}, store=tmp / "s.db"),
        ("target_accuracy",),
        "labkit/workloads/training.py (and optimize.py for transfer): maximum = {'target_accuracy': 1.0}",
    ),
    "storage-path-not-a-folder": (
        lambda tmp, req: labkit.Sweep("table-storage", grid={"path": ["/proc/labkit-fuzz"]}, store=tmp / "s.db"),
        ("path",),
        "labkit/workloads/storage.py and compression.py: refuse in check_params a path that is not '' or a "
        "folder that exists or can be made (it fails in setup, on the cluster)",
    ),
}


# Cases found by the fuzzer and fixed since: they run as ordinary tests now.
FIXED = {
    "lab-unknown-keyword",
    "storage-path-not-a-folder",
    "sweep-params-not-a-dict",
    "sweep-points-unhashable",
    "sweep-points-true-is-one",
    "sweep-timeout-inf",
    "sweep-timeout-past-timeout-max",
    "sweep-run-interval-nan",
    "sweep-run-not-a-lab",
    "lab-memory-inf",
    "lab-memory-list",
    "lab-memory-bool",
    "lab-address-blank",
    "lab-address-no-port",
    "lab-address-port-not-a-number",
    "lab-scheduler-file-descriptor",
    "lab-cluster-not-a-cluster",
    "lab-dashboard-address-int",
    "lab-dashboard-address-bad-port",
    "lab-processes-not-bool",
    "synthetic-serial-fraction-one",
    "target-accuracy-above-one",
}


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(k, marks=() if k in FIXED else pytest.mark.xfail(strict=True, reason=v[2]))
        for k, v in KNOWN.items()
    ],
)
def test_known_bad_input_bugs(case: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    call, names, _ = KNOWN[case]
    if case.startswith("sweep-run"):
        request.getfixturevalue("small_lab")  # started before the call that must start nothing
    try:
        refused(lambda: call(tmp_path, request), *names)
    finally:
        while OPENED:
            with contextlib.suppress(OSError):
                os.close(OPENED.pop())
    assert not (tmp_path / "s.db").exists()
