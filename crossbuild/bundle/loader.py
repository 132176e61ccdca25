"""Loading a bundle on the air-gapped host: verify all of it, then push to a registry or `docker load`.

Nothing is imported before the whole archive has passed reader.read_archive. What is imported
comes from the verified content only: blobs are pushed under the digests the verified manifests
name, and the docker-archive index that `docker load` obeys is regenerated from manifest.json and
those manifests (the archive's own copy was already required to say exactly the same).

The scratch directory is removed on every way out: success, a UserError, Ctrl-C, SIGTERM; one left
by a run killed outright (SIGKILL) is removed by the next run, because a live run holds an flock on it.

No Config here: only the archive and the flags exist on the air-gapped host.

References: [dist] OCI distribution-spec spec.md (endpoint ids end-N)
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from crossbuild import attestations, heap, hosts, output, resolve, runner, signatures
from crossbuild.bundle.format import (
    IMAGES_DIR,
    OCI_LAYOUT,
    BundleImage,
    Ref,
    blob_path,
    bundle_name,
    docker_archive_manifest,
    json_bytes,
    oci_index,
)
from crossbuild.bundle.reader import Verified, read_archive
from crossbuild.errors import UserError
from crossbuild.oci import (
    OCI_INDEX,
    BlobUploader,
    Client,
    NotFound,
    Reference,
    RegistryError,
    SpeaksPlainHTTP,
    Unreachable,
    image_entries,
    parse_reference,
    push_all,
)
from crossbuild.runner import Runner

BLOB_PARALLEL = 4  # blobs pushed at once

SCRATCH_PREFIX = "crossbuild-bundle-"
_STARTING_PREFIX = ".crossbuild-bundle-starting-"
_LOCK = ".lock"


# --- the scratch directory -----------------------------------------------------------


def remove_abandoned(base: Path) -> list[Path]:
    """Remove scratch directories under `base` whose run died without cleaning up: a live run holds the
    flock on its .lock, so a directory whose lock can be taken is abandoned. Others' files are left."""
    removed: list[Path] = []
    try:
        candidates = sorted(base.glob(f"{SCRATCH_PREFIX}*"))
    except OSError:
        return removed
    for path in candidates:
        if path.is_symlink() or not path.is_dir():
            continue
        try:
            fd = os.open(path / _LOCK, os.O_RDWR | os.O_NOFOLLOW)
        except OSError:
            continue  # no lock file: not a scratch directory of this version
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # in use
        finally:
            os.close(fd)
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


@contextlib.contextmanager
def scratch_dir() -> Iterator[Path]:
    """A private directory under $TMPDIR, locked while in use and removed on every way out."""
    base = Path(tempfile.gettempdir())
    for path in remove_abandoned(base):
        output.info(f"removed {path}, left by an earlier run that was killed")
    with runner.terminate_as_exit():
        # Created under another name, locked, then renamed: remove_abandoned never sees it unlocked.
        path = Path(tempfile.mkdtemp(prefix=_STARTING_PREFIX))
        fd = -1
        try:
            fd = os.open(path / _LOCK, os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            final = path.with_name(SCRATCH_PREFIX + path.name.removeprefix(_STARTING_PREFIX))
            path.rename(final)
            path = final
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)
            if fd >= 0:
                os.close(fd)


# --- registries ------------------------------------------------------------------------


def check_registry(registry: str) -> str:
    """--registry as HOST[:PORT], or a UserError saying what is wrong with it."""
    host = registry.strip()
    for prefix in ("https://", "http://"):
        host = host.removeprefix(prefix)
    host = host.rstrip("/")
    if not host or "/" in host:
        raise UserError(f"--registry {registry}: give HOST:PORT only, e.g. 127.0.0.1:5000 or registry.lan:443")
    try:
        parsed = parse_reference(f"{host}/x")
    except UserError:
        raise UserError(f"--registry {registry}: not a HOST[:PORT]") from None
    if parsed.registry != host:
        raise UserError(f"--registry {registry}: not a HOST[:PORT] (a bare name needs a '.' or ':port')")
    return host


