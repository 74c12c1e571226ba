"""The dynamic supervisor: a one-for-one supervisor whose children come and go at run time."""

from __future__ import annotations

from ._errors import SupervisionError
from ._runtime import Runtime
from ._slot import Slot
from ._spec import DynamicSupervisor
from ._supervisor import SupervisorCell

__all__ = ["DynamicSupervisorCell"]


class DynamicSupervisorCell(SupervisorCell):
    """A :class:`DynamicSupervisor`: starts empty; a child that stops for good is removed."""

    def __init__(self, spec: DynamicSupervisor, path: str, runtime: Runtime) -> None:
        super().__init__(spec, path, runtime)
        self.max_children = spec.max_children

    def retire(self, slot: Slot, reason: str) -> None:
        """The slot is removed, as for a temporary child: its mailbox closes and is forgotten."""
        self.remove(slot, reason)

    def check_room(self) -> None:
        limit = self.max_children
        if limit is not None and len(self.slots) >= limit:
            raise SupervisionError(
                f"{self.path!r} already has max_children={limit} children; terminate one "
                "first or raise max_children"
            )
