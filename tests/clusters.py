"""Local clusters for the tests: worker processes on the loopback only, no dashboard."""


def local_dask_cluster(distributed, **options):
    """A ``distributed.LocalCluster`` of 2 single-threaded worker processes on 127.0.0.1.

    ``dashboard_address=None`` turns the dashboard off, but the scheduler still
    serves its HTTP routes, by default on port 8787: when another cluster on the
    host holds that port it moves elsewhere with a warning, which the strict
    warning filter turns into an error. Port 0 on the loopback is always free.
    """
    return distributed.LocalCluster(
        **{"n_workers": 2, "threads_per_worker": 1, "processes": True, "host": "127.0.0.1",
           "dashboard_address": None,
           "scheduler_kwargs": {"dashboard_address": "127.0.0.1:0"}, **options})
