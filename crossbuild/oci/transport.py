"""HTTP to registries: HTTPS or plain HTTP per host, proxies, redirects, retries, streamed bodies.

- Scheme: loopback hosts (crossbuild.hosts) try plain HTTP first, `[registry] insecure` hosts
  HTTPS without certificate checks first, every other host HTTPS only, like dockerd.
- Proxies: $http_proxy / $https_proxy / $no_proxy apply, except to loopback hosts.
- Redirects are followed by hand so the registry's Authorization never reaches another host
  (blob storage behind a signed URL carries its own auth).
- Retries: an idempotent request (GET, HEAD, PUT, DELETE) whose body can be sent again is
  retried with exponential backoff when the connection is reset or the answer is a 5xx, at
  most RetryPolicy.attempts tries and never past RetryPolicy.budget seconds in all. Refused
  connections and timeouts are not retried: the registry is not there, and waiting longer
  would only delay the one-line error.
- Streaming: `stream()` hands back a response whose body the caller reads in chunks; a body
  cut short (reset, or closed before Content-Length) raises NoAnswer, never a short read.

[dist] OCI distribution-spec spec.md (end-N endpoint ids)
"""

from __future__ import annotations

import functools
import http.client
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from crossbuild import hosts
from crossbuild.oci.errors import RegistryError, SpeaksPlainHTTP, Unreachable, one_line

MAX_REDIRECTS = 5
BODY_BLOCK = 1 << 20  # bytes of a streamed request body read and sent at once
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE"})
# Not a passing fault: the server says it will never do this.
_PERMANENT_5XX = frozenset({501, 505})

Body = bytes | BinaryIO | None  # a stream body needs a Content-Length header and is never sent twice


