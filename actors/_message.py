"""Typed requests: a call message declares the type of its reply."""

from __future__ import annotations

from typing import Generic, TypeVar

__all__ = ["Request"]

R = TypeVar("R", covariant=True)


class Request(Generic[R]):
    """Base class of messages sent with :meth:`ActorRef.call`; ``R`` is the reply type.

    Declare a request by subclassing with the reply type, usually as an ``attrs`` class::

        @attrs.frozen
        class GetCount(Request[int]):
            pass

    ``await ref.call(GetCount())`` is then typed ``int``. A request carries no state of its
    own; any message (``Request`` or not) may also be sent with :meth:`ActorRef.cast`, in
    which case the handler's return value is discarded.
    """

    __slots__ = ()
