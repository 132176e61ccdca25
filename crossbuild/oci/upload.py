"""Blob uploads ([dist] end-4a POST, end-5 PATCH, end-6 PUT ?digest=, end-11 cross-repository mount).

A blob streams from its file: a small one in one monolithic PUT, a large one in PATCH requests of
`patch_size` bytes each and a closing PUT, per the distribution spec's chunked upload. Memory
stays at the HTTP layer's block size whatever the blob size, and the sha256 is computed as the
bytes leave, so a file that does not hash to its digest is refused (CorruptContent) and its
upload cancelled. Many blobs go up in parallel through a bounded pool (push_all); a blob that is
already in the registry is not sent, and one in another repository of it is mounted.

Only Client's public methods are used: blob_exists, api, failure, scope.

[dist] OCI distribution-spec spec.md ("Pushing blobs", "Pushing a blob in chunks", "Mounting a blob")
"""

from __future__ import annotations

import hashlib
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from crossbuild.errors import UserError
from crossbuild.oci.client import Client
from crossbuild.oci.errors import CorruptContent
from crossbuild.oci.mediatypes import OCTET_STREAM
from crossbuild.oci.reference import require_digest, require_repository
from crossbuild.oci.transport import Response

MONOLITHIC_MAX = 32 << 20  # blobs up to this size go in one PUT
PATCH_SIZE = 64 << 20  # bytes per PATCH request of a chunked upload
PARALLEL = 4  # blobs in flight at once in push_all

T = TypeVar("T")
R = TypeVar("R")


class _Slice:
    """`length` bytes of `file` from `offset`, read on demand as a request body.

    Each byte feeds `hasher` the first time it is read only (a high-water mark), so a body sent
    again after a 401 (seek(0)) does not hash twice; the blob's hash is right once every slice
    has been read through.
    """

    def __init__(self, file: Path, offset: int, length: int, hasher: hashlib._Hash | None, hashed: list[int]) -> None:
        self._handle = file.open("rb")
        self.offset, self.length = offset, length
        self._pos = 0
        self._hasher, self._hashed = hasher, hashed  # hashed[0]: bytes of the blob hashed so far
        self._handle.seek(offset)

    def read(self, size: int = -1) -> bytes:
        left = self.length - self._pos
        size = left if size is None or size < 0 else min(size, left)
        data = self._handle.read(size) if size > 0 else b""
        if size > 0 and len(data) < size:
            raise UserError(f"{self._handle.name} shrank while it was being uploaded; nothing was stored")
        start = self.offset + self._pos
        if self._hasher is not None and start + len(data) > self._hashed[0]:  # past the high-water mark: hash
            fresh = data[self._hashed[0] - start :] if start < self._hashed[0] else data
            self._hasher.update(fresh)
            self._hashed[0] = start + len(data)
        self._pos += len(data)
        return data

    def seek(self, position: int) -> int:
        self._pos = position
        self._handle.seek(self.offset + position)
        return position

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> _Slice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _with_query(location: str, **params: str) -> str:
    parts = urllib.parse.urlsplit(location)
    query = "&".join(q for q in (parts.query, urllib.parse.urlencode(params)) if q)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


