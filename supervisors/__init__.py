"""Supervision trees for Trio: OTP-style supervisors, a host, and the event stream.

A tree is described with frozen specs (:class:`Supervisor`, :class:`DynamicSupervisor`,
:class:`ChildSpec`) and run with :func:`run` (a program) or :func:`open_tree` (inside a Trio
program or a test). ``docs/semantics.md`` states every rule precisely.
"""

from ._errors import ChildNotFound as ChildNotFound
from ._errors import InjectedFault as InjectedFault
from ._errors import NotRunning as NotRunning
from ._errors import StartFailed as StartFailed
from ._errors import SupervisionError as SupervisionError
from ._errors import SupervisorGaveUp as SupervisorGaveUp
from ._events import ChildCrashed as ChildCrashed
from ._events import ChildExited as ChildExited
from ._events import ChildRestarting as ChildRestarting
from ._events import ChildStarted as ChildStarted
from ._events import ChildStartFailed as ChildStartFailed
from ._events import ChildStarting as ChildStarting
from ._events import ChildStopped as ChildStopped
from ._events import ChildStopping as ChildStopping
from ._events import Event as Event
from ._events import GaveUp as GaveUp
from ._events import MessagesDropped as MessagesDropped
from ._events import TreeStarted as TreeStarted
from ._events import TreeStopped as TreeStopped
from ._events import TreeStopping as TreeStopping
from ._host import EXIT_FAILED as EXIT_FAILED
from ._host import EXIT_FORCED as EXIT_FORCED
from ._host import EXIT_OK as EXIT_OK
from ._host import run as run
from ._host import serve as serve
from ._snapshot import ChildKind as ChildKind
from ._snapshot import ChildSnapshot as ChildSnapshot
from ._snapshot import ChildState as ChildState
from ._spec import Backoff as Backoff
from ._spec import ChildSpec as ChildSpec
from ._spec import DynamicSupervisor as DynamicSupervisor
from ._spec import Restart as Restart
from ._spec import Strategy as Strategy
from ._spec import Supervisor as Supervisor
from ._tree import SupervisorRef as SupervisorRef
from ._tree import Tree as Tree
from ._tree import current_tree as current_tree
from ._tree import open_tree as open_tree

__all__ = [
    "EXIT_FAILED",
    "EXIT_FORCED",
    "EXIT_OK",
    "Backoff",
    "ChildCrashed",
    "ChildExited",
    "ChildKind",
    "ChildNotFound",
    "ChildRestarting",
    "ChildSnapshot",
    "ChildSpec",
    "ChildStartFailed",
    "ChildStarted",
    "ChildStarting",
    "ChildState",
    "ChildStopped",
    "ChildStopping",
    "DynamicSupervisor",
    "Event",
    "GaveUp",
    "InjectedFault",
    "MessagesDropped",
    "NotRunning",
    "Restart",
    "StartFailed",
    "Strategy",
    "SupervisionError",
    "Supervisor",
    "SupervisorGaveUp",
    "SupervisorRef",
    "Tree",
    "TreeStarted",
    "TreeStopped",
    "TreeStopping",
    "current_tree",
    "open_tree",
    "run",
    "serve",
]
