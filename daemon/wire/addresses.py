"""Which hosts may talk to the daemon: the one place that reads an IP address from a client.

Every loopback and allow-list question goes through here: the config's check that a non-loopback
``host`` has an allow-list (:func:`is_loopback`), the OSC server's per-packet check
(:class:`AllowList`) and the reply routing's "is this the same endpoint" (:func:`endpoint_key`).
One reading of an address keeps them from disagreeing:

- an IPv4 address seen through a dual-stack IPv6 socket (``::ffff:192.168.1.5``) is that IPv4
  address: it is loopback when the IPv4 address is, and it lies in ``192.168.1.0/24``;
- a scope id (``fe80::1%eth0``) names an interface, not a different host: it is ignored;
- brackets (``[::1]``) are accepted around an IPv6 literal;
- ``localhost`` (and ``*.localhost``) is loopback; no other name is resolved.

Pure and torch-free; every function may be called from any thread.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

__all__ = [
    "IP",
    "AllowList",
    "Network",
    "endpoint_key",
    "is_loopback",
    "parse_ip",
    "parse_network",
]

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_MAPPED_PREFIX = 96  # ::ffff:0:0/96 holds the IPv4-mapped addresses


def parse_ip(host: str) -> IP | None:
    """``host`` as an IP address, IPv4-mapped IPv6 unwrapped to IPv4; None if it is not one.

    ``"::ffff:10.0.0.5"`` → ``IPv4Address('10.0.0.5')``; ``"fe80::1%eth0"`` →
    ``IPv6Address('fe80::1')`` (the scope id dropped); ``"[::1]"`` → ``IPv6Address('::1')``;
    ``"studio.local"`` → None (names are not resolved).
    """
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        ip = ipaddress.ip_address(text.split("%", maxsplit=1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ``::1``, ``::ffff:127.x``).

    Host names other than ``localhost`` are not resolved and count as not loopback, and so do
    the wildcards ``0.0.0.0`` and ``::`` (they listen on every interface).
    """
    name = host.strip().lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    ip = parse_ip(name)
    return ip is not None and ip.is_loopback


def parse_network(text: str) -> Network:
    """A network (CIDR, or one address) such as ``"192.168.1.0/24"`` or ``"10.0.0.5"``.

    Host bits are allowed (``192.168.1.7/24`` is ``192.168.1.0/24``). An IPv4-mapped IPv6
    network (``::ffff:192.168.1.0/120``) becomes the IPv4 network it maps, so that it matches
    the unwrapped addresses :func:`parse_ip` returns. Raises ValueError for anything else.
    """
    network = ipaddress.ip_network(text.strip(), strict=False)
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= _MAPPED_PREFIX:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.IPv4Network((mapped, network.prefixlen - _MAPPED_PREFIX))
    return network


class AllowList:
    """Loopback always; other hosts only from ``networks`` (texts :func:`parse_network` reads).

    Raises ValueError at construction for an entry that is not a network. Immutable.
    """

    def __init__(self, networks: Iterable[str] = ()) -> None:
        self.networks: tuple[Network, ...] = tuple(parse_network(n) for n in networks)

    def __repr__(self) -> str:
        return f"AllowList({[str(n) for n in self.networks]!r})"

    def allows(self, host: str) -> bool:
        """May a packet from ``host`` (as the socket reports it) be handled?"""
        ip = parse_ip(host)
        if ip is None:
            return False
        if ip.is_loopback:
            return True
        return any(ip in network for network in self.networks)


def endpoint_key(address: tuple[str, int]) -> tuple[str, int]:
    """One spelling per UDP endpoint, so that the same recipient is never sent a reply twice.

    ``("::ffff:127.0.0.1", 9001)``, ``("127.0.0.1", 9001)`` and ``("127.0.0.1", "9001")`` are
    one endpoint; ``("fe80::1%eth0", 9001)`` keeps its scope (it picks the interface to send
    on). Host names are lower-cased, not resolved.
    """
    host, port = address[0], int(address[1])
    if "%" in host:
        return host, port
    ip = parse_ip(host)
    return (str(ip) if ip is not None else host.strip().lower()), port
