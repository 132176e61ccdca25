"""Registry host names: `host[:port]` parsing, Docker Hub's API host, and what counts as loopback.

One rule each, used by the config, the embedded registry and the OCI client alike, so they
never disagree on whether a registry is local (it decides plain HTTP and bypassing proxies).

A registry host is `name[:port]` as an image reference spells it: a DNS name, an IPv4
address, or an IPv6 address in brackets (`[::1]:5000`). A bare IPv6 address without
brackets (`::1`) has no port: its colons are part of the address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

DEFAULT_REGISTRY = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
# The names Docker Hub goes by in references and in docker's config.json.
HUB_NAMES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


def split_host_port(host: str) -> tuple[str, int | None]:
    """(name without brackets, port or None) of `host[:port]`.

    `[::1]:5000` -> ("::1", 5000); `::1` -> ("::1", None); `reg.lan:5000` -> ("reg.lan", 5000).
    A port that is not a number in 0-65535 is a ValueError: the caller words the message.
    """
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            raise ValueError(f"{host!r}: '[' without a closing ']'")
        name, rest = host[1:end], host[end + 1 :]
        if not rest:
            return name, None
        if not rest.startswith(":"):
            raise ValueError(f"{host!r}: only ':port' may follow ']'")
        return name, _port(host, rest[1:])
    if host.count(":") == 1:
        name, _, port = host.partition(":")
        return name, _port(host, port)
    return host, None


def _port(host: str, text: str) -> int:
    if not text.isascii() or not text.isdigit() or int(text) > 65535:
        raise ValueError(f"{host!r}: port {text!r} is not a number from 0 to 65535")
    return int(text)


def hostname(host: str) -> str:
    """`host[:port]` without the port and the IPv6 brackets; lenient: a bad port is simply dropped."""
    try:
        return split_host_port(host)[0]
    except ValueError:
        if host.startswith("["):
            return host[1:].split("]", 1)[0]
        return host.partition(":")[0]


def port(host: str) -> int | None:
    """The port of `host[:port]`, None when none (or an unreadable one) is given."""
    try:
        return split_host_port(host)[1]
    except ValueError:
        return None


def strip_scheme(text: str) -> str:
    """`https://host:5000/v1/` -> `host:5000`: config.json keys and flags may be URLs; hosts are compared bare."""
    for prefix in ("https://", "http://"):
        text = text.removeprefix(prefix)
    return text.split("/", 1)[0]


def api_host(registry: str) -> str:
    """Where a registry's v2 API answers: Docker Hub serves it on registry-1.docker.io, not docker.io."""
    return DOCKER_HUB_API if registry in ("docker.io", "index.docker.io") else registry


def is_loopback(host: str) -> bool:
    """Whether `host[:port]` names this machine by name or address: `localhost`, 127.0.0.0/8 or ::1.

    The decision is made on the text alone, never by a DNS lookup: `127.0.0.1.nip.io` is a DNS
    name (a public wildcard service resolves it to 127.0.0.1), not an address, so it is NOT
    loopback here; it gets HTTPS and the proxy settings like any other name unless it is listed
    in `[registry] insecure`. What an arbitrary name resolves to can change; the text cannot.
    """
    name = hostname(host).lower().rstrip(".")
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return (mapped or address).is_loopback  # ::ffff:127.0.0.1 too, on every Python version


def is_listed(host: str, listed: Iterable[str]) -> bool:
    """Whether `host[:port]` is in `listed` (e.g. `[registry] insecure`): an entry with a port names
    that port only, an entry without one names the host on every port. Schemes in entries are ignored."""
    entries = {strip_scheme(entry) for entry in listed if entry}
    return host in entries or hostname(host) in entries
