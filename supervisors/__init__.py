"""Supervision trees for Trio: OTP-style supervisors, a host, and the event stream.

A tree is described with frozen specs (:class:`Supervisor`, :class:`DynamicSupervisor`,
:class:`ChildSpec`) and run with :func:`run` (a program) or :func:`open_tree` (inside a Trio
program or a test). ``docs/semantics.md`` states every rule precisely.
"""

from ._errors import ChildNotFound as ChildNotFound
from ._errors import ConfigurationError as ConfigurationError
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
from ._events import EventsDropped as EventsDropped
from ._events import GaveUp as GaveUp
from ._events import MailboxBlocked as MailboxBlocked
from ._events import MessagesDropped as MessagesDropped
from ._events import TreeStarted as TreeStarted
from ._events import TreeStopped as TreeStopped
from ._events import TreeStopping as TreeStopping
from ._host import EXIT_FAILED as EXIT_FAILED
from ._host import EXIT_FORCED as EXIT_FORCED
from ._host import EXIT_INTERRUPTED as EXIT_INTERRUPTED
from ._host import EXIT_OK as EXIT_OK
from ._host import run as run
from ._host import serve as serve
from ._outside import OutsideWorkListener as OutsideWorkListener
from ._outside import listen_outside_work as listen_outside_work
from ._outside import outside_trio as outside_trio
from ._outside import outside_work_listener as outside_work_listener
from ._resources import DeclaresResources as DeclaresResources
from ._resources import MissingResource as MissingResource
from ._resources import Resource as Resource
from ._resources import ResourceError as ResourceError
from ._resources import Resources as Resources
from ._resources import Uses as Uses
from ._resources import current_resources as current_resources
from ._resources import open_resources as open_resources
from ._resources import uses as uses
from ._resources import with_resources as with_resources
from ._settings import Secret as Secret
from ._settings import SettingsError as SettingsError
from ._settings import load_settings as load_settings
from ._settings import masked_settings as masked_settings
from ._snapshot import ChildKind as ChildKind
from ._snapshot import ChildSnapshot as ChildSnapshot
from ._snapshot import ChildState as ChildState
from ._spec import Backoff as Backoff
from ._spec import ChildSpec as ChildSpec
from ._spec import DynamicSupervisor as DynamicSupervisor
from ._spec import Restart as Restart
from ._spec import Strategy as Strategy
from ._spec import Supervisor as Supervisor
from ._stream import DEFAULT_EVENT_BUFFER as DEFAULT_EVENT_BUFFER
from ._stream import EventStream as EventStream
from ._tree import SupervisorRef as SupervisorRef
from ._tree import Tree as Tree
from ._tree import current_tree as current_tree
from ._tree import open_tree as open_tree

__all__ = [
    "DEFAULT_EVENT_BUFFER",
    "EXIT_FAILED",
    "EXIT_FORCED",
    "EXIT_INTERRUPTED",
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
    "ConfigurationError",
    "DeclaresResources",
    "DynamicSupervisor",
    "Event",
    "EventStream",
    "EventsDropped",
    "GaveUp",
    "InjectedFault",
    "MailboxBlocked",
    "MessagesDropped",
    "MissingResource",
    "NotRunning",
    "OutsideWorkListener",
    "Resource",
    "ResourceError",
    "Resources",
    "Restart",
    "Secret",
    "SettingsError",
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
    "Uses",
    "current_resources",
    "current_tree",
    "listen_outside_work",
    "load_settings",
    "masked_settings",
    "open_resources",
    "open_tree",
    "outside_trio",
    "outside_work_listener",
    "run",
    "serve",
    "uses",
    "with_resources",
]
