"""What every typed client shares: a channel, a stub, a default deadline, and one error type.

Service clients subclass :class:`ServiceClient` (blocking) or :class:`AsyncServiceClient`
(asyncio) and define only their RPC methods, calling :meth:`_unary` / :meth:`_stream`, so every
gRPC error surfaces as :class:`~vo.client.errors.VoClientError` in exactly one place.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import grpc

from vo.client.channel import open_aio_channel, open_channel
from vo.client.errors import VoClientError
from vo.events import ProgressEvent

T = TypeVar("T")
StubT = TypeVar("StubT")
Req = TypeVar("Req")
Resp = TypeVar("Resp")


class ServiceClient(Generic[StubT]):
    """Blocking client base; ``timeout`` is the deadline in seconds for every call (None: none)."""

    stub_type: Callable[[grpc.Channel], Any]

    def __init__(self, channel: grpc.Channel, *, timeout: float | None = None) -> None:
        self._channel = channel
        self._stub: StubT = type(self).stub_type(channel)
        self.timeout = timeout

    @classmethod
    def connect(cls, target: str, *, timeout: float | None = None) -> Self:
        """A client with its own channel to ``target`` ("host:port" or "unix:/path")."""
        return cls(open_channel(target), timeout=timeout)

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _unary(self, method: Callable[..., Resp], request: Any) -> Resp:
        """Call a unary (or client-streaming) RPC with the client's deadline."""
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as exc:
            raise VoClientError.from_rpc_error(exc) from None

    def _stream(
        self, method: grpc.UnaryStreamMultiCallable[Req, Resp], request: Req
    ) -> Iterator[Resp]:
        """Call a server-streaming RPC; yield its messages."""
        try:
            yield from method(request, timeout=self.timeout)
        except grpc.RpcError as exc:
            raise VoClientError.from_rpc_error(exc) from None


class AsyncServiceClient(Generic[StubT]):
    """Asyncio client base; ``timeout`` is the deadline in seconds for every call (None: none)."""

    stub_type: Callable[[grpc.aio.Channel], Any]

    def __init__(self, channel: grpc.aio.Channel, *, timeout: float | None = None) -> None:
        self._channel = channel
        self._stub: StubT = type(self).stub_type(channel)
        self.timeout = timeout

    @classmethod
    def connect(cls, target: str, *, timeout: float | None = None) -> Self:
        """A client with its own channel to ``target``."""
        return cls(open_aio_channel(target), timeout=timeout)

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close(None)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _unary(self, method: Callable[..., Any], request: Any) -> Any:
        """Call a unary (or client-streaming) RPC with the client's deadline."""
        try:
            return await method(request, timeout=self.timeout)
        except grpc.RpcError as exc:
            raise VoClientError.from_rpc_error(exc) from None

    async def _stream(
        self, method: grpc.aio.UnaryStreamMultiCallable[Req, Resp], request: Req
    ) -> AsyncIterator[Resp]:
        """Call a server-streaming RPC; yield its messages."""
        try:
            async for msg in method(request, timeout=self.timeout):
                yield msg
        except grpc.RpcError as exc:
            raise VoClientError.from_rpc_error(exc) from None


def stream_event(msg: Any) -> Any:
    """A streamed response's event: a :class:`ProgressEvent`, or whatever else its oneof holds.

    Every long RPC's response is ``oneof event { Progress progress; ... }``; this is the one place
    that turns one into a typed event.
    """
    field = msg.WhichOneof("event")
    if field == "progress":
        return ProgressEvent.from_proto(msg.progress)
    return getattr(msg, field)


def last_of(events: Iterable[object], kind: type[T], what: str) -> T:
    """Drain ``events``; return the last one of ``kind`` (the call's result)."""
    result: T | None = None
    for event in events:
        if isinstance(event, kind):
            result = event
    if result is None:
        raise VoClientError(grpc.StatusCode.INTERNAL, f"the server ended the call without {what}")
    return result
