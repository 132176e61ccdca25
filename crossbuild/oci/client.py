"""The registry client: manifests, tags and blobs over the OCI Distribution API v2, stdlib only.

crossbuild reads indexes, manifests, configs and layers straight from the registry (no docker
daemon, skopeo or crane needed) to check what was pushed, and moves a tag by re-putting an
existing manifest byte-for-byte (like `crane tag`), so a tag only ever points at an index that
passed its checks. Blobs stream through in CHUNK_SIZE pieces with their digest checked as the
bytes flow; blob uploads live in crossbuild.oci.upload and use only the public methods here.

[dist] OCI distribution-spec spec.md ("end-N" are its endpoint ids)
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import tempfile
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from crossbuild import hosts
from crossbuild.errors import UserError
from crossbuild.oci import layers
from crossbuild.oci.auth import Authorizer
from crossbuild.oci.errors import CorruptContent, Denied, NotFound, RegistryError, error_codes, error_message, one_line
from crossbuild.oci.mediatypes import ACCEPT, Manifest, manifest_media_type
from crossbuild.oci.reference import TAG, TAG_HELP, Reference, require_digest, require_repository
from crossbuild.oci.transport import Body, NoAnswer, Response, RetryPolicy, Transport, unreachable

CHUNK_SIZE = 1 << 20  # bytes of a blob held at once while it streams through
_MAX_TAG_PAGES = 1000


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def json_object(raw: bytes, what: str, *, host: str, reference: str = "") -> dict[str, Any]:
    """`raw` as a JSON object, or CorruptContent naming `what`."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptContent(
            f"{what} is not valid JSON ({one_line(str(exc), 120)})", host=host, reference=reference, reason="not JSON"
        ) from None
    if not isinstance(data, dict):
        raise CorruptContent(f"{what} is not a JSON object", host=host, reference=reference, reason="not a JSON object")
    return data