def _trusted_https(host: str) -> bool:
    try:
        Client(timeout=10).probe(host)
    except RegistryError:
        return False
    return True


def _untrusted_https(host: str) -> bool:
    try:
        return Client(insecure=[host], timeout=10).probe(host) == "https"
    except RegistryError:
        return False


def connect(host: str, *, plain_http: bool = False, insecure: bool = False) -> Client:
    """A client that talks to `host` only the way the flags allow, checked now (before minutes of checksums).

    No flag: HTTPS with a certificate this machine trusts. --insecure: HTTPS with any certificate.
    --plain-http: plain HTTP. Loopback registries are plain HTTP whatever the flags, as everywhere in crossbuild.
    """
    strict = Client()
    if hosts.is_loopback(host):
        strict.probe(host)
        return strict
    if not plain_http and not insecure:
        try:
            strict.probe(host)
        except SpeaksPlainHTTP:
            raise UserError(
                f"registry {host} speaks plain HTTP, not HTTPS: add --plain-http to push to it over HTTP "
                "(images travel unencrypted)"
            ) from None
        except Unreachable:
            if _untrusted_https(host):
                raise UserError(
                    f"registry {host} has a TLS certificate this machine does not trust: add --insecure to "
                    "accept it (or install its CA certificate)"
                ) from None
            raise
        return strict
    lax = Client(insecure=[host])
    scheme = lax.probe(host)  # HTTPS with any certificate first, then plain HTTP
    if scheme == "http" and not plain_http:
        raise UserError(
            f"registry {host} speaks plain HTTP, not HTTPS: --insecure only accepts an untrusted certificate; "
            "add --plain-http to push to it over HTTP"
        )
    if scheme == "https" and not insecure:
        if not _trusted_https(host):
            raise UserError(
                f"registry {host} speaks HTTPS with a certificate this machine does not trust: add --insecure "
                "to accept it (--plain-http is for registries without TLS)"
            )
        output.info(f"registry {host} speaks HTTPS with a trusted certificate; --plain-http is not needed")
        return Client()
    return lax


# --- signatures ------------------------------------------------------------------------


def _signatures(root: Path, verified: Verified, ref: Ref) -> list[signatures.Signature]:
    data = json.loads(verified.supply_raw[ref.digest])
    return signatures.signatures_of(data, lambda digest: (root / blob_path(digest)).read_bytes())


def _image_problem(root: Path, verified: Verified, img: BundleImage, key: signatures.PublicKey) -> str:
    """What keeps `img` from being proven by `key` ("" when nothing): its own signature, and when it came
    from a multi-arch index, the index's signature, the index listing it, and its attestation manifest
    (SBOM, provenance) being the one the signed index names for it."""
    supply = img.supply
    sig = supply.signature_of(img.digest) if supply is not None else None
    if supply is None or sig is None:
        return "carries no signature"
    problem = signatures.check(key, _signatures(root, verified, sig), img.digest)
    if problem or supply.index is None:
        return problem
    index_sig = supply.signature_of(supply.index.digest)
    if index_sig is None:
        return f"its index {supply.index.digest} carries no signature"
    problem = signatures.check(key, _signatures(root, verified, index_sig), supply.index.digest)
    if problem:
        return f"index: {problem}"
    index = json.loads(verified.supply_raw[supply.index.digest])
    if img.digest not in {e.digest for e in image_entries(index)}:
        return f"the signed index {supply.index.digest} does not list {img.digest}"
    if supply.attestation is not None:
        named = attestations.by_subject(index).get(img.digest)
        if named is None or named.digest != supply.attestation.digest:
            return f"its SBOM/provenance {supply.attestation.digest} is not the one the signed index names: altered"
    return ""