@dataclass
class BlobUploader:
    """Pushes blobs to one registry, remembering which repository has each (for mounts)."""

    client: Client
    registry: str
    monolithic_max: int = MONOLITHIC_MAX
    patch_size: int = PATCH_SIZE
    # Hash each file as it leaves and refuse one that does not match its digest. False only for files the
    # caller has just hashed itself in a directory of its own (bundle.load, after read_archive): the
    # registry checks what it receives against ?digest= anyway ([dist] end-6), so a second pass over
    # every byte here would only cost time.
    rehash: bool = True
    where: dict[str, str] = field(default_factory=dict)  # blob digest -> a repository on this registry that has it
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _scope(self, repository: str) -> str:
        return self.client.scope(repository, "pull,push")

    def _seen(self, digest: str, repository: str) -> None:
        with self._lock:
            self.where.setdefault(digest, repository)

    def exists(self, repository: str, digest: str) -> bool:
        return self.client.blob_exists(self.registry, repository, digest, actions="pull,push")

    def push(self, repository: str, digest: str, file: Path) -> int:
        """Upload `file` as blob `digest` unless the repository has it (or can mount it); returns bytes sent."""
        require_repository(repository)
        algorithm = require_digest(digest, f"blob for {self.registry}/{repository}")
        if self.exists(repository, digest):
            self._seen(digest, repository)
            return 0
        where = f"{self.registry}/{repository}"
        start = f"/v2/{repository}/blobs/uploads/"
        with self._lock:
            source = self.where.get(digest)
        if source is not None and source != repository:
            start += "?" + urllib.parse.urlencode({"mount": digest, "from": source})
        resp = self.client.api("POST", self.registry, start, scope=self._scope(repository), body=b"", reference=where)
        if resp.status == 201:  # mounted from another repository, nothing to send
            self._seen(digest, repository)
            return 0
        if resp.status != 202 or not resp.header("location"):
            raise self.client.failure(resp, self.registry, f"a blob upload to {where}", action="push", reference=where)
        size = file.stat().st_size
        hasher, hashed = (hashlib.new(algorithm) if self.rehash else None), [0]
        location = resp.header("location")
        if size > self.monolithic_max:
            location = self._patch_all(repository, digest, file, size, location, hasher, hashed)
            self._check(repository, digest, file, hasher, location)
            resp = self._put(repository, digest, location, b"")
        else:
            with _Slice(file, 0, size, hasher, hashed) as body:
                resp = self._put(repository, digest, location, body, size)
            self._check(repository, digest, file, hasher, None)
        if resp.status not in (201, 204):
            raise self.client.failure(
                resp, self.registry, f"blob {digest} to {where}", action="push", reference=f"{where}@{digest}"
            )
        self._seen(digest, repository)
        return size

    def _put(self, repository: str, digest: str, location: str, body: bytes | _Slice, size: int = 0) -> Response:
        headers = {"Content-Type": OCTET_STREAM, "Content-Length": str(size)}
        return self.client.api(
            "PUT",
            self.registry,
            _with_query(location, digest=digest),
            scope=self._scope(repository),
            headers=headers,
            body=body,  # type: ignore[arg-type]  # _Slice reads like a binary file
            reference=f"{self.registry}/{repository}@{digest}",
        )

    def _patch_all(
        self,
        repository: str,
        digest: str,
        file: Path,
        size: int,
        location: str,
        hasher: hashlib._Hash | None,
        hashed: list[int],
    ) -> str:
        """Send the blob in PATCH requests ([dist] "Pushing a blob in chunks"); the last Location."""
        where = f"{self.registry}/{repository}@{digest}"
        for offset in range(0, size, self.patch_size):
            length = min(self.patch_size, size - offset)
            headers = {
                "Content-Type": OCTET_STREAM,
                "Content-Length": str(length),
                "Content-Range": f"{offset}-{offset + length - 1}",  # inclusive, no unit ([dist] end-5)
            }
            with _Slice(file, offset, length, hasher, hashed) as body:
                resp = self.client.api(
                    "PATCH",
                    self.registry,
                    location,
                    scope=self._scope(repository),
                    headers=headers,
                    body=body,  # type: ignore[arg-type]  # _Slice reads like a binary file
                    reference=where,
                )
            if resp.status != 202 or not resp.header("location"):
                raise self.client.failure(
                    resp, self.registry, f"a chunk of blob {digest} to {self.registry}/{repository}", action="push",
                    reference=where,
                )  # fmt: skip
            location = resp.header("location")
        return location

    def _check(
        self, repository: str, digest: str, file: Path, hasher: hashlib._Hash | None, location: str | None
    ) -> None:
        """The file's bytes, as sent, must hash to `digest`; else cancel the upload and refuse."""
        if hasher is None:  # not rehashed: the caller checked the file, the registry checks the upload
            return
        actual = f"{hasher.name}:{hasher.hexdigest()}"
        if actual == digest:
            return
        if location is not None:  # best effort: [dist] end-12 cancels an unfinished upload
            self.client.api("DELETE", self.registry, location, scope=self._scope(repository))
        raise CorruptContent(
            f"{file} hashes to {actual}, not the {digest} it is to be pushed as; nothing was stored under that digest",
            host=self.registry,
            reference=f"{self.registry}/{repository}@{digest}",
            reason=f"hashes to {actual}",
        )


def run_bounded(fn: Callable[[T], R], items: Sequence[T], parallel: int = PARALLEL) -> list[R]:
    """fn over items on at most `parallel` threads, results in order; the first failure cancels what has
    not started and is raised once the running calls end."""
    if len(items) <= 1 or parallel <= 1:
        return [fn(item) for item in items]
    pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="blobs")
    try:
        futures: list[Future[R]] = [pool.submit(fn, item) for item in items]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((f for f in futures if f in done and f.exception() is not None), None)
        if failed is not None:
            for future in futures:
                future.cancel()
            raise failed.exception()  # type: ignore[misc]
        return [f.result() for f in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def push_all(
    uploader: BlobUploader, blobs: Iterable[tuple[str, str, Path]], parallel: int = PARALLEL
) -> dict[tuple[str, str], int]:
    """Push every (repository, digest, file), at most `parallel` at once; (repository, digest) -> bytes sent.

    Each distinct blob is uploaded once, to the first repository that wants it; the other
    repositories then get it by a cross-repository mount instead of a second upload.
    """
    wanted = list(dict.fromkeys(blobs))
    first: dict[str, tuple[str, str, Path]] = {}
    for item in wanted:
        first.setdefault(item[1], item)
    rest = [item for item in wanted if first[item[1]] != item]
    sent: dict[tuple[str, str], int] = {}
    for batch in (list(first.values()), rest):
        results = run_bounded(lambda item: uploader.push(*item), batch, parallel)
        sent.update({(repo, digest): n for (repo, digest, _), n in zip(batch, results, strict=True)})
    return sent
