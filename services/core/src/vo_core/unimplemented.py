"""Servicers for RPCs that are in the contract but not built yet.

They answer UNIMPLEMENTED with a message naming what is missing and which issue builds it,
never a fake result.
"""

from __future__ import annotations

from typing import Any

import grpc


def unimplemented_servicer(base: type, service: str, missing: str) -> Any:
    """An instance of ``base`` (a generated ``XServicer``) whose every RPC says what is missing."""

    def make(name: str) -> Any:
        message = f"{service}.{name} is not implemented yet: {missing}"

        async def unary(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, message)

        return unary

    methods = {
        name: make(name)
        for name in dir(base)
        if not name.startswith("_") and callable(getattr(base, name))
    }
    cls = type(f"Unimplemented{base.__name__}", (base,), methods)
    return cls()
