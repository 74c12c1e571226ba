"""The live streams of a dashboard: every connected page gets a bounded queue of 'something changed' notices."""

from __future__ import annotations

import trio

__all__ = ["Client", "Hub"]


class Client:
    """One live page: its notices (``"tree"``, ``"jobs"``), at most one pending of each kind."""

    def __init__(self) -> None:
        self.send, self.receive_channel = trio.open_memory_channel[str](8)
        self.pending: set[str] = set()

    async def receive(self) -> str:
        """The next notice; raises ``trio.EndOfChannel`` once the hub closed."""
        kind = await self.receive_channel.receive()
        self.pending.discard(kind)
        return kind

    def receive_nowait(self) -> str:
        kind = self.receive_channel.receive_nowait()
        self.pending.discard(kind)
        return kind


class Hub:
    """Fans out change notices to the live pages; closes them all when the dashboard stops.

    A notice means "refresh": a page that has one pending of a kind gets no second one, so a
    burst of events costs one refresh. `publish` never waits (it runs in supervisor tasks).
    """

    def __init__(self) -> None:
        self._clients: set[Client] = set()
        self.closed = False

    def __len__(self) -> int:
        return len(self._clients)

    def connect(self) -> Client:
        """A new live page; raises ``trio.ClosedResourceError`` once the hub is closed."""
        if self.closed:
            raise trio.ClosedResourceError("the dashboard is stopping")
        client = Client()
        self._clients.add(client)
        return client

    def disconnect(self, client: Client) -> None:
        """Forget a page that went away."""
        self._clients.discard(client)
        client.send.close()
        client.receive_channel.close()

    def publish(self, kind: str) -> None:
        """Tell every page that ``kind`` changed."""
        for client in self._clients:
            if kind in client.pending:
                continue
            try:
                client.send.send_nowait(kind)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                continue
            client.pending.add(kind)

    def close(self) -> None:
        """End every live stream and refuse new ones."""
        self.closed = True
        for client in self._clients:
            client.send.close()
