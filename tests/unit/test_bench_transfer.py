"""The transfer case's (t) pure parts: sizes, the layer plan, the random layout (read back with tarfile and
json, not with the code that wrote it), the peak RSS probe and the targets. No registry, skopeo or docker."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from bench import images
from bench.cases import transfer
from bench.measure import Phase
from bench.results import CaseResult
from bench.shell import PeakWatch, Shell, peak_rss

MIB = 1 << 20


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1GiB", 1 << 30), ("64MiB", 64 * MIB), ("512M", 512 * MIB), ("1.5G", 3 << 29), ("4096", 4096), (" 8 KiB ", 8192)],
    ids=["gib", "mib", "m", "fraction", "bytes", "spaces"],
)
def test_parse_size(text: str, expected: int) -> None:
    assert images.parse_size(text) == expected


@pytest.mark.parametrize(
    "text", ["", "0", "1GB", "-1MiB", "lots"], ids=["empty", "zero", "decimal-unit", "negative", "word"]
)
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="is not a size"):
        images.parse_size(text)


@pytest.mark.parametrize(("total", "count"), [(1 << 30, 4), (1001, 3), (5, 2)], ids=["gib", "uneven", "tiny"])
def test_plan_adds_up(total: int, count: int) -> None:
    plan = images.plan(total, count, 4)
    sizes = [s for image in plan for s in image]
    assert len(plan) == count and all(len(image) == 4 for image in plan)
    assert sum(sizes) == max(total, count * 4) and max(sizes) - min(sizes) <= 1


def test_the_layout_is_an_oci_layout_of_random_gzip_layers(tmp_path: Path) -> None:
    made = images.write_layout(tmp_path / "a", ["one", "two"], [[100_000, 50_000], [70_000]], seed=7)
    again = images.write_layout(tmp_path / "b", ["one", "two"], [[100_000, 50_000], [70_000]], seed=7)
    assert made == again  # the same seed, the same digests
    blobs = tmp_path / "a" / "blobs" / "sha256"
    index = json.loads((tmp_path / "a" / "index.json").read_text())
    names = [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]]
    assert names == ["one", "two"]
    for entry, image in zip(index["manifests"], made, strict=True):
        raw = (blobs / entry["digest"].removeprefix("sha256:")).read_bytes()
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == entry["digest"] == image.manifest.digest
        manifest = json.loads(raw)
        config = json.loads((blobs / manifest["config"]["digest"].removeprefix("sha256:")).read_bytes())
        assert (config["os"], config["architecture"]) == ("linux", "amd64")
        for layer, diff_id in zip(manifest["layers"], config["rootfs"]["diff_ids"], strict=True):
            data = (blobs / layer["digest"].removeprefix("sha256:")).read_bytes()
            assert len(data) == layer["size"] and "sha256:" + hashlib.sha256(data).hexdigest() == layer["digest"]
            plain = gzip.decompress(data)
            assert "sha256:" + hashlib.sha256(plain).hexdigest() == diff_id
            with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
                (member,) = tar.getmembers()
                content = tar.extractfile(member)
                assert content is not None
                assert len(gzip.compress(content.read())) > member.size  # incompressible
    assert [len(i.layers) for i in made] == [2, 1]
    assert 100_000 <= made[0].layers[0].size <= 103_000  # tar pads to 10 KiB records: "about" the size


def test_the_peak_rss_probe_sees_a_child_grow(tmp_path: Path) -> None:
    assert (peak_rss(os.getpid()) or 0) > 0
    child = subprocess.Popen([sys.executable, "-c", "import time; b = bytearray(80 << 20); time.sleep(0.5)"])
    watch = PeakWatch(child.pid, interval=0.01)
    child.wait()
    assert watch.stop() > 80 * MIB
    shell = Shell(tmp_path)
    shell.run([sys.executable, "-c", "pass"], env=dict(os.environ), log="x")
    (program, peak), *_ = shell.peaks
    assert program == Path(sys.executable).name and 0 < peak < 80 * MIB


def result(times: dict[str, float], peaks: dict[str, int], layer_bytes: int = 1 << 30) -> CaseResult:
    res = CaseResult("t", "transfer", "localhost:5000/bench/x/t-transfer")
    for name in transfer.Transfer.phases:
        peak = {"invoke": peaks[name]} if name in peaks else {"skopeo": 30 * MIB}
        res.phases[name] = Phase(times[name], 0, 0, peak_rss=peak)
    res.figures["layer_bytes"] = layer_bytes
    return res


def test_targets_compare_rates_and_peaks() -> None:
    times = {"crossbuild-create": 10.0, "skopeo-create": 9.0, "crossbuild-load": 20.0, "skopeo-load": 10.0,
             "skopeo-copy": 8.0}  # fmt: skip
    peaks = {"crossbuild-create": 60 * MIB, "crossbuild-load": 160 * MIB}
    verdicts = {t.name: t.passed for t in transfer.transfer_targets(result(times, peaks))}
    assert verdicts == {
        "transfer: crossbuild-create peak RSS < 150 MiB": True,
        "transfer: crossbuild-load peak RSS < 150 MiB": False,
        "transfer: crossbuild-create >= 0.8 x skopeo-create (throughput)": True,  # 0.9 x
        "transfer: crossbuild-create >= 0.8 x skopeo-copy (throughput)": True,  # 0.8 x exactly
        "transfer: crossbuild-load >= 0.8 x skopeo-load (throughput)": False,  # 0.5 x
        "transfer: crossbuild-load >= 0.8 x skopeo-copy (throughput)": False,  # 0.4 x
    }


def test_targets_are_na_without_the_case() -> None:
    assert {t.passed for t in transfer.transfer_targets(None)} == {None}
    failed = CaseResult("t", "transfer", "p", status="unavailable: skopeo not found")
    assert {t.detail for t in transfer.transfer_targets(failed)} == {"unavailable: skopeo not found"}
