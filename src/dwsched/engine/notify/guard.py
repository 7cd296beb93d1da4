"""The outbound guard: which addresses a request made on a user's behalf may reach.

A webhook URL is checked before anything is sent: http or https only, no user or password
in it, and every address its host name resolves to must pass the operator's policy (deny
ranges first, then, if the operator set any, the allow ranges). The checked addresses are
returned, and the connection is made to one of them (`outbound.py`): the name is resolved
once, so a DNS answer that changes between the check and the connection (DNS rebinding)
cannot lead the request anywhere the guard did not see.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import httpx

from dwsched.engine.notify.errors import Undeliverable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolve = Callable[[str, int, float], Sequence[str]]
"""(host, port, seconds) -> the addresses the host name resolves to, in preference order."""


@dataclass(frozen=True, slots=True)
class AddressRange:
    """A network and the name a refusal gives it (e.g. `cloud metadata service`)."""

    network: IPNetwork
    name: str

    def __str__(self) -> str:
        return f"{self.network} ({self.name})"


def _ranges(name: str, *cidrs: str) -> tuple[AddressRange, ...]:
    return tuple(AddressRange(ipaddress.ip_network(cidr), name) for cidr in cidrs)


METADATA = (
    *_ranges("cloud metadata service", "169.254.169.254/32", "fd00:ec2::254/128"),
    *_ranges("Alibaba Cloud metadata service", "100.100.100.200/32"),
)
LINK_LOCAL = _ranges("link-local", "169.254.0.0/16", "fe80::/10")
UNROUTABLE = (
    *_ranges("this host (unspecified)", "0.0.0.0/8", "::/128"),
    *_ranges("multicast or broadcast", "224.0.0.0/4", "255.255.255.255/32", "ff00::/8"),
)
LOOPBACK = _ranges("loopback", "127.0.0.0/8", "::1/128")
PRIVATE = _ranges(
    "private", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"
)
DEFAULT_DENY = (*METADATA, *LINK_LOCAL, *UNROUTABLE)
"""Denied unless the operator's deny list leaves them out: loopback and private ranges are
allowed by default (receivers on the same host or network are common when self-hosting)."""

NAMED_RANGES = {
    "default": DEFAULT_DENY,
    "metadata": METADATA,
    "link-local": LINK_LOCAL,
    "loopback": LOOPBACK,
    "private": PRIVATE,
}


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    """Which addresses a webhook may reach. An address in `deny` is refused; when `allow`
    is not empty, an address outside every allow range is refused too. Deny wins: an
    allow list of 0.0.0.0/0 does not open the metadata service."""

    deny: tuple[AddressRange, ...] = DEFAULT_DENY
    allow: tuple[AddressRange, ...] = ()

    def refusal(self, address: IPAddress) -> str | None:
        """Why `address` is refused (naming the range that refuses it), or None."""
        for candidate in _embedded(address):
            matches = [r for r in self.deny if candidate in r.network]
            if matches:
                narrowest = max(matches, key=lambda r: r.network.prefixlen)
                carried = f" (carrying {candidate})" if candidate != address else ""
                return f"{address}{carried} is in the denied range {narrowest}"
        if self.allow and not any(_inside(address, r) for r in self.allow):
            return f"{address} is in no allowed range ({', '.join(map(str, self.allow))})"
        return None


def parse_ranges(text: str, name: str) -> tuple[AddressRange, ...]:
    """Ranges from an operator's setting: CIDRs or addresses separated by commas or spaces,
    named `name` in refusals, and the keywords `default`, `metadata`, `link-local`,
    `loopback`, `private`. Raises ValueError naming a bad entry."""
    found: list[AddressRange] = []
    for word in text.replace(",", " ").split():
        if word.lower() in NAMED_RANGES:
            found += NAMED_RANGES[word.lower()]
            continue
        try:
            found.append(AddressRange(ipaddress.ip_network(word, strict=False), name))
        except ValueError:
            raise ValueError(f"{word!r} is not an address range") from None
    return tuple(found)


@dataclass(frozen=True, slots=True)
class Destination:
    """A checked URL and the addresses it may be reached at."""

    url: httpx.URL
    addresses: tuple[str, ...]


def check(url: str, policy: OutboundPolicy, resolve: Resolve, seconds: float) -> Destination:
    """`url` checked against `policy`, or `Undeliverable` naming the rule that refused it."""
    parsed = _parsed(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    host = parsed.raw_host.decode("ascii").strip("[]")
    addresses = _resolved(host, port, resolve, seconds)
    for text in addresses:
        reason = policy.refusal(_address(text))
        if reason:
            raise Undeliverable(f"refused by the outbound guard: {reason}")
    return Destination(parsed, addresses)


def _parsed(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise Undeliverable("refused by the outbound guard: not a valid URL") from None
    if parsed.scheme not in ("http", "https"):
        raise Undeliverable("refused by the outbound guard: only http and https URLs are sent")
    if parsed.userinfo:
        raise Undeliverable("refused by the outbound guard: the URL carries a user or password")
    if not parsed.raw_host:
        raise Undeliverable("refused by the outbound guard: the URL has no host")
    return parsed


def _resolved(host: str, port: int, resolve: Resolve, seconds: float) -> tuple[str, ...]:
    try:
        return (str(ipaddress.ip_address(host)),)
    except ValueError:
        pass
    try:
        found = tuple(dict.fromkeys(resolve(host, port, seconds)))
    except TimeoutError:
        raise Undeliverable(f"{host} did not resolve within {seconds:g}s", retryable=True) from None
    except socket.gaierror as exc:
        retry = exc.errno in (socket.EAI_AGAIN, getattr(socket, "EAI_SYSTEM", None))
        raise Undeliverable(f"{host} does not resolve ({exc.strerror})", retryable=retry) from None
    if not found:
        raise Undeliverable(f"{host} resolves to no address", retryable=True)
    return found


def _address(text: str) -> IPAddress:
    return ipaddress.ip_address(text.split("%", 1)[0])


def _embedded(address: IPAddress) -> Iterator[IPAddress]:
    """The address and every IPv4 address it carries (IPv4-mapped, 6to4, Teredo, NAT64),
    so that ::ffff:169.254.169.254 is refused like 169.254.169.254."""
    yield address
    if isinstance(address, ipaddress.IPv4Address):
        return
    for inner in (address.ipv4_mapped, address.sixtofour):
        if inner is not None:
            yield inner
    if address.teredo is not None:
        yield from address.teredo
    if address in NAT64:
        yield ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)


NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _inside(address: IPAddress, allowed: AddressRange) -> bool:
    return any(candidate in allowed.network for candidate in _embedded(address))


def system_resolve(host: str, port: int, seconds: float) -> Sequence[str]:
    """The system resolver's answer for `host`, or TimeoutError after `seconds` (the lookup
    itself cannot be cancelled; its thread ends when the resolver gives up)."""
    answer: list[Sequence[str]] = []
    failure: list[BaseException] = []

    def lookup() -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            answer.append([str(info[4][0]) for info in infos])
        except OSError as exc:
            failure.append(exc)

    thread = threading.Thread(target=lookup, name="dwsched-resolve", daemon=True)
    thread.start()
    thread.join(seconds)
    if failure:
        raise failure[0]
    if not answer:
        raise TimeoutError(host)
    return answer[0]
