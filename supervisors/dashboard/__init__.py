"""The web dashboard of a running host: pages, a JSON API, ``/metrics``, ``/healthz`` and ``/readyz``.

- :func:`dashboard` is a child spec that serves the dashboard of the tree it is added to,
  inside the host's Trio loop (hypercorn's Trio worker, Starlette), as a supervised child.
- :class:`Dashboard` is the ASGI app itself, for serving it by other means.

Pages are rendered on the server (Jinja2 templates shipped in the package) and kept live by
server-sent events; no JavaScript build step. ``docs/dashboard.md`` describes the pages, the
API, the metrics and the security rules.

Requires the ``dashboard`` extra (hypercorn, starlette, jinja2, prometheus-client):
``pip install 'trio-supervisors[dashboard]'``.
"""

try:
    import hypercorn  # noqa: F401
    import jinja2  # noqa: F401
    import prometheus_client  # noqa: F401
    import starlette  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        f"supervisors.dashboard needs {exc.name}, which the 'dashboard' extra installs: "
        "pip install 'trio-supervisors[dashboard]'"
    ) from exc

from ._app import Dashboard as Dashboard
from ._child import DashboardServer as DashboardServer
from ._child import dashboard as dashboard
from ._metrics import METRICS as METRICS
from ._security import TokenError as TokenError

__all__ = ["METRICS", "Dashboard", "DashboardServer", "TokenError", "dashboard"]
