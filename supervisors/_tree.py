"""open_tree: run a supervision tree inside an existing Trio program; the Tree handle."""

from __future__ import annotations

import traceback
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, final

import trio

from actors import ActorRef

from ._errors import ChildNotFound, InjectedFault, NotRunning
from ._events import Event, TreeStarted, TreeStopped, TreeStopping
from ._resources import Resource, check_resources, current_resources, open_resources
from ._runtime import DEFAULT_BLOCKED_SEND_WARNING, Runtime, current_tree_var, interrupt_in
from ._snapshot import ChildKind, ChildSnapshot, ChildState
from ._spec import DynamicSupervisor, Supervisor, TreeSpec
from ._stream import DEFAULT_EVENT_BUFFER, EventStream, open_stream
from ._supervisor import SupervisorCell, supervisor_cell

__all__ = ["SupervisorRef", "Tree", "current_tree", "open_tree"]


@final
class SupervisorRef:
    """A handle on a supervisor of a running tree, by path; valid across its restarts."""

    __slots__ = ("_path", "_runtime")

    def __init__(self, runtime: Runtime, path: str) -> None:
        self._runtime = runtime
        self._path = path

    def __repr__(self) -> str:
        return f"<SupervisorRef {self._path!r}>"

    @property
    def path(self) -> str:
        """The supervisor's path in its tree."""
        return self._path

    def _cell(self) -> SupervisorCell:
        cell = self._runtime.supervisors.get(self._path)
        if cell is None:
            raise NotRunning(
                f"supervisor {self._path!r} is not running now (it stopped, or is restarting); "
                "retry once it is running"
            )
        return cell

    async def start_child(self, spec: TreeSpec) -> ActorRef | SupervisorRef:
        """Add ``spec`` as the last child and start it; return its ref once it has started.

        Returns an :class:`~actors.ActorRef` for a :class:`ChildSpec` and a
        :class:`SupervisorRef` for a supervisor. Raises ``ValueError`` if a sibling has the same
        name, :class:`SupervisionError` when ``max_children`` is reached, and
        :class:`StartFailed` (the child is not added) if it fails to start, and
        :class:`MissingResource` (nothing is started) if it uses a resource the host does not
        provide.
        """
        cell = self._cell()
        tree = self._runtime.tree
        check_resources(spec, tree._resources if tree is not None else (), at=f"{self._path}/{spec.name}")
        slot = await cell.start_child(spec)
        if slot.ref is not None:
            return slot.ref
        return SupervisorRef(self._runtime, slot.path)

    async def terminate_child(self, name: str) -> None:
        """Stop the child ``name`` (within its shutdown grace) and remove it for good.

        Its mailbox is closed: later sends through old refs raise :class:`~actors.ActorStopped`.
        """
        await self._cell().terminate_child(name)

    def children(self) -> tuple[ChildSnapshot, ...]:
        """Snapshots of the children, in order."""
        return self._cell().snapshot_children()


