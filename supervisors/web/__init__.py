"""Web apps and the tree: serve an ASGI app as a supervised child, or open a tree in an app's lifespan.

- :func:`asgi_server` is a ready child spec that serves an ASGI app (Starlette, FastAPI, ...)
  with hypercorn's Trio worker as a child of the tree: started in order once its socket is
  bound, stopped gracefully within its grace, restarted by its supervisor like any child
  (compare Kestrel running as an ``IHostedService``).
- :func:`tree_lifespan` is the other way round: a server started by someone else (``hypercorn
  app:app --worker-class trio``) runs the app, and the app's lifespan opens the tree; request
  handlers reach it through ``request.state.tree``.

Requires the ``web`` extra (hypercorn, starlette): ``pip install 'trio-supervisors[web]'``.
"""

try:
    import hypercorn  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "supervisors.web needs hypercorn, which the 'web' extra installs: "
        "pip install 'trio-supervisors[web]'"
    ) from exc

from ._lifespan import tree_lifespan as tree_lifespan
from ._server import AsgiServer as AsgiServer
from ._server import ServerUrls as ServerUrls
from ._server import asgi_server as asgi_server

__all__ = ["AsgiServer", "ServerUrls", "asgi_server", "tree_lifespan"]
