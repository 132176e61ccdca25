"""crossbuild.hosts: the one place that splits host:port and decides what is loopback.

The config (RegistryConfig.is_insecure), the embedded registry and the OCI transport all ask
it; the agreement test at the end checks they give the same answers for the same hosts.
"""

from __future__ import annotations

import pytest

from crossbuild import hosts
from crossbuild.config import RegistryConfig
from crossbuild.oci.transport import Transport

SPLIT = [
    ("registry.lan", ("registry.lan", None)),
    ("registry.lan:5000", ("registry.lan", 5000)),
    ("127.0.0.1:5000", ("127.0.0.1", 5000)),
    ("localhost", ("localhost", None)),
    ("[::1]", ("::1", None)),
    ("[::1]:5000", ("::1", 5000)),
    ("[fe80::1%eth0]:443", ("fe80::1%eth0", 443)),
    ("::1", ("::1", None)),
    ("2001:db8::1", ("2001:db8::1", None)),
    (":5000", ("", 5000)),
    ("host:0", ("host", 0)),
    ("host:65535", ("host", 65535)),
]


@pytest.mark.parametrize(("host", "want"), SPLIT, ids=[h for h, _ in SPLIT])
def test_split_host_port(host: str, want: tuple[str, int | None]) -> None:
    assert hosts.split_host_port(host) == want


BAD = [
    ("host:http", "port 'http' is not a number"),
    ("host:65536", "port '65536' is not a number from 0 to 65535"),
    ("host:", "port '' is not a number"),
    ("[::1", "'[' without a closing ']'"),
    ("[::1]5000", "only ':port' may follow ']'"),
    ("host:\uff15\uff10\uff10\uff10", "is not a number"),  # fullwidth 5000: str.isdigit says yes, ports say no
]


@pytest.mark.parametrize(
    ("host", "fragment"), BAD, ids=["name-port", "too-big", "empty", "no-bracket", "junk", "unicode"]
)
def test_split_host_port_refuses(host: str, fragment: str) -> None:
    with pytest.raises(ValueError) as info:
        hosts.split_host_port(host)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("host", "name", "port"),
    [("reg:abc", "reg", None), ("[::1", "::1", None), ("[::1]:5000", "::1", 5000), ("a.b", "a.b", None)],
    ids=["bad-port", "bad-bracket", "ipv6", "plain"],
)
def test_hostname_and_port_are_lenient(host: str, name: str, port: int | None) -> None:
    assert hosts.hostname(host) == name
    assert hosts.port(host) == port


LOOPBACK = [
    ("localhost", True),
    ("LOCALHOST:5000", True),
    ("localhost.", True),
    ("127.0.0.1", True),
    ("127.0.0.1:5000", True),
    ("127.255.255.254:80", True),
    ("[::1]", True),
    ("[::1]:5000", True),
    ("::1", True),
    ("[::ffff:127.0.0.1]:5000", True),
    ("127.0.0.1.nip.io:5000", False),  # a DNS name that resolves to loopback is still a name
    ("127.example.com", False),
    ("localhost.example.com:5000", False),
    ("128.0.0.1", False),
    ("0.0.0.0:5000", False),
    ("10.0.0.1:5000", False),
    ("[::2]:5000", False),
    ("registry:5000", False),
    ("docker.io", False),
]


@pytest.mark.parametrize(("host", "want"), LOOPBACK, ids=[h for h, _ in LOOPBACK])
def test_is_loopback(host: str, want: bool) -> None:
    assert hosts.is_loopback(host) is want


LISTED = [
    ("reg.lan:5000", ["reg.lan:5000"], True),
    ("reg.lan:5001", ["reg.lan:5000"], False),
    ("reg.lan", ["reg.lan:5000"], False),
    ("reg.lan:5001", ["reg.lan"], True),
    ("reg.lan", ["https://reg.lan/"], True),
    ("[::2]:5000", ["::2"], True),
    ("other.lan:5000", ["reg.lan"], False),
    ("reg.lan", [""], False),
]


@pytest.mark.parametrize(
    ("host", "listed", "want"),
    LISTED,
    ids=["same-port", "other-port", "entry-has-port", "entry-any-port", "entry-url", "ipv6", "other-host", "blank"],
)
def test_is_listed(host: str, listed: list[str], want: bool) -> None:
    assert hosts.is_listed(host, listed) is want


@pytest.mark.parametrize(
    ("registry", "api"),
    [("docker.io", "registry-1.docker.io"), ("index.docker.io", "registry-1.docker.io"), ("ghcr.io", "ghcr.io")],
    ids=["docker.io", "index.docker.io", "other"],
)
def test_api_host(registry: str, api: str) -> None:
    assert hosts.api_host(registry) == api


@pytest.mark.parametrize(
    ("text", "host"),
    [("https://index.docker.io/v1/", "index.docker.io"), ("http://reg:5000", "reg:5000"), ("reg:5000", "reg:5000")],
    ids=["https-url", "http-url", "bare"],
)
def test_strip_scheme(text: str, host: str) -> None:
    assert hosts.strip_scheme(text) == host


@pytest.mark.parametrize("host", [h for h, _ in LOOPBACK] + [h for h, _, _ in LISTED], ids=str)
def test_config_and_transport_agree_on_insecure_hosts(host: str) -> None:
    """Issue 11: config.py and registry.py used to disagree on 127.0.0.1.nip.io:5000."""
    listed = ("reg.lan", "other.lan:5000")
    assert RegistryConfig(insecure=listed).is_insecure(host) is Transport(insecure=listed).is_insecure(host)
