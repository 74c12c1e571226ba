"""A Griffe extension for the docs site: Sphinx roles in docstrings become Markdown.

Our docstrings cross-reference with Sphinx roles (``:class:`Tree```, ``:meth:`Tree.snapshot```).
mkdocstrings renders Markdown, so each role becomes inline code, linked with an autorefs link
when the target is a public object of the package (resolved from the docstring's own module, as
Sphinx does); anything else stays plain code, so the strict build never meets a broken link.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|data|mod|exc|obj):`~?([^`]+)`")
LITERAL_BLOCK = re.compile(r"::\n\n")


class SphinxRoles(griffe.Extension):
    """Rewrite Sphinx roles of every docstring once the package is loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        for obj in _walk(pkg):
            if obj.docstring is not None:
                value = ROLE.sub(lambda m, o=obj: _link(m[1], o), obj.docstring.value)
                obj.docstring.value = LITERAL_BLOCK.sub(":\n\n", value)  # reST "::" before an indented block


def _walk(obj: griffe.Object) -> list[griffe.Object]:
    found = [obj]
    for member in obj.members.values():
        if not member.is_alias and member.parent is obj:
            found.extend(_walk(member))  # type: ignore[arg-type]
    return found


def _link(target: str, where: griffe.Object) -> str:
    """``target`` as inline code, linked to its object when one of the public packages has it."""
    text = target.strip()
    for candidate in _candidates(text.lstrip("@").removesuffix("()"), where):
        if _public(candidate, where):
            package, name = candidate.split(".")[:2]  # a member links to its class's entry
            return f"[`{text}`][{package}.{name}]"
    return f"`{text}`"


def _candidates(target: str, where: griffe.Object) -> list[str]:
    """Full paths the target may mean: itself, then relative to the enclosing class and packages."""
    scopes = []
    scope: griffe.Object | None = where
    while scope is not None:
        if scope.is_class:
            scopes.append(f"{where.package.name}.{scope.name}")  # the class as its package exports it
        if scope.is_class or scope.is_module:
            scopes.append(scope.path)
        scope = scope.parent
    return [target, *(f"{s}.{target}" for s in scopes)]


def _public(path: str, where: griffe.Object) -> bool:
    """Whether ``path`` is an object exported by a public package (one rendered in the reference)."""
    root = where.package
    package_name, _, rest = path.partition(".")
    if package_name != root.name or not rest:
        return False
    head = rest.partition(".")[0]
    exported = {str(name) for name in root.exports or ()}
    if head not in exported:
        return False
    try:
        root[rest]
    except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return False
    return True
