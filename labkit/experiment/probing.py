"""The machine's probes with the outside load read around them: what ``labkit probe`` and
notebook 01 measure, flagged when other work loaded the machine meanwhile.

:func:`probe_machine` is :func:`labkit.probes.cached_probes` given :func:`probe_load_watch`:
a probe taken under outside load is flagged, never kept as this machine's ceiling, and the
roofline that uses it says so.
"""

from __future__ import annotations

from typing import Any


def probe_load_watch(rules: Any = None) -> Any:
    """The outside-load watch ``labkit probe`` gives the probes (:data:`labkit.probes.concurrency.LoadWatch`).

    Built here, above both layers: the probes may not import :mod:`labkit.measure`. It reads
    the machine with :func:`~labkit.measure.host.host_reader` before and after, and flags the
    probe with ``rules.under_load`` (default :class:`~labkit.measure.alerts.AlertRules`, the
    rule trials are flagged by).
    """
    import math

    from labkit.measure.alerts import AlertRules
    from labkit.measure.host import host_reader
    from labkit.measure.load import load_rates

    rules = AlertRules() if rules is None else rules

    def watch(pids: tuple[list[int], tuple[int, ...]]) -> Any:
        read, (own, nannied) = host_reader(), pids
        before = read(own, nannied)

        def finish() -> tuple[dict[str, float | None], bool | None]:
            got = load_rates(before, read(own, nannied))
            rates = {k: (None if math.isnan(v) else float(v)) for k, v in got.items()}
            outside, steal = rates["outside_cpu_percent"], rates["steal_percent"]
            return rates, rules.load_flag(outside, steal, rates["outside_resolution_percent"])

        return finish

    return watch


def probe_machine(lab: Any = None, store: Any = None, *, refresh: bool = False, **params: Any) -> Any:
    """:func:`labkit.probes.cached_probes` with the outside load read around each probe
    (:func:`probe_load_watch`): a cached result, or fresh probes flagged ``under_load`` when
    other work loaded the machine while they ran."""
    from labkit.probes import cached_probes

    return cached_probes(lab, store, refresh=refresh, watch=probe_load_watch(), **params)