def check_signatures(
    root: Path, verified: Verified, key: signatures.PublicKey, allow_unsigned: Sequence[str] = ()
) -> int:
    """Every image must be signed with `key` (`allow_unsigned` names third-party references that need not be);
    a UserError naming the first that is not. Returns how many images were proven."""
    manifest = verified.manifest
    if manifest.public_key is not None and manifest.public_key != key.fingerprint:
        raise UserError(
            f"the bundle was signed with the key {manifest.public_key[:19]}..., not {key.name} "
            f"({key.fingerprint[:19]}...); nothing was imported"
        )
    allowed = set(allow_unsigned)
    unknown = allowed - {img.ref for img in manifest.images}
    if unknown:
        raise UserError(f"--allow-unsigned {sorted(unknown)[0]}: the bundle has no such image; nothing was imported")
    proven = 0
    for img in manifest.images:
        problem = _image_problem(root, verified, img, key)
        if problem and img.ref in allowed and img.service is None:
            output.warn(f"{img.ref}: {problem}; loaded unsigned (--allow-unsigned)")
            continue
        if problem:
            hint = "" if img.service is not None else f" (a third-party image: --allow-unsigned {img.ref} loads it)"
            raise UserError(f"{img.ref}: {problem}{hint}; nothing was imported")
        proven += 1
    return proven


def _push(root: Path, verified: Verified, registry: str, client: Client) -> list[tuple[str, str]]:
    """Every blob (BLOB_PARALLEL at once, each stored once and mounted where another repository needs
    it), then each image's manifest under its tag or digest, in the bundle's order; then what proves it:
    its signature manifest (`sha256-<digest>.sig`, as cosign stores it) and its attestation manifest,
    attached by the referrers tag schema (the index itself names platforms that are not in the bundle)."""
    images = verified.manifest.images
    wanted = [
        (img.reference.repository, desc.digest, root / blob_path(desc.digest))
        for img in images
        for desc in (verified.parts[img.digest][0], *verified.parts[img.digest][1])
    ]
    wanted += [
        (img.reference.repository, desc.digest, root / blob_path(desc.digest))
        for img in images
        for ref in _attached(img)
        for desc in verified.supply_parts.get(ref.digest, ())
    ]
    # read_archive hashed every file under `root` (private to this run) a moment ago: not again on the way out
    sent = push_all(BlobUploader(client, registry, rehash=False), wanted, BLOB_PARALLEL)
    imported = []
    counted: set[tuple[str, str]] = set()  # bytes sent are shown with the first image that needed them
    for img in images:
        src = img.reference
        config, layers = verified.parts[img.digest]
        mine = [(src.repository, desc.digest) for desc in (config, *layers)]
        sent_here = sum(sent.get(key, 0) for key in dict.fromkeys(mine) if key not in counted)
        counted.update(mine)
        reference = src.tag or img.digest
        raw = verified.raw_manifests[img.digest]
        stored = client.put_manifest(registry, src.repository, reference, raw, img.media_type)
        if stored != img.digest:
            raise UserError(f"{registry}/{src.repository}:{reference} was stored as {stored}, not {img.digest}")
        target = f"{registry}/{src.repository}" + (f":{src.tag}" if src.tag else f"@{img.digest}")
        attached = _attach(verified, img, registry, client)
        note = f", {' and '.join(attached)} attached" if attached else ""
        output.ok(f"{target} -> {img.digest} ({output.human_size(sent_here)} sent{note})")
        imported.append((target, img.digest))
    return imported


def _attached(img: BundleImage) -> list[Ref]:
    """The supply manifests that go to the registry with an image: its own signature and its attestation."""
    if img.supply is None:
        return []
    own = img.supply.signature_of(img.digest)
    return [r for r in (own, img.supply.attestation) if r is not None]


