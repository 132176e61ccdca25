"""Create .venv and install crossbuild into it, saying what happens while pip works.

The Makefile's first real target runs this (standard library only: nothing is installed yet).
pip's own output is condensed the way crossbuild shows its long steps: on a terminal one line
redrawn in place ("installing: Downloading matplotlib... 23 packages, 41s"); in CI or into a file
one timestamped line per package and a heartbeat when pip is silent for 4 seconds. On failure,
pip's last lines are shown.

usage: python3 scripts/venv.py VENV SPEC
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

HEARTBEAT = 4.0
_EVENT = re.compile(r"^(Collecting|Downloading|Using cached|Building wheel|Installing collected|Successfully)\b")


def plain() -> bool:
    if os.environ.get("CROSSBUILD_PROGRESS", "").lower() in ("plain", "live"):
        return os.environ["CROSSBUILD_PROGRESS"].lower() == "plain"
    ci = os.environ.get("CI", "").lower() in ("1", "true", "yes", "on")
    return ci or os.environ.get("TERM") == "dumb" or not sys.stdout.isatty()


def main(venv: Path, spec: str) -> int:
    started = time.monotonic()
    fresh = not (venv / "bin" / "python").exists()
    what = "creating .venv and installing" if fresh else "updating .venv: installing"
    print(f"==> {what} crossbuild {spec} with pip (a minute or two the first time):", flush=True)
    print("     invoke, docker, colorama, PyYAML; pytest, ruff, mypy; matplotlib for `make bench`", flush=True)
    if fresh:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    lines: list[str] = []
    state = {"last": time.monotonic(), "status": "starting pip", "packages": 0}
    lock = threading.Lock()
    is_plain = plain()

    def say(text: str) -> None:
        with lock:
            if is_plain:
                print(f"{time.strftime('%H:%M:%S')} pip: {text}", flush=True)
            else:
                width = max(20, os.get_terminal_size().columns - 1) if sys.stdout.isatty() else 120
                shown = text if len(text) <= width - 5 else text[: width - 8] + "..."  # one screen line, or \r fails
                print(f"\r\033[K     {shown}", end="", flush=True)
            state["last"] = time.monotonic()

    def heartbeat(stop: threading.Event) -> None:
        while not stop.wait(0.5):
            took = time.monotonic() - started
            if is_plain and time.monotonic() - state["last"] < HEARTBEAT:
                continue
            say(f"{state['status']} ({state['packages']} package(s) so far, {took:.0f}s)")

    proc = subprocess.Popen(
        [str(venv / "bin" / "pip"), "install", "--disable-pip-version-check", "--progress-bar", "off", "-e", spec],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    stop = threading.Event()
    beat = threading.Thread(target=heartbeat, args=(stop,), daemon=True)
    beat.start()
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = raw.rstrip()
        lines.append(line)
        if _EVENT.match(line):
            if line.startswith("Collecting"):
                state["packages"] = int(state["packages"]) + 1
            state["status"] = line if len(line) < 100 else line[:97] + "..."
            say(str(state["status"]))
    code = proc.wait()
    stop.set()
    beat.join()
    if not is_plain:
        print("\r\033[K", end="", flush=True)
    if code != 0:
        print("\n".join(lines[-25:]), file=sys.stderr)
        print(f"error: pip install failed (exit {code}); its last lines are above", file=sys.stderr)
        return code
    print(f"  ok .venv ready in {time.monotonic() - started:.0f}s ({state['packages']} package(s) collected)")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        sys.exit(2)
    sys.exit(main(Path(sys.argv[1]), sys.argv[2]))
