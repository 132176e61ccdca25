"""Supply chain end to end: SBOMs from the binaries, cosign signatures, offline verification of bundles.

A clone of the project publishes, signed with a key pair made here by `cosign generate-key-pair`:
the example (imdemo: api, push) and a fixture module with real dependencies from the Go proxy
(tests/integration/supplymod: depsvc, with SLSA provenance on). Everything is checked with tools
that share no code with crossbuild: `cosign verify`, `docker buildx imagetools inspect` (SBOM and
provenance), spdx-tools (SPDX validity), `go version -m` on the binary skopeo copied out of the
image, the registry HTTP API, tarfile/json/hashlib for forging bundles. A tampered image, a
tampered SBOM and a signature by another key are refused by `invoke verify` and by
`invoke bundle.load --key` with nothing imported; a good bundle loads into a second registry where
`cosign verify` holds and the SBOM is attached.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document
from support.clone import Clone
from support.commands import assert_clean_failure, describe, require_tools, run
from support.example import PREFIX_REGISTRY as REGISTRY
from support.example import TAG
from support.inputs import put_manifest as put_manifest_at
from support.inputs import upload_blob
from support.registries import LOCAL_API as REGISTRY_API
from support.registries import docker_registry
from support.witness import catalog, http_request, sha256_digest, skopeo_raw

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.usefixtures("local_registry")]

PLATFORMS = "linux/amd64,linux/arm64"
PASSWORD = "s3cret-pw-" + uuid.uuid4().hex[:6]
SUPPLY_TOML = """[project]
name = "supplydemo"
module_dir = "tests/integration/supplymod"
output_dir = "build"

