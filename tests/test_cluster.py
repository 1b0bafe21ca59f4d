"""Lab: start, scale, adopt, connect, and refuse bad input before starting anything."""

from __future__ import annotations

import pytest
from distributed import LocalCluster

import labkit
from labkit.cluster.gpu import gpu_status
from labkit.common.errors import BackendUnavailable, ClusterError


def test_scale_reuses_one_cluster(scaled_lab):
    scheduler = scaled_lab.client.scheduler.address
    scaled_lab.scale(1)
    assert scaled_lab.workers == 1
    assert scaled_lab.threads == 1
    scaled_lab.scale(2)
    assert scaled_lab.workers == 2
    assert scaled_lab.client.scheduler.address == scheduler


def test_info_and_repr(lab):
    info = lab.info()
    assert info["workers"] == 2 and info["threads"] == 2
    assert info["scheduler"].startswith("tcp://127.0.0.1:")
    assert "2 workers" in repr(lab)
    assert "2 workers" in lab._repr_html_()


def test_dashboard_binds_to_localhost():
    with labkit.Lab(workers=1, threads_per_worker=1, processes=False, dashboard_address="127.0.0.1:0") as lab:
        assert lab.dashboard_link.startswith("http://127.0.0.1:")
        assert "href" in lab._repr_html_()


def test_the_dashboard_link_serves_dasks_status_page_redrawn_every_second():
    """The Lab's link opens Dask's status plots, built by Dask's own page, with every redraw
    Dask schedules each 100 ms moved to each second (labkit.cluster.dashboard.PERIOD_MS)."""
    import urllib.request

    from bokeh.document import Document
    from bokeh.server.callbacks import PeriodicCallback
    from distributed.dashboard.components.scheduler import status_doc

    from labkit.cluster import dashboard

    with labkit.Lab(workers=1, threads_per_worker=1, processes=False, dashboard_address="127.0.0.1:0") as lab:
        assert lab.dashboard_link.endswith(f"/{dashboard.PAGE}")
        with urllib.request.urlopen(lab.dashboard_link, timeout=30) as answer:
            assert answer.status == 200 and "Dask" in answer.read().decode()
        dasks, calm = Document(), Document()
        status_doc(lab.cluster.scheduler, {}, dasks)
        dashboard.calm_doc(status_doc, dashboard.PERIOD_MS, lab.cluster.scheduler, {}, calm)

    def periods(doc: Document) -> list[int]:
        return sorted(c.period for c in doc.session_callbacks if isinstance(c, PeriodicCallback))

    assert periods(dasks) and min(periods(dasks)) < dashboard.PERIOD_MS  # Dask's own: faster
    assert periods(calm) == [max(p, dashboard.PERIOD_MS) for p in periods(dasks)]
    assert len(calm.roots) == len(dasks.roots)  # the same plots


def test_adopted_cluster_is_not_closed_by_the_lab():
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with labkit.Lab(cluster=cluster) as lab:
            assert lab.kind == "adopted" and lab.workers == 1
            lab.scale(2)
            assert lab.workers == 2
        assert lab.closed
        assert cluster.status.name == "running"


def test_connect_by_address_cannot_scale():
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with labkit.Lab(address=cluster.scheduler_address) as lab:
            assert lab.kind == "remote" and lab.workers == 1
            with pytest.raises(ClusterError, match="connected to a scheduler by address"):
                lab.scale(2)
            lab.close()
            lab.close()  # idempotent


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"workers": 0}, "workers"),
        ({"workers": 1.5}, "workers"),
        ({"threads_per_worker": -1}, "threads_per_worker"),
        ({"memory_limit": "plenty"}, "memory_limit"),
        ({"address": "tcp://127.0.0.1:1", "cluster": object()}, "cluster"),
        ({"scheduler_file": "/nonexistent/scheduler.json"}, "scheduler_file"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, name):
    with pytest.raises((ValueError, TypeError)) as err:
        labkit.Lab(**kwargs)
    assert name in str(err.value)


def test_a_misspelt_keyword_gets_a_suggestion():
    with pytest.raises(labkit.ParameterError, match="did you mean 'threads_per_worker'?"):
        labkit.Lab(workers=1, thread_per_worker=1, processes=False, dashboard=False)


@pytest.mark.no_gpu
def test_gpu_without_cuda_says_what_is_missing():
    with pytest.raises(BackendUnavailable) as err:
        labkit.Lab(gpu=True)
    message = str(err.value)
    missing = gpu_status(need_dask_cuda=True).missing
    assert missing and all(part in message for part in missing)
    assert "pip install 'labkit[gpu]'" in message


def test_oversubscription_is_said_out_loud():
    from labkit.cluster.capacity import usable_cores

    cores = usable_cores()
    with labkit.Lab(workers=cores + 1, threads_per_worker=1, dashboard=False) as lab:
        capacity = lab.capacity()
        assert capacity.oversubscribed and capacity.cores == cores
        assert f"{cores + 1} worker threads on {cores} core" in capacity.describe()
        assert "Oversubscribed" in lab._repr_html_() and "Oversubscribed" in repr(lab)
        assert lab.info()["oversubscribed"] is True
        lab.scale(1)
        assert not lab.capacity().oversubscribed
        assert "Oversubscribed" not in lab._repr_html_()


def test_worker_counts_fit_the_machine():
    from labkit.cluster.capacity import usable_cores

    counts = labkit.worker_counts(None)
    assert counts[0] == 1 and counts[-1] == usable_cores() and counts == sorted(set(counts))
    assert labkit.worker_counts(None, cores=8) == [1, 2, 4, 8]
    assert labkit.worker_counts([2, 1, 2]) == [1, 2]
    with pytest.raises(ValueError, match="workers"):
        labkit.worker_counts([0])
    with pytest.raises(TypeError, match="workers"):
        labkit.worker_counts("all")


def test_a_starting_worker_is_the_labs_before_the_scheduler_lists_it():
    """A worker process spends its first second or two importing at a full core before it
    registers: from its first moment it is the lab's (retire.spawned), not outside load."""
    import time

    from labkit.cluster import retire

    with labkit.Lab(workers=1, threads_per_worker=1, dashboard=False) as lab:
        listed = set(lab.client.run(lambda: __import__("os").getpid()).values())
        lab.cluster.scale(2)  # returns at once; the new worker starts meanwhile
        seen_first, deadline = None, time.monotonic() + 120
        while time.monotonic() < deadline and seen_first is None:
            new = set(retire.spawned(lab.client)) - listed
            if new:
                seen_first = new.pop()
                registered = seen_first in set(lab.client.run(lambda: __import__("os").getpid()).values())
            time.sleep(0.01)
        assert seen_first is not None, "the new worker's process never showed"
        assert not registered, "the starting worker was the lab's only once the scheduler listed it"
        lab.client.wait_for_workers(2, timeout=120)


def test_adapt_may_scale_to_zero_and_names_a_bad_bound(lab):
    from labkit.common.errors import ParameterError

    with pytest.raises(ParameterError, match="minimum"):
        lab.adapt(minimum=-1)
    with pytest.raises(ParameterError, match="maximum"):
        lab.adapt(minimum=0, maximum=0)
