"""A platform's images baked as soon as its binaries exist, while the other platforms still compile.

`image.multiarch` used to wait for every platform's `go build` before ONE bake of every image.
Here the compile tells a `Baker` of each platform whose binaries passed their checks. The Baker
gathers the platforms that finish within `GATHER_S` of the first one and bakes them at once, in a
thread of its own, while the rest still compile: one bake target per service holding those
platforms, pushed by digest. Platforms compiled side by side finish together (after an edit
within a second, after a cold compile within two or three), so they still make ONE bake of every
platform, as before; a platform that is well ahead (a fifth platform waits for a free compile
slot, a cgo or riscv64 build runs long) does not wait.

When the compile is over, the decide stage says which services change; the Baker bakes whatever
of those it could not start early, then composes each service's index from the parts and PUTs it
by digest (a part holding every platform is that index already). The stages after it (check,
SBOM, verify, sign, record, tag) see the index one multi-platform bake would have pushed:
BuildKit gives the same image manifest for a platform built alone (same config, same layers),
and `compose` writes the index as BuildKit writes it, byte for byte, so its digest does not
depend on how the bakes were split (tests/integration/test_early_bakes.py compares the two).

A platform's image starts early only when it is certain to be needed whatever the other
platforms give (`certain`): the service was never published, or what decides its index besides
the binaries changed, or this platform's binary differs from the one last published. Anything
else waits for the decide stage, so an edit that leaves a service's binaries as they were bakes
nothing for it.

Only images that copy crossbuild's layer trees take part (`takes`): their build context can be
cut per platform (crossbuild.rootfs). Multistage images and a service's own Dockerfile are baked
in the bake stage's one bake, as before.

Where it runs (`wanted`, `[image] bake_early`): by default only when the builder's nodes are
other machines, whose CPUs the compile does not use. On a builder sharing this machine's cores
an early bake only moves work around, and splitting a bake has a price of its own (each part is
a BuildKit solve). Measured on the 2-core bench machine with BuildKit local:
- 36 images as three bakes of one platform took 1.4 to 2.3 s longer than one bake of three
  platforms (the same new binaries each time);
- a cold run whose first platform was baked alone, 2 s before the others finished (a 1 s
  window), still ended its bakes 8 s after the compile, as long as one bake of every image
  takes alone;
- at the sweep's 12 services x 5 platforms, where the fifth platform compiles alone (14 s; 22 s
  with four platforms' images baking beside it), crossbuild ended 6.1 and 9.1 s after the floor
  with early bakes and 4.3 s without (one run each way; the floor moved 52 to 58 s between runs).
`BAKE_EARLY=always` turns it on anyway (the bench's case (ae) measures it beside (a)).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from crossbuild import attestations, bake, hosts, images, incremental, output, progress, rootfs
from crossbuild import plan as plan_mod
from crossbuild.config import Config
from crossbuild.errors import UserError
from crossbuild.gobuild import PlatformResult
from crossbuild.oci import Reference, parse_reference
from crossbuild.oci.client import Client
from crossbuild.oci.mediatypes import OCI_INDEX
from crossbuild.platforms import Platform, normalise_platform
from crossbuild.runner import Runner

Pair = tuple[str, str]  # (service, platform)
GATHER_S = 3.0  # platforms finishing within this of the first one are baked together
BAKE_NAME = "multiarch"  # build/bake/multiarch-<n>.json, one per bake, in the order they ran
MEMO = "early bakes"  # the run's Baker, in the pipeline context's memo, from the compile to the bake


def wanted(cfg: Config) -> bool:
    """Bake a platform's images while the others compile? `[image] bake_early` (BAKE_EARLY):
    always, never, or auto: only when every node of the builder is another machine (the kubernetes
    driver, or a remote tcp:// endpoint whose host is not this one's loopback). There the early
    bakes run on CPUs the compile does not use. A builder on this machine shares its cores with
    `go build`, and there an early bake only moves work around (measured: module docstring)."""
    if cfg.image.bake_early != "auto":
        return cfg.image.bake_early == "always"
    return all(elsewhere(cfg.builder.driver, node.endpoint) for node in cfg.builder.all_nodes)


def elsewhere(driver: str, endpoint: str) -> bool:
    """Does a builder node of this driver and endpoint run on another machine?"""
    if driver == "kubernetes":
        return True
    if driver != "remote" or not endpoint.startswith("tcp://"):
        return False  # docker-container, docker: this machine's daemon; unix://: a socket here
    return not hosts.is_loopback(urlsplit(endpoint).netloc)  # by the text alone, as for registries


def takes(t: plan_mod.ImageTarget) -> bool:
    """Can this image be baked a platform at a time? Those copying a crossbuild layer tree can."""
    return t.fixed_times


def certain(record: Mapping[str, Any], t: plan_mod.ImageTarget, frame: str, platform: str, digest: str) -> bool:
    """Will the service's index be built, whatever the other platforms' binaries turn out to be?

    `record`: what the last publish recorded (build/state/images.json); `frame`: the target's
    content key without the binaries (plan.frame_key); `digest`: this platform's new binary.
    A record from before the frame and inputs were kept says nothing: the image waits.
    """
    if not record.get("key"):
        return True  # never published here
    if record.get("repository", t.repository) != t.repository:
        return True  # a first push to another repository
    recorded_frame, inputs = record.get("frame"), record.get("inputs")
    if not isinstance(recorded_frame, str) or not isinstance(inputs, dict):
        return False
    return recorded_frame != frame or inputs.get(platform) != digest


def go_json(value: Any) -> bytes:
    """JSON as Go's json.MarshalIndent(v, "", "  ") writes it (BuildKit's index): two-space
    indent, keys in the order given, UTF-8 as is, and <, >, & and U+2028/9 escaped."""
    text = json.dumps(value, indent=2, ensure_ascii=False)
    for char, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escaped)
    return text.encode()


def platform_of(entry: attestations.Entry) -> str:
    """An index entry's platform as crossbuild writes platforms: linux/arm/v7 (arm64/v8: linux/arm64)."""
    p = entry.platform
    return str(
        normalise_platform(str(p.get("os") or ""), str(p.get("architecture") or ""), str(p.get("variant") or ""))
    )


