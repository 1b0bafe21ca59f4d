"""A Lab from a notebook's connection parameters: a running scheduler (by address or scheduler
file, with TLS files where given) or, when neither is given, a local cluster started here.

A notebook that measures "your cluster" takes these as parameters; ``open_lab`` turns them
into a Lab and says which of the two it got, so a run that fell back to a local cluster is
never read as a measurement of a remote one.

>>> tls_security(None, None, None) is None
True
"""

from __future__ import annotations

import os
from typing import Any

from .lab import Lab

PathLike = str | os.PathLike[str] | None


def tls_security(ca_file: PathLike, cert: PathLike, key: PathLike) -> Any:
    """A ``distributed.security.Security`` requiring encryption from TLS files, or None when none is given."""
    if not (ca_file or cert or key):
        return None
    from distributed.security import Security

    return Security(tls_ca_file=ca_file, tls_client_cert=cert, tls_client_key=key, require_encryption=True)


def open_lab(
    *,
    address: str | None = None,
    scheduler_file: PathLike = None,
    tls_ca_file: PathLike = None,
    tls_cert: PathLike = None,
    tls_key: PathLike = None,
    workers: int | None = None,
    threads_per_worker: int = 1,
) -> Lab:
    """Connect to the scheduler at ``address`` or in ``scheduler_file``; with neither, start a
    local cluster of ``workers`` workers. Every argument is checked by :class:`Lab` before it
    connects or starts anything. :func:`connection_note` says which it is."""
    security = tls_security(tls_ca_file, tls_cert, tls_key)
    if address is not None or scheduler_file is not None:
        return Lab(address=address, scheduler_file=scheduler_file, security=security)
    return Lab(workers=workers, threads_per_worker=threads_per_worker, security=security)


def connection_note(lab: Lab) -> str:
    """Where a Lab's trials run, in words: the scheduler it connected to, or a local cluster."""
    if lab.kind == "remote":
        return f"Connected to the Dask scheduler at {lab.info()['scheduler']}: the trials run on its workers."
    return (
        f"No address or scheduler file was given: this run uses a local cluster of {lab.workers} workers "
        "started here, not a remote one. Pass address=... or scheduler_file=... to measure yours."
    )
