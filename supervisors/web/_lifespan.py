"""tree_lifespan: open a supervision tree in an ASGI app's lifespan (Starlette's ``lifespan=``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from supervisors import DynamicSupervisor, Resource, Supervisor, current_resources, open_tree

__all__ = ["tree_lifespan"]


def tree_lifespan(
    spec: Supervisor | DynamicSupervisor,
    *,
    resources: Sequence[Resource[Any]] = (),
) -> Callable[[Any], AbstractAsyncContextManager[Mapping[str, Any]]]:
    """A lifespan that runs the tree ``spec`` for as long as the app is served.

    ::

        app = Starlette(routes=routes, lifespan=tree_lifespan(tree, resources=[db]))

        async def sign_up(request: Request) -> Response:
            tree: Tree = request.state.tree
            await tree.ref("audit").cast(SignedUp(...))

    At startup the tree opens (with ``resources``, as :func:`supervisors.open_tree` opens
    them); at shutdown it stops gracefully. The lifespan state, which Starlette copies into
    each request's ``request.state``, holds ``tree`` (the :class:`supervisors.Tree`) and
    ``resources`` (the :class:`supervisors.Resources`): request handlers run in the server's
    tasks, not the tree's, so ``Resource.get()`` is not available there; use
    ``request.state.resources[db]``. A job system in the tree is reached through its own
    object (``await jobs.enqueue(...)``). If the tree cannot start, the app's startup fails
    and the server does not serve; if its root gives up while serving, the lifespan fails.
    """

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Mapping[str, Any]]:
        async with open_tree(spec, resources=resources) as tree:
            yield {"tree": tree, "resources": current_resources()}

    return lifespan
