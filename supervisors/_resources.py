"""Resources: async context managers opened by the host (or per scope) and handed to children.

A :class:`Resource` is a typed key: it names the resource and says how to open it. The host
opens the resources given to :func:`open_tree` / :func:`run` before the tree starts, in the
order given, and closes them after the tree has stopped, in reverse order. Children declare
what they use (:func:`uses` on an actor class, ``Annotated[T, resource]`` on a job function's
keyword-only parameter); a tree whose children use a resource that the host does not provide
is refused before anything starts, naming the child and the resource.
"""

from __future__ import annotations

import contextvars
import functools
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any, Generic, Protocol, TypeVar, final, overload, runtime_checkable

import attrs

from ._errors import SupervisionError
from ._spec import ChildSpec, DynamicSupervisor, Supervisor, TreeSpec

__all__ = [
    "DeclaresResources",
    "MissingResource",
    "Resource",
    "ResourceError",
    "Resources",
    "Uses",
    "check_resources",
    "current_resources",
    "open_resources",
    "required_by",
    "uses",
    "with_resources",
]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class ResourceError(SupervisionError):
    """A resource could not be opened, or is used where it is not available."""


class MissingResource(ResourceError):
    """A child uses a resource that its host does not provide (raised before anything starts)."""


def _resource_name(instance: Any, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"'name' must be a non-empty string (got {value!r})")


