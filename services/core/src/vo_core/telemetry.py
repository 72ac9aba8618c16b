"""Tracing and per-RPC metrics for every vo server and client.

One trace follows a job across every service: a client interceptor starts a CLIENT span and
writes its W3C ``traceparent`` into the call's metadata; :class:`TracingServerInterceptor`
reads it back and starts the SERVER span as its child, so the pipeline's calls to the TTS,
subtitle and video services hang under the job that made them. Inside a service,
:func:`traced` adds internal spans (a job, a DAG step) and :func:`trace_carrier` hands the
current context to work that leaves the call (a queued job picked up by a worker later).

Where spans go is decided once per process by :func:`configure_tracing`: to an OTLP collector
when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, to an exporter object the caller passes (tests),
and nowhere otherwise. In the silent case no SDK is installed at all; the OpenTelemetry API's
no-op tracer still carries an incoming ``traceparent`` through to outgoing calls, so a
silent service in the middle of a traced mesh does not break the trace.

:class:`MetricsServerInterceptor` fills the RPC metrics of :mod:`vo_core.metrics`. Both
server interceptors must sit *outside* :class:`vo_core.interceptors.ErrorInterceptor` (before
it in ``grpc.aio.server(interceptors=[...])``, whose first entry is the outermost), so they
see the status code that the error mapping produced rather than a raw exception.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, NamedTuple

import grpc
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue
from vo.client.channel import AioClientInterceptor

from vo_core import metrics

_tracer = trace.get_tracer("vo")  # a proxy until a provider is set, then that provider's

_lock = threading.Lock()
_provider: TracerProvider | None = None
_otlp_installed = False
_exporters_installed: list[SpanExporter] = []

# Server spans are errors only for codes that mean the server failed (OpenTelemetry's RPC
# conventions); a client's bad argument is the client's error, and its span says so.
_SERVER_ERROR_CODES = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)


# --- set-up ----------------------------------------------------------------------------------


def configure_tracing(
    service_name: str,
    *,
    exporter: SpanExporter | None = None,
    env: Mapping[str, str] | None = None,
) -> TracerProvider | None:
    """Decide, once per process, where this process's spans go; return the provider, if any.

    - ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_ENDPOINT`` set: spans are
      batched to that OTLP/gRPC collector (``http://`` means plaintext).
    - ``exporter`` given (an ``InMemorySpanExporter`` in tests): each span is handed to it as
      it ends.
    - neither: nothing is installed, nothing printed or sent.

    Calling again is safe: the first call that needs a provider creates the process-wide one
    (named ``service_name``, unless ``OTEL_SERVICE_NAME`` names it); later calls only add an
    exporter not attached yet. ``env`` replaces ``os.environ`` (tests). These are
    OpenTelemetry's standard variables, read here rather than in a service's ``config.py``
    so every service and the CLI honour them the same way.
    """
    global _provider, _otlp_installed
    environ = os.environ if env is None else env
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    with _lock:
        if exporter is None and not endpoint:
            return _provider
        if _provider is None:
            name = environ.get("OTEL_SERVICE_NAME") or service_name
            _provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
            trace.set_tracer_provider(_provider)
        if endpoint and not _otlp_installed:
            # Imported here: the exporter pulls in OTLP protobufs a silent process never needs.
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
            _otlp_installed = True
        if exporter is not None and not any(e is exporter for e in _exporters_installed):
            _provider.add_span_processor(SimpleSpanProcessor(exporter))
            _exporters_installed.append(exporter)
        return _provider


def flush_tracing(timeout_millis: int = 5000) -> bool:
    """Send the spans still batched (call before a short-lived process exits); True if done.

    A provider also flushes at interpreter exit on its own; this is for callers that cannot
    wait for that, such as a test asserting on what a collector received.
    """
    provider = _provider
    return True if provider is None else provider.force_flush(timeout_millis)


@contextmanager
def traced(
    name: str,
    *,
    attributes: Mapping[str, AttributeValue] | None = None,
    carrier: Mapping[str, str] | None = None,
) -> Iterator[Span]:
    """An internal span around the enclosed block (a job, a DAG step), current while it runs.

    The parent is the current span, or the context in ``carrier`` (from :func:`trace_carrier`,
    stored with a queued job) when one is given. An exception escaping the block is recorded
    on the span and marks it failed.
    """
    parent = propagate.extract(carrier) if carrier is not None else None
    with _tracer.start_as_current_span(
        name, context=parent, kind=SpanKind.INTERNAL, attributes=attributes
    ) as span:
        yield span


def trace_carrier() -> dict[str, str]:
    """The current trace context as ``{"traceparent": ...}`` (empty outside any trace).

    Store it with work that outlives the call (a queued job) and pass it to :func:`traced`
    when the work runs, so the worker's spans join the trace of the call that submitted it.
    """
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def _rpc_attributes(full_method: str) -> dict[str, AttributeValue]:
    service, method = metrics.split_method(full_method)
    return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method}


def _end_span(span: Span, code: grpc.StatusCode, details: str | None, *, server: bool) -> None:
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    # A client sees any non-OK code as its call failing; a server only its own failures.
    if code is not grpc.StatusCode.OK and (not server or code in _SERVER_ERROR_CODES):
        span.set_status(Status(StatusCode.ERROR, f"{code.name}: {details or ''}".rstrip(": ")))
    span.end()


# --- server side -----------------------------------------------------------------------------


def _code_of(context: grpc.aio.ServicerContext) -> grpc.StatusCode:
    """The code a handler that returned normally ends with: OK unless it called set_code."""
    code = context.code()
    return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.OK


def _gone_code(context: grpc.aio.ServicerContext) -> grpc.StatusCode:
    """Why a call ended without its status reaching the client: the deadline, or the client."""
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        return grpc.StatusCode.DEADLINE_EXCEEDED
    return grpc.StatusCode.CANCELLED


def _code_for(exc: BaseException, context: grpc.aio.ServicerContext) -> grpc.StatusCode:
    """The code an RPC ends with when its handler leaves by ``exc``."""
    if isinstance(exc, (asyncio.CancelledError, GeneratorExit)):
        # grpc cancels the handler both when the client goes away and when the deadline passes.
        return _gone_code(context)
    code = context.code()
    if isinstance(exc, grpc.aio.AbortError) and isinstance(code, grpc.StatusCode):
        return code
    return grpc.StatusCode.UNKNOWN  # what grpc.aio sends for an exception it did not expect


def _finish_when_sent(
    observation: _Observation, code: grpc.StatusCode, context: grpc.aio.ServicerContext
) -> None:
    """Finish a call whose handler returned, once grpc knows whether its status got out.

    A handler that returned has not necessarily reached its client: the client may go away,
    or the deadline pass, before grpc sends the status. grpc runs the done callbacks when the
    call terminates, with ``done()`` true only if the status was sent. (One case stays
    invisible: a client that cancels a request stream makes grpc end that stream as if it
    were complete; a handler that then returns at once has its OK sent and counted.)
    """

    def on_done(ctx: grpc.aio.ServicerContext) -> None:
        observation.finish(code if ctx.done() else _gone_code(ctx), _details_of(ctx))

    # grpc-stubs wants its nominal DoneCallback class, which grpc itself does not define.
    context.add_done_callback(on_done)  # type: ignore[arg-type]


def _details_of(context: grpc.aio.ServicerContext) -> str | None:
    details = context.details()
    if isinstance(details, bytes):
        return details.decode("utf-8", "replace")
    return details if isinstance(details, str) else None


class _Observation(ABC):
    """What an observing interceptor keeps for one call, from its start to its final code."""

    def active(self) -> AbstractContextManager[object]:
        """Entered around every stretch of handler code (for a span: make it current)."""
        return nullcontext()

    @abstractmethod
    def finish(self, code: grpc.StatusCode, details: str | None) -> None:
        """The call ended with ``code``; called exactly once."""


class _ObservingInterceptor(grpc.aio.ServerInterceptor, ABC):
    """Wraps every async handler so :meth:`_observe` sees each call start and end with its code.

    Unary handlers and handlers that stream with ``context.write`` are coroutines; those that
    stream by yielding are async generators and end when their last message is sent, when
    they abort, or when the client goes away (CANCELLED). Synchronous handlers, which vo's
    asyncio servers do not have, are passed through unobserved.
    """

    @abstractmethod
    def _observe(self, details: grpc.HandlerCallDetails) -> _Observation:
        """Start observing one call."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        """The handler, wrapped; None (an unknown method) as is, so it stays UNIMPLEMENTED."""
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        factories: list[tuple[Any, Callable[..., grpc.RpcMethodHandler]]] = [
            (handler.unary_unary, grpc.unary_unary_rpc_method_handler),
            (handler.unary_stream, grpc.unary_stream_rpc_method_handler),
            (handler.stream_unary, grpc.stream_unary_rpc_method_handler),
            (handler.stream_stream, grpc.stream_stream_rpc_method_handler),
        ]
        for behavior, factory in factories:
            if behavior is None:
                continue
            wrapped: Callable[..., Any]
            if inspect.isasyncgenfunction(behavior):
                wrapped = self._wrap_async_gen(behavior, handler_call_details)
            elif inspect.iscoroutinefunction(behavior):
                wrapped = self._wrap_coroutine(behavior, handler_call_details)
            else:
                return handler
            return factory(wrapped, handler.request_deserializer, handler.response_serializer)
        return handler

    def _wrap_coroutine(
        self, behavior: Callable[..., Awaitable[Any]], details: grpc.HandlerCallDetails
    ) -> Callable[..., Awaitable[Any]]:
        async def wrapper(request_or_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
            observation = self._observe(details)
            try:
                with observation.active():
                    result = await behavior(request_or_iterator, context)
            except BaseException as exc:
                observation.finish(_code_for(exc, context), _details_of(context))
                raise
            _finish_when_sent(observation, _code_of(context), context)
            return result

        return wrapper

    def _wrap_async_gen(
        self, behavior: Callable[..., AsyncIterator[Any]], details: grpc.HandlerCallDetails
    ) -> Callable[..., AsyncIterator[Any]]:
        async def wrapper(
            request_or_iterator: Any, context: grpc.aio.ServicerContext
        ) -> AsyncIterator[Any]:
            observation = self._observe(details)
            code: grpc.StatusCode | None = None  # None: the handler returned, see on_done
            responses = behavior(request_or_iterator, context)
            try:
                while True:
                    # Activate per step rather than across ``yield``: between messages grpc
                    # runs its own code in this task, and a span left current there could be
                    # detached later from another context (when grpc closes an abandoned
                    # generator), which OpenTelemetry reports as an error.
                    with observation.active():
                        try:
                            item = await anext(responses)
                        except StopAsyncIteration:
                            break
                    yield item
            except BaseException as exc:
                code = _code_for(exc, context)
                raise
            finally:
                try:
                    with observation.active():
                        # Run the handler's own clean-up now, inside its span, not at GC.
                        await responses.aclose()  # type: ignore[attr-defined]
                finally:
                    if code is None:
                        _finish_when_sent(observation, _code_of(context), context)
                    else:
                        observation.finish(code, _details_of(context))

        return wrapper


class _Timing(_Observation):
    def __init__(self, method: str) -> None:
        self.method = method
        self.start = time.perf_counter()

    def finish(self, code: grpc.StatusCode, details: str | None) -> None:
        metrics.record_rpc(self.method, code.name, time.perf_counter() - self.start)


class MetricsServerInterceptor(_ObservingInterceptor):
    """Counts each finished RPC by method and final code and times it (``grpc_server_*``).

    A streaming call is counted once, when its stream ends, with its last code.
    """

    def _observe(self, details: grpc.HandlerCallDetails) -> _Observation:
        return _Timing(details.method)


def _carrier_from(metadata: Sequence[tuple[str, str | bytes]] | None) -> dict[str, str]:
    carrier: dict[str, str] = {}
    for key, value in metadata or ():
        # Binary (-bin) entries never hold W3C context; keep the first of repeated keys.
        if isinstance(value, str):
            carrier.setdefault(key.lower(), value)
    return carrier


class _ServerSpan(_Observation):
    def __init__(self, span: Span) -> None:
        self.span = span

    def active(self) -> AbstractContextManager[object]:
        # The span's status comes from the final code in finish(), not from exceptions
        # (an AbortError is how a handler reports INVALID_ARGUMENT, not a server failure).
        return trace.use_span(self.span, record_exception=False, set_status_on_exception=False)

    def finish(self, code: grpc.StatusCode, details: str | None) -> None:
        _end_span(self.span, code, details, server=True)


class TracingServerInterceptor(_ObservingInterceptor):
    """Starts a SERVER span named ``/pkg.Service/Method`` for each call, child of the caller's.

    The caller's context comes from the W3C ``traceparent`` in the call's metadata; without
    one the span starts a new trace. The span is current while the handler runs, so spans
    and outgoing calls the handler makes join the same trace.
    """

    def _observe(self, details: grpc.HandlerCallDetails) -> _Observation:
        parent = propagate.extract(_carrier_from(details.invocation_metadata))
        span = _tracer.start_span(
            details.method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes=_rpc_attributes(details.method),
        )
        return _ServerSpan(span)


def server_interceptors() -> list[grpc.aio.ServerInterceptor]:
    """vo's observing interceptors, outermost first: tracing, then metrics."""
    return [TracingServerInterceptor(), MetricsServerInterceptor()]


# --- client side -----------------------------------------------------------------------------


def _method_name(method: str | bytes) -> str:
    return method.decode() if isinstance(method, bytes) else method


def _start_client_span(method: str) -> tuple[Span, list[tuple[str, str]]]:
    """A CLIENT span (child of the current span) and the metadata entries that carry it."""
    span = _tracer.start_span(method, kind=SpanKind.CLIENT, attributes=_rpc_attributes(method))
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    return span, list(carrier.items())


class _SyncCallDetails(
    NamedTuple(
        "_SyncCallDetails",
        [
            ("method", str),
            ("timeout", float | None),
            ("metadata", tuple[tuple[str, str | bytes], ...] | None),
            ("credentials", grpc.CallCredentials | None),
            ("wait_for_ready", bool | None),
            ("compression", grpc.Compression | None),
        ],
    ),
    grpc.ClientCallDetails,
):
    """``grpc.ClientCallDetails`` is abstract; the interceptor examples subclass a tuple too."""


class TracingClientInterceptor(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """For blocking ``grpc`` channels: a CLIENT span per call, ``traceparent`` in its metadata.

    The span ends when the call does (grpc's done callback), so a streaming call's span
    covers the whole stream however the caller consumes it.
    """

    def _intercept(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        method = _method_name(details.method)
        span, injected = _start_client_span(method)
        new_details = _SyncCallDetails(
            details.method,
            details.timeout,
            (*(details.metadata or ()), *injected),
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )
        try:
            call = continuation(new_details, request)
        except BaseException as exc:
            _end_span(span, grpc.StatusCode.UNKNOWN, repr(exc), server=False)
            raise
        call.add_done_callback(
            lambda done: _end_span(span, done.code(), done.details(), server=False)
        )
        return call

    def intercept_unary_unary(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        """Trace a unary call."""
        return self._intercept(continuation, client_call_details, request)

    def intercept_unary_stream(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        """Trace a server-streaming call."""
        return self._intercept(continuation, client_call_details, request)

    def intercept_stream_unary(
        self, continuation: Any, client_call_details: Any, request_iterator: Any
    ) -> Any:
        """Trace a client-streaming call."""
        return self._intercept(continuation, client_call_details, request_iterator)

    def intercept_stream_stream(
        self, continuation: Any, client_call_details: Any, request_iterator: Any
    ) -> Any:
        """Trace a bidirectional call."""
        return self._intercept(continuation, client_call_details, request_iterator)


def _aio_details(details: grpc.aio.ClientCallDetails) -> tuple[Span, grpc.aio.ClientCallDetails]:
    span, injected = _start_client_span(_method_name(details.method))
    metadata = grpc.aio.Metadata(*(details.metadata or ()), *injected)
    return span, grpc.aio.ClientCallDetails(
        details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
    )


async def _aio_unary_response(span: Span, call: Awaitable[Any]) -> Any:
    """Start a single-response call, wait for it to end, end its span; return the call."""
    try:
        started = await call
        code, details = await started.code(), await started.details()
    except BaseException as exc:
        _end_span(span, _client_code_for(exc), _client_details_for(exc), server=False)
        raise
    _end_span(span, code, details, server=False)
    return started


async def _aio_started(span: Span, call: Awaitable[Any]) -> Any:
    """Start a streaming-response call; a call that fails to start ends its span at once."""
    try:
        return await call
    except BaseException as exc:
        _end_span(span, _client_code_for(exc), _client_details_for(exc), server=False)
        raise


async def _aio_stream_responses(span: Span, call: Any) -> AsyncIterator[Any]:
    """The call's responses; the span ends with the stream."""
    code, details = grpc.StatusCode.UNKNOWN, None
    try:
        async for response in call:
            yield response
        code, details = await call.code(), await call.details()
    except BaseException as exc:
        code, details = _client_code_for(exc), _client_details_for(exc)
        if isinstance(exc, GeneratorExit):
            call.cancel()  # the caller stopped reading; tell the server rather than leak it
        raise
    finally:
        _end_span(span, code, details, server=False)


def _client_code_for(exc: BaseException) -> grpc.StatusCode:
    if isinstance(exc, grpc.aio.AioRpcError):
        return exc.code()
    if isinstance(exc, (asyncio.CancelledError, GeneratorExit)):
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.UNKNOWN


def _client_details_for(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return exc.details() or ""
    return repr(exc)


class _AioUnaryUnary(grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(
        self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        span, details = _aio_details(client_call_details)
        return await _aio_unary_response(span, continuation(details, request))


class _AioStreamUnary(grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(
        self,
        continuation: Any,
        client_call_details: grpc.aio.ClientCallDetails,
        request_iterator: Any,
    ) -> Any:
        span, details = _aio_details(client_call_details)
        return await _aio_unary_response(span, continuation(details, request_iterator))


class _AioUnaryStream(grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(
        self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        span, details = _aio_details(client_call_details)
        call = await _aio_started(span, continuation(details, request))
        return _aio_stream_responses(span, call)


class _AioStreamStream(grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(
        self,
        continuation: Any,
        client_call_details: grpc.aio.ClientCallDetails,
        request_iterator: Any,
    ) -> Any:
        span, details = _aio_details(client_call_details)
        call = await _aio_started(span, continuation(details, request_iterator))
        return _aio_stream_responses(span, call)


def client_interceptors() -> list[TracingClientInterceptor]:
    """Interceptors for ``open_channel(target, interceptors=...)`` (blocking channels)."""
    return [TracingClientInterceptor()]


def aio_client_interceptors() -> list[AioClientInterceptor]:
    """Interceptors for ``open_aio_channel(target, interceptors=...)``.

    grpc.aio files each interceptor under exactly one call type, so there is one object per
    type (unary-unary, unary-stream, stream-unary, stream-stream).
    """
    return [_AioUnaryUnary(), _AioUnaryStream(), _AioStreamUnary(), _AioStreamStream()]


__all__ = [
    "MetricsServerInterceptor",
    "TracingClientInterceptor",
    "TracingServerInterceptor",
    "aio_client_interceptors",
    "client_interceptors",
    "configure_tracing",
    "flush_tracing",
    "server_interceptors",
    "trace_carrier",
    "traced",
]
