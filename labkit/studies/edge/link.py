"""A bandwidth-limited link: a network namespace joined to this one by a veth pair shaped with ``tc``.

:class:`ShapedLink` creates a network namespace (``ip netns``), a veth pair between it and
this namespace with an address on each end, and a token-bucket filter (``tc qdisc ... tbf``)
at ``rate_mbit`` on both ends; closing it deletes the namespace, and with it the pair and
its filters, even when the run inside failed. It needs root and a kernel with network
namespaces and ``tbf``; :func:`link_support` says whether this machine has them, and why
not. Delay (``netem``) is not used: some kernels lack it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

from labkit.common.errors import LabkitError


def _ip(*args: str, ns: str | None = None) -> None:
    command = (["ip", "netns", "exec", ns] if ns else []) + list(args)
    done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise LabkitError(f"{' '.join(command)} failed: {done.stderr.strip()[-300:]}")


class ShapedLink:
    """A namespace behind a veth pair shaped to ``rate_mbit`` megabits per second each way."""

    def __init__(self, rate_mbit: float, *, subnet: int | None = None) -> None:
        self.rate_mbit = rate_mbit
        tag = f"lke{os.getpid() % 100000}"
        self.ns, self.host_if, self.ns_if = tag, f"{tag}h", f"{tag}n"
        octet = subnet if subnet is not None else 16 + os.getpid() % 200
        self.host_ip, self.ns_ip = f"10.232.{octet}.1", f"10.232.{octet}.2"
        self.made = False

    @property
    def burst_bytes(self) -> int:
        """The token bucket's size: a 4 ms burst at the rate, at least 16 KiB."""
        return max(16 * 1024, int(self.rate_mbit * 1e6 / 8 * 0.004))

    def __enter__(self) -> ShapedLink:
        try:
            _ip("ip", "netns", "add", self.ns)
            self.made = True
            _ip("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
            _ip("ip", "link", "set", self.ns_if, "netns", self.ns)
            _ip("ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
            _ip("ip", "link", "set", self.host_if, "up")
            _ip("ip", "addr", "add", f"{self.ns_ip}/30", "dev", self.ns_if, ns=self.ns)
            _ip("ip", "link", "set", self.ns_if, "up", ns=self.ns)
            _ip("ip", "link", "set", "lo", "up", ns=self.ns)
            shape = ["root", "tbf", "rate", f"{self.rate_mbit}mbit", "burst", str(self.burst_bytes), "latency", "400ms"]
            _ip("tc", "qdisc", "add", "dev", self.host_if, *shape)
            _ip("tc", "qdisc", "add", "dev", self.ns_if, *shape, ns=self.ns)
        except BaseException:
            self.close()
            raise
        return self

    def received_bytes(self) -> int:
        """Bytes this namespace's end of the pair has received from the other (the uplink's count)."""
        with open(f"/sys/class/net/{self.host_if}/statistics/rx_bytes") as f:
            return int(f.read())

    def prefix(self) -> list[str]:
        """The command prefix that runs a program inside the namespace."""
        return ["ip", "netns", "exec", self.ns]

    def close(self) -> None:
        """Delete the namespace (its end of the pair, and so the pair, goes with it); idempotent."""
        if self.made:
            subprocess.run(["ip", "netns", "del", self.ns], capture_output=True, timeout=30)
            subprocess.run(["ip", "link", "del", self.host_if], capture_output=True, timeout=30)
            self.made = False

    def __exit__(self, *exc: Any) -> None:
        self.close()


def link_support() -> str:
    """``""`` where a shaped link can be made here, else why not (the part that needs it is skipped)."""
    if os.name != "posix" or not hasattr(os, "geteuid"):
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "creating a network namespace needs root"
    missing = [t for t in ("ip", "tc") if shutil.which(t) is None]
    if missing:
        return f"{' and '.join(missing)} not found (iproute2)"
    try:
        with ShapedLink(8.0, subnet=250):
            pass
    except LabkitError as e:
        return f"a shaped link could not be made here: {e}"
    return ""
