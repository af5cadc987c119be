"""Settings shared by the embedded dask clusters of the workflows (precompute, studies)."""

from __future__ import annotations

from typing import Any

#: the address of the dashboard when one is asked for (dask's default port)
DASHBOARD_ADDRESS = ":8787"


def dashboard_kwargs(dashboard: bool = False) -> dict[str, Any]:
    """Keyword arguments of ``LocalCluster`` / ``LocalCUDACluster`` for the scheduler's web server.

    ``dask.distributed`` always starts an HTTP server for its scheduler (health and metrics
    routes), on port 8787 of every interface even with ``dashboard_address=None``.  Without
    ``dashboard`` it listens on a random loopback port and serves no dashboard; with it, the
    dashboard is on :data:`DASHBOARD_ADDRESS` (or the next free port).
    """
    if dashboard:
        return {"dashboard_address": DASHBOARD_ADDRESS}
    return {"dashboard_address": "127.0.0.1:0", "scheduler_kwargs": {"dashboard": False}}
