"""Measuring one timed phase of a case: wall time, CPU (ours and the machine's), bytes pushed.

The machine is shared, so a wall time alone cannot be trusted: each phase waits
for the machine to be idle, then records how much CPU this benchmark's children
and buildkitd used and how much other processes took meanwhile. Bytes pushed
are read at the registry (bench/regstats.py), never from the tool's output.

Every figure a phase reports is taken here, so a case only says what to run;
a new figure is one more field of Phase filled in by PhaseMeter.measure, for
every case at once: the peak RSS of each command the bench starts (RssWatch) is one,
the peak RSS per program (from the VmHWM samples bench/shell.py takes of every
command's own process) another.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bench import regstats

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


# --- CPU ------------------------------------------------------------------------------


def load_average() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return -1.0


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return 0.0, 0.0
    total = sum(fields[:8])
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (total - idle) / CLK_TCK, total / CLK_TCK


def process_cpu(pid: int) -> float:
    """utime + stime + reaped children's (cutime + cstime) of one process, in seconds."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        return sum(int(x) for x in fields[11:15]) / CLK_TCK
    except (OSError, ValueError, IndexError):
        return 0.0


def find_pid(name: str) -> int | None:
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                argv0 = (proc / "cmdline").read_bytes().split(b"\0")[0].decode()
            except (OSError, UnicodeDecodeError):
                continue
            if Path(argv0).name == name:
                return int(proc.name)
    return None


def own_children_cpu() -> float:
    t = os.times()
    return t.children_user + t.children_system


class CpuWatch:
    """CPU used on the whole machine during a phase, and the part that was not ours.

    ours = this process's reaped children (go, invoke, docker, ko) + buildkitd (its
    own and reaped children's time: the build steps); other = the rest, roughly what
    concurrent work on the machine took from the benchmark.
    """

    def __init__(self) -> None:
        self.buildkitd = find_pid("buildkitd")
        self.start = self._sample()

    def _sample(self) -> tuple[float, float, float, float]:
        busy, total = machine_cpu()
        kit = process_cpu(self.buildkitd) if self.buildkitd else 0.0
        return busy, total, own_children_cpu() + kit, time.monotonic()

    def stop(self) -> dict[str, float]:
        busy0, _, ours0, t0 = self.start
        busy1, _, ours1, t1 = self._sample()
        busy, ours = busy1 - busy0, ours1 - ours0
        return {
            "wall_s": round(t1 - t0, 2),
            "machine_busy_cpu_s": round(busy, 1),
            "bench_cpu_s": round(ours, 1),
            "other_cpu_s": round(max(0.0, busy - ours), 1),
        }