def compose(parts: Sequence[Mapping[str, Any]], platforms: Sequence[str]) -> bytes:
    """One index from the indexes of parts of a service's platforms, as BuildKit writes the index of
    a build of all `platforms`: every image in platform order, then the attestation manifests in
    the order of their images, and the index's own fields (media type, annotations) as each part
    has them."""
    if not parts:
        raise ValueError("compose needs at least one part")
    frames = [{k: v for k, v in part.items() if k != "manifests"} for part in parts]
    if any(f != frames[0] for f in frames[1:]):
        raise UserError(
            "the per-platform images of one service carry different index annotations; "
            "run `make image.multiarch` again (crossbuild bakes them with the same arguments)"
        )
    entries = [e for part in parts for e in attestations.entries(part)]
    found = [e for e in entries if not e.is_attestation]
    if sorted(platform_of(e) for e in found) != sorted(platforms):
        raise UserError(
            f"the per-platform images hold {', '.join(sorted(platform_of(e) for e in found))}, "
            f"not {', '.join(platforms)}; run `make image.multiarch` again"
        )
    found.sort(key=lambda e: list(platforms).index(platform_of(e)))
    order = {e.digest: n for n, e in enumerate(found)}
    attached = sorted((e for e in entries if e.is_attestation), key=lambda e: order.get(e.subject, len(order)))
    body = _sorted_maps(dict(parts[0]))
    body["manifests"] = [_sorted_maps(dict(e.raw)) for e in [*found, *attached]]
    return go_json(body)


