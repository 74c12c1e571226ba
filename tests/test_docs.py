"""The documentation: every public name documented, tutorial examples run and match the page."""

from __future__ import annotations

import ast
import enum
import inspect
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import actors
import actors.contract
import supervisors

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"
TUTORIAL = DOCS / "tutorial.md"
REFERENCE = DOCS / "reference.md"
TUTORIAL_EXAMPLES = sorted(EXAMPLES.glob("tutorial_*.py"))

PUBLIC = [(module, name) for module in (actors, actors.contract, supervisors) for name in module.__all__]
PUBLIC_IDS = [f"{module.__name__}.{name}" for module, name in PUBLIC]

# Docstrings that state something the code does not do. Each entry fails until the phrase is
# reworded (then delete the entry): (dotted name, misleading phrase, what the code does).


def resolve(dotted: str) -> Any:
    module_name, _, rest = dotted.partition(".")
    obj: Any = {"actors": actors, "supervisors": supervisors}[module_name]
    for part in rest.split("."):
        obj = inspect.getattr_static(obj, part) if isinstance(obj, type) else getattr(obj, part)
    return obj


def own_docstring(obj: Any) -> str:
    """The object's own docstring (not one inherited from a base class), stripped."""
    if isinstance(obj, type):
        doc = obj.__dict__.get("__doc__")
    elif isinstance(obj, property):
        doc = obj.fget.__doc__ if obj.fget is not None else None
    elif isinstance(obj, classmethod | staticmethod):
        doc = obj.__func__.__doc__
    else:
        doc = getattr(obj, "__doc__", None)
    return (doc or "").strip()


def is_constant(obj: Any) -> bool:
    return not isinstance(obj, type) and not callable(obj)


def reference_text() -> str:
    return REFERENCE.read_text(encoding="utf-8")


def public_members() -> list[tuple[str, str, Any]]:
    """(class id, member name, member) for the public methods and properties of public classes."""
    members = []
    for module, name in PUBLIC:
        cls = getattr(module, name)
        if not isinstance(cls, type) or issubclass(cls, enum.Enum | BaseException):
            continue
        for member_name, member in vars(cls).items():
            if member_name.startswith("_"):
                continue
            if inspect.isfunction(member) or isinstance(member, property | classmethod | staticmethod):
                members.append((f"{module.__name__}.{name}", member_name, member))
    return members


MEMBERS = public_members()


@pytest.mark.parametrize(("module", "name"), PUBLIC, ids=PUBLIC_IDS)
def test_public_name_has_a_docstring(module: Any, name: str) -> None:
    """Classes, enums and functions carry their own docstring; constants are described in the reference."""
    obj = getattr(module, name)
    if is_constant(obj):
        assert re.search(rf"`[^`\n]*\b{name}\b[^`\n]*`", reference_text()), f"{name} is not described"
    else:
        assert own_docstring(obj), f"{module.__name__}.{name} has no docstring of its own"


@pytest.mark.parametrize(("module", "name"), PUBLIC, ids=PUBLIC_IDS)
def test_public_name_has_a_heading_in_the_reference(module: Any, name: str) -> None:
    """Every exported name is the subject of a heading of docs/reference.md."""
    heading = re.compile(rf"^#+ .*`[^`\n]*\b{name}\b[^`\n]*`", re.MULTILINE)
    assert heading.search(reference_text()), f"docs/reference.md has no heading for {module.__name__}.{name}"


@pytest.mark.parametrize(("owner", "name", "member"), MEMBERS, ids=[f"{owner}.{name}" for owner, name, _ in MEMBERS])
def test_public_method_and_property_has_a_docstring(owner: str, name: str, member: Any) -> None:
    """Public methods and properties of public classes carry a docstring and appear in the reference."""
    assert own_docstring(member), f"{owner}.{name} has no docstring"
    assert re.search(rf"\b{name}\b", reference_text()), f"{owner}.{name} is not in docs/reference.md"


