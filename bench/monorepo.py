"""Generate a deterministic synthetic Go monorepo for the crossbuild benchmark.

Standard library only. Layout:

    go.mod                       module example.com/benchmono
    pkg/version/version.go       Version, GitCommit, BuildDate, GitTreeState (set with -X)
    pkg/<area>/p<NNN>/*.go       library packages: string processing, maps, sorting,
                                 encoding/json, generics; each imports a few earlier
                                 packages, so the imports form a DAG
    cmd/<service>/main.go        services; each imports several top-of-DAG packages,
                                 so services share most of the package graph

Every package is reachable from at least one service (so `go build ./cmd/...`
compiles all of them). The same (size, seed) always gives the same bytes; the
repository is committed with fixed author/committer dates and tagged, so its
commit hash, `git describe` and the -X values are stable from run to run.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

MODULE = "example.com/benchmono"
TAG = "v1.0.0"
GIT_DATE = "2024-01-02T03:04:05Z"

AREAS = (
    "auth", "billing", "cache", "catalog", "chat", "config", "feed", "geo", "graph", "index",
    "media", "metrics", "notify", "queue", "search", "session", "storage", "text", "user", "wire",
)  # fmt: skip

SERVICE_NAMES = (
    "api", "rpc-user", "rpc-msg", "msggateway", "push", "rpc-group", "rpc-conversation",
    "rpc-friend", "rpc-third", "rpc-auth", "msgtransfer", "admin",
)  # fmt: skip


def service_names(n: int) -> tuple[str, ...]:
    """The first n service names: OpenIM's twelve, then svc13, svc14, ... (the growth sweep goes to 48)."""
    return (SERVICE_NAMES + tuple(f"svc{i}" for i in range(len(SERVICE_NAMES) + 1, n + 1)))[:n]


@dataclass(frozen=True)
class Size:
    name: str
    services: int
    packages: int
    funcs: int  # transform functions per package: how much code each package has
    fields: int  # fields of each package's record type


SIZES = {
    "tiny": Size("tiny", 2, 8, 4, 6),
    "small": Size("small", 6, 80, 8, 10),
    "full": Size("full", 12, 300, 8, 10),
}


@dataclass
class Package:
    index: int
    area: str
    deps: list[int] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"p{self.index:03d}"

    @property
    def rel(self) -> str:
        return f"pkg/{self.area}/{self.name}"

    @property
    def import_path(self) -> str:
        return f"{MODULE}/{self.rel}"


@dataclass
class Monorepo:
    root: Path
    size: Size
    packages: list[Package]
    services: dict[str, list[int]]  # service -> directly imported packages
    lines: int

    def reachable(self, service: str) -> set[int]:
        seen: set[int] = set()
        todo = list(self.services[service])
        while todo:
            i = todo.pop()
            if i in seen:
                continue
            seen.add(i)
            todo.extend(self.packages[i].deps)
        return seen

    def summary(self) -> dict[str, object]:
        per_service = {s: len(self.reachable(s)) for s in self.services}
        everything = set().union(*(self.reachable(s) for s in self.services))
        return {
            "size": self.size.name,
            "services": len(self.services),
            "packages": len(self.packages) + 1,  # + pkg/version
            "go_lines": self.lines,
            "packages_per_service": per_service,
            "packages_reachable": len(everything),
            "module": MODULE,
            "tag": TAG,
        }