def wait_idle(max_wait: float, threshold: float = 0.25, window: float = 2.0) -> float:
    """Wait (at most max_wait s) until the machine is less than `threshold` busy over `window` s."""
    started = time.monotonic()
    while True:
        b0, t0 = machine_cpu()
        time.sleep(window)
        b1, t1 = machine_cpu()
        busy = (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0
        waited = time.monotonic() - started
        if busy < threshold or waited >= max_wait:
            return waited


# --- peak RSS of the commands the bench starts ------------------------------------------


def direct_children() -> set[int]:
    """The pids of this process's children (every thread's), not their descendants."""
    found: set[int] = set()
    if Path(f"/proc/self/task/{os.getpid()}/children").exists():
        for task in Path("/proc/self/task").iterdir():
            with contextlib.suppress(OSError, ValueError):  # a thread that ended meanwhile
                found.update(int(p) for p in (task / "children").read_text().split())
        return found
    me = str(os.getpid())  # a kernel without CONFIG_PROC_CHILDREN: the slow way, every process's parent
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (proc / "stat").read_text()
                if stat[stat.rindex(")") + 2 :].split()[1] == me:
                    found.add(int(proc.name))
    return found


def status_hwm(pid: int) -> tuple[str, int, str] | None:
    """(name, VmHWM in KiB, start time) of a live process; None when it is gone or has no memory yet.

    The start time (field 22 of /proc/<pid>/stat) tells a reused pid from the process that had it.
    """
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    hwm = fields.get("VmHWM", "").split()
    if not hwm:  # a zombie: its memory is gone already
        return None
    return fields.get("Name", "?").strip(), int(hwm[0]), stat[stat.rindex(")") + 2 :].split()[19]


class RssWatch:
    """Peak RSS of each process the bench starts itself (crossbuild's invoke, go, docker, ko), not of
    the processes those start: `go build`'s compilers, buildx's plugins and buildkitd are not counted.

    A thread reads /proc/<pid>/status's VmHWM (the kernel's high-water mark of that
    process's resident set) of every direct child every `interval` s and keeps the last
    reading of each: VmHWM never decreases within one program, so the last reading is its
    peak up to at most `interval` before it exited. The last and not the largest, because
    VmHWM starts again at exec: read between fork and exec it is the bench's own. Not
    getrusage's ru_maxrss, which Linux carries over an execve and takes the maximum over
    every descendant (RUSAGE_CHILDREN). A command shorter than `interval` may be missed.
    """

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.last: dict[tuple[int, str], tuple[str, int]] = {}  # (pid, start time) -> (name, VmHWM KiB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="rss-watch", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(self.interval):
                return

    def sample(self) -> None:
        for pid in direct_children():
            seen = status_hwm(pid)
            if seen is not None:
                name, kib, start = seen
                self.last[(pid, start)] = (name, kib)

    def stop(self) -> tuple[int | None, str]:
        """(peak VmHWM in KiB, that process's name) over the phase's commands; (None, "") when none was seen."""
        self._stop.set()
        self._thread.join()
        return peak(self.last.values())


def peak(readings: Iterable[tuple[str, int]]) -> tuple[int | None, str]:
    """The largest (name, KiB) reading, as (KiB, name)."""
    best = max(readings, key=lambda r: r[1], default=None)
    return (best[1], best[0]) if best else (None, "")


# --- bytes pushed ---------------------------------------------------------------------


@dataclass
class Snapshot:
    registry: str  # which registry answered: "pid <n> <storage>" or "api"
    blobs: dict[str, int] | None  # every blob in the registry's storage (None: storage not readable)
    repos: dict[str, dict[str, int]]  # repository under the prefix -> blobs and manifests linked into it

    @property
    def linked(self) -> dict[str, int]:
        """The distinct digests linked anywhere under the prefix."""
        return {d: size for linked in self.repos.values() for d, size in linked.items()}


@dataclass(frozen=True)
class Pushed:
    """What one phase pushed, read at the registry between two snapshots."""

    total: int | None  # distinct digests newly linked under the prefix
    by_repo: dict[str, int]  # repository -> bytes newly linked into it (a digest counts in each repository)
    growth: int | None  # new blobs registry-wide
    note: str = ""


class Meter:
    """Bytes pushed, from the registry's storage or, failing that, its API.

    The case's bytes pushed are the sizes of the distinct digests newly linked into
    its own repositories (each case has its own prefix, so this does not depend on
    what other cases stored before). The registry-wide growth (new files under
    blobs/, the method that sees cross-repository de-duplication) is recorded as well.

    The registry is looked up again at every snapshot: something else on the machine
    (a test run, `make tools`) may replace the registry on :5000 with one that keeps
    its data elsewhere. A cold run starts from an empty prefix, so its bytes stay
    valid against the new storage; a warm one across a replacement is reported n/a.
    """

    def __init__(self) -> None:
        self.v2: Path | None = None
        self.identity = "api"
        self.methods: dict[str, str] = {}
        self.refresh()

    def refresh(self) -> None:
        found = regstats.find_storage()
        if found and found[1].is_dir():
            pid, self.v2 = found
            self.identity = f"pid {pid} {self.v2}"
            self.methods[self.identity] = (
                f"storage: link files under {self.v2}/repositories/<prefix>, sizes from blobs/"
            )
        else:
            self.v2, self.identity = None, "api"
            self.methods["api"] = "api: catalog + tags + manifests of the prefix's repositories (storage not found)"

    @property
    def method(self) -> str:
        return " | ".join(dict.fromkeys(self.methods.values()))

    def snapshot(self, prefix_path: str) -> Snapshot:
        self.refresh()
        if self.v2 is None:
            return Snapshot(self.identity, None, regstats.linked_via_api(prefix_path))
        return Snapshot(self.identity, regstats.stored_blobs(self.v2), regstats.linked_in_storage(self.v2, prefix_path))

    @staticmethod
    def diff(before: Snapshot, after: Snapshot) -> Pushed:
        """What was pushed between two snapshots, in all and per repository, and the registry-wide growth."""
        if before.registry != after.registry:
            note = f"registry replaced during the run ({before.registry} -> {after.registry})"
            if before.linked:
                return Pushed(None, {}, None, note + ": bytes n/a")
            note += ": bytes read from the new storage (prefix was empty)"
            return Pushed(sum(after.linked.values()), new_per_repo(Snapshot("", None, {}), after), None, note)
        old = before.linked
        pushed = sum(size for d, size in after.linked.items() if d not in old)
        grown = None
        if before.blobs is not None and after.blobs is not None:
            grown = sum(size for d, size in after.blobs.items() if d not in before.blobs)
        return Pushed(pushed, new_per_repo(before, after), grown)


def new_per_repo(before: Snapshot, after: Snapshot) -> dict[str, int]:
    """Bytes newly linked into each repository (only those that got any), sorted by repository."""
    out = {}
    for repo, linked in sorted(after.repos.items()):
        had = before.repos.get(repo, {})
        size = sum(n for d, n in linked.items() if d not in had)
        if size:
            out[repo] = size
    return out


# --- one phase ------------------------------------------------------------------------


@dataclass
class Phase:
    """What one timed phase (cold, warm, ...) of one case measured."""

    wall_s: float
    bytes_pushed: int | None
    registry_growth: int | None
    cpu: dict[str, float] = field(default_factory=dict)  # CpuWatch numbers + waited_for_idle_s
    note: str = ""  # why a figure is missing or suspect
    pushed_by_repo: dict[str, int] = field(default_factory=dict)  # repository under the prefix -> bytes
    peak_rss_kib: int | None = None  # largest VmHWM of the commands the bench started (RssWatch), not their children
    peak_rss_of: str = ""  # that command's process name: "invoke" for crossbuild, "go" for the floor
    peak_rss: dict[str, int] = field(default_factory=dict)  # program -> the largest peak RSS of its runs, bytes

    def busy_note(self) -> str:
        """Say so when other processes took a noticeable share of the CPU while the phase ran."""
        other = self.cpu.get("other_cpu_s", 0.0)
        if other > max(2.0, 0.15 * self.wall_s * (os.cpu_count() or 1)):
            return f"machine busy, ~{other:.0f} CPU-s used by other processes"
        return ""

    def disturbed(self) -> bool:
        """Others took more than 10 % of the machine: worth running the case again."""
        wall = self.cpu.get("wall_s", 0.0)
        return self.cpu.get("other_cpu_s", 0.0) > max(5.0, 0.10 * wall * (os.cpu_count() or 1))


class PhaseMeter:
    """Measures the phases of one case, one after the other, against its registry prefix.

    Bytes of a phase = digests linked into the prefix after it minus those before it
    (before the first phase the prefix is empty), so the warm rerun's bytes are what
    it pushed on top of the cold run.
    """

    def __init__(
        self, meter: Meter, prefix: str, wait_idle_s: float, peaks: list[tuple[str, int]] | None = None
    ) -> None:
        self.meter = meter
        self.peaks = peaks if peaks is not None else []  # Shell.peaks: (program, peak RSS) of every command run
        self.prefix_path = prefix.removeprefix(regstats.REGISTRY + "/")
        self.wait_idle_s = wait_idle_s
        self.before = meter.snapshot(self.prefix_path)

    def measure(self, body: Callable[[], None]) -> Phase:
        waited = wait_idle(self.wait_idle_s) if self.wait_idle_s > 0 else 0.0
        watch = CpuWatch()
        rss = RssWatch()
        ran = len(self.peaks)
        t0 = time.monotonic()
        try:
            body()
        finally:
            elapsed = time.monotonic() - t0
            rss_kib, rss_of = rss.stop()
        cpu = {**watch.stop(), "waited_for_idle_s": round(waited, 1)}
        snap = self.meter.snapshot(self.prefix_path)
        pushed = Meter.diff(self.before, snap)
        self.before = snap
        peaks: dict[str, int] = {}
        for program, peak in self.peaks[ran:]:
            peaks[program] = max(peaks.get(program, 0), peak)
        return Phase(
            elapsed,
            pushed.total,
            pushed.growth,
            cpu,
            pushed.note,
            pushed.by_repo,
            peak_rss_kib=rss_kib,
            peak_rss_of=rss_of,
            peak_rss=peaks,
        )
