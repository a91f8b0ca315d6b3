"""SMTP with STARTTLS and with TLS from the start, authenticated, against a real aiosmtpd
server on loopback with a certificate made for the test (its own CA file)."""

from __future__ import annotations

import ssl
import subprocess
import warnings

import pytest

from service.config import DeliverySettings
from service.delivery.outbox import send_email
from tests.delivery.conftest import Inbox, free_port

MESSAGE = b"From: radar@example.test\r\nTo: a@example.test\r\nSubject: hi\r\nMessage-ID: <1@example.test>\r\n\r\nhello\r\n"


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(d / "key.pem"),
            "-out",
            str(d / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )
    return d / "cert.pem", d / "key.pem"


def _auth(server, session, envelope, mechanism, auth_data):
    from aiosmtpd.smtp import AuthResult

    return AuthResult(success=auth_data.login == b"radar" and auth_data.password == b"s3cret")


@pytest.fixture(params=["starttls", "ssl"])
def tls_server(request, cert):
    from aiosmtpd.controller import Controller

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*cert)
    inbox, port = Inbox(), free_port()
    if request.param == "starttls":
        tls = {"tls_context": ctx, "require_starttls": True}
    else:  # TLS from the start: it is TLS
        tls = {"ssl_context": ctx, "auth_require_tls": False}
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, authenticator=_auth, auth_required=True, **tls
    )
    # aiosmtpd cannot tell that an ssl_context server is already TLS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        controller.start()
    try:
        yield request.param, port, inbox
    finally:
        controller.stop()


def _settings(security, port, cert, password="s3cret", ca=True) -> DeliverySettings:
    return DeliverySettings(
        smtp_port=port,
        smtp_security=security,
        smtp_username="radar",
        smtp_password=password,
        smtp_ca_file=cert[0] if ca else None,
        smtp_timeout=3,
    )


def test_tls_and_login_deliver(tls_server, cert):
    security, port, inbox = tls_server
    result = send_email(_settings(security, port, cert), to="a@example.test", message=MESSAGE)
    assert result.ok, result
    assert len(inbox.messages) == 1 and b"hello" in inbox.messages[0]


def test_a_wrong_password_or_an_unknown_certificate_sends_nothing(tls_server, cert):
    security, port, inbox = tls_server
    bad = send_email(
        _settings(security, port, cert, password="n0pe"), to="a@example.test", message=MESSAGE
    )
    assert not bad.ok and "n0pe" not in (bad.error or "")
    untrusted = send_email(
        _settings(security, port, cert, ca=False), to="a@example.test", message=MESSAGE
    )
    assert not untrusted.ok and "CERTIFICATE" in untrusted.error.upper()
    assert inbox.messages == []