[image]
provenance = true
"""
SPDX_PREDICATE = "https://spdx.dev/Document"


@dataclass(frozen=True)
class Keys:
    key: Path
    pub: Path
    other_key: Path
    other_pub: Path


@dataclass(frozen=True)
class World:
    clone: Clone
    keys: Keys
    example: str  # prefix of the example's images
    first: str  # prefix of depsvc, signed with keys.key
    second: str  # prefix of depsvc's second cold build, signed with keys.other_key
    logs: str  # stdout + stderr of the signed publishes


def cosign_env(key: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"SIGN": str(key), "COSIGN_PASSWORD": PASSWORD, "PLATFORMS": PLATFORMS, **(extra or {})}


def generate(where: Path) -> tuple[Path, Path]:
    where.mkdir(parents=True)
    proc = run(["cosign", "generate-key-pair"], cwd=where, env={"COSIGN_PASSWORD": PASSWORD}, timeout=120)
    assert proc.returncode == 0, describe(proc)
    return where / "cosign.key", where / "cosign.pub"


@pytest.fixture(scope="module")
def world(clone: Clone, tmp_path_factory: pytest.TempPathFactory) -> World:
    require_tools("cosign", "skopeo", "docker", "go")
    tmp = tmp_path_factory.mktemp("supply")
    (clone.root / "supply.toml").write_text(SUPPLY_TOML)
    key, pub = generate(tmp / "keys")  # outside the clone and outside build/
    other_key, other_pub = generate(tmp / "other-keys")
    keys = Keys(key, pub, other_key, other_pub)
    ident = uuid.uuid4().hex[:8]
    example, first, second = (f"{REGISTRY}/sc-{ident}-{n}" for n in ("ex", "a", "b"))
    logs = ""
    started = time.monotonic()
    proc = clone.invoke("image.multiarch", env=cosign_env(key, {"REGISTRY_PREFIX": example, "IMAGES": "api,push"}))
    assert proc.returncode == 0, describe(proc)
    logs += proc.stdout + proc.stderr
    proc = clone.invoke(
        "image.multiarch", "--config", "supply.toml", env=cosign_env(key, {"REGISTRY_PREFIX": first, "V": "1"})
    )
    assert proc.returncode == 0, describe(proc)
    logs += proc.stdout + proc.stderr
    clone.reset_build()  # the second build is cold: no binaries, no state
    proc = clone.invoke(
        "image.multiarch", "--config", "supply.toml", env=cosign_env(other_key, {"REGISTRY_PREFIX": second})
    )
    assert proc.returncode == 0, describe(proc)
    print(f"\nthree signed publishes: {time.monotonic() - started:.1f}s")
    return World(clone, keys, example, first, second, logs)


# --- independent witnesses ------------------------------------------------------------------


def cosign_verify(ref: str, pub: Path) -> subprocess.CompletedProcess[str]:
    return run(["cosign", "verify", "--key", pub, "--insecure-ignore-tlog=true", ref], timeout=300)


def imagetools(ref: str, field: str) -> dict[str, Any]:
    proc = run(["docker", "buildx", "imagetools", "inspect", ref, "--format", "{{json ." + field + "}}"], timeout=300)
    assert proc.returncode == 0, describe(proc)
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def image_entries(index: dict[str, Any]) -> dict[str, str]:
    """platform -> digest of the runnable images of an index."""
    found = {}
    for e in index["manifests"]:
        p = e.get("platform") or {}
        if p.get("os") != "unknown":
            found[f"{p['os']}/{p['architecture']}" + (f"/{p['variant']}" if p.get("variant") else "")] = e["digest"]
    return found


def attestation_of(index: dict[str, Any], digest: str) -> str:
    (att,) = [
        e["digest"]
        for e in index["manifests"]
        if (e.get("annotations") or {}).get("vnd.docker.reference.digest") == digest
    ]
    return str(att)


def sbom_layer_digests(ref: str) -> dict[str, str]:
    """platform -> digest of the SPDX statement layer attached for it (byte identity = digest identity)."""
    repo = ref.rsplit(":", 1)[0]
    _, index = skopeo_raw(ref)
    found = {}
    for plat, digest in image_entries(index).items():
        _, att = skopeo_raw(f"{repo}@{attestation_of(index, digest)}")
        (layer,) = [
            x["digest"]
            for x in att["layers"]
            if (x.get("annotations") or {}).get("in-toto.io/predicate-type") == SPDX_PREDICATE
        ]
        found[plat] = layer
    return found


def binary_from_image(ref: str, path: str, dest: Path) -> Path:
    """The file `path` of a single-platform image, copied out with skopeo and tarfile only."""
    layout = dest.parent / (dest.name + "-oci")
    proc = run(["skopeo", "copy", "--src-tls-verify=false", f"docker://{ref}", f"oci:{layout}:x"], timeout=300)
    assert proc.returncode == 0, describe(proc)
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((layout / "blobs" / "sha256" / index["manifests"][0]["digest"][7:]).read_bytes())
    want = path.lstrip("/")
    for layer in reversed(manifest["layers"]):
        with tarfile.open(layout / "blobs" / "sha256" / layer["digest"][7:]) as tar:
            for member in tar:
                if member.name.lstrip("./") == want and member.isfile():
                    handle = tar.extractfile(member)
                    assert handle is not None
                    dest.write_bytes(handle.read())
                    return dest
    raise AssertionError(f"{path} not in {ref}")


def go_version_m(binary: Path) -> list[tuple[str, str, str, str]]:
    """(kind, path, version, sum) of every mod/dep/=> line `go version -m` prints."""
    proc = run(["go", "version", "-m", binary], timeout=60)
    assert proc.returncode == 0, describe(proc)
    rows = []
    for line in proc.stdout.splitlines()[1:]:
        fields = line.strip("\n").split("\t")[1:]
        if fields and fields[0] in ("mod", "dep", "=>"):
            fields += [""] * (4 - len(fields))
            rows.append((fields[0], fields[1], fields[2], fields[3]))
    return rows


# --- the registry's HTTP API, for forging --------------------------------------------------------


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    status, _, data = http_request(method, url, body, headers)
    return status, data


def put_manifest(repo: str, reference: str, raw: bytes, media_type: str) -> str:
    return put_manifest_at(REGISTRY_API, repo, reference, raw, media_type)


def repo_path(ref: str) -> str:
    return ref.split("/", 1)[1].rsplit(":", 1)[0]


# --- tests: what image.multiarch published -----------------------------------------------------------


def test_cosign_verifies_every_index_and_image(world: World) -> None:
    for prefix, services in ((world.example, ("api", "push")), (world.first, ("depsvc",))):
        for svc in services:
            ref = f"{prefix}/{svc}:{TAG}"
            proc = cosign_verify(ref, world.keys.pub)
            assert proc.returncode == 0, describe(proc)
            claims = json.loads(proc.stdout)
            raw, index = skopeo_raw(ref)
            assert claims[0]["critical"]["image"]["docker-manifest-digest"] == sha256_digest(raw)
            for digest in image_entries(index).values():
                proc = cosign_verify(f"{prefix}/{svc}@{digest}", world.keys.pub)
                assert proc.returncode == 0, describe(proc)
    # the second build was signed with the other key: cosign itself refuses it under ours
    proc = cosign_verify(f"{world.second}/depsvc:{TAG}", world.keys.pub)
    assert proc.returncode != 0, describe(proc)


def test_the_password_is_never_echoed(world: World) -> None:
    assert PASSWORD not in world.logs
    assert "+ cosign sign --yes --key" in world.logs  # V=1 did echo the command (without the password)


def test_every_platform_carries_a_valid_spdx_sbom_listing_the_binary_modules(world: World, tmp_path: Path) -> None:
    ref = f"{world.first}/depsvc:{TAG}"
    sboms = imagetools(ref, "SBOM")
    _, index = skopeo_raw(ref)
    assert set(sboms) == set(PLATFORMS.split(",")) == set(image_entries(index))
    for plat, digest in image_entries(index).items():
        spdx = sboms[plat]["SPDX"]
        path = tmp_path / f"{plat.replace('/', '-')}.spdx.json"
        path.write_text(json.dumps(spdx))
        assert validate_full_spdx_document(parse_file(str(path)), "SPDX-2.3") == [], plat
        binary = binary_from_image(f"{world.first}/depsvc@{digest}", "/usr/local/bin/depsvc", tmp_path / plat[6:])
        lines = go_version_m(binary)
        deps = [(p, v, s) for kind, p, v, s in lines if kind == "dep"]
        assert [p for p, _, _ in deps] == ["github.com/google/uuid", "github.com/pkg/errors"]
        listed = {}
        for pkg in spdx["packages"]:
            sums = [c["checksumValue"] for c in pkg.get("checksums", []) if c["algorithm"] == "SHA256"]
            listed[pkg["name"]] = (pkg.get("versionInfo", ""), sums[0] if sums else "")
        for _kind, path_, version, go_sum in lines:
            hexsum = base64.b64decode(go_sum[3:]).hex() if go_sum else ""
            assert listed[path_] == (version, hexsum), (plat, path_, listed.get(path_))
        assert set(listed) == {p for _, p, _, _ in lines} | {"stdlib"}, plat


def test_provenance_is_kept_beside_the_sbom(world: World) -> None:
    provenance = imagetools(f"{world.first}/depsvc:{TAG}", "Provenance")
    assert set(provenance) == set(PLATFORMS.split(","))
    for plat, data in provenance.items():
        assert data["SLSA"], plat  # BuildKit's predicate survived the index rewrite


def test_two_cold_builds_give_byte_identical_sboms(world: World) -> None:
    first = sbom_layer_digests(f"{world.first}/depsvc:{TAG}")
    second = sbom_layer_digests(f"{world.second}/depsvc:{TAG}")
    assert first == second
    status, blob = http("GET", f"{REGISTRY_API}/v2/{repo_path(world.first + '/depsvc:x')}/blobs/{first['linux/arm64']}")
    assert status == 200 and json.loads(blob)["predicateType"] == SPDX_PREDICATE


def test_verify_checks_signature_sbom_and_reports_provenance(world: World) -> None:
    env = {"SIGN": str(world.keys.key), "REGISTRY_PREFIX": world.first, "PLATFORMS": PLATFORMS}
    proc = world.clone.invoke("verify", "--config", "supply.toml", "--no-smoke", env=env)
    assert proc.returncode == 0, describe(proc)
    report = json.loads((world.clone.build_dir / "reports" / "verify.json").read_text())
    (image,) = report
    assert image["signature"].startswith("cosign"), image
    for plat in image["platforms"]:
        assert plat["sbom"].startswith("spdx: 4 modules"), plat  # main, uuid, errors, stdlib
        assert plat["provenance"]["predicate_type"].startswith("https://slsa.dev/provenance/"), plat
        assert plat["provenance"]["build_type"], plat
        assert plat["provenance"]["materials"] >= 0, plat


def _verify_refuses(world: World, ref: str, prefix: str, *words: str) -> None:
    env = {"SIGN": str(world.keys.key), "REGISTRY_PREFIX": prefix, "PLATFORMS": PLATFORMS}
    proc = world.clone.invoke("verify", "--config", "supply.toml", "--no-smoke", "--image", ref, env=env)
    line = assert_clean_failure(proc)
    assert "verify failed for depsvc" in line, describe(proc)
    for word in words:
        assert word in proc.stdout, describe(proc)


def test_verify_refuses_a_tampered_image(world: World) -> None:
    repo = repo_path(f"{world.first}/depsvc:{TAG}")
    raw, index = skopeo_raw(f"{world.first}/depsvc:{TAG}")
    old = image_entries(index)["linux/arm64"]
    image_raw, image = skopeo_raw(f"{world.first}/depsvc@{old}")
    image["annotations"] = {"forged": "yes"}
    new_raw = json.dumps(image).encode()
    new = put_manifest(repo, sha256_digest(new_raw), new_raw, image["mediaType"])
    text = raw.decode().replace(old, new).replace(f'"size": {len(image_raw)}', f'"size": {len(new_raw)}', 1)
    forged = put_manifest(repo, "tampered-image", text.encode(), index["mediaType"])
    # the attacker keeps the original signatures, now under the forged digest
    sig_raw, sig = skopeo_raw(f"{world.first}/depsvc:{'sha256-' + sha256_digest(raw)[7:]}.sig")
    put_manifest(repo, f"sha256-{forged[7:]}.sig", sig_raw, sig["mediaType"])
    _verify_refuses(world, f"{world.first}/depsvc:tampered-image", world.first, "altered")


def test_verify_refuses_a_tampered_sbom_even_when_signed(world: World) -> None:
    repo = repo_path(f"{world.first}/depsvc:{TAG}")
    raw, index = skopeo_raw(f"{world.first}/depsvc:{TAG}")
    image = image_entries(index)["linux/arm64"]
    att_digest = attestation_of(index, image)
    att_raw, att = skopeo_raw(f"{world.first}/depsvc@{att_digest}")
    for layer in att["layers"]:
        if (layer.get("annotations") or {}).get("in-toto.io/predicate-type") != SPDX_PREDICATE:
            continue
        status, blob = http("GET", f"{REGISTRY_API}/v2/{repo}/blobs/{layer['digest']}")
        assert status == 200
        statement = json.loads(blob)
        statement["predicate"]["packages"] = [
            p for p in statement["predicate"]["packages"] if p["name"] != "github.com/google/uuid"
        ]
        new_blob = json.dumps(statement).encode()
        layer["digest"], layer["size"] = upload_blob(REGISTRY_API, repo, new_blob), len(new_blob)
    new_att_raw = json.dumps(att).encode()
    new_att = put_manifest(repo, sha256_digest(new_att_raw), new_att_raw, att["mediaType"])
    text = raw.decode().replace(att_digest, new_att).replace(f'"size": {len(att_raw)}', f'"size": {len(new_att_raw)}')
    forged = put_manifest(repo, "tampered-sbom", text.encode(), index["mediaType"])
    proc = run(
        ["cosign", "sign", "--key", world.keys.key, "--tlog-upload=false", "--yes", f"{world.first}/depsvc@{forged}"],
        env={"COSIGN_PASSWORD": PASSWORD},
        timeout=300,
    )
    assert proc.returncode == 0, describe(proc)  # validly signed: only the SBOM check can catch it
    _verify_refuses(world, f"{world.first}/depsvc:tampered-sbom", world.first, "SBOM lacks github.com/google/uuid")


def test_verify_refuses_a_signature_by_another_key(world: World) -> None:
    _verify_refuses(world, f"{world.second}/depsvc:{TAG}", world.second, "signed with another key")


# --- bundles ----------------------------------------------------------------------------------------


def make_bundle(world: World, prefix: str, key: Path, dest: Path) -> Path:
    env = {"SIGN": str(key), "REGISTRY_PREFIX": prefix, "PLATFORMS": "linux/arm64"}
    proc = world.clone.invoke("bundle", "--config", "supply.toml", env=env)
    assert proc.returncode == 0, describe(proc)
    (archive,) = (world.clone.build_dir / "bundles").glob("*.tar.gz")
    return Path(shutil.move(archive, dest))


@pytest.fixture(scope="module")
def bundles(world: World, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("bundles")
    good = make_bundle(world, world.first, world.keys.key, tmp / "good.tar.gz")
    other = make_bundle(world, world.second, world.keys.other_key, tmp / "other.tar.gz")
    return good, other


def forge(src: Path, dest: Path, edit: Callable[[dict[str, bytes], dict[str, Any]], None]) -> Path:
    """Rewrite a bundle the way an attacker would: edit the files, keep every cross-reference the reader
    checks consistent (blob names, manifest.json, the layout index), and rebuild SHA256SUMS."""
    with tarfile.open(src) as tar:
        members = [m for m in tar.getmembers() if m.isfile()]
        top = members[0].name.split("/", 1)[0]
        files = {}
        for m in members:
            handle = tar.extractfile(m)
            assert handle is not None
            files[m.name.split("/", 1)[1]] = handle.read()
    manifest = json.loads(files["manifest.json"])
    edit(files, manifest)  # renamed blobs keep their place: manifests still come before the blobs they name
    files["manifest.json"] = (json.dumps(manifest, indent=2) + "\n").encode()
    order = list(files)
    sums = "".join(f"{hashlib.sha256(files[n]).hexdigest()}  {n}\n" for n in sorted(files) if n != "SHA256SUMS")
    files["SHA256SUMS"] = sums.encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in order:
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(files[name])
            tar.addfile(info, io.BytesIO(files[name]))
    dest.write_bytes(gzip.compress(buffer.getvalue()))
    return dest


def _rename_blob(files: dict[str, bytes], old: str, data: bytes) -> str:
    """Replace blob `old` by `data` under its own digest, in place in the archive order."""
    new = sha256_digest(data)
    rebuilt = {}
    for name, content in files.items():
        if name == f"images/blobs/sha256/{old[7:]}":
            rebuilt[f"images/blobs/sha256/{new[7:]}"] = data
        else:
            rebuilt[name] = content
    files.clear()
    files.update(rebuilt)
    return new


def tamper_image(files: dict[str, bytes], manifest: dict[str, Any]) -> None:
    img = manifest["images"][0]
    old = img["digest"]
    data = json.loads(files[f"images/blobs/sha256/{old[7:]}"])
    data["annotations"] = {"forged": "yes"}
    raw = json.dumps(data).encode()
    new = _rename_blob(files, old, raw)
    img["totalSize"] += len(raw) - img["size"]
    img["digest"], img["size"] = new, len(raw)
    for sig in img["supply"]["signatures"]:
        if sig["signs"] == old:
            sig["signs"] = new  # the attacker points the old signature at the new image
    layout = json.loads(files["images/index.json"])
    layout["manifests"][0]["digest"], layout["manifests"][0]["size"] = new, len(raw)
    files["images/index.json"] = (json.dumps(layout, indent=2) + "\n").encode()


def tamper_sbom(files: dict[str, bytes], manifest: dict[str, Any]) -> None:
    att_ref = manifest["images"][0]["supply"]["attestation"]
    att = json.loads(files[f"images/blobs/sha256/{att_ref['digest'][7:]}"])
    for layer in att["layers"]:
        if (layer.get("annotations") or {}).get("in-toto.io/predicate-type") == SPDX_PREDICATE:
            statement = json.loads(files[f"images/blobs/sha256/{layer['digest'][7:]}"])
            statement["predicate"]["packages"] = statement["predicate"]["packages"][1:]
            blob = json.dumps(statement).encode()
            layer["digest"], layer["size"] = _rename_blob(files, layer["digest"], blob), len(blob)
    raw = json.dumps(att).encode()
    att_ref["digest"], att_ref["size"] = _rename_blob(files, att_ref["digest"], raw), len(raw)


def _load_refused(world: World, archive: Path, key: Path, registry: str, *words: str) -> None:
    proc = world.clone.invoke("bundle.load", str(archive), "--key", str(key), "--registry", registry)
    line = assert_clean_failure(proc)
    assert "nothing was imported" in line, describe(proc)
    for word in words:
        assert word in line, describe(proc)
    assert catalog(registry) == [], describe(proc)


def test_bundle_load_refuses_tampering_and_other_keys(world: World, bundles: tuple[Path, Path], tmp_path: Path) -> None:
    good, other = bundles
    with docker_registry(tmp_path / "registry") as second:
        registry = second.address
        _load_refused(world, forge(good, tmp_path / "image.tar.gz", tamper_image), world.keys.pub, registry, "altered")
        _load_refused(world, forge(good, tmp_path / "sbom.tar.gz", tamper_sbom), world.keys.pub, registry, "SBOM")
        _load_refused(world, good, world.keys.other_pub, registry, "signed with the key")
        # a bundle signed with the other key, its recorded fingerprint forged to ours: the signatures decide
        ours = _manifest_of(good)["publicKey"]

        def claim_ours(files: dict[str, bytes], manifest: dict[str, Any]) -> None:
            manifest["publicKey"] = ours

        forged = forge(other, tmp_path / "forged-key.tar.gz", claim_ours)
        _load_refused(world, forged, world.keys.pub, registry, "signed with another key")


def _manifest_of(archive: Path) -> dict[str, Any]:
    with tarfile.open(archive) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("/manifest.json") and m.name.count("/") == 1)
        handle = tar.extractfile(member)
        assert handle is not None
        data: dict[str, Any] = json.loads(handle.read())
        return data


def test_a_verified_bundle_loads_with_signature_and_sbom_attached(
    world: World, bundles: tuple[Path, Path], tmp_path: Path
) -> None:
    good, _ = bundles
    with docker_registry(tmp_path / "registry") as second:
        registry = second.address
        proc = world.clone.invoke("bundle.load", str(good), "--key", str(world.keys.pub), "--registry", registry)
        assert proc.returncode == 0, describe(proc)
        repo = repo_path(f"{world.first}/depsvc:{TAG}")
        ref = f"{registry}/{repo}:{TAG}"
        proc = cosign_verify(ref, world.keys.pub)
        assert proc.returncode == 0, describe(proc)
        digest = json.loads(proc.stdout)[0]["critical"]["image"]["docker-manifest-digest"]
        _, index = skopeo_raw(f"{world.first}/depsvc:{TAG}")
        assert digest == image_entries(index)["linux/arm64"]
        # the SBOM is attached by the referrers tag schema: sha256-<image digest> lists the attestation manifest
        status, body = http("GET", f"http://{registry}/v2/{repo}/manifests/sha256-{digest[7:]}", None,
                            {"Accept": "application/vnd.oci.image.index.v1+json"})  # fmt: skip
        assert status == 200, body
        (referrer,) = json.loads(body)["manifests"]
        status, body = http("GET", f"http://{registry}/v2/{repo}/manifests/{referrer['digest']}", None,
                            {"Accept": "application/vnd.oci.image.manifest.v1+json"})  # fmt: skip
        attestation = json.loads(body)
        assert attestation["subject"]["digest"] == digest
        spdx = [x for x in attestation["layers"] if x["annotations"]["in-toto.io/predicate-type"] == SPDX_PREDICATE]
        status, blob = http("GET", f"http://{registry}/v2/{repo}/blobs/{spdx[0]['digest']}")
        assert status == 200 and json.loads(blob)["predicate"]["spdxVersion"] == "SPDX-2.3"
        # and the other key does not verify there
        proc = cosign_verify(ref, world.keys.other_pub)
        assert proc.returncode != 0, describe(proc)
