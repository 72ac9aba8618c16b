"""Shared pieces of the script tests: the article, a fake LLM endpoint, a real gRPC server."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
from vo.script.v1 import script_service_pb2 as pb
from vo.script.v1 import script_service_pb2_grpc
from vo_core.config import ServerSettings
from vo_core.server import add_standard_services, bind, create_server
from vo_script.config import Settings
from vo_script.openai_engine import OpenAIConfig
from vo_script.server import register

DATA = Path(__file__).parent / "data"
ARTICLE = (DATA / "article_urban_bees.txt").read_text(encoding="utf-8")

GOOD_SCRIPT = {
    "title": "Why rooftop hives are not enough",
    "hook": "Rooftop hives are everywhere, but the bees are going hungry.",
    "segments": [
        {
            "text": "London's registered hives roughly doubled in a decade.",
            "visual_hint": "Aerial shot of rooftops with hives",
        },
        {
            "text": "Without enough flowers, honeybees and wild bees compete for food.",
            "visual_hint": "Close-up of a bee on lavender",
        },
    ],
    "call_to_action": "Plant flowers, then think about a hive.",
    "hashtags": ["#UrbanBees", "rooftop hives", "Pollinators", "urbanbees"],
}


@dataclass
class Reply:
    """One scripted answer of the fake endpoint."""

    content: str = ""
    status: int = 200
    mode: str = "sse"  # "sse", "json" (stream ignored), "raw" (body as is), "sse-raw" (body as SSE)
    body: str = ""


@dataclass
class FakeLLM:
    """An OpenAI-compatible /v1/chat/completions endpoint speaking SSE, scripted by the test."""

    replies: list[Reply] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def config(self, **kw: Any) -> OpenAIConfig:
        return OpenAIConfig(base_url=self.base_url, model="fake-model", api_key="sk-test", **kw)


@contextmanager
def fake_llm(*replies: Reply) -> Iterator[FakeLLM]:
    """Run a :class:`FakeLLM` in a thread for the duration of the block."""
    fake = FakeLLM(list(replies))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            fake.requests.append(body)
            fake.headers.append(dict(self.headers.items()))
            if self.path != "/v1/chat/completions":
                self._send(404, "application/json", json.dumps({"error": {"message": "no route"}}))
                return
            reply = (
                fake.replies.pop(0)
                if fake.replies
                else Reply(status=500, mode="raw", body="out of replies")
            )
            if reply.mode == "sse-raw":
                self._send(200, "text/event-stream", reply.body)
            elif reply.status != 200 or reply.mode == "raw":
                self._send(reply.status, "application/json", reply.body)
            elif reply.mode == "json":
                msg = {
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": reply.content}}
                    ]
                }
                self._send(200, "application/json", json.dumps(msg))
            else:
                self._stream(reply.content)

        def _send(self, status: int, ctype: str, text: str) -> None:
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _stream(self, content: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b": keep-alive\n\n")
            first = {"choices": [{"index": 0, "delta": {"role": "assistant"}}]}
            self.wfile.write(f"data: {json.dumps(first)}\n\n".encode())
            # Small pieces, as a model streams them, so tokens arrive as many events.
            for i in range(0, len(content), 7):
                chunk = {"choices": [{"index": 0, "delta": {"content": content[i : i + 7]}}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            self.close_connection = True

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    fake.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings_for(tmp_path: Path, openai: OpenAIConfig | None = None, **kw: Any) -> Settings:
    """Settings with a private data folder, so the disk cache never leaks between tests."""
    return Settings(
        server=ServerSettings(host="127.0.0.1", port=0, data_dir=tmp_path),
        openai=openai or OpenAIConfig(),
        **kw,
    )


@asynccontextmanager
async def script_server(
    settings: Settings,
) -> AsyncIterator[script_service_pb2_grpc.ScriptServiceStub]:
    """A real grpc.aio server on port 0 with the real servicer; yields a stub."""
    server = create_server()
    names = [register(server, settings)]
    add_standard_services(server, names)
    port = bind(server, "127.0.0.1", 0)
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield script_service_pb2_grpc.ScriptServiceStub(channel)
    finally:
        await channel.close(None)
        await server.stop(grace=None)


async def write(
    stub: script_service_pb2_grpc.ScriptServiceStub, **fields: Any
) -> list[pb.WriteScriptResponse]:
    """All responses of one WriteScript call."""
    # The generated stub is typed for the blocking API; on an aio channel the call is async.
    call: Any = stub.WriteScript(pb.WriteScriptRequest(**fields))
    return [r async for r in call]