def test_tutorial_has_examples() -> None:
    """The tutorial's steps exist as runnable files in examples/."""
    assert len(TUTORIAL_EXAMPLES) >= 3


@pytest.mark.slow
@pytest.mark.parametrize("path", TUTORIAL_EXAMPLES, ids=[p.name for p in TUTORIAL_EXAMPLES])
def test_tutorial_example_runs_and_exits_0(path: Path) -> None:
    """Each tutorial example runs (a test module: under pytest), stops by itself within 30 s, exits 0."""
    is_test_module = re.search(r"^(async )?def test_", path.read_text(encoding="utf-8"), re.MULTILINE)
    command = ["-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)] if is_test_module else [str(path)]
    proc = subprocess.run([sys.executable, *command], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def quoted_blocks(markdown: str) -> list[tuple[str | None, str]]:
    """(quoted file or None, code) for every ```python block, in page order.

    A block quoted from a file is preceded by a line ``<!-- example: examples/NAME.py -->``.
    """
    fence = re.compile(r"(?:^<!-- example: (\S+) -->\n)?^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)
    return [(match[1], match[2]) for match in fence.finditer(markdown)]


def test_every_python_block_of_the_tutorial_is_quoted_from_an_example() -> None:
    """The tutorial shows no Python that is not in a runnable example file."""
    blocks = quoted_blocks(TUTORIAL.read_text(encoding="utf-8"))
    assert blocks
    unquoted = [code.splitlines()[0] for source, code in blocks if source is None]
    assert not unquoted, f"python blocks without an <!-- example: ... --> line: {unquoted}"
    sources = {source for source, _ in blocks}
    assert sources == {f"examples/{p.name}" for p in TUTORIAL_EXAMPLES}


@pytest.mark.parametrize("path", TUTORIAL_EXAMPLES, ids=[p.name for p in TUTORIAL_EXAMPLES])
def test_tutorial_quotes_the_example_file_verbatim_and_whole(path: Path) -> None:
    """The blocks quoting a file, in page order, are the whole file (only blank lines between them)."""
    text = path.read_text(encoding="utf-8")
    source = f"examples/{path.name}"
    blocks = [code for quoted, code in quoted_blocks(TUTORIAL.read_text(encoding="utf-8")) if quoted == source]
    assert blocks, f"{source} is not quoted in docs/tutorial.md"
    position = 0
    for code in blocks:
        found = text.find(code, position)
        assert found >= 0, f"this block is not in {source} (after the previous one):\n{code}"
        gap = text[position:found]
        assert not gap.strip(), f"docs/tutorial.md leaves out part of {source}:\n{gap}"
        position = found + len(code)
    assert not text[position:].strip(), f"docs/tutorial.md leaves out the end of {source}:\n{text[position:]}"


@pytest.mark.parametrize("page", ["index.md", "tutorial.md", "howto.md", "reference.md", "migrating.md"])
def test_python_blocks_of_the_docs_are_valid_python(page: str) -> None:
    """Every ```python block of our pages parses."""
    for _, code in quoted_blocks((DOCS / page).read_text(encoding="utf-8")):
        ast.parse(code)


@pytest.mark.parametrize(
    ("module", "page"),
    [
        ("supervisors.testing", "testing.md"),
        ("supervisors.jobs", "jobs.md"),
        ("supervisors.web", "reference.md"),
        ("supervisors.cli", "cli.md"),
    ],
)
def test_every_public_name_of_the_wings_is_documented_on_its_page(module: str, page: str) -> None:
    """Each name in the __all__ of supervisors.testing / jobs / web / cli appears on its docs page."""
    import importlib

    names = importlib.import_module(module).__all__
    text = (Path(__file__).parent.parent / "docs" / page).read_text(encoding="utf-8")
    missing = [name for name in names if f"`{name}" not in text]
    assert not missing, f"docs/{page} does not mention {missing}"


ON_STOP_BOUND = (
    "After an exit of the actor's own (a crash, stop(), or execute() returning), on_stop runs "
    "before the supervisor learns of the exit, bounded by the child's shutdown grace counted "
    "from the start of on_stop: if it has not finished by then, it is cancelled, a warning is "
    "logged, and the supervisor handles the exit (a restart goes ahead)."
)


def plain(text: str) -> str:
    """Text without code markup, whitespace collapsed: to compare a rule across pages and docstrings."""
    return " ".join(text.replace("`", "").split())


def test_the_on_stop_bound_after_an_exit_is_stated_alike_in_code_reference_and_semantics() -> None:
    """Actor.on_stop, the reference and the semantics page state the same bound (and no 'no limit')."""
    texts = {
        "Actor.on_stop": actors.Actor.on_stop.__doc__ or "",
        "docs/reference.md": reference_text(),
        "docs/semantics.md": (DOCS / "semantics.md").read_text(encoding="utf-8"),
    }
    for where, text in texts.items():
        assert ON_STOP_BOUND in plain(text), f"{where} does not state the on_stop bound after an exit"
        assert "without a time limit" not in text, f"{where} says on_stop runs without a time limit"
    assert "Differs from OTP:** OTP lets terminate/2 run" in plain(texts["docs/semantics.md"])


MIGRATING = DOCS / "migrating.md"


@pytest.mark.slow
def test_python_blocks_of_the_migration_guide_run_as_one_program(tmp_path: Path) -> None:
    """docs/migrating.md's ```python blocks, in page order, are a program that runs a job and exits 0."""
    blocks = [code for _, code in quoted_blocks(MIGRATING.read_text(encoding="utf-8"))]
    assert len(blocks) >= 8
    script = tmp_path / "migrating_guide.py"
    script.write_text("\n\n".join(blocks), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "job 1 send_welcome: succeeded; sent: ['Welcome! -> ada@example.com']" in proc.stdout
    assert "jobs by state: {'succeeded': 1}" in proc.stdout
    assert "Heartbeat at:" in proc.stderr


def test_migration_guide_maps_every_concept_of_the_seed() -> None:
    """Every ASP.NET Core / Hangfire name the guide promises has a row in its table."""
    text = MIGRATING.read_text(encoding="utf-8")
    table = "\n".join(line for line in text.splitlines() if line.startswith("| `"))
    concepts = [
        "IHostedService.StartAsync", "IHostedService.StopAsync", "BackgroundService.ExecuteAsync", "stoppingToken",
        "AddHostedService", "HostOptions.ShutdownTimeout", "BackgroundServiceExceptionBehavior", "AddSingleton",
        "AddScoped", "IServiceScopeFactory.CreateScope()", "IOptions<T>", "RecurringJob.AddOrUpdate",
        "Cron.Minutely", "BackgroundJob.Enqueue", "BackgroundJob.Schedule", "ContinueJobWith", "[AutomaticRetry",
        "[DisableConcurrentExecution", "/hangfire",
    ]
    missing = [concept for concept in concepts if concept not in table]
    assert not missing, f"docs/migrating.md's table has no row for {missing}"


def test_deploy_page_states_the_exit_codes_and_a_stop_timeout_longer_than_the_hosts() -> None:
    """docs/deploy.md's exit-code table matches EXIT_*; its unit's TimeoutStopSec exceeds run's default deadline."""
    text = (DOCS / "deploy.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| (\d) \| `(EXIT_\w+)` \|", text, re.MULTILINE))
    assert {name: int(code) for code, name in rows.items()} == {
        name: getattr(supervisors, name) for name in ("EXIT_OK", "EXIT_FAILED", "EXIT_FORCED")
    }
    timeout = int(re.search(r"^TimeoutStopSec=(\d+)$", text, re.MULTILINE).group(1))  # type: ignore[union-attr]
    default = inspect.signature(supervisors.run).parameters["shutdown_timeout"].default
    assert timeout > default
    assert re.search(r"^Restart=on-failure$", text, re.MULTILINE)
