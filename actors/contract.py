"""The supervisor contract: what a supervision package needs from :mod:`actors`.

For supervisor implementers (the :mod:`supervisors` package is the one consumer); applications
never need it. A supervisor runs each child through a :class:`ChildCell`, makes the cell of an
actor with :func:`actor_cell`, owns each actor slot's :class:`Mailbox` (which outlives the
incarnations reading it) and installs on it the hook that receives a :class:`BlockedSend` report
when a send waits too long for room, and unwraps a :class:`Call` envelope to name the message a
child crashed on. ``docs/reference.md`` ("The supervisor contract") states each part.
"""

from ._contract import ChildCell as ChildCell
from ._contract import StartStatus as StartStatus
from ._contract import actor_cell as actor_cell
from ._mailbox import BlockedSend as BlockedSend
from ._mailbox import Call as Call
from ._mailbox import Mailbox as Mailbox

__all__ = ["BlockedSend", "Call", "ChildCell", "Mailbox", "StartStatus", "actor_cell"]
