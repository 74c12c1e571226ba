"""Typed settings: an attrs class structured with cattrs from environment variables and a TOML file.

Compare .NET's ``IOptions<T>`` bound from ``appsettings.json`` and environment variables: the
same layering (the environment overrides the file), the same ``__`` for nested sections, and
validation at start-up that lists every problem at once instead of failing at first use.
"""

from __future__ import annotations

import copy
import os
import pathlib
import tomllib
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar, final

import attrs
import cattrs
from cattrs.errors import ClassValidationError, IterableValidationError

from ._errors import ConfigurationError

__all__ = ["Secret", "SettingsError", "load_settings", "masked_settings"]

T = TypeVar("T")
S = TypeVar("S")

MASK = "***"

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_SEQUENCES = (list, tuple, set, frozenset)


@final
class Secret(Generic[T]):
    """A value that is never shown: its ``repr`` and ``str`` are ``'***'``.

    Annotate a settings field ``Secret[str]`` (or ``Secret[int]`` ...): :func:`load_settings`
    structures the inner type and wraps it, and the settings' ``repr``, logs and
    :func:`masked_settings` show ``'***'``. Read the value with :meth:`reveal` where it is used.
    Two secrets are equal when their values are.
    """

    __slots__ = ("_value",)

    def __init__(self, value: T) -> None:
        self._value = value

    def reveal(self) -> T:
        """The secret value. Pass it on; do not log it."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and bool(self._value == other._value)

    def __hash__(self) -> int:
        return hash(self._value)


class SettingsError(ValueError, ConfigurationError):
    """Settings could not be loaded; ``problems`` lists every one, each naming its source.

    A `ConfigurationError`: raised while a child starts, it is logged without a traceback.

    The message has one line per problem, such as
    ``environment variable APP_PORT: expected int (got 'eighty')`` or
    ``key 'smtp.host' in app.toml: required, but not set``.
    """

    def __init__(self, settings: str, problems: list[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"invalid settings {settings} ({count}):\n" + "\n".join(f"  - {p}" for p in problems))


def _is_secret(tp: Any) -> bool:
    return tp is Secret or typing.get_origin(tp) is Secret


def _structure_bool(value: object, _: type) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"expected a boolean: true/false, 1/0, yes/no or on/off (got {value!r})")


def _structure_int(value: object, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"expected an integer (got {value!r})")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"expected an integer (got {value!r})") from None


def _structure_float(value: object, _: type) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"expected a number (got {value!r})")
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"expected a number (got {value!r})") from None


def _structure_str(value: object, _: type) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string (got {value!r})")
    return value


def _structure_path(value: object, _: type) -> pathlib.Path:
    return value if isinstance(value, pathlib.Path) else pathlib.Path(_structure_str(value, str))


def _converter() -> cattrs.Converter:
    converter = cattrs.Converter(detailed_validation=True)
    converter.register_structure_hook(bool, _structure_bool)
    converter.register_structure_hook(int, _structure_int)
    converter.register_structure_hook(float, _structure_float)
    converter.register_structure_hook(str, _structure_str)
    converter.register_structure_hook(pathlib.Path, _structure_path)
    converter.register_unstructure_hook(pathlib.Path, str)

    def secret_hook(tp: Any) -> Callable[[object, Any], Secret[Any]]:
        args = typing.get_args(tp)
        inner = args[0] if args else str

        def structure(value: object, _: Any) -> Secret[Any]:
            if isinstance(value, Secret):  # a default filled in by _fill_defaults
                return value
            return Secret(converter.structure(value, inner))

        return structure

    converter.register_structure_hook_factory(_is_secret, secret_hook)
    converter.register_unstructure_hook_func(lambda tp: _is_secret(tp), lambda _: MASK)
    return converter


_CONVERTER = _converter()


@attrs.frozen
class _Field:
    path: tuple[str, ...]
    type: Any


def _fields(cls: type, path: tuple[str, ...] = ()) -> Iterator[_Field]:
    """Every leaf field of the attrs class ``cls`` (nested attrs classes flattened), with its type."""
    for field in attrs.fields(attrs.resolve_types(cls)):
        if attrs.has(field.type):
            yield from _fields(field.type, (*path, field.name))
        else:
            yield _Field((*path, field.name), field.type)


def _env_name(prefix: str, path: tuple[str, ...]) -> str:
    return prefix + "__".join(part.upper() for part in path)


def _set(data: dict[str, Any], path: tuple[str, ...], value: object) -> None:
    for part in path[:-1]:
        node = data.get(part)
        if not isinstance(node, dict):
            node = data[part] = {}
        data = node
    data[path[-1]] = value


def _get(data: Mapping[str, Any], path: tuple[str, ...]) -> object:
    node: Any = data
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


_MISSING = object()


def _from_env(value: str, tp: Any) -> object:
    """A sequence field reads a comma-separated variable; every other type structures from the string."""
    origin = typing.get_origin(tp) or tp
    if origin in _SEQUENCES:
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _read_toml(path: pathlib.Path, section: str | None) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except FileNotFoundError:
        raise SettingsError(f"from {str(path)!r}", [f"settings file {str(path)!r} does not exist"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"from {str(path)!r}", [f"settings file {str(path)!r} is not valid TOML: {exc}"]) from exc
    for part in section.split(".") if section else ():
        inner = data.get(part)
        if not isinstance(inner, dict):
            raise SettingsError(
                f"from {str(path)!r}", [f"settings file {str(path)!r} has no table [{section}]"]
            )
        data = inner
    return data


def _fill_defaults(data: dict[str, Any], cls: type) -> None:
    """Where a nested table is given in part, take its other fields from the field's default."""
    for field in attrs.fields(attrs.resolve_types(cls)):
        given = data.get(field.name)
        if not (attrs.has(field.type) and isinstance(given, dict)):
            continue
        default = field.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            default = default.factory(*([None] if default.takes_self else []))
        if attrs.has(type(default)):
            for inner in attrs.fields(type(default)):
                if inner.name not in given:
                    value = getattr(default, inner.name)
                    given[inner.name] = (
                        attrs.asdict(value, retain_collection_types=True) if attrs.has(type(value)) else value
                    )
        _fill_defaults(given, field.type)