class NoAnswer(Exception):
    """No (complete) HTTP answer; `reason` is short and free of credentials.

    `tls_failed`: the TCP connection was made but the TLS handshake broke for another reason than
    an untrusted certificate (e.g. WRONG_VERSION_NUMBER: the other side does not speak TLS).
    `reset`: the connection was reset or closed mid-answer, which a retry may get past.
    """

    def __init__(self, reason: str, *, tls_failed: bool = False, reset: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.tls_failed = tls_failed
        self.reset = reset


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a passing fault (reset connection, 5xx).

    Try n (n >= 2) waits first_delay * factor**(n-2), at most max_delay (or the server's
    Retry-After, at most max_delay); no try starts once `budget` seconds have passed since the first.
    """

    attempts: int = 4
    first_delay: float = 0.5
    factor: float = 2.0
    max_delay: float = 8.0
    budget: float = 60.0

    def delay(self, tries: int, retry_after: float | None = None) -> float:
        """Seconds to wait after `tries` tries before the next one."""
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, self.max_delay)
        return min(self.first_delay * self.factor ** (tries - 1), self.max_delay)

    def next_delay(self, tries: int, elapsed: float, retry_after: float | None = None) -> float | None:
        """The wait before another try, or None when the count or the time budget is spent."""
        if tries >= self.attempts:
            return None
        wait = self.delay(tries, retry_after)
        if elapsed + wait > self.budget:
            return None
        return wait


NO_RETRY = RetryPolicy(attempts=1)


def retryable_status(status: int) -> bool:
    """5xx answers that may pass: 500, 502, 503, 504 and the like, not 501/505."""
    return 500 <= status <= 599 and status not in _PERMANENT_5XX


def retry_after(value: str) -> float | None:
    """A Retry-After header in seconds (RFC 9110 10.2.3); the HTTP-date form is ignored."""
    value = value.strip()
    return float(value) if value.isascii() and value.isdigit() else None


def _header_dict(items: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for name, value in items:
        headers.setdefault(name.lower(), []).append(value)
    return headers


def _is_reset(exc: object) -> bool:
    return isinstance(exc, ConnectionResetError | ConnectionAbortedError | BrokenPipeError | http.client.IncompleteRead)


def describe_network_error(exc: BaseException, timeout: float) -> str:
    """A short reason for 'no answer', without URLs (which may carry signed query strings)."""
    inner: object = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(inner, ssl.SSLCertVerificationError):
        return (
            f"TLS certificate not trusted ({inner.verify_message}); if expected, list the host in [registry] insecure"
        )
    if isinstance(inner, TimeoutError):
        return f"no answer within {timeout:g}s"
    if isinstance(inner, http.client.RemoteDisconnected):
        return "the connection was closed without an answer"
    if isinstance(inner, OSError) and inner.strerror:
        return inner.strerror
    return one_line(str(inner) or type(inner).__name__, 200)


def _no_answer(exc: BaseException, timeout: float) -> NoAnswer:
    inner = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    tls_failed = isinstance(inner, ssl.SSLError) and not isinstance(inner, ssl.SSLCertVerificationError)
    return NoAnswer(describe_network_error(exc, timeout), tls_failed=tls_failed, reset=_is_reset(inner))


@dataclass
class Response:
    """An HTTP answer: the whole body, or (streamed) an open one read with read()."""

    status: int
    headers: dict[str, list[str]]
    body: bytes = b""
    _stream: Any = field(default=None, repr=False)
    _left: int | None = None  # bytes of a streamed body still due, from Content-Length
    _timeout: float = 30.0

    def header(self, name: str) -> str:
        values = self.headers.get(name.lower())
        return values[0] if values else ""

    def read(self, size: int) -> bytes:
        """Up to `size` bytes of a streamed body; b"" at its end. A body cut short raises NoAnswer."""
        if self._stream is None:
            return b""
        try:
            data = bytes(self._stream.read(size))
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise _no_answer(exc, self._timeout) from exc
        if self._left is not None:
            if not data and self._left > 0:
                raise NoAnswer(f"the connection closed with {self._left} bytes of the body unsent", reset=True)
            self._left -= len(data)
        return data

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are followed by hand (Transport.send) so Authorization never reaches another host."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _big_blocks(http_class: Any) -> Any:
    """http.client sends a file body `blocksize` bytes per read and send, 8 KiB by default: a 1 GiB upload
    was 131 000 of each, and with uploads in parallel as many GIL hand-offs (strace: 780 000 futex
    calls, more system time than the bytes took). BODY_BLOCK per send instead."""
    return functools.partial(http_class, blocksize=BODY_BLOCK)


class _HTTPHandler(urllib.request.HTTPHandler):
    def do_open(self, http_class: Any, req: urllib.request.Request, **kwargs: Any) -> Any:
        return super().do_open(_big_blocks(http_class), req, **kwargs)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def do_open(self, http_class: Any, req: urllib.request.Request, **kwargs: Any) -> Any:
        return super().do_open(_big_blocks(http_class), req, **kwargs)


def unreachable(host: str, reason: str, reference: str = "") -> Unreachable:
    """The one line for a registry that does not answer, with the fix that fits where it is."""
    if hosts.is_loopback(host) and hosts.port(host) == 5000:
        hint = "start it with `make registry.up` or check the address"
    elif hosts.is_loopback(host):
        hint = "start a registry there or check the address (REGISTRY_PREFIX)"
    else:
        hint = "check the address and your network or proxy settings"
    return Unreachable(
        f"registry {host} is not reachable: {reason}; {hint}", host=host, reference=reference, reason=reason
    )


class Transport:
    """HTTP exchanges with registries and the hosts they send us to (token services, blob storage).

    Thread-safe for concurrent requests: the per-host scheme cache and the openers are only ever
    filled with the same values.
    """

    def __init__(
        self,
        insecure: Iterable[str] = (),
        timeout: float = 30,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.insecure = frozenset(hosts.strip_scheme(h) for h in insecure if h)
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.sleep, self.clock = sleep, clock
        self._schemes: dict[str, str] = {}
        self._openers: dict[tuple[bool, bool], urllib.request.OpenerDirector] = {}

    def is_insecure(self, host: str) -> bool:
        """Loopback hosts and [registry] insecure entries (with or without the port) skip TLS checks."""
        return hosts.is_loopback(host) or hosts.is_listed(host, self.insecure)

    # -- one exchange --

    def _opener(self, verify_tls: bool, use_proxy: bool) -> urllib.request.OpenerDirector:
        key = (verify_tls, use_proxy)
        if key not in self._openers:
            context = ssl.create_default_context()
            if not verify_tls:  # self-signed certificates on hosts the user listed as insecure
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            handlers: list[urllib.request.BaseHandler] = [
                _HTTPHandler(),
                _HTTPSHandler(context=context),
                _NoRedirect(),
            ]
            if not use_proxy:  # a loopback registry must not go through $http_proxy
                handlers.append(urllib.request.ProxyHandler({}))
            self._openers[key] = urllib.request.build_opener(*handlers)
        return self._openers[key]

    def _open(self, method: str, url: str, headers: Mapping[str, str], body: Body) -> Response:
        """One exchange with the body left unread (streamed); only 'no answer' raises NoAnswer.

        Error statuses come back with their (small) body read, for the message.
        """
        host = urllib.parse.urlsplit(url).netloc
        # Only http(s) URLs get here: built from a registry host, a token realm or a redirect we checked.
        request = urllib.request.Request(url, data=body, headers=dict(headers), method=method)  # noqa: S310
        opener = self._opener(not self.is_insecure(host), not hosts.is_loopback(host))
        try:
            resp = opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            try:
                error_body = exc.read()
            except (OSError, http.client.HTTPException):
                error_body = b""
            finally:
                exc.close()
            return Response(exc.code, _header_dict(exc.headers.items() if exc.headers else []), error_body)
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
            raise _no_answer(exc, self.timeout) from exc
        length = resp.headers.get("Content-Length")
        left = int(length) if length and length.isdigit() and method != "HEAD" else None
        return Response(int(resp.status), _header_dict(resp.headers.items()), b"", resp, left, self.timeout)

    def exchange(self, method: str, url: str, headers: Mapping[str, str], body: Body = None) -> Response:
        """One exchange, body read whole (tokens, probes, error bodies); any status is returned, no retries."""
        return self._hop(method, url, headers, body, stream=False)

    # -- retries --

    def with_retries(self, method: str, body: Body, attempt: Callable[[], Response]) -> Response:
        """Run `attempt` again on a reset or a 5xx while RetryPolicy allows it (idempotent requests
        whose body can be sent twice only). The last answer or NoAnswer is what the caller gets."""
        retriable = method in IDEMPOTENT and (body is None or isinstance(body, bytes))
        started, tries = self.clock(), 0
        while True:
            tries += 1
            try:
                resp = attempt()
            except NoAnswer as exc:
                wait = self.retry.next_delay(tries, self.clock() - started) if retriable and exc.reset else None
                if wait is None:
                    raise
            else:
                if not (retriable and retryable_status(resp.status)):
                    return resp
                wait = self.retry.next_delay(tries, self.clock() - started, retry_after(resp.header("retry-after")))
                if wait is None:
                    return resp
                resp.close()
            self.sleep(wait)

    # -- scheme of a registry --

    def probe(self, host: str) -> str:
        """'http' or 'https', whichever answers GET /v2/ ([dist] end-1: 200, or 401 when auth is needed).

        Loopback hosts try plain HTTP first, other insecure hosts HTTPS (unverified) first like
        dockerd; other hosts only HTTPS.
        """
        order: tuple[str, ...] = ("https",)
        if hosts.is_loopback(host):
            order = ("http", "https")
        elif self.is_insecure(host):
            order = ("https", "http")
        reasons = []
        tls_failed = False
        for scheme in order:
            url = f"{scheme}://{hosts.api_host(host)}/v2/"
            try:
                resp = self.with_retries("GET", None, functools.partial(self.exchange, "GET", url, {}))
            except NoAnswer as exc:
                reasons.append(f"{scheme}: {exc.reason}" if len(order) > 1 else exc.reason)
                tls_failed = tls_failed or (scheme == "https" and exc.tls_failed)
                continue
            if resp.status in (200, 401):
                self._schemes[host] = scheme
                return scheme
            reasons.append(f"{scheme}: GET /v2/ answered HTTP {resp.status}, not a registry")
        if tls_failed and "http" not in order and self._answers_plain_http(host):
            raise SpeaksPlainHTTP(host)
        raise unreachable(host, ", ".join(reasons))

    def _answers_plain_http(self, host: str) -> bool:
        """Whether GET /v2/ over plain HTTP gets a registry's answer: only to explain a broken TLS handshake
        (no credentials are sent, and the answer is not used for anything else)."""
        try:
            resp = self.exchange("GET", f"http://{hosts.api_host(host)}/v2/", {})
        except NoAnswer:
            return False
        return resp.status in (200, 401)

    def scheme(self, registry: str) -> str:
        """The scheme `registry` is spoken to with: HTTPS unless it is loopback or insecure (then probed once)."""
        if registry not in self._schemes:
            if not self.is_insecure(registry):
                return "https"
            self.probe(registry)
        return self._schemes[registry]

    def url(self, registry: str, target: str) -> str:
        """An absolute URL for an API path ("/v2/...") or a Location the registry sent (relative or absolute)."""
        return urllib.parse.urljoin(f"{self.scheme(registry)}://{hosts.api_host(registry)}/", target)

    # -- requests with redirects and retries --

    def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: Body = None,
        *,
        registry: str,
        reference: str = "",
        stream: bool = False,
    ) -> Response:
        """Send, retrying passing faults and following redirects ([dist] end-2: blobs may redirect to
        storage) without leaking auth. With `stream`, a 2xx answer's body is left for the caller to
        read (and close); otherwise it is read whole. Errors name `registry` and carry `reference`."""
        send_headers = dict(headers)
        for _ in range(MAX_REDIRECTS + 1):
            hop = functools.partial(self._hop, method, url, send_headers, body, stream)
            try:
                resp = self.with_retries(method, body, hop)
            except NoAnswer as exc:
                raise self._no_answer_error(exc, url, registry, reference) from exc
            location = resp.header("location")
            if resp.status not in REDIRECT_CODES or not location:
                return resp
            resp.close()
            target = urllib.parse.urljoin(url, location)
            if urllib.parse.urlsplit(target).scheme not in ("http", "https"):
                raise RegistryError(
                    f"registry {registry} redirected {method} {url.partition('?')[0]} to a non-HTTP URL",
                    host=registry,
                    reference=reference,
                    reason="redirect to a non-HTTP URL",
                )
            if urllib.parse.urlsplit(target).netloc != urllib.parse.urlsplit(url).netloc:
                send_headers.pop("Authorization", None)  # signed storage URLs carry their own auth
            if resp.status == 303 and method != "HEAD":
                method, body = "GET", None
            elif body is not None and not isinstance(body, bytes):
                raise RegistryError(
                    f"registry {registry} redirected {method} {url.partition('?')[0]} of a streamed body; "
                    "crossbuild sends those once only",
                    host=registry,
                    reference=reference,
                    reason="redirected a streamed upload",
                )
            url = target
        raise RegistryError(
            f"registry {registry}: more than {MAX_REDIRECTS} redirects for {method} {url.partition('?')[0]}",
            host=registry,
            reference=reference,
            reason="too many redirects",
        )

    def _hop(self, method: str, url: str, headers: Mapping[str, str], body: Body, stream: bool) -> Response:
        """One try at one URL: a streamed 2xx is handed back open, anything else read whole."""
        resp = self._open(method, url, headers, body)
        if stream and 200 <= resp.status < 300:
            return resp
        try:
            chunks = [resp.body]
            while chunk := resp.read(1 << 16):
                chunks.append(chunk)
            resp.body = b"".join(chunks)
        finally:
            resp.close()
        return resp

    def _no_answer_error(self, exc: NoAnswer, url: str, registry: str, reference: str) -> Unreachable:
        host = urllib.parse.urlsplit(url).netloc
        if host == hosts.api_host(registry):
            if exc.tls_failed and url.startswith("https://") and self._answers_plain_http(registry):
                return SpeaksPlainHTTP(registry, reference)
            return unreachable(registry, exc.reason, reference)
        return Unreachable(
            f"storage {host} that registry {registry} redirected to is not reachable: {exc.reason}",
            host=registry,
            reference=reference,
            reason=exc.reason,
        )