class Client:
    """Talks to registries over HTTPS, or plain HTTP for loopback and `insecure` hosts.

    Tokens are cached per (registry, scope) for the client's lifetime (within their expiry).
    One client may serve many threads at once (bundle and verify copy blobs in parallel).
    """

    def __init__(self, insecure: Iterable[str] = (), timeout: float = 30, retry: RetryPolicy | None = None) -> None:
        self.transport = Transport(insecure, timeout, retry)
        self.auth = Authorizer(self.transport)

    @property
    def insecure(self) -> frozenset[str]:
        return self.transport.insecure

    @property
    def timeout(self) -> float:
        return self.transport.timeout

    def is_insecure(self, host: str) -> bool:
        """Loopback hosts and [registry] insecure entries (with or without the port) skip TLS checks."""
        return self.transport.is_insecure(host)

    def probe(self, host: str) -> str:
        """'http' or 'https', whichever answers GET /v2/ (see Transport.probe); Unreachable otherwise."""
        return self.transport.probe(host)

    # -- the v2 API, for this module and crossbuild.oci.upload --

    @staticmethod
    def scope(repository: str, actions: str = "pull") -> str:
        return f"repository:{repository}:{actions}"  # [token] "Requesting a Token": resource scope

    def api(
        self,
        method: str,
        registry: str,
        target: str,
        *,
        scope: str,
        headers: Mapping[str, str] | None = None,
        body: Body = None,
        reference: str = "",
        stream: bool = False,
    ) -> Response:
        """A v2 API call: `target` is a path (/v2/...) or a Location the registry sent.

        The registry's Authorization goes only to the registry itself (a Location on another host is
        a signed URL with its own auth); a 401 is answered once (token or Basic) and the call repeated,
        rewinding a streamed body. With `stream`, a 2xx answer's body is left open for the caller.
        """
        url = self.transport.url(registry, target)
        send = dict(headers or {})
        own = urllib.parse.urlsplit(url).netloc == hosts.api_host(registry)
        if own and (cached := self.auth.cached(registry, scope)):
            send["Authorization"] = cached
        resp = self.transport.send(method, url, send, body, registry=registry, reference=reference, stream=stream)
        if resp.status == 401 and own:
            send["Authorization"] = self.auth.answer(registry, scope, resp, reference)
            if body is not None and not isinstance(body, bytes):
                body.seek(0)
            resp = self.transport.send(method, url, send, body, registry=registry, reference=reference, stream=stream)
        return resp

    def failure(
        self, resp: Response, registry: str, what: str, *, action: str = "pull", reference: str = ""
    ) -> RegistryError:
        """A one-line error for an unexpected status: code, the registry's message and a fix."""
        message = error_message(resp.body)
        detail = f"HTTP {resp.status}" + (f": {message}" if message else "")
        if resp.status in (401, 403):
            note = self.auth.login_note(registry)
            return Denied(
                f"registry {registry} denied {action} access to {what} ({detail}); the repository may not exist, "
                f"or run `docker login {registry}` with an account that may {action} it{note}",
                host=registry,
                reference=reference,
                reason=detail,
            )
        kind = NotFound if resp.status == 404 else RegistryError
        return kind(
            f"registry {registry} answered {detail} for {what}", host=registry, reference=reference, reason=detail
        )

    # -- manifests and tags --

    def get_manifest(self, ref: Reference) -> Manifest:
        """GET a manifest or index ([dist] end-3), verifying its digest when the ref names one."""
        resp = self.api(
            "GET",
            ref.registry,
            f"/v2/{ref.repository}/manifests/{ref.reference}",
            scope=self.scope(ref.repository),
            headers={"Accept": ACCEPT},
            reference=str(ref),
        )
        # [dist] end-3: 404, with MANIFEST_UNKNOWN or NAME_UNKNOWN ("Error Codes") in the body.
        if resp.status == 404 or (resp.status >= 400 and error_codes(resp.body) & {"MANIFEST_UNKNOWN", "NAME_UNKNOWN"}):
            raise NotFound(
                f"image {ref} not found in {ref.registry}",
                host=ref.registry,
                reference=str(ref),
                reason=f"HTTP {resp.status}",
            )
        if resp.status != 200:
            raise self.failure(resp, ref.registry, f"image {ref}", reference=str(ref))
        raw = resp.body
        if ref.digest:
            # [dist] "Pulling manifests": clients SHOULD verify the content against the digest asked for.
            actual = digest_of(raw, ref.digest.split(":", 1)[0])
            if actual != ref.digest:
                raise CorruptContent(
                    f"registry {ref.registry} returned content hashing to {actual} for {ref}; refusing it",
                    host=ref.registry,
                    reference=str(ref),
                    reason=f"hashes to {actual}",
                )
            digest = ref.digest
        else:
            digest = resp.header("docker-content-digest") or digest_of(raw)
        data = json_object(raw, f"manifest of {ref}", host=ref.registry, reference=str(ref))
        return Manifest(manifest_media_type(resp.header("content-type"), data), digest, raw, data)

    def manifest_exists(self, ref: Reference) -> str | None:
        """HEAD the manifest ([dist] "Checking if content exists"): its digest, or None when absent."""
        resp = self.api(
            "HEAD",
            ref.registry,
            f"/v2/{ref.repository}/manifests/{ref.reference}",
            scope=self.scope(ref.repository),
            headers={"Accept": ACCEPT},
            reference=str(ref),
        )
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise self.failure(resp, ref.registry, f"image {ref}", reference=str(ref))
        if ref.digest:
            return ref.digest
        return resp.header("docker-content-digest") or self.get_manifest(ref).digest  # the header is only a SHOULD

    def put_manifest(self, registry: str, repository: str, reference: str, raw: bytes, media_type: str) -> str:
        """PUT `raw` under a tag or digest ([dist] end-7) and return its digest.

        The bytes are sent unchanged, so tagging an existing manifest keeps its digest.
        """
        require_repository(repository)
        if ":" in reference:
            require_digest(reference, f"manifest of {registry}/{repository}")
        elif not TAG.fullmatch(reference):
            raise UserError(f"tag '{reference}' {TAG_HELP}")
        where = f"{registry}/{repository}:{reference}"
        resp = self.api(
            "PUT",
            registry,
            f"/v2/{repository}/manifests/{reference}",
            scope=self.scope(repository, "pull,push"),
            headers={"Content-Type": media_type},
            body=raw,
            reference=where,
        )
        if resp.status not in (200, 201):
            raise self.failure(resp, registry, where, action="push", reference=where)
        computed = digest_of(raw)
        stored = resp.header("docker-content-digest")
        if stored.startswith("sha256:") and stored != computed:
            raise RegistryError(
                f"registry {registry} stored {where} as {stored}, "
                f"not the {computed} it was sent; it rewrites manifests, so tags cannot be moved byte-for-byte",
                host=registry,
                reference=where,
                reason="rewrites manifests",
            )
        return stored or computed

    def probe_push(self, registry: str, repository: str) -> None:
        """Fail now, not after a build, when this login may not push to `repository`.

        Starts a blob upload ([dist] end-4a: POST, 202 Accepted with a Location) and
        cancels it at once ([dist] end-12: DELETE the upload), which writes nothing.
        """
        require_repository(repository)
        scope = self.scope(repository, "pull,push")
        where = f"{registry}/{repository}"
        resp = self.api("POST", registry, f"/v2/{repository}/blobs/uploads/", scope=scope, body=b"", reference=where)
        if resp.status in (401, 403):
            reason = "Unauthorized" if resp.status == 401 else "Forbidden"
            raise Denied(
                f"{resp.status} {reason} for {registry}: this login may not push to {repository}; "
                f"run `docker login {registry}` with an account that may push there{self.auth.login_note(registry)}",
                host=registry,
                reference=where,
                reason=f"HTTP {resp.status} {reason}",
            )
        if resp.status != 202:
            raise self.failure(resp, registry, f"an upload to {where}", action="push", reference=where)
        if location := resp.header("location"):
            # best effort: a registry may keep an abandoned upload until it purges it
            self.api("DELETE", registry, location, scope=scope, reference=where)

    def list_tags(self, registry: str, repository: str) -> list[str]:
        """Every tag of a repository ([dist] end-8a/8b, following Link rel="next" pages); [] if it does not exist."""
        require_repository(repository)
        where = f"{registry}/{repository}"
        path = f"/v2/{repository}/tags/list"
        tags: list[str] = []
        for _ in range(_MAX_TAG_PAGES):
            resp = self.api("GET", registry, path, scope=self.scope(repository), reference=where)
            if resp.status == 404:
                return tags
            if resp.status != 200:
                raise self.failure(resp, registry, f"tags of {where}", reference=where)
            data = json_object(resp.body, f"tag list of {where}", host=registry, reference=where)
            tags += [str(t) for t in data.get("tags") or []]
            match = re.search(r'<([^>]+)>\s*;\s*rel="?next"?', resp.header("link"))
            if match is None:
                return tags
            parts = urllib.parse.urlsplit(urllib.parse.urljoin(path, match.group(1)))
            following = parts.path + (f"?{parts.query}" if parts.query else "")
            if following == path or not following.startswith("/v2/"):
                return tags
            path = following
        return tags

    # -- blobs --

    def blob_exists(self, registry: str, repository: str, digest: str, *, actions: str = "pull") -> bool:
        """HEAD a blob ([dist] end-2); `actions` "pull,push" when an upload follows, so one token serves both."""
        require_repository(repository)
        require_digest(digest, f"blob of {registry}/{repository}")
        where = f"{registry}/{repository}@{digest}"
        resp = self.api(
            "HEAD", registry, f"/v2/{repository}/blobs/{digest}", scope=self.scope(repository, actions), reference=where
        )
        if resp.status in (200, 404):
            return resp.status == 200
        action = "push" if "push" in actions else "pull"
        raise self.failure(resp, registry, f"blob {digest} of {registry}/{repository}", action=action, reference=where)

    def copy_blob(self, registry: str, repository: str, digest: str, writer: BinaryIO) -> int:
        """Stream a blob ([dist] end-2, following redirects) into `writer`, CHUNK_SIZE bytes at a time,
        hashing as the bytes flow; returns its size.

        A body cut short is fetched again from the start while the RetryPolicy allows, when `writer`
        can be rewound; bytes that do not hash to `digest` raise CorruptContent (the caller drops
        what was written: download_blob does).
        """
        require_repository(repository)
        algorithm = require_digest(digest, f"blob of {registry}/{repository}")
        where = f"{registry}/{repository}@{digest}"
        start = writer.tell() if writer.seekable() else None
        policy, started, tries = self.transport.retry, self.transport.clock(), 0
        while True:
            tries += 1
            try:
                return self._copy_once(registry, repository, digest, algorithm, writer)
            except NoAnswer as exc:
                wait = policy.next_delay(tries, self.transport.clock() - started) if exc.reset else None
                if wait is None or start is None:
                    raise unreachable(registry, exc.reason, where) from exc
                writer.seek(start)
                writer.truncate()
                self.transport.sleep(wait)

    def _copy_once(self, registry: str, repository: str, digest: str, algorithm: str, writer: BinaryIO) -> int:
        where = f"{registry}/{repository}@{digest}"
        resp = self.api(
            "GET",
            registry,
            f"/v2/{repository}/blobs/{digest}",
            scope=self.scope(repository),
            reference=where,
            stream=True,
        )
        with contextlib.closing(resp):
            if resp.status == 404:
                raise NotFound(
                    f"blob {digest} not found in {registry}/{repository}",
                    host=registry,
                    reference=where,
                    reason="HTTP 404",
                )
            if resp.status != 200:
                raise self.failure(resp, registry, f"blob {digest} of {registry}/{repository}", reference=where)
            hasher, size = hashlib.new(algorithm), 0
            while chunk := resp.read(CHUNK_SIZE):
                hasher.update(chunk)
                writer.write(chunk)
                size += len(chunk)
        actual = f"{algorithm}:{hasher.hexdigest()}"
        if actual != digest:
            raise CorruptContent(
                f"blob {digest} of {registry}/{repository} has the wrong content (it hashes to {actual}); "
                "the registry's storage may be corrupt: push the image again",
                host=registry,
                reference=where,
                reason=f"hashes to {actual}",
            )
        return size

    def download_blob(self, registry: str, repository: str, digest: str, dest: Path) -> int:
        """A blob into the file `dest`, whole and verified or not at all: it is written under a temporary
        name beside `dest` and renamed only once its digest checks out. Returns its size."""
        handle, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".partial")
        partial = Path(name)
        try:
            with open(handle, "wb") as out:
                size = self.copy_blob(registry, repository, digest, out)
            partial.replace(dest)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return size

    def get_blob(self, registry: str, repository: str, digest: str) -> bytes:
        """A small blob (an image config) in memory, verified; layers go through download_blob."""
        buffer = io.BytesIO()
        self.copy_blob(registry, repository, digest, buffer)
        return buffer.getvalue()

    def get_json_blob(self, registry: str, repository: str, digest: str) -> dict[str, Any]:
        """A JSON blob such as an image config ([image] config.md)."""
        where = f"{registry}/{repository}@{digest}"
        raw = self.get_blob(registry, repository, digest)
        return json_object(raw, f"blob {digest} of {registry}/{repository}", host=registry, reference=where)

    def extract_file(
        self, registry: str, repository: str, image_manifest_data: Mapping[str, Any], path_in_image: str
    ) -> bytes | None:
        """One file of an image, read from its layers (crossbuild.oci.layers.extract_file)."""
        return layers.extract_file(self, registry, repository, image_manifest_data, path_in_image)