@final
class Tree:
    """A running supervision tree, handed out by :func:`open_tree`; no public constructor."""

    def __init__(self, spec: Supervisor | DynamicSupervisor, runtime: Runtime) -> None:
        self._spec = spec
        self._runtime = runtime
        self._resources = current_resources()  # what open_tree opened around it, for start_child
        self._root: SupervisorCell | None = None
        self._started = trio.Event()
        self._stopping = trio.Event()
        self._stopped = trio.Event()
        self._started_at: float | None = None
        self.error: BaseException | None = None
        """Why the root failed (a :class:`SupervisorGaveUp`), once stopped; else None."""

    @property
    def name(self) -> str:
        """The root supervisor's name (the first segment of every path)."""
        return self._spec.name

    def _absolute(self, path: str) -> str:
        root = self._spec.name
        if path == root or path.startswith(root + "/"):
            return path
        return f"{root}/{path}"

    def ref(self, path: str) -> ActorRef:
        """The ref of the actor at ``path`` (relative to the root, e.g. ``"workers/mailer"``, or absolute).

        Works for every actor child in the tree's structure, started yet or not; raises
        :class:`ChildNotFound` if there is none at that path (never was, or it was removed: a
        temporary child that exited, a terminated child, a child of a stopped dynamic
        supervisor). A ref obtained earlier stays usable and raises ActorStopped instead.
        """
        ref = self._runtime.refs.get(self._absolute(path))
        if ref is None:
            known = sorted(self._runtime.refs)
            raise ChildNotFound(
                f"no actor at {path!r} in tree {self.name!r}; actors: {known[:20]}"
                + (" ..." if len(known) > 20 else "")
            )
        return ref

    def supervisor(self, path: str = "") -> SupervisorRef:
        """A handle on the supervisor at ``path`` (``""`` for the root)."""
        absolute = self._absolute(path) if path else self.name
        if absolute not in self._runtime.supervisors:
            raise ChildNotFound(
                f"no running supervisor at {path!r} in tree {self.name!r}; supervisors: "
                f"{sorted(self._runtime.supervisors)}"
            )
        return SupervisorRef(self._runtime, absolute)

    def snapshot(self) -> ChildSnapshot:
        """The whole tree now: state, restart count, last error and mailbox depth per child."""
        root = self._root
        running = root is not None and not root.finished
        if self._stopped.is_set():
            state = ChildState.STOPPED if self.error is None else ChildState.DOWN
        elif self._stopping.is_set():
            state = ChildState.STOPPING
        else:
            state = ChildState.RUNNING if running else ChildState.STARTING
        kind = ChildKind.SUPERVISOR if isinstance(self._spec, Supervisor) else ChildKind.DYNAMIC_SUPERVISOR
        return ChildSnapshot(
            path=self.name, name=self.name, kind=kind, state=state, restarts=0,
            last_error=None if self.error is None else repr(self.error), mailbox_depth=None,
            children=root.snapshot_children() if root is not None and running else (),
            strategy=str(self._spec.strategy.value),
            started_at=self._started_at if state in (ChildState.RUNNING, ChildState.STOPPING) else None,
            last_traceback=None if self.error is None else "".join(traceback.format_exception(self.error)),
        )

    def subscribe(
        self, max_buffer: float = DEFAULT_EVENT_BUFFER, *, kinds: type[Event] | tuple[type[Event], ...] = Event
    ) -> AbstractAsyncContextManager[EventStream]:
        """``async with tree.subscribe() as events: async for event in events: ...``.

        Yields every event (of the classes ``kinds``; default all) emitted after subscribing,
        in order. At most ``max_buffer`` events (default :data:`DEFAULT_EVENT_BUFFER`, 1024;
        ``math.inf`` for no bound) wait to be read: events that find the buffer full are
        dropped for this subscriber, never blocking the tree, and it receives one
        :class:`EventsDropped` with their count in their place. Subscribing only to kinds that
        are not the frequent ones (starting, started, stopping, stopped) does not make the
        supervisors build those.
        """
        return open_stream(self._runtime.bus, self.name, max_buffer, kinds)

    def add_listener(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback(event)`` synchronously for every later event; returns an unsubscribe function.

        Listeners run inside the supervisor's task: they must be quick and must not block.
        """
        return self._runtime.bus.subscribe(callback)

    # -- fault injection -------------------------------------------------------------------

    def _parent_and_slot(self, path: str) -> tuple[SupervisorCell, Any]:
        absolute = self._absolute(path)
        parent, _, name = absolute.rpartition("/")
        cell = self._runtime.supervisors.get(parent)
        if cell is None or not name:
            raise ChildNotFound(f"no running child at {path!r} in tree {self.name!r}")
        return cell, cell.child_slot(name)

    def inject_crash(self, path: str, error: Exception | None = None) -> None:
        """Crash the running child at ``path`` now, as if it had raised ``error``.

        For tests and chaos drills. An actor is cancelled at its next checkpoint (its
        ``on_stop`` does not run) and its supervisor handles the crash like any other. A
        supervisor fails as if it had given up: it stops its children in reverse order and
        crashes in its parent. ``error`` defaults to :class:`InjectedFault`. Raises
        :class:`ChildNotFound` or :class:`NotRunning` if there is no running child there.
        """
        cell, slot = self._parent_and_slot(path)
        cell.inject(slot, error if error is not None else InjectedFault(f"crash injected into {slot.path!r}"))

    def inject_exit(self, path: str) -> None:
        """Make the running actor at ``path`` exit normally after its current message (tests, drills)."""
        cell, slot = self._parent_and_slot(path)
        cell.inject(slot, None)

    # -- lifetime --------------------------------------------------------------------------

    @property
    def is_stopping(self) -> bool:
        """True once a stop was requested or the root failed."""
        return self._stopping.is_set()

    async def wait_started(self) -> None:
        """Return once every child has started (at once, inside ``open_tree``)."""
        await self._started.wait()

    async def wait_stopping(self) -> None:
        """Return once a stop was requested or the root failed."""
        await self._stopping.wait()

    async def wait_stopped(self) -> None:
        """Return once nothing of the tree runs any more."""
        await self._stopped.wait()

    def request_stop(self) -> None:
        """Ask the tree to stop gracefully (reverse start order, each child's grace); returns at once."""
        if not self._stopping.is_set():
            self._stopping.set()
            self._runtime.bus.emit(TreeStopping(path=self.name, time=trio.current_time()))
        if self._root is not None:
            self._root.request_stop(immediate=False)

    async def stop(self) -> None:
        """Stop the tree gracefully and wait until it has stopped."""
        self.request_stop()
        await self._stopped.wait()


def current_tree() -> Tree:
    """The tree the calling task belongs to (any actor or supervisor task of a running tree).

    Raises ``LookupError`` outside a tree.
    """
    try:
        return current_tree_var.get()
    except LookupError:
        raise LookupError("current_tree() was called outside a running supervision tree") from None


@asynccontextmanager
async def open_tree(
    spec: Supervisor | DynamicSupervisor,
    *,
    seed: int | None = None,
    listeners: Sequence[Callable[[Event], None]] = (),
    blocked_send_warning: float = DEFAULT_BLOCKED_SEND_WARNING,
    resources: Sequence[Resource[Any]] = (),
) -> AsyncIterator[Tree]:
    """Start the tree ``spec`` in the current Trio run; stop it when the block exits.

    Returns (enters) once every child has started. If the tree cannot start,
    :class:`StartFailed` is raised and the children that did start were stopped in reverse
    order. When the block exits, normally or with an exception, the tree is stopped
    gracefully (reverse start order, each child's shutdown grace). For an overall deadline on
    that stop, end the block with ``with trio.move_on_after(t): await tree.stop()`` (or use
    :func:`serve`); a cancel scope around the whole block cancels the tree at once when it
    fires, without graces or ``on_stop``. If the root supervisor
    gives up while the block runs, the block is cancelled and :class:`SupervisorGaveUp` is
    raised from the ``async with``. ``seed`` seeds the backoff jitter (for reproducible tests).
    ``listeners`` are added (as :meth:`Tree.add_listener`) before anything starts, so they see
    every event of the tree, its start included. A send (``cast``, or ``call`` waiting for
    room) that has waited ``blocked_send_warning`` seconds (default 5.0; ``math.inf`` turns it
    off) for room in a full mailbox is reported once, as a :class:`MailboxBlocked` warning that
    names the sender, the target, both depths and any cycle of waiting actors (a deadlock).

    ``resources`` (:class:`Resource`) are opened before the tree starts, in the order given,
    and closed after it has stopped, in reverse order; before anything opens, the tree is
    checked for children that use resources neither given nor already open in the calling
    task (:class:`MissingResource`). A resource that fails to open raises
    :class:`ResourceError` naming it (the tree does not start).
    """
    if not blocked_send_warning > 0:
        raise ValueError(f"'blocked_send_warning' must be > 0 seconds (got {blocked_send_warning})")
    if not isinstance(spec, Supervisor | DynamicSupervisor):
        raise TypeError(
            f"open_tree takes a Supervisor or DynamicSupervisor as the root (got {spec!r}); "
            "wrap a ChildSpec in Supervisor(children=[...])"
        )
    check_resources(spec, [*current_resources(), *resources])
    if resources:
        async with open_resources(resources), open_tree(
            spec, seed=seed, listeners=listeners, blocked_send_warning=blocked_send_warning
        ) as tree:
            yield tree
        return
    body_error: BaseException | None = None
    start_error: Exception | None = None
    token = None
    try:
        async with trio.open_nursery() as system:
            runtime = Runtime(system.start_soon, seed, blocked_send_warning=blocked_send_warning)
            tree = Tree(spec, runtime)
            runtime.tree = tree
            for listener in listeners:
                runtime.bus.subscribe(listener)
            token = current_tree_var.set(tree)
            start_error = await system.start(_run_root, tree, runtime, system.cancel_scope)
            if start_error is None:
                try:
                    yield tree
                except trio.Cancelled:
                    raise
                except BaseException as exc:
                    body_error = exc
                await tree.stop()
            system.cancel_scope.cancel()
    finally:
        if token is not None:
            current_tree_var.reset(token)
    if runtime.interrupted is not None:
        raise runtime.interrupted[1]  # Ctrl-C in a handler: the host's interrupt, unwrapped
    if start_error is not None:
        raise start_error
    if tree.error is not None:
        raise tree.error
    if body_error is not None:
        raise body_error


async def _run_root(
    tree: Tree, runtime: Runtime, system: trio.CancelScope, task_status: trio.TaskStatus[Exception | None]
) -> None:
    cell = supervisor_cell(tree._spec, tree.name, runtime)
    tree._root = cell
    started = False

    class _Status:
        def started(self, value: object = None) -> None:
            nonlocal started
            started = True
            tree._started_at = trio.current_time()
            tree._started.set()
            runtime.bus.emit(TreeStarted(path=tree.name, time=trio.current_time()))
            task_status.started(None)

    error: Exception | None = None
    cancelled = False
    try:
        await cell.run(_Status())
    except Exception as exc:
        error = exc
    except BaseException as exc:  # cancelled from outside (or interrupted): the stop was not graceful
        cancelled = True
        interrupt = interrupt_in(exc)
        if interrupt is None:
            raise
        runtime.interrupt(tree.name, interrupt)  # raised in a supervisor's own code: open_tree re-raises it
    finally:
        runtime.stopped = True
        runtime.close_under(tree.name, "its tree has stopped", forget=False)
        if started:
            # An interrupt raised by a child (Ctrl-C in a handler) stops the tree gracefully, but
            # the tree did not stop cleanly: it ends with the interrupt, which open_tree re-raises.
            failure = error if runtime.interrupted is None else runtime.interrupted[1]
            tree.error = failure
            tree._stopping.set()
            runtime.bus.emit(TreeStopped(path=tree.name, time=trio.current_time(), error=failure, cancelled=cancelled))
            tree._stopped.set()
    if not started:
        if error is None and runtime.interrupted is not None:
            error = RuntimeError(f"tree {tree.name!r} was interrupted while starting")
        task_status.started(error)
    elif error is not None or runtime.interrupted is not None:
        system.cancel()  # the root gave up or was interrupted: cancel the body; open_tree raises
