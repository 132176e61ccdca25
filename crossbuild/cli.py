"""The `crossbuild` console command: the same tasks as tasks.py, usable before
a repository has a tasks.py of its own (e.g. `crossbuild init`).
"""

from __future__ import annotations

from invoke.collection import Collection
from invoke.program import Program

from crossbuild import __version__


def main() -> None:
    from crossbuild.tasks import ns  # noqa: PLC0415 - keep `crossbuild --version` fast

    namespace: Collection = ns
    Program(name="crossbuild", binary="crossbuild", version=__version__, namespace=namespace).run()
