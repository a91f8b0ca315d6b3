"""Where a webhook may go: never into the network Radar runs in, unless an operator says so.

A webhook URL is typed by an admin but points Radar's own process at a host, which makes it
a server-side request forgery vector: ``http://169.254.169.254/…`` (cloud metadata),
``http://10.0.0.1/…``, ``http://localhost:22/`` or the same addresses in disguise
(``http://0x7f000001/``, ``http://2130706433/``, ``http://127.1/``,
``http://[::ffff:169.254.169.254]/``). So a target host is resolved the way the connection
will resolve it (``getaddrinfo``, which also reads the integer, hex and short IPv4 forms) and
*every* address it resolves to must be globally routable: an address that is loopback,
private, link-local, multicast, unspecified, reserved or otherwise not global refuses the
target. IPv6 addresses that carry an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, 6to4
``2002::/16``, NAT64 ``64:ff9b::/96``) are judged by the IPv4 address inside.

``delivery.webhook_allow`` names the exceptions: a host name (matched exactly, case and a
trailing dot ignored), an address or a CIDR network (``127.0.0.1/32``, ``10.20.0.0/16``,
``fd00::/8``); an IPv4 network also admits the IPv4-mapped form of its addresses.

The check runs when a subscription is made (a clear error naming the target) and again on
every send, because DNS answers change. The send connects to an address this check returned
(:func:`vet`), not to the name, so a resolver that answers a public address to the check and
a private one to the connection (DNS rebinding) gains nothing.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[..., list]

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_KINDS = (  # the first that applies names the refusal; 127.0.0.1 is also "private", say "loopback"
    ("unspecified", lambda a: a.is_unspecified),
    ("loopback", lambda a: a.is_loopback),
    ("link-local", lambda a: a.is_link_local),
    ("multicast", lambda a: a.is_multicast),
    ("reserved", lambda a: a.is_reserved),
    ("private", lambda a: a.is_private),
    ("not globally routable", lambda a: not a.is_global),
)


class TargetRefused(ValueError):
    """A webhook target that resolves to an address Radar does not send to."""


@dataclass(frozen=True)
class AllowList:
    """``delivery.webhook_allow`` parsed: host names and networks."""

    hosts: frozenset[str]
    networks: tuple[IPNetwork, ...]

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in entries:
            text = entry.strip()
            try:
                networks.append(ipaddress.ip_network(text.strip("[]"), strict=False))
            except ValueError:
                if text:
                    hosts.add(_host_key(text))
        return cls(frozenset(hosts), tuple(networks))

    def names(self, host: str) -> bool:
        return _host_key(host) in self.hosts

    def admits(self, addr: IPAddress) -> bool:
        forms = [addr] + (
            [addr.ipv4_mapped]
            if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped
            else []
        )
        return any(
            form in net for form in forms for net in self.networks if form.version == net.version
        )


def _host_key(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def _embedded_ipv4(addr: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(addr, ipaddress.IPv6Address):
        return None
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr in _NAT64:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def refusal(addr: IPAddress) -> str | None:
    """Why Radar does not send to ``addr`` ("loopback", "private" …), None when it is global."""
    inner = _embedded_ipv4(addr)
    if inner is not None:
        why = refusal(inner)
        if why is not None or addr.ipv4_mapped is not None:  # a mapped address is its IPv4 one
            return why
    for kind, test in _KINDS:
        if test(addr):
            return kind
    return None


def parse_address(text: str) -> IPAddress:
    """An address as ``getaddrinfo`` gives it (an IPv6 scope, ``fe80::1%eth0``, dropped)."""
    return ipaddress.ip_address(text.split("%", 1)[0])


def vet(
    host: str,
    port: int,
    allow: Iterable[str] | AllowList = (),
    *,
    resolve: Resolver = socket.getaddrinfo,
) -> list[str]:
    """The addresses of ``host`` a webhook may connect to, in the resolver's order; raises
    :class:`TargetRefused` when any address it resolves to is refused (one bad address
    refuses the host: which one a connection would use is not ours to choose) and lets the
    resolver's ``OSError`` (``socket.gaierror``) through when it does not resolve."""
    rules = allow if isinstance(allow, AllowList) else AllowList.parse(allow)
    infos = resolve(host, port, type=socket.SOCK_STREAM)
    found = list(dict.fromkeys(info[4][0] for info in infos))
    if not found:
        raise socket.gaierror(socket.EAI_NONAME, f"{host} has no address")
    if rules.names(host):
        return found
    for text in found:
        addr = parse_address(text)
        why = refusal(addr)
        if why is not None and not rules.admits(addr):
            shown = (
                host if _host_key(host) == _host_key(text) else f"{host} resolves to {text}, which"
            )
            article = "an" if why[0] in "aeiou" else "a"
            raise TargetRefused(
                f"webhook target {shown} is {article} {why} address, and "
                "delivery.webhook_allow names neither the host nor its network"
            )
    return found


def endpoint(url: httpx.URL) -> tuple[str, int]:
    """The host (ASCII, as the connection resolves it) and port a URL connects to."""
    return url.raw_host.decode("ascii"), url.port or (443 if url.scheme == "https" else 80)


def check_url(
    url: str, allow: Iterable[str] | AllowList = (), *, resolve: Resolver = socket.getaddrinfo
) -> None:
    """Raise :class:`TargetRefused` for a webhook URL that is not an http(s) URL with a host or
    that resolves to a refused address now. A host that does not resolve at all passes: it
    may be a DNS name not published yet, and every send checks again (:func:`vet`)."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise TargetRefused(f"not a valid webhook URL: {str(exc).split(':')[0]}") from None
    if parsed.scheme not in ("http", "https") or not parsed.raw_host:
        raise TargetRefused("a webhook target must be an http(s) URL with a host")
    host, port = endpoint(parsed)
    try:
        vet(host, port, allow, resolve=resolve)
    except (OSError, UnicodeError):
        return
