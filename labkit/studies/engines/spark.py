"""Spark for the engines study: a JVM and a SparkSession at ``local[N]``, and the JVM gone after.

:class:`SparkEngine` launches its own JVM for each session (so that start-up is the JVM's
and the SparkSession's, every time), on ``127.0.0.1`` (``SPARK_LOCAL_IP``; nothing here
listens elsewhere), with a small driver memory, the web UI off and its log in a file of its
own. :meth:`SparkEngine.close` always stops the session, shuts the gateway, ends the JVM
(terminated, killed past a bound) and clears pyspark's class-level handles so that the next
session starts a new JVM; it is idempotent, and the context manager calls it whatever
happened. A query runs as ``spark.sql(text).collect()``.

>>> java_problem("openjdk version \\"11.0.2\\" 2019-01-15")
'Java 11 found; Spark 4 needs Java 17 or 21'
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import warnings
from typing import Any

from .data import HINT
from .lifetime import EngineLifetime

LOCAL_IP = "127.0.0.1"
STOP_S = 20.0
"""Longest wait for the JVM to end once told to, before it is killed."""


def java_problem(version_text: str | None) -> str:
    """Why this Java cannot run Spark 4 ("" where it can), from ``java -version``'s text."""
    if version_text is None:
        return "Java is not installed (Spark 4 needs Java 17 or 21)"
    found = re.search(r'version "(\d+)(?:\.(\d+))?', version_text)
    if not found:
        return ""
    major = int(found.group(1)) if found.group(1) != "1" else int(found.group(2) or 0)
    return "" if major >= 17 else f"Java {major} found; Spark 4 needs Java 17 or 21"


def _java_version() -> str | None:
    home = os.environ.get("JAVA_HOME")
    java = os.path.join(home, "bin", "java") if home else shutil.which("java")
    if not java or not os.path.exists(java):
        return None
    try:
        done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return None
    return done.stderr + done.stdout


def spark_problem() -> str:
    """Why Spark cannot run here ("" where it can): pyspark missing, or Java missing or too old."""
    import importlib.util

    if importlib.util.find_spec("pyspark") is None:
        return f"pyspark is not installed ({HINT})"
    return java_problem(_java_version())


class SparkEngine(EngineLifetime):
    """One Spark session at ``local[workers]`` in a JVM of its own, as a context manager."""

    name = "spark"

    log: Any = None  # the JVM's output, a temporary file

    @property
    def spark(self) -> Any:
        """The SparkSession (None when not started, or closed)."""
        return self.held[0] if self.held is not None else None

    def load(self) -> None:
        with warnings.catch_warnings():  # pyspark warns that it is not tested with pandas 3: SQL and collect() use none
            warnings.filterwarnings("ignore", message=".*pandas.*", category=FutureWarning)
            import pyspark.java_gateway
            import pyspark.sql  # noqa: F401 - imported before start-up is timed

    def start(self) -> SparkEngine:
        """Launch the JVM and make the SparkSession (what start-up times); the session already there, if any."""
        if self.held is None:
            with (
                warnings.catch_warnings()
            ):  # pyspark warns that it is not tested with pandas 3: SQL and collect() use none
                warnings.filterwarnings("ignore", message=".*pandas.*", category=FutureWarning)
                self._launch()
        return self

    def _conf(self) -> Any:
        import pyspark

        os.environ.setdefault("SPARK_LOCAL_IP", LOCAL_IP)
        conf = pyspark.SparkConf().setMaster(f"local[{self.workers}]").setAppName("labkit-engines")
        for key, value in (
            ("spark.driver.memory", self.memory),
            ("spark.driver.host", LOCAL_IP),
            ("spark.driver.bindAddress", LOCAL_IP),
            ("spark.ui.enabled", "false"),
            ("spark.ui.showConsoleProgress", "false"),
            ("spark.sql.session.timeZone", "UTC"),
        ):
            conf.set(key, value)
        return conf

    def _launch(self) -> None:
        from pyspark import SparkContext
        from pyspark.java_gateway import launch_gateway
        from pyspark.sql import SparkSession

        conf, gateway = self._conf(), None
        self.log = tempfile.TemporaryFile(prefix="labkit-spark-")
        try:
            gateway = launch_gateway(conf, popen_kwargs={"stdout": self.log, "stderr": self.log})
            context = SparkContext(gateway=gateway, conf=conf)
            context.setLogLevel("ERROR")
            self.held = (SparkSession(context), gateway)
        except Exception as e:
            tail = self.log_tail()
            self.release((None, gateway))
            raise RuntimeError(f"Spark did not start: {e}; its log ends: {tail}") from e
        except BaseException:
            self.release((None, gateway))
            raise

    def log_tail(self, chars: int = 600) -> str:
        """The end of the JVM's log ("" once closed)."""
        if self.log is None or self.log.closed:
            return ""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-chars:].strip()

    def pids(self) -> set[int]:
        """The JVM's process (empty once it is gone)."""
        proc = getattr(self.held[1], "proc", None) if self.held is not None else None
        return {proc.pid} if proc is not None and proc.poll() is None else set()

    def table(self, folder: str) -> str:
        """A folder of Parquet files as Spark SQL reads it."""
        return f"parquet.`{folder}`"

    def query(self, text: str) -> tuple[list[tuple[Any, ...]], list[str]]:
        """Run one query to the end: its rows (collected here) and column names."""
        if self.spark is None:
            raise RuntimeError("the Spark session is not started (or was closed)")
        try:
            frame = self.spark.sql(text)
            rows = frame.collect()
        except Exception as e:  # noqa: BLE001 - pyspark reads an error's text from the JVM: read it while it runs
            raise RuntimeError(f"Spark: {type(e).__name__}: {_text(e)}") from None
        return [tuple(r) for r in rows], list(frame.columns)

    def release(self, held: tuple[Any, Any]) -> None:
        """Stop the session, shut the gateway, end the JVM, clear pyspark's handles, close the log."""
        spark, gateway = held
        if spark is not None:
            try:
                spark.stop()
            except Exception:  # noqa: BLE001 - a JVM that died already: still end it below
                pass
        if gateway is not None:
            _end_gateway(gateway)
        if self.log is not None:
            self.log.close()


def _text(error: BaseException) -> str:
    """An error's text, or its type where reading it fails."""
    try:
        return str(error).strip()[:2000]
    except Exception:  # noqa: BLE001 - a pyspark error whose JVM is gone
        return f"<{type(error).__name__}>"


def _end_gateway(gateway: Any) -> None:
    """Shut py4j's gateway, end its JVM, and let the next SparkContext launch a new one."""
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    try:
        gateway.shutdown()
    except Exception:  # noqa: BLE001 - the connection is gone with the JVM: nothing left to shut
        pass
    proc = getattr(gateway, "proc", None)
    if proc is not None:
        if proc.stdin is not None:
            proc.stdin.close()  # the JVM ends itself when its stdin closes
        proc.terminate()
        try:
            proc.wait(STOP_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_S)
    SparkContext._gateway = None
    SparkContext._jvm = None
    SparkContext._active_spark_context = None
    SparkSession._instantiatedSession = None
    SparkSession._activeSession = None
