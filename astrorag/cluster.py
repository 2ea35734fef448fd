"""One way to get a dask-distributed client: a scheduler address, or a LocalCluster of worker processes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .hardware import usable_cpus


@contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None,
                memory_limit: str | None = None) -> Iterator:
    """A ``dask.distributed.Client``: to ``scheduler`` when given (``"local"`` or None starts a LocalCluster
    of ``workers`` single-threaded processes, default one per CPU); closed, with its cluster, on exit.

    Scripts that start a LocalCluster must do it under ``if __name__ == "__main__":``.

    Examples
    --------
    >>> with dask_client(workers=1) as client:  # doctest: +SKIP
    ...     client.submit(sum, [1, 2]).result()
    3
    """
    from dask.distributed import Client, LocalCluster

    cluster = None
    if scheduler and scheduler != "local":
        client = Client(scheduler)
    else:
        kwargs = {"memory_limit": memory_limit} if memory_limit else {}
        cluster = LocalCluster(n_workers=workers or usable_cpus(), threads_per_worker=1, processes=True,
                               dashboard_address=None, **kwargs)
        client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