def _attach(verified: Verified, img: BundleImage, registry: str, client: Client) -> list[str]:
    if img.supply is None:
        return []
    repository = img.reference.repository
    done = []
    sig = img.supply.signature_of(img.digest)
    if sig is not None:
        raw = verified.supply_raw[sig.digest]
        client.put_manifest(registry, repository, signatures.signature_tag(img.digest), raw, sig.media_type)
        done.append("signature")
    att = img.supply.attestation
    if att is not None:
        raw = verified.supply_raw[att.digest]
        client.put_manifest(registry, repository, att.digest, raw, att.media_type)
        tag = attestations.referrers_tag(img.digest)
        listed: list[dict[str, Any]] = []
        with contextlib.suppress(NotFound):  # none yet: this is the first referrer
            listed = list(client.get_manifest(Reference(registry, repository, tag, None)).data.get("manifests") or [])
        if att.digest not in {str(d.get("digest")) for d in listed if isinstance(d, dict)}:
            listed.append(attestations.referrer_descriptor(raw))
            client.put_manifest(registry, repository, tag, attestations.referrers_index(listed), OCI_INDEX)
        done.append("SBOM/provenance")
    return done


# --- docker ------------------------------------------------------------------------------


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def write_docker_archive(root: Path, verified: Verified, dest: Path) -> None:
    """The tar `docker load` reads, made from verified content only: oci-layout, index.json and
    manifest.json regenerated from manifest.json and the verified manifests, then exactly the blobs
    those name. Each blob is moved from `root` into the tar (removed once added: disk stays ~1x)."""
    images = verified.manifest.images
    with tarfile.open(dest, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(tar, "oci-layout", json_bytes(OCI_LAYOUT))
        _add_bytes(tar, "index.json", json_bytes(oci_index(images)))
        _add_bytes(tar, "manifest.json", json_bytes(docker_archive_manifest(images, verified.layer_map())))
        for folder in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        seen: set[str] = set()
        for img in images:
            config, layers = verified.parts[img.digest]
            for digest in (img.digest, config.digest, *(d.digest for d in layers)):
                if digest in seen:
                    continue
                seen.add(digest)
                path = root / blob_path(digest)
                tar.add(path, arcname=blob_path(digest).removeprefix(f"{IMAGES_DIR}/"), recursive=False)
                path.unlink()


def _docker_load(run: Runner, root: Path, verified: Verified, scratch: Path) -> list[tuple[str, str]]:
    archive = scratch / "docker-load.tar"
    write_docker_archive(root, verified, archive)
    loaded = run.run(
        ["docker", "load", "-i", str(archive)],
        hint="is dockerd running and may you use it? (or push to a registry with --registry HOST:PORT)",
    )
    imported = []
    for img in verified.manifest.images:
        name = img.docker_tag
        image_id = img.config
        if name is not None and not loaded.planned:
            image_id = run.output(["docker", "image", "inspect", "--format", "{{.Id}}", name])
            _check_loaded(img, name, image_id)
        output.ok(f"{name or img.ref} -> {image_id}")
        imported.append((name or img.ref, image_id))
    return imported


def _check_loaded(img: BundleImage, name: str, image_id: str) -> None:
    """The name must now be the bundle's image: its config digest (classic store) or manifest digest
    (containerd store)."""
    if image_id not in (img.config, img.digest):
        raise UserError(f"docker has {name} as image {image_id}, not the bundle's {img.config}; load it again")


# --- the whole job ----------------------------------------------------------------------------


def load(
    run: Runner,
    path: Path,
    registry: str | None,
    *,
    plain_http: bool = False,
    insecure: bool = False,
    max_size: int | None = None,
    deploy_dir: Path | None = None,
    key: Path | None = None,
    allow_unsigned: Sequence[str] = (),
) -> list[tuple[str, str]]:
    """Verify the whole bundle (and, given `key`, every signature), then push it to `registry` (digests kept,
    signatures and SBOMs attached) or `docker load` it.

    Returns (imported reference, digest): the manifest digest for a registry, the image ID
    (`docker image inspect .Id`) for the docker daemon. Nothing is imported unless every check passes.
    A bundle with deployment files has them written, pointing at where the images went, into
    `deploy_dir` (default ./<bundle name>-deploy).
    """
    if registry is None and (plain_http or insecure):
        raise UserError(f"{'--plain-http' if plain_http else '--insecure'} applies to --registry HOST:PORT only")
    host = check_registry(registry) if registry is not None else None
    public_key = signatures.read_public_key(key) if key is not None else None
    heap.keep_freed_buffers()  # gigabytes stream through MiB buffers: reuse them, do not fault them in again
    client = connect(host, plain_http=plain_http, insecure=insecure) if host is not None else None
    output.step(f"check {path}")
    with scratch_dir() as scratch:
        root = scratch / "bundle"
        verified = read_archive(path, root, max_size)
        manifest = verified.manifest
        output.ok(
            f"{len(verified.files)} files verified: {manifest.project} {manifest.version} {manifest.platform}, "
            f"{len(manifest.images)} image(s)"
        )
        if public_key is not None:
            proven = check_signatures(root, verified, public_key, allow_unsigned)
            output.ok(
                f"{proven} image(s) signed with {public_key.name} ({public_key.fingerprint[:19]}...): "
                "signatures, indexes and SBOM/provenance bindings verified offline"
            )
        elif any(img.supply is not None for img in manifest.images):
            output.info("the bundle carries cosign signatures: give --key cosign.pub to check them before importing")
        if host is not None and client is not None:
            output.step(f"push {len(manifest.images)} image(s) to {host}")
            where = ", ".join(
                f"{img.ref} ({img.digest}) to {host}/{img.reference.repository}" for img in manifest.images
            )
            pushed = run.act(f"push {where}", lambda: _push(root, verified, host, client))
            _write_deploy(run, verified, host, deploy_dir)
            return pushed or []
        output.step(f"docker load {len(manifest.images)} image(s)")
        loaded = _docker_load(run, root, verified, scratch)
        _write_deploy(run, verified, None, deploy_dir)
        return loaded


# --- deployment files ----------------------------------------------------------------------


def deploy_text(verified: Verified, rel: str, registry: str | None) -> str:
    """A bundle's deploy file with each image (pinned to a bundle manifest digest) pointed at where it was
    imported: REGISTRY/REPOSITORY@DIGEST, or for the docker daemon the tag `docker load` gave it."""
    bundled = {(img.reference.repository, img.digest): img for img in verified.manifest.images}

    def pin(found: resolve.Found) -> str | None:
        try:
            ref = parse_reference(found.image)
        except UserError:
            return None
        img = bundled.get((ref.repository, ref.digest or ""))
        if img is None:
            return None
        if registry is not None:
            return f"{registry}/{img.reference.repository}@{img.digest}"
        return img.docker_tag  # loaded images have no registry digest in docker's classic store, only their tag

    text = verified.deploy[rel].decode("utf-8")
    return resolve.rewrite(text, rel, pin)[0]


def _write_deploy(run: Runner, verified: Verified, registry: str | None, deploy_dir: Path | None) -> None:
    manifest = verified.manifest
    if not manifest.deploy:
        return
    target = deploy_dir or Path(f"{bundle_name(manifest.project, manifest.version, manifest.platform)}-deploy")
    texts = {rel: deploy_text(verified, rel, registry) for rel in manifest.deploy}

    def write() -> None:
        target.mkdir(parents=True, exist_ok=True)
        for rel, text in texts.items():
            (target / Path(rel).name).write_text(text, encoding="utf-8")
            output.ok(f"wrote {target / Path(rel).name}")

    run.act(f"write {', '.join(str(target / Path(rel).name) for rel in texts)}", write)
    compose = [target / Path(rel).name for rel in texts if resolve.kind(texts[rel], rel) == resolve.COMPOSE]
    if compose:
        output.info(f"next: docker compose -f {compose[0]} up -d")
    if len(compose) < len(texts):
        output.info(f"next: kubectl apply -f {target}")