@final
@attrs.frozen(eq=False, repr=False)
class Resource(Generic[T]):
    """A typed key for a resource, and how to open it.

    ``Resource(name, open)`` where ``open()`` returns an async context manager whose entered
    value is the resource (``httpx.AsyncClient``, a connection pool, a function decorated with
    ``contextlib.asynccontextmanager``). The type parameter is the entered value's type, so
    ``db.get()`` and an attribute ``conn = uses(db)`` are typed by mypy.

    - ``scoped``: ``False`` (the default) makes a *host* resource: opened once by the host
      before the tree starts and shared by every child, across restarts. ``True`` makes a
      *scoped* resource: opened afresh for each job run that declares it (or each
      ``async with resource.scope()``), and closed when that run ends, with the run's exception
      (if any) passed to its ``__aexit__``, so a transaction can commit on success and roll
      back on an error, a timeout or a cancellation. A scoped resource is not given to the host.
    - ``requires``: resources that ``open`` itself uses (through their ``get()``); checked with
      the tree like a child's. A host resource's requirements must be listed before it.

    Resources compare by identity: two ``Resource`` objects with the same name are different
    keys. Declare each once, at module level.
    """

    name: str = attrs.field(validator=_resource_name)
    open: Callable[[], AbstractAsyncContextManager[T]] = attrs.field()
    scoped: bool = attrs.field(default=False, kw_only=True)
    requires: tuple[Resource[Any], ...] = attrs.field(default=(), kw_only=True, converter=tuple)

    @open.validator
    def _check_open(self, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not callable(value):
            raise TypeError(
                f"'open' of resource {self.name!r} must be a callable returning an async context "
                f"manager (got {value!r})"
            )

    def __repr__(self) -> str:
        return f"<Resource {self.name!r}{' (scoped)' if self.scoped else ''}>"

    def get(self) -> T:
        """The value of this resource for the calling task.

        Inside a :meth:`scope` (or a job run that declares a scoped resource) that scope's
        value; else the host's value, available in every task of a tree opened with it and in
        the body of ``open_tree``. Raises :class:`ResourceError` where it is not available.
        """
        resources = _current.get(None)
        if resources is None:
            raise ResourceError(
                f"resource {self.name!r} is not available here: no resources are open in this "
                "task; pass it to open_tree(..., resources=[...]) or run(..., resources=[...])"
            )
        return resources[self]

    @asynccontextmanager
    async def scope(self) -> AsyncIterator[T]:
        """``async with resource.scope() as value:`` open one instance for the block.

        The instance is what :meth:`get` returns in this task until the block ends; then it is
        closed, with the block's exception (if any). This is the per-message form of a scoped
        resource: use it in a handler to open, say, a transaction per message.
        """
        parent = _current.get(None)
        async with self.open() as value:
            token = _current.set(Resources({self: value}, parent))
            try:
                yield value
            finally:
                _current.reset(token)


@final
class Resources(Mapping[Resource[Any], Any]):
    """The resources open for a task: a read-only mapping from :class:`Resource` to its value.

    Handed out by :func:`current_resources` and :func:`open_resources`; no public constructor.
    ``resources[db]`` is typed like ``db.get()``.
    """

    __slots__ = ("_parent", "_values")

    def __init__(self, values: Mapping[Resource[Any], Any], parent: Resources | None = None) -> None:
        self._values = values  # open_resources fills it as resources open
        self._parent = parent

    def __repr__(self) -> str:
        return f"<Resources {[r.name for r in self]}>"

    def __getitem__(self, resource: Resource[T]) -> T:
        if resource in self._values:
            value: T = self._values[resource]
            return value
        if self._parent is not None and resource in self._parent:
            return self._parent[resource]
        if resource.scoped:
            raise ResourceError(
                f"resource {resource.name!r} is scoped: it exists only inside a job run that "
                f"declares it or an 'async with {resource.name}.scope()' block"
            )
        raise ResourceError(
            f"resource {resource.name!r} is not open here (open: {[r.name for r in self] or 'none'}); "
            "pass it to open_tree(..., resources=[...]) or run(..., resources=[...])"
        )

    def __contains__(self, resource: object) -> bool:
        return resource in self._values or (self._parent is not None and resource in self._parent)

    def __iter__(self) -> Iterator[Resource[Any]]:
        seen = dict.fromkeys(self._values)
        if self._parent is not None:
            seen.update(dict.fromkeys(self._parent))
        return iter(seen)

    def __len__(self) -> int:
        return sum(1 for _ in self)


_current: contextvars.ContextVar[Resources] = contextvars.ContextVar("supervisors_resources")


def current_resources() -> Resources:
    """The resources open for the calling task (an empty mapping when there are none).

    For code whose tasks do not descend from the tree, such as the request handlers of a web
    server started by someone else: take the mapping where the tree was opened (a lifespan)
    and hand it over.
    """
    return _current.get(Resources({}))


@asynccontextmanager
async def open_resources(resources: Sequence[Resource[Any]]) -> AsyncIterator[Resources]:
    """Open ``resources`` in order; close them in reverse order when the block exits.

    If one fails to open, those already opened are closed (in reverse order) and
    :class:`ResourceError` names the one that failed, chained to its error. Inside the block
    (and in tasks started from it) each resource's ``get()`` returns its value. Raises
    ``ValueError`` for a scoped resource, a resource listed twice, or a resource listed before
    one it requires. :func:`open_tree` calls this for you.
    """
    _check_host_list(resources)
    values: dict[Resource[Any], Any] = {}
    async with AsyncExitStack() as stack:
        handle = Resources(values)
        token = _current.set(handle)
        try:
            for resource in resources:
                try:
                    manager = resource.open()
                    values[resource] = await stack.enter_async_context(manager)
                except Exception as exc:
                    opened = [r.name for r in values]
                    raise ResourceError(
                        f"resource {resource.name!r} failed to open: {type(exc).__name__}: {exc}; "
                        + (f"closed the ones opened before it ({', '.join(reversed(opened))})" if opened
                           else "no other resource was open")
                    ) from exc
            yield handle
        finally:
            _current.reset(token)


def _check_host_list(resources: Sequence[Resource[Any]]) -> None:
    seen: set[Resource[Any]] = set()
    for resource in resources:
        if not isinstance(resource, Resource):
            raise TypeError(f"resources must be Resource objects (got {resource!r})")
        if resource.scoped:
            raise ValueError(
                f"resource {resource.name!r} is scoped (opened per job run or scope); the host "
                "opens only host resources: leave it out of resources=[...]"
            )
        if resource in seen:
            raise ValueError(f"resource {resource.name!r} is listed twice")
        for needed in resource.requires:
            if not needed.scoped and needed not in seen:
                raise ValueError(
                    f"resource {resource.name!r} requires {needed.name!r}, which must be listed "
                    "before it (resources open in the order given)"
                )
        seen.add(resource)


# -- declaring what a child uses --------------------------------------------------------------


@final
class Uses(Generic[T_co]):
    """A class attribute that reads a resource: made by :func:`uses`.

    On an instance it returns ``resource.get()`` (typed ``T``); on the class it returns itself.
    """

    __slots__ = ("resource",)

    def __init__(self, resource: Resource[T_co]) -> None:
        if not isinstance(resource, Resource):
            raise TypeError(f"uses() takes a Resource (got {resource!r})")
        self.resource: Resource[Any] = resource

    def __repr__(self) -> str:
        return f"uses({self.resource!r})"

    @overload
    def __get__(self, instance: None, owner: type) -> Uses[T_co]: ...
    @overload
    def __get__(self, instance: object, owner: type) -> T_co: ...
    def __get__(self, instance: object, owner: type) -> Any:
        if instance is None:
            return self
        return self.resource.get()


def uses(resource: Resource[T]) -> Uses[T]:
    """Declare, as a class attribute of an actor or background service, that it uses ``resource``.

    ::

        class Poller(BackgroundService):
            http = uses(http_client)          # self.http is an httpx.AsyncClient

    The tree that runs the class is checked before it starts: a host that does not provide
    ``resource`` is a :class:`MissingResource` error naming the child and the resource.
    """
    return Uses(resource)


@runtime_checkable
class DeclaresResources(Protocol):
    """A child factory that says which resources its actors use (see :func:`with_resources`)."""

    def required_resources(self) -> Iterable[Resource[Any]]:
        """The resources the actors built by this factory use."""
        ...


@final
@attrs.frozen
class _WithResources:
    factory: Callable[[], Any]
    resources: tuple[Resource[Any], ...]

    def __call__(self) -> Any:
        return self.factory()

    def required_resources(self) -> Iterable[Resource[Any]]:
        return self.resources + tuple(required_by(self.factory))


def with_resources(factory: Callable[[], Any], *resources: Resource[Any]) -> Callable[[], Any]:
    """Wrap a child factory so that the build-time check knows it uses ``resources``.

    For factories the check cannot see into (a lambda, a function) whose actors call
    ``resource.get()``: ``ChildSpec(name="poller", factory=with_resources(make_poller, http))``.
    """
    return _WithResources(factory, resources)


def required_by(factory: object) -> tuple[Resource[Any], ...]:
    """The resources a child factory declares: :class:`Uses` attributes of the class it builds
    (through ``functools.partial``), or what a :class:`DeclaresResources` factory says."""
    if isinstance(factory, type):
        return _declared_by_class(factory)
    if isinstance(factory, functools.partial):
        return required_by(factory.func)
    # getattr, not isinstance(DeclaresResources): a runtime protocol check costs microseconds
    # per child, and big trees have many children.
    declare = getattr(factory, "required_resources", None)
    if callable(declare):
        return tuple(declare())
    return ()


_by_class: weakref.WeakKeyDictionary[type, tuple[Resource[Any], ...]] = weakref.WeakKeyDictionary()


def _declared_by_class(cls: type) -> tuple[Resource[Any], ...]:
    cached = _by_class.get(cls)
    if cached is None:
        found: dict[Resource[Any], None] = {}
        for base in reversed(cls.__mro__):
            for value in vars(base).values():
                if isinstance(value, Uses):
                    found[value.resource] = None
        cached = _by_class[cls] = tuple(found)
    return cached


def _closure(resource: Resource[Any]) -> Iterator[Resource[Any]]:
    yield resource
    for needed in resource.requires:
        yield from _closure(needed)


def _children_of(spec: TreeSpec, path: str) -> Iterator[tuple[str, ChildSpec]]:
    if isinstance(spec, ChildSpec):
        yield path, spec
    elif isinstance(spec, Supervisor | DynamicSupervisor):
        for child in spec.children:
            yield from _children_of(child, f"{path}/{child.name}")


def check_resources(spec: TreeSpec, provided: Iterable[Resource[Any]], at: str | None = None) -> None:
    """Raise :class:`MissingResource` listing every child that uses a resource not in ``provided``.

    ``spec`` is a tree's root, or (with its path ``at``) a child added at run time.
    """
    if isinstance(spec, ChildSpec) and not required_by(spec.factory):
        return  # the common case of start_child: an actor that declares no resources
    provided = list(provided)
    available = set(provided)
    problems: list[str] = []
    for path, child in _children_of(spec, spec.name if at is None else at):
        for declared in required_by(child.factory):
            for resource in _closure(declared):
                if not resource.scoped and resource not in available:
                    via = "" if resource is declared else f" (required by {declared.name!r})"
                    problems.append(f"child {path!r} uses resource {resource.name!r}{via}")
    if problems:
        names = [r.name for r in provided]
        raise MissingResource(
            "the host does not provide resources that children use: "
            + "; ".join(dict.fromkeys(problems))
            + f". Provided: {names or 'none'}; add them to open_tree(..., resources=[...]) "
            "or run(..., resources=[...])"
        )
