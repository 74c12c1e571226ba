"""The resources a job function declares, and opening them around one run.

A job function declares a resource with a keyword-only parameter annotated
``Annotated[T, resource]``; the runner passes ``resource.get()`` for a host resource and a fresh
instance for a scoped one, opened for the run and closed when it ends (with the run's exception).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import typing
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from types import MappingProxyType
from typing import Any, final

from supervisors import Resource

from ._registry import JobRegistry


@functools.cache
def declared_resources(fn: Callable[..., Any]) -> Mapping[str, Resource[Any]]:
    """Keyword-only parameter name → the `Resource` in its ``Annotated[...]`` annotation."""
    params = inspect.signature(fn).parameters.values()
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception as exc:
        if any(p.kind is p.KEYWORD_ONLY and p.default is p.empty for p in params):
            msg = (
                f"cannot resolve the annotations of job function {fn.__qualname__} ({exc}), so "
                "its keyword-only resources are unknown; define the resources it names at module "
                "level (or leave out 'from __future__ import annotations' where they are local)"
            )
            raise TypeError(msg) from exc
        return {}
    found: dict[str, Resource[Any]] = {}
    for param in params:
        if param.kind is not param.KEYWORD_ONLY:
            continue
        hint = hints.get(param.name)
        if typing.get_origin(hint) is typing.Annotated:
            for meta in hint.__metadata__:  # type: ignore[union-attr]
                if isinstance(meta, Resource):
                    found[param.name] = meta
    return found


_NO_RESOURCES: AbstractAsyncContextManager[Mapping[str, Any]] = contextlib.nullcontext(MappingProxyType({}))
"""Reusable: a job function that declares no resource costs no context manager of its own."""


def job_resources(fn: Callable[..., Any]) -> AbstractAsyncContextManager[Mapping[str, Any]]:
    """``async with job_resources(fn) as kwargs:`` the keyword arguments for one run of ``fn``.

    Scoped resources open in the order of the parameters and close in reverse order when the
    block ends, each seeing the block's exception (an error, a timeout, a cancellation), so a
    transaction commits only when the job succeeded.
    """
    if not declared_resources(fn):
        return _NO_RESOURCES
    return _open_job_resources(declared_resources(fn))


@asynccontextmanager
async def _open_job_resources(declared: Mapping[str, Resource[Any]]) -> AsyncIterator[Mapping[str, Any]]:
    async with AsyncExitStack() as stack:
        kwargs: dict[str, Any] = {}
        for name, resource in declared.items():
            if resource.scoped:
                kwargs[name] = await stack.enter_async_context(resource.scope())
            else:
                kwargs[name] = resource.get()
        yield kwargs


@final
class RegistryResources:
    """A child factory wrapper that declares the host resources the registry's jobs use.

    Implements `supervisors.DeclaresResources`, so the tree that runs the job system is checked
    for them before it starts.
    """

    def __init__(self, factory: Callable[[], Any], registry: JobRegistry) -> None:
        self._factory = factory
        self._registry = registry

    def __call__(self) -> Any:
        return self._factory()

    def required_resources(self) -> Iterable[Resource[Any]]:
        for name in self._registry:
            yield from declared_resources(self._registry.get(name).fn).values()
