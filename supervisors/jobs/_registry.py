"""The job registry: job functions by name, and the conversion of their arguments to JSON."""

from __future__ import annotations

import dataclasses
import inspect
import json
import reprlib
import typing
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, TypeVar, final

import attrs
import cattrs

from ._errors import JobArgumentsError, UnknownJobError
from ._model import JobSettings, RetryPolicy

F = TypeVar("F", bound=Callable[..., Any])

_NO_ARG: Any = object()
"""Marks a job function that takes no argument."""


def _queue_name(_inst: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not value or not isinstance(value, str):
        msg = f"{attribute.name!r} must be a non-empty string (got {value!r})"
        raise ValueError(msg)


@final
@attrs.frozen(kw_only=True)
class JobDefinition:
    """A registered job function and its options. Created by `JobRegistry.job`."""

    name: str
    fn: Callable[..., Awaitable[object] | object]
    queue: str = attrs.field(validator=_queue_name)
    """The queue its jobs go to unless ``queue=`` is given when enqueueing."""
    retry: RetryPolicy | None
    """``None`` means the `JobSystem`'s default policy."""
    timeout: float | None
    """The time limit of one attempt, in seconds (``math.inf``: none); ``None`` means the
    `JobSystem`'s ``timeout``."""
    unique: bool
    """Whether a second copy with equal arguments is refused while one is unfinished."""
    arg_type: Any
    """The annotated type of the function's argument, ``Any`` when unannotated."""
    takes_arg: bool
    is_async: bool


def _signature(fn: Callable[..., Any]) -> tuple[bool, Any]:
    params = [
        p
        for p in inspect.signature(fn).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if not params:
        return False, _NO_ARG
    if len(params) > 1 and any(p.default is p.empty for p in params[1:]):
        msg = (
            f"job function {fn.__qualname__} must take at most one argument "
            f"(got {len(params)}); bundle them in one attrs class"
        )
        raise TypeError(msg)
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # an unresolvable forward reference: treat as plain JSON
        hints = {}
    return True, hints.get(params[0].name, Any)


@final
class JobRegistry:
    """Job functions by name.

    A job function is an ``async def`` or a plain ``def`` (run in a worker thread) taking either
    no argument or one argument: an ``attrs`` class, any type ``cattrs`` can structure, or plain
    JSON when unannotated. Its return value is ignored; raising fails the attempt.

    ``converter`` is the ``cattrs`` converter used both ways; defaults to a fresh
    ``cattrs.Converter()``. Pass your own to add hooks (e.g. for ``datetime``).
    """

    def __init__(self, *, converter: cattrs.Converter | None = None) -> None:
        self._defs: dict[str, JobDefinition] = {}
        self.converter = converter if converter is not None else cattrs.Converter()

    def job(
        self,
        name: str | None = None,
        *,
        queue: str = "default",
        max_attempts: int | None = None,
        retry: RetryPolicy | None = None,
        unique: bool = False,
        timeout: float | None = None,
    ) -> Callable[[F], F]:
        """Decorator: register the function as the job ``name`` (defaults to its ``__name__``).

        ``queue`` defaults to ``"default"``. ``max_attempts`` overrides the attempts of ``retry``
        (or of the system's default policy when ``retry`` is ``None``). ``unique=True`` makes
        enqueueing a copy with equal arguments while one is unfinished return the existing job's
        id instead of adding a job. ``timeout`` limits one attempt, in seconds (``math.inf``:
        no limit); ``None`` (default) takes the `JobSystem`'s ``timeout``. An attempt that runs
        longer is cancelled and fails with ``TimeoutError`` (retried per the policy). Registering
        a name twice raises ``ValueError``.
        """

        def decorate(fn: F) -> F:
            self.register(
                fn, name=name, queue=queue, max_attempts=max_attempts, retry=retry, unique=unique,
                timeout=timeout,
            )  # fmt: skip
            return fn

        return decorate

    def register(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        queue: str = "default",
        max_attempts: int | None = None,
        retry: RetryPolicy | None = None,
        unique: bool = False,
        timeout: float | None = None,
    ) -> JobDefinition:
        """Register ``fn``; the non-decorator form of `job`, returning the definition."""
        job_name = name if name is not None else fn.__name__
        if not job_name:
            msg = "a job name must be a non-empty string"
            raise ValueError(msg)
        if job_name in self._defs:
            msg = f"job name {job_name!r} is already registered; choose another name"
            raise ValueError(msg)
        if timeout is not None and (
            not isinstance(timeout, int | float) or isinstance(timeout, bool) or not timeout > 0
        ):
            msg = f"'timeout' of job {job_name!r} must be a number of seconds > 0 or None (got {timeout!r})"
            raise (ValueError if isinstance(timeout, int | float) else TypeError)(msg)
        if max_attempts is not None:
            retry = attrs.evolve(retry or RetryPolicy(), max_attempts=max_attempts)
        takes_arg, arg_type = _signature(fn)
        definition = JobDefinition(
            name=job_name,
            fn=fn,
            queue=queue,
            retry=retry,
            timeout=timeout,
            unique=unique,
            arg_type=arg_type,
            takes_arg=takes_arg,
            is_async=inspect.iscoroutinefunction(fn),
        )
        self._defs[job_name] = definition
        return definition

    def __contains__(self, name: object) -> bool:
        return name in self._defs

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._defs))

    def __len__(self) -> int:
        return len(self._defs)

    def settings(self, default: RetryPolicy) -> list[JobSettings]:
        """Each definition's settings as a host records them in its store; ``default`` is the
        policy of jobs registered without one."""
        return [
            JobSettings(
                name=d.name,
                queue=d.queue,
                max_attempts=(d.retry or default).max_attempts,
                unique=d.unique,
            )
            for d in (self._defs[name] for name in sorted(self._defs))
        ]

    def get(self, name: str) -> JobDefinition:
        """The definition of ``name``; raises `UnknownJobError` listing the registered names."""
        try:
            return self._defs[name]
        except KeyError:
            raise UnknownJobError(name, self._defs) from None

    def encode(self, definition: JobDefinition, args: object) -> str:
        """Unstructure ``args`` for ``definition`` to JSON text (keys sorted).

        ``args`` may be an instance of the argument type or its unstructured (JSON) form. Raises
        `JobArgumentsError` when the arguments do not fit the function's argument type or are not
        JSON-serialisable: the check structures them, as the worker will.
        """
        if not definition.takes_arg:
            if args is not None:
                msg = f"job {definition.name!r} takes no arguments (got {args!r})"
                raise JobArgumentsError(msg)
            return "null"
        arg_type = definition.arg_type
        conv = self.converter
        try:
            if arg_type is Any:
                value = conv.unstructure(args)
            elif isinstance(arg_type, type) and isinstance(args, arg_type):
                value = conv.unstructure(args, unstructure_as=arg_type)
                conv.structure(value, arg_type)
            else:  # the unstructured form (e.g. a dict for an attrs class): check it structures
                value = conv.unstructure(conv.structure(args, arg_type), unstructure_as=arg_type)
            return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
        except Exception as exc:
            msg = f"arguments of job {definition.name!r} do not convert: {describe_error(exc)}"
            record = isinstance(arg_type, type) and (attrs.has(arg_type) or dataclasses.is_dataclass(arg_type))
            if record and not isinstance(args, Mapping):
                # Neither the class nor its JSON form: cattrs's own words would only confuse.
                msg += (
                    f"; it takes {arg_type.__qualname__} (or a mapping of its fields), got "
                    f"{type(args).__qualname__} {reprlib.repr(args)}"
                )
            raise JobArgumentsError(msg) from exc

    def decode(self, definition: JobDefinition, text: str) -> object:
        """Structure JSON text into the function's argument; raises `JobArgumentsError`."""
        if not definition.takes_arg:
            return None
        try:
            return self.converter.structure(json.loads(text), definition.arg_type)
        except Exception as exc:
            msg = f"arguments of job {definition.name!r} do not structure: {describe_error(exc)}"
            raise JobArgumentsError(msg) from exc


def describe_error(exc: BaseException) -> str:
    """One line naming every problem of a cattrs error, or ``Type: message`` otherwise."""
    if isinstance(exc, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(exc))
    return f"{type(exc).__name__}: {exc}"


def encode_plain(args: object, converter: cattrs.Converter | None = None) -> str:
    """Unstructure ``args`` without a registry (for `JobClient` without one)."""
    conv = converter if converter is not None else _DEFAULT_CONVERTER
    try:
        value = conv.unstructure(args)
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except Exception as exc:
        msg = f"job arguments do not convert to JSON: {describe_error(exc)}"
        raise JobArgumentsError(msg) from exc


_DEFAULT_CONVERTER = cattrs.Converter()
