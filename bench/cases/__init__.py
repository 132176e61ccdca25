"""The cases, one module each, in the order they run and appear in the table and the targets.

Adding a case is one module with a Case subclass and one line here.
"""

from __future__ import annotations

from bench.cases.bakealone import BakeAlone
from bench.cases.base import Case
from bench.cases.emulated import Emulated
from bench.cases.floor import Floor, FloorAgain
from bench.cases.ko import Ko
from bench.cases.multistage import Multistage
from bench.cases.openim import OpenIMLoop
from bench.cases.prebuilt import Prebuilt, PrebuiltEarly, PrebuiltVerified
from bench.cases.supply import PrebuiltSupply
from bench.cases.transfer import Transfer
from bench.cases.verify import VerifyParallel

ALL: tuple[Case, ...] = (
    Floor(),  # f: go build only, the floor
    Prebuilt(),  # a: crossbuild image.multiarch, VERIFY=0
    FloorAgain(),  # f2: the floor's cold run again, right after (a): brackets it against the machine's drift
    BakeAlone(),  # x: docker buildx bake alone of every image from new binaries: the images step without crossbuild
    PrebuiltEarly(),  # ae: (a) with each platform's images baked beside the compile (information)
    PrebuiltVerified(),  # av: the same with VERIFY=1 (information)
    PrebuiltSupply(),  # as: the same with an SBOM per platform and cosign signatures
    VerifyParallel(),  # v: invoke verify of every service x platform, against its smoke runs and layer reads alone
    Multistage(),  # b: crossbuild MODE=multistage
    Emulated(),  # c: a Dockerfile whose Go stage runs under QEMU
    OpenIMLoop(),  # d: per-binary, per-arch loops
    Ko(),  # e: ko build
    Transfer(),  # t: offline bundle create and load of 1 GiB of random layers vs skopeo (only when named)
)

BY_KEY: dict[str, Case] = {case.key: case for case in ALL}
