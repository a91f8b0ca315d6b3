"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, and can be told to
answer with temporary or permanent failures."""

from __future__ import annotations

import socket
import threading

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