def _sorted_maps(fields: dict[str, Any]) -> dict[str, Any]:
    """Go writes a map's keys sorted (annotations), a struct's fields in their order (the rest)."""
    if isinstance(fields.get("annotations"), dict):
        fields["annotations"] = dict(sorted(fields["annotations"].items()))
    return fields


class Baker:
    """Bakes the platforms the compile hands over, gathered, each gathering in a thread of its own."""

    def __init__(
        self,
        run: Runner,
        cfg: Config,
        client: Client,
        targets: Sequence[plan_mod.ImageTarget],
        records: Mapping[str, Mapping[str, Any]],
        platforms: Sequence[Platform],
        report: progress.Reporter = progress.NULL,
        gather: float = GATHER_S,
    ) -> None:
        self.run = run
        self.cfg = cfg
        self.client = client
        self.targets = [t for t in targets if takes(t)]
        self.frames = {t.service.name: plan_mod.frame_key(cfg, t) for t in self.targets}
        self.records = records
        self.platforms = set(platforms)
        self.order = {p: i for i, p in enumerate(platforms)}  # rows and lines name platforms as configured
        self.report = report
        self.gather = gather
        self.cancel = threading.Event()  # the run failed: a bake running is killed, no other starts
        self.parts: dict[str, list[tuple[Sequence[Platform], dict[str, Any], str]]] = {}  # service -> parts
        self.contexts: set[Path] = set()
        self._taken: set[Pair] = set()  # baked, being baked, or gathered for a bake
        self._done: set[Platform] = set()  # platforms the compile has handed over
        self._pending: list[tuple[plan_mod.ImageTarget, Platform]] = []  # gathered, not yet baking
        self._gathering = False
        self._closed = False
        self._errors: list[BaseException] = []
        self._batches = 0
        self.late = 0  # images baked after the compile (the decide stage's, that were not certain before)
        self.composed = 0  # indexes composed from parts
        self._threads: list[threading.Thread] = []
        self._wake = threading.Condition()
        for stale in (cfg.output_dir / "bake").glob(f"{BAKE_NAME}-*.json"):  # would read as this run's
            stale.unlink(missing_ok=True)

    # --- from the compile's threads ---------------------------------------------------------

    def built(self, result: PlatformResult) -> None:
        """A platform's binaries all passed their checks: gather its images that are certain."""
        paths = {b.service: b.path for b in result.binaries}
        platform = str(result.platform)
        pairs = []
        for t in self.targets:
            if result.platform not in t.platforms or t.service.name not in paths:
                continue
            digest = incremental.file_digest(paths[t.service.name])
            if certain(self.records.get(t.service.name, {}), t, self.frames[t.service.name], platform, digest):
                pairs.append((t, result.platform))
        with self._wake:
            self._done.add(result.platform)
            if self._closed or self.cancel.is_set():
                return
            self._taken.update((t.service.name, str(p)) for t, p in pairs)
            self._pending += pairs
            if self._pending and not self._gathering:
                self._gathering = True
                thread = threading.Thread(target=self._gather, name=f"bake from {platform}", daemon=True)
                self._threads.append(thread)
                thread.start()
            self._wake.notify_all()

    def _gather(self) -> None:
        """Wait GATHER_S for other platforms to finish (or for all of them), then bake what came."""
        deadline = time.monotonic() + self.gather
        with self._wake:
            while not self._closed and self._done < self.platforms and (left := deadline - time.monotonic()) > 0:
                self._wake.wait(left)
            batch, self._pending, self._gathering = self._pending, [], False
        if self.cancel.is_set():
            return
        try:
            self._bake(batch, self.report, early=True)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread by `finish`
            self._errors.append(exc)

    # --- from the main thread ---------------------------------------------------------------

    def stop(self) -> None:
        """The run is over, however it ended: a bake still running (the run failed beside it) is
        killed, and none starts."""
        self.cancel.set()
        self._join()

    def _join(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify_all()
        for thread in list(self._threads):
            thread.join()

    def finish(self, targets: Sequence[plan_mod.ImageTarget], report: progress.Reporter) -> dict[str, str]:
        """Bake what the early bakes left of `targets` (the services the decide stage builds),
        compose and push each one's index; service -> index digest."""
        self._join()
        if self._errors:
            raise self._errors[0]
        mine = [t for t in targets if takes(t)]
        rest = [(t, p) for t in mine for p in t.platforms if (t.service.name, str(p)) not in self._taken]
        if rest:
            self._bake(rest, report, early=False)
        self.late = len(rest)
        rootfs.remove_others(self.cfg, self.contexts)
        return {t.service.name: self._index(t) for t in mine}

    def _index(self, t: plan_mod.ImageTarget) -> str:
        """The service's index digest: its one part when that holds every platform (BuildKit pushed
        it), else composed from its parts and PUT by digest."""
        parts = self.parts[t.service.name]
        if len(parts) == 1 and tuple(parts[0][0]) == tuple(t.platforms):
            return parts[0][2]
        self.composed += 1
        raw = compose([data for _platforms, data, _digest in parts], [str(p) for p in t.platforms])
        ref = parse_reference(t.repository)
        media_type = json.loads(raw).get("mediaType") or OCI_INDEX
        return self.client.put_manifest(ref.registry, ref.repository, images.sha256_of(raw), raw, str(media_type))

    def ordered(self, platforms: Iterable[Platform]) -> list[Platform]:
        """`platforms` in the order the run names them (config, PLATFORMS), for rows and lines."""
        return sorted(platforms, key=lambda p: self.order.get(p, len(self.order)))

    def early(self) -> int:
        """How many images were baked beside the compile."""
        return len(self._taken)

    # --- one bake ------------------------------------------------------------------------------

    def _bake(
        self, pairs: Iterable[tuple[plan_mod.ImageTarget, Platform]], report: progress.Reporter, early: bool
    ) -> None:
        """One bake: a target per service holding the platforms of `pairs` it has, pushed by digest."""
        started = time.monotonic()
        by_service: dict[str, tuple[plan_mod.ImageTarget, list[Platform]]] = {}
        for t, p in pairs:
            by_service.setdefault(t.service.name, (t, []))[1].append(p)
        batch_platforms = self.ordered({p for _t, ps in by_service.values() for p in ps})
        by_set: dict[tuple[Platform, ...], list[plan_mod.ImageTarget]] = {}
        for t, ps in by_service.values():
            by_set.setdefault(tuple(p for p in t.platforms if p in ps), []).append(t)
        cut = []
        for platforms, targets in by_set.items():
            context = rootfs.write(self.cfg, platforms, [t.service for t in targets], prune=False)
            self.contexts.add(context)
            cut += [replace(t, platforms=platforms, context=context, part=platforms != t.platforms) for t in targets]
        with self._wake:
            self._batches += 1
            name = f"{BAKE_NAME}-{self._batches}"
        where = ", ".join(map(str, batch_platforms))
        row = f"images {where}"
        if early:
            report.start(row, f"baking {len(cut)} image(s) beside the compile")
        metadata = bake.bake(
            self.run,
            self.cfg,
            cut,
            lambda t: [plan_mod.push_output(self.cfg, t)],
            name=name,
            with_tags=False,
            index=True,
            report=None if early else report,
            cancel=self.cancel if early else None,  # the main thread's own bake stops with Ctrl-C as before
        )
        for t in cut:
            digest = bake.digest_of(metadata, t)
            ref = parse_reference(t.repository)
            data = self.client.get_manifest(Reference(ref.registry, ref.repository, None, digest)).data
            with self._wake:
                self.parts.setdefault(t.service.name, []).append((t.platforms, data, digest))
        if early:
            report.finish(row, f"{len(cut)} image(s) pushed by digest")
            took = time.monotonic() - started
            output.ok(f"{where}: {len(cut)} service(s) baked in {took:.1f}s beside the compile")