def _problems(exc: BaseException, path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if isinstance(exc, ClassValidationError | IterableValidationError):
        with_notes, without = exc.group_exceptions()
        for sub, note in with_notes:
            name = getattr(note, "name", None)
            step: str | int = name if isinstance(name, str) else int(getattr(note, "index", -1))
            yield from _problems(sub, (*path, step))
        for sub in without:
            yield from _problems(sub, path)
    elif isinstance(exc, KeyError):
        yield path, "required, but not set"
    else:
        yield path, str(exc) or type(exc).__name__


def _validate(instance: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Run every attrs validator of ``instance`` (nested ones too), yielding each failure."""
    for field in attrs.fields(type(instance)):
        value = getattr(instance, field.name)
        if field.validator is not None:
            try:
                field.validator(instance, field, value)
            except (ValueError, TypeError) as exc:
                # attrs' own validators raise with (message, attribute, ...) as args
                yield (*path, field.name), exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
        if attrs.has(type(value)):
            yield from _validate(value, (*path, field.name))


def load_settings(
    cls: type[S],
    *,
    env_prefix: str | None = None,
    toml: str | os.PathLike[str] | None = None,
    section: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> S:
    """Build the attrs class ``cls`` from a TOML file and environment variables; validate it.

    - ``toml``: a TOML file (read with :mod:`tomllib`) whose keys are the field names; a
      nested attrs class is a table. ``section`` (e.g. ``"app"`` or ``"services.mailer"``)
      reads that table instead of the whole file. Default ``None``: no file.
    - ``env_prefix``: read the variable ``<prefix><FIELD>`` for every field (upper-cased; a
      nested field is ``<prefix><OUTER>__<INNER>``, as in .NET). A variable overrides the
      file. A list field reads a comma-separated value; a bool reads true/false, 1/0,
      yes/no or on/off. Default ``None``: no variables. ``environ`` defaults to ``os.environ``.
    - Fields with defaults may be left out; the others are required.

    Strings are converted to each field's type with ``cattrs``, then every attrs validator
    runs. All problems are collected and raised together as one :class:`SettingsError`, each
    naming the variable or the file's key it came from (or both, for a missing field). Fields
    typed :class:`Secret` are masked in the settings' ``repr`` and in :func:`masked_settings`.
    """
    if not attrs.has(cls):
        raise TypeError(f"load_settings takes an attrs class (got {cls!r})")
    file = pathlib.Path(toml) if toml is not None else None
    from_file = _read_toml(file, section) if file is not None else {}
    env = os.environ if environ is None else environ
    data: dict[str, Any] = copy.deepcopy(from_file)
    origin: dict[tuple[str, ...], str] = {}
    where = f"{str(file)!r}" if file is not None else ""
    table = f"{section}." if section else ""
    fields = list(_fields(cls))
    for field in fields:
        if _get(from_file, field.path) is not _MISSING:
            origin[field.path] = f"key '{table}{'.'.join(field.path)}' in {where}"
        if env_prefix is not None:
            name = _env_name(env_prefix, field.path)
            if name in env:
                _set(data, field.path, _from_env(env[name], field.type))
                origin[field.path] = f"environment variable {name}"

    def source(path: tuple[str | int, ...]) -> str:
        names = tuple(p for p in path if isinstance(p, str))
        for length in range(len(names), 0, -1):
            label = origin.get(names[:length])
            if label is not None:
                index = "".join(f"[{p}]" for p in path if isinstance(p, int))
                return label + (f" item {index}" if index else "")
        ways = []
        if env_prefix is not None:
            ways.append(f"environment variable {_env_name(env_prefix, names)}")
        if file is not None:
            ways.append(f"key '{table}{'.'.join(names)}' in {where}")
        return " or ".join(ways) or f"field {'.'.join(names)!r}"

    _fill_defaults(data, cls)
    label = cls.__qualname__
    with attrs.validators.disabled():
        try:
            settings = typing.cast(S, _CONVERTER.structure(data, cls))
        except (ClassValidationError, IterableValidationError) as exc:
            raise SettingsError(label, [f"{source(path)}: {message}" for path, message in _problems(exc, ())]) from None
    problems = [f"{source(path)}: {message}" for path, message in _validate(settings, ())]
    if problems:
        raise SettingsError(label, problems)
    return settings


def masked_settings(settings: object) -> dict[str, Any]:
    """The settings as plain data for display (a config page, a log line): secrets are ``'***'``."""
    result = _CONVERTER.unstructure(settings)
    if not isinstance(result, dict):
        raise TypeError(f"masked_settings takes an attrs instance (got {settings!r})")
    return result