def _plan(size: Size, seed: int) -> tuple[list[Package], dict[str, list[int]]]:
    rng = random.Random(seed)
    packages: list[Package] = []
    orphans: list[int] = []  # packages nothing imports yet
    for i in range(size.packages):
        pkg = Package(i, AREAS[i % len(AREAS)])
        if i:
            deps: set[int] = set()
            if orphans:
                deps.add(orphans.pop(0))  # every package ends up imported by someone
            want = min(i, rng.randint(2, 4))
            while len(deps) < want:
                # prefer recent packages, so the DAG is deep rather than a fan
                deps.add(max(0, i - 1 - int(rng.expovariate(1 / max(1.0, i / 4)))))
            pkg.deps = sorted(deps)
            for d in pkg.deps:
                if d in orphans:
                    orphans.remove(d)
        orphans.append(i)
        packages.append(pkg)
    names = service_names(size.services)
    services: dict[str, list[int]] = {n: [] for n in names}
    for k, orphan in enumerate(orphans):
        services[names[k % len(names)]].append(orphan)
    top = list(range(max(0, size.packages - max(8, size.packages // 6)), size.packages))
    for n in names:
        extra = rng.sample(top, min(len(top), max(2, len(top) // 2)))
        services[n] = sorted(set(services[n]) | set(extra))
    return packages, services


def _words(rng: random.Random, n: int) -> list[str]:
    syll = ["ka", "lo", "mi", "ne", "su", "ta", "ri", "vo", "ze", "qu", "ph", "an", "el", "or"]
    return ["".join(rng.choice(syll) for _ in range(rng.randint(2, 4))) for _ in range(n)]


def _package_source(pkg: Package, size: Size, seed: int, packages: list[Package]) -> str:
    rng = random.Random(seed * 1_000_003 + pkg.index)
    words = _words(rng, 12)
    rec = f"Record{pkg.index}"
    fields = []
    for f in range(size.fields):
        kind = rng.choice(["string", "int", "float64", "[]string", "map[string]int", "bool"])
        fields.append((f"F{f}", kind, f"{words[f % len(words)]}_{f}"))
    imports = ["encoding/json", "fmt", "sort", "strconv", "strings"]
    alias = {d: f"d{d:03d}" for d in pkg.deps}
    lines = [
        "// Code generated by bench/monorepo.py; DO NOT EDIT.",
        "",
        f"// Package {pkg.name} is synthetic benchmark code ({pkg.area}).",
        f"package {pkg.name}",
        "",
        "import (",
        *[f'\t"{i}"' for i in imports],
        "",
        *[f'\t{alias[d]} "{packages[d].import_path}"' for d in pkg.deps],
        ")",
        "",
        f"// {rec} is serialised with encoding/json.",
        f"type {rec} struct {{",
        '\tID    int               `json:"id"`',
        '\tName  string            `json:"name"`',
        '\tTags  []string          `json:"tags,omitempty"`',
        '\tAttrs map[string]string `json:"attrs,omitempty"`',
        *[f'\t{n} {k} `json:"{j},omitempty"`' for n, k, j in fields],
        "}",
        "",
        "var vocabulary = []string{" + ", ".join(json.dumps(w) for w in words) + "}",
        "",
        "// Pair is a generic key/value used by the sorting helpers.",
        "type Pair[K comparable, V any] struct {",
        "\tKey K",
        "\tVal V",
        "}",
        "",
        "// SortedPairs returns the map's entries ordered by less.",
        "func SortedPairs[K comparable, V any](m map[K]V, less func(a, b Pair[K, V]) bool) []Pair[K, V] {",
        "\tout := make([]Pair[K, V], 0, len(m))",
        "\tfor k, v := range m {",
        "\t\tout = append(out, Pair[K, V]{k, v})",
        "\t}",
        "\tsort.Slice(out, func(i, j int) bool { return less(out[i], out[j]) })",
        "\treturn out",
        "}",
        "",
        "// Key identifies the record.",
        f"func (r *{rec}) Key() string {{",
        '\treturn strings.ToLower(r.Name) + "#" + strconv.Itoa(r.ID)',
        "}",
        "",
        "// Normalize folds case, trims punctuation and squeezes spaces.",
        "func Normalize(s string) string {",
        "\tvar b strings.Builder",
        "\tspace := false",
        "\tfor _, r := range strings.ToLower(s) {",
        "\t\tswitch {",
        "\t\tcase r == ' ' || r == '\\t' || r == '\\n':",
        "\t\t\tspace = b.Len() > 0",
        '\t\tcase strings.ContainsRune(".,;:!?\\"\'()[]{}", r):',
        "\t\t\tcontinue",
        "\t\tdefault:",
        "\t\t\tif space {",
        "\t\t\t\tb.WriteByte(' ')",
        "\t\t\t\tspace = false",
        "\t\t\t}",
        "\t\t\tb.WriteRune(r)",
        "\t\t}",
        "\t}",
        "\treturn b.String()",
        "}",
        "",
        "// Index maps each word to the positions where it occurs.",
        "func Index(text string) map[string][]int {",
        "\tidx := make(map[string][]int)",
        "\tfor i, w := range strings.Fields(Normalize(text)) {",
        "\t\tidx[w] = append(idx[w], i)",
        "\t}",
        "\treturn idx",
        "}",
        "",
        "// TopK returns the k most frequent words, ties broken alphabetically.",
        "func TopK(text string, k int) []string {",
        "\tcounts := map[string]int{}",
        "\tfor w, pos := range Index(text) {",
        "\t\tcounts[w] = len(pos)",
        "\t}",
        "\tpairs := SortedPairs(counts, func(a, b Pair[string, int]) bool {",
        "\t\tif a.Val != b.Val {",
        "\t\t\treturn a.Val > b.Val",
        "\t\t}",
        "\t\treturn a.Key < b.Key",
        "\t})",
        "\tout := []string{}",
        "\tfor i := 0; i < len(pairs) && i < k; i++ {",
        "\t\tout = append(out, pairs[i].Key)",
        "\t}",
        "\treturn out",
        "}",
        "",
        "// Encode marshals records to JSON.",
        f"func Encode(rs []{rec}) ([]byte, error) {{",
        "\treturn json.Marshal(rs)",
        "}",
        "",
        "// Decode unmarshals records and sorts them by key.",
        f"func Decode(b []byte) ([]{rec}, error) {{",
        f"\tvar rs []{rec}",
        "\tif err := json.Unmarshal(b, &rs); err != nil {",
        f'\t\treturn nil, fmt.Errorf("{pkg.name}: decode: %w", err)',
        "\t}",
        "\tsort.SliceStable(rs, func(i, j int) bool { return rs[i].Key() < rs[j].Key() })",
        "\treturn rs, nil",
        "}",
        "",
    ]
    for f in range(size.funcs):
        a, b, c = (rng.randint(2, 97) for _ in range(3))
        w1, w2 = rng.choice(words), rng.choice(words)
        op = rng.choice(["ToUpper", "ToLower", "TrimSpace", "Title"])
        op_expr = "strings.ToUpper(s[:1]) + s[1:]" if op == "Title" else f"strings.{op}(s)"
        lines += [
            f"// Transform{f} is one of the package's string/map pipelines.",
            f"func Transform{f}(in []string) (map[string]int, string) {{",
            "\tscore := map[string]int{}",
            "\tparts := make([]string, 0, len(in))",
            "\tfor i, s := range in {",
            '\t\tif s == "" {',
            "\t\t\tcontinue",
            "\t\t}",
            f"\t\ts = {op_expr}",
            "\t\tswitch {",
            f'\t\tcase strings.HasPrefix(s, "{w1[:2]}"):',
            f"\t\t\tscore[s] += {a} * (i + 1)",
            f'\t\tcase strings.Contains(s, "{w2[-2:]}"):',
            f"\t\t\tscore[s] -= {b}",
            f"\t\tcase len(s)%{c % 7 + 2} == 0:",
            f"\t\t\tscore[strings.Repeat(s, 2)] += {c}",
            "\t\tdefault:",
            "\t\t\tscore[s]++",
            "\t\t}",
            "\t\tparts = append(parts, strconv.Quote(s))",
            "\t}",
            "\tkeys := make([]string, 0, len(score))",
            "\tfor k := range score {",
            "\t\tkeys = append(keys, k)",
            "\t}",
            "\tsort.Strings(keys)",
            f'\treturn score, strings.Join(parts, "{rng.choice([",", ";", "|", "/"])}") + fmt.Sprint(len(keys))',
            "}",
            "",
        ]
    calls = [
        f"\tif out, err := {alias[d]}.Process(input); err == nil {{\n\t\tacc = append(acc, out)\n\t}}" for d in pkg.deps
    ]
    lines += [
        "// Process runs the package's pipeline and those of its dependencies.",
        "func Process(input string) (string, error) {",
        "\tacc := []string{}",
        *calls,
        f"\tr := {rec}{{ID: len(input), Name: Normalize(input), Tags: TopK(input, 3)}}",
        "\tr.Attrs = map[string]string{}",
        "\tfor _, w := range vocabulary {",
        "\t\tif strings.Contains(input, w) {",
        "\t\t\tr.Attrs[w] = strconv.Itoa(strings.Count(input, w))",
        "\t\t}",
        "\t}",
        *[f"\t_, s{f} := Transform{f}(append(acc, strings.Fields(input)...))\n\tr.Tags = append(r.Tags, s{f})"
          for f in range(min(2, size.funcs))],
        f"\tb, err := Encode([]{rec}{{r}})",
        "\tif err != nil {",
        '\t\treturn "", err',
        "\t}",
        "\tif _, err := Decode(b); err != nil {",
        '\t\treturn "", err',
        "\t}",
        '\treturn strings.Join(append(acc, string(b)), "\\n"), nil',
        "}",
        "",
    ]  # fmt: skip
    return "\n".join(lines)


VERSION_GO = """// Package version holds the build's version stamp, set with -ldflags -X.
package version

import (
	"fmt"
	"runtime"
)

var (
	Version      = "v0.0.0-dev"
	GitCommit    = "unknown"
	BuildDate    = "unknown"
	GitTreeState = "unknown"
)

// String is what --version prints (the platform too: crossbuild's smoke check reads it).
func String(service string) string {
	return fmt.Sprintf("%s %s (commit %s, %s, built %s, %s/%s)",
		service, Version, GitCommit, GitTreeState, BuildDate, runtime.GOOS, runtime.GOARCH)
}
"""


def _main_source(service: str, deps: list[int], packages: list[Package]) -> str:
    alias = {d: f"d{d:03d}" for d in deps}
    return "\n".join(
        [
            "// Code generated by bench/monorepo.py; DO NOT EDIT.",
            f"// Command {service} is a synthetic benchmark service.",
            "package main",
            "",
            "import (",
            '\t"fmt"',
            '\t"os"',
            '\t"strings"',
            "",
            f'\t"{MODULE}/pkg/version"',
            *[f'\t{alias[d]} "{packages[d].import_path}"' for d in deps],
            ")",
            "",
            "func main() {",
            '\tif len(os.Args) > 1 && os.Args[1] == "--version" {',
            f'\t\tfmt.Println(version.String("{service}"))',
            "\t\treturn",
            "\t}",
            '\tinput := strings.Join(os.Args[1:], " ")',
            *[
                f"\tif out, err := {alias[d]}.Process(input); err == nil {{\n\t\tfmt.Println(len(out))\n\t}}"
                for d in deps
            ],
            "}",
            "",
        ]
    )


def _git(root: Path, *args: str) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.invalid",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.invalid",
        "GIT_AUTHOR_DATE": GIT_DATE,
        "GIT_COMMITTER_DATE": GIT_DATE,
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(root),  # no user config: deterministic commits (no signing, no hooks)
    }
    subprocess.run(["git", "-C", str(root), *args], env=env, check=True, capture_output=True, text=True)


def size_of(size: str | Size) -> Size:
    """A named size (tiny, small, full) or one made up by the caller (a growth sweep's point)."""
    return size if isinstance(size, Size) else SIZES[size]


def generate(root: Path, size: str | Size, seed: int = 1, extra_files: dict[str, str] | None = None) -> Monorepo:
    """Write the monorepo into `root` (created; must not exist), commit and tag it."""
    size = size_of(size)
    packages, services = _plan(size, seed)
    root.mkdir(parents=True)
    files: dict[str, str] = {
        "go.mod": f"module {MODULE}\n\ngo 1.22\n",
        ".gitignore": "/build/\n__pycache__/\n",
        "pkg/version/version.go": VERSION_GO,
    }
    for pkg in packages:
        files[f"{pkg.rel}/{pkg.name}.go"] = _package_source(pkg, size, seed, packages)
    for name, deps in services.items():
        files[f"cmd/{name}/main.go"] = _main_source(name, deps, packages)
    files.update(extra_files or {})
    lines = 0
    for rel, text in sorted(files.items()):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if rel.endswith(".go"):
            lines += text.count("\n")
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "--no-gpg-sign", "-m", f"synthetic monorepo ({size.name}, seed {seed})")
    _git(root, "tag", TAG)
    return Monorepo(root, size, packages, services, lines)


if __name__ == "__main__":  # manual use: python bench/monorepo.py DIR [tiny|small|full]
    import sys

    repo = generate(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "tiny")
    print(json.dumps(repo.summary(), indent=2))
