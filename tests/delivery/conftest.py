"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, and can be told to
answer with temporary or permanent failures; a real HTTP webhook receiver on loopback that
records each request and answers as told."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    """What the server received (raw bytes per message, envelope recipients), and the replies
    to give to the next DATA commands (e.g. ["451 4.3.0 try later"]; empty: accept)."""

    def __init__(self):
        self.messages: list[bytes] = []
        self.recipients: list[list[str]] = []
        self.replies: list[str] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            if self.replies:
                return self.replies.pop(0)
            self.messages.append(envelope.original_content or envelope.content)
            self.recipients.append(list(envelope.rcpt_tos))
        return "250 2.0.0 OK"

    def parsed(self):
        from email import message_from_bytes
        from email.policy import default

        return [message_from_bytes(m, policy=default) for m in self.messages]


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    inbox.port = port
    try:
        yield inbox
    finally:
        controller.stop()


@dataclass
class Received:
    path: str
    query: str
    headers: object  # the server's http.client.HTTPMessage, as a receiver would get it
    body: bytes


class Receiver:
    """A real HTTP server on 127.0.0.1 that records every request and answers as told."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.status = 200
        self.reply = b""
        self.content_type = "application/json"
        handler = _handler_for(self)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, status: int, body: bytes | dict, content_type: str = "application/json"):
        self.status = status
        self.reply = json.dumps(body).encode() if isinstance(body, dict) else body
        self.content_type = content_type

    @property
    def last(self) -> Received:
        assert len(self.requests) == 1, f"expected one request, got {len(self.requests)}"
        return self.requests[0]


def _handler_for(receiver: Receiver):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the stdlib's name
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            parts = urlsplit(self.path)
            receiver.requests.append(Received(parts.path, parts.query, self.headers, raw))
            self.send_response(receiver.status)
            self.send_header("Content-Type", receiver.content_type)
            self.send_header("Content-Length", str(len(receiver.reply)))
            self.end_headers()
            self.wfile.write(receiver.reply)

        def log_message(self, *args):  # keep the test output clean
            pass

    return Handler


@pytest.fixture
def receiver():
    rx = Receiver()
    thread = threading.Thread(target=rx.server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    try:
        yield rx
    finally:
        rx.server.shutdown()
        rx.server.server_close()
        thread.join(timeout=5)
