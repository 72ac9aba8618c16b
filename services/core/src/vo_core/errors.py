"""Domain errors and their gRPC status codes.

Engines raise these; they know nothing of gRPC. The server's error interceptor (and the
CLI) turn them into a status code or a one-line message, so no service maps errors by hand.
"""

from __future__ import annotations

import grpc


class VoError(Exception):
    """Base of every error vo reports to a user; the message says what to fix."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL


class InvalidInput(VoError):
    """The request or its input media is wrong; retrying the same request cannot help."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(VoError):
    """A named resource (file, upload, job) does not exist."""

    code = grpc.StatusCode.NOT_FOUND


class FailedPrecondition(VoError):
    """The system is not in a state to do this (an engine not configured, a job already ended)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class ResourceExhausted(VoError):
    """A limit was reached (queue full, upload too large); retry later or send less."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(VoError):
    """A dependency could not be reached; the call may succeed when retried."""

    code = grpc.StatusCode.UNAVAILABLE


class Cancelled(VoError):
    """The work was cancelled on request."""

    code = grpc.StatusCode.CANCELLED


class PermissionDenied(VoError):
    """The input or output path lies outside the roots this server may touch."""

    code = grpc.StatusCode.PERMISSION_DENIED


class Unimplemented(VoError):
    """The RPC is part of the contract but not built yet; the message says which issue builds it."""

    code = grpc.StatusCode.UNIMPLEMENTED
