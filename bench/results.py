"""What a case measured and what a target concluded, in the shape results.json keeps.

A case records one Phase per timed phase under its name; the named accessors
(cold_s, bytes_warm, ...) and to_json() keep the report and results.json in the
shape they had before cases could have phases of their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.measure import Phase

STANDARD_PHASES = ("cold", "warm")


def human(n: int | None) -> str:
    if n is None:
        return "n/a"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def by_repo(pushed: Mapping[str, int]) -> str:
    """Where a phase pushed: `api 1.2 MiB, rpc-user 3 KiB`, or `-` for nowhere."""
    return ", ".join(f"{repo} {human(n)}" for repo, n in pushed.items()) or "-"


def secs(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1f}"


@dataclass
class CaseResult:
    key: str
    label: str
    prefix: str
    status: str = "ok"  # ok | unavailable: ... | failed: ...
    phases: dict[str, Phase] = field(default_factory=dict)  # in the order they ran
    services: int = 0  # measured
    platforms: int = 0  # measured
    total_services: int = 0
    extrapolated_cold_s: float | None = None  # only when fewer services were measured than exist
    notes: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    load_before: float = 0.0
    setup_s: float = 0.0
    # what a case derives or measures besides its phases: (t) bytes moved and MiB/s, (v) its parts
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def cold_s(self) -> float | None:
        p = self.phases.get("cold")
        return p.wall_s if p else None

    @property
    def warm_s(self) -> float | None:
        p = self.phases.get("warm")
        return p.wall_s if p else None

    @property
    def bytes_cold(self) -> int | None:
        p = self.phases.get("cold")
        return p.bytes_pushed if p else None

    @property
    def bytes_warm(self) -> int | None:
        p = self.phases.get("warm")
        return p.bytes_pushed if p else None

    @property
    def cpu(self) -> dict[str, dict[str, float]]:
        """phase -> CpuWatch numbers"""
        return {name: p.cpu for name, p in self.phases.items()}

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.cold_s is not None

    def per_unit(self) -> float | None:
        if not self.ok or not self.services or not self.platforms or self.cold_s is None:
            return None
        return self.cold_s / (self.services * self.platforms)

    def first_phase(self) -> Phase | None:
        return next(iter(self.phases.values()), None)

    def to_json(self) -> dict[str, Any]:
        """results.json's per-case object: cold and warm as flat keys, any other phase under "phases"."""
        cold, warm = self.phases.get("cold"), self.phases.get("warm")
        out: dict[str, Any] = {
            "key": self.key,
            "label": self.label,
            "prefix": self.prefix,
            "status": self.status,
            "cold_s": self.cold_s,
            "warm_s": self.warm_s,
            "bytes_cold": self.bytes_cold,
            "bytes_warm": self.bytes_warm,
            "registry_growth_cold": cold.registry_growth if cold else None,
            "registry_growth_warm": warm.registry_growth if warm else None,
            "services": self.services,
            "platforms": self.platforms,
            "total_services": self.total_services,
            "extrapolated_cold_s": self.extrapolated_cold_s,
            "notes": self.notes,
            "figures": self.figures,
            "commands": self.commands,
            "load_before": self.load_before,
            "setup_s": self.setup_s,
            "cpu": self.cpu,
            "bytes_by_repo": {n: p.pushed_by_repo for n, p in self.phases.items()},  # phase -> repository -> bytes
            # phase -> the largest VmHWM of a command the bench started (not of that command's children)
            "peak_rss": {n: {"kib": p.peak_rss_kib, "process": p.peak_rss_of} for n, p in self.phases.items()},
            "peak_rss_by_program": {n: p.peak_rss for n, p in self.phases.items()},  # phase -> program -> bytes
        }
        others = {n: p for n, p in self.phases.items() if n not in STANDARD_PHASES}
        if others:
            out["phases"] = {
                n: {"wall_s": p.wall_s, "bytes_pushed": p.bytes_pushed, "registry_growth": p.registry_growth}
                for n, p in others.items()
            }
        return {**out, "ok": self.status == "ok" and bool(self.phases), "per_service_arch_s": self.per_unit()}


@dataclass(frozen=True)
class Target:
    """One PASS/FAIL line: passed is None when the cases it compares did not both run."""

    name: str
    passed: bool | None
    detail: str

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "FAIL" if self.passed is False else "N/A "


def why_missing(r: CaseResult | None, key: str) -> str:
    """Why a target comparing case `key` with (a) could not be evaluated."""
    if r is None:
        return f"case {key} not run"
    return r.status if r.status != "ok" else "case a missing"
