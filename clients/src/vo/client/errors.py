"""The one exception type clients raise, carrying the server's status code and message."""

from __future__ import annotations

import grpc


class VoClientError(Exception):
    """A call failed; ``code`` is the gRPC status, ``message`` says what to fix."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message

    @classmethod
    def from_rpc_error(cls, exc: grpc.RpcError) -> VoClientError:
        """Convert a gRPC error (sync or aio) into a VoClientError."""
        code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
        details = exc.details() if hasattr(exc, "details") else str(exc)
        if code == grpc.StatusCode.UNAVAILABLE:
            details = f"server unavailable ({details}); is `vo serve` running at that address?"
        elif code == grpc.StatusCode.DEADLINE_EXCEEDED:
            details = f"deadline exceeded ({details}); raise the timeout or check the server"
        return cls(code, details or code.name)
