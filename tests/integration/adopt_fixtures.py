"""Small Go repositories of the shapes real projects have, written for crossbuild's adoption tests.

Each fixture is a dict of files (no code from any public project) plus what the test
expects of it: the services `crossbuild init` must find, the service whose arm64 binary
is run under QEMU, the arguments that make it print its version, and the text it must
print (the stamped version, or the stamped commit where the version is a constant).
"""

from __future__ import annotations

from dataclasses import dataclass, field

TAG = "v0.9.0"


@dataclass(frozen=True)
class Fixture:
    name: str
    files: dict[str, str]
    services: tuple[str, ...]  # what init must find, in order
    run: str  # the service whose arm64 binary runs under QEMU
    args: tuple[str, ...] = ("--version",)
    prints: str = TAG  # "{commit}" is replaced by the repository's HEAD
    init_says: tuple[str, ...] = ()  # lines init's output must contain
    config_has: dict[str, object] = field(default_factory=dict)  # dotted key -> value in config.toml
    runs_forever: bool = False  # the program serves: read its banner, then kill it


def _mod(path: str) -> str:
    return f"module {path}\n\ngo 1.22\n"


VERSION_PKG = """package version

import "runtime"

var (
	Version   = "dev"
	GitCommit = "none"
)

// String is what --version prints: version, commit and platform.
func String(name string) string {
	return name + " " + Version + " commit=" + GitCommit + " " + runtime.GOOS + "/" + runtime.GOARCH
}
"""


def _main_printing(module: str, name: str, pkg: str = "internal/version") -> str:
    return f"""package main

import (
	"fmt"
	"os"

	"{module}/{pkg}"
)

func main() {{
	if len(os.Args) > 1 && os.Args[1] == "--version" {{
		fmt.Println(version.String("{name}"))
		return
	}}
	fmt.Println("{name}: serving")
}}
"""


HELPER_MAIN = """package main

import (
	"fmt"
	"os"
)

// migrate has no version flag: anything but "up" is a usage error.
func main() {
	if len(os.Args) > 1 && os.Args[1] == "up" {
		fmt.Println("migrated")
		return
	}
	fmt.Fprintln(os.Stderr, "usage: migrate up")
	os.Exit(2)
}
"""

FIXTURES: list[Fixture] = [
    Fixture(
        name="helper-unlinked",
        files={
            "go.mod": _mod("example.com/shop"),
            "internal/version/version.go": VERSION_PKG,
            "cmd/server/main.go": _main_printing("example.com/shop", "server"),
            "cmd/migrate/main.go": HELPER_MAIN,
        },
        services=("migrate", "server"),
        run="server",
        init_says=(
            "-X example.com/shop/internal/version.{Version,GitCommit}: not stamped into migrate "
            "(they do not link example.com/shop/internal/version)",
        ),
    ),
    Fixture(
        name="version-const",
        files={
            "go.mod": _mod("example.com/backup"),
            "internal/global/global.go": """package global

const Version = "1.0.0-dev (compiled manually)"

var Commit string
""",
            "cmd/backup/main.go": """package main

import (
	"fmt"
	"os"

	"example.com/backup/internal/global"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "version" {
		fmt.Println("backup", global.Version, "commit", global.Commit)
		return
	}
	fmt.Println("usage: backup version")
}
""",
        },
        services=("backup",),
        run="backup",
        args=("version",),
        prints="commit {commit}",
        init_says=(
            "Version is a constant (internal/global/global.go:3); -X can only set a variable: "
            'declare it with `var Version = "..."`',
        ),
    ),
    Fixture(
        name="deny-all-dockerignore",
        files={
            "go.mod": _mod("example.com/tool"),
            ".dockerignore": "*\n!/*.go\n!/go.*\n!/cmd/*\n!/internal/*\n",
            "internal/version/version.go": VERSION_PKG,
            "cmd/tool/main.go": _main_printing("example.com/tool", "tool"),
        },
        services=("tool",),
        run="tool",
    ),
    Fixture(
        name="nested-mains",
        files={
            "go.mod": _mod("example.com/chat/v3"),
            "pkg/version/version.go": VERSION_PKG,
            "cmd/main.go": _main_printing("example.com/chat/v3", "chat", "pkg/version"),
            "cmd/api/main.go": _main_printing("example.com/chat/v3", "api", "pkg/version"),
            "cmd/rpc/rpc-user/main.go": _main_printing("example.com/chat/v3", "rpc-user", "pkg/version"),
            "cmd/rpc/rpc-auth/main.go": _main_printing("example.com/chat/v3", "rpc-auth", "pkg/version"),
            "cmd/tools/seed/main.go": "package main\n\nfunc main() {}\n",
        },
        services=("chat", "api", "rpc-auth", "rpc-user"),
        run="rpc-user",
        init_says=("./cmd/tools/seed left out",),
    ),
    Fixture(
        name="output-owned",
        files={
            "go.mod": _mod("example.com/gw"),
            "build/README.md": "Packaging scripts of this repository.\n",
            "build/package.sh": "#!/bin/sh\ntar czf gw.tgz _output/bin\n",
            "Makefile": "OUT := _output\n\nall:\n\tgo build -o $(OUT)/bin/ ./cmd/...\n\nclean:\n\trm -rf $(OUT)\n",
            ".dockerignore": "_output/\n.git\n",
            ".gitignore": "/_output/\n",
            "internal/version/version.go": VERSION_PKG,
            "cmd/gw/main.go": _main_printing("example.com/gw", "gw"),
        },
        services=("gw",),
        run="gw",
        config_has={"project.output_dir": "_crossbuild"},
    ),
    Fixture(
        name="compose-vars",
        files={
            "go.mod": _mod("example.com/stack"),
            "internal/version/version.go": VERSION_PKG,
            "cmd/web/main.go": _main_printing("example.com/stack", "web"),
            "docker-compose.yml": (
                "services:\n"
                "  web:\n    image: ${STACK_PREFIX}/web:${STACK_TAG:-latest}\n    ports: ['8080:8080']\n"
                "  worker:\n    build: ./worker\n"
            ),
            ".gitignore": "/.env\n",  # the test writes .env, as an operator would
        },
        services=("web",),
        run="web",
    ),
    Fixture(
        name="module-in-subdir",
        files={
            "README.md": "the Go code is in server/\n",
            "server/go.mod": _mod("example.com/srv"),
            "server/internal/version/version.go": VERSION_PKG,
            "server/cmd/srv/main.go": _main_printing("example.com/srv", "srv"),
        },
        services=("srv",),
        run="srv",
        config_has={"project.module_dir": "server"},
    ),
    Fixture(
        name="workspace",
        files={
            "go.work": "go 1.22\n\nuse (\n\t./services\n\t./shared\n)\n",
            "services/go.mod": _mod("example.com/services"),
            "services/cmd/api/main.go": _main_printing("example.com/shared", "api", "version"),
            "shared/go.mod": _mod("example.com/shared"),
            "shared/version/version.go": VERSION_PKG,
        },
        services=("api",),
        run="api",
    ),
    Fixture(
        name="goreleaser",
        files={
            "go.mod": _mod("example.com/cli"),
            ".goreleaser.yaml": (
                "version: 2\nproject_name: cli\nbuilds:\n"
                "  - main: ./cmd/cli\n    binary: cli\n    goos: [linux]\n    goarch: [amd64, arm64, arm]\n"
                "    goarm: ['6']\n    tags: [selfupdate]\n    env: [CGO_ENABLED=0]\n"
                "    ldflags:\n      - -s -w -X main.version={{.Version}} -X main.commit={{.ShortCommit}}\n"
            ),
            "cmd/cli/main.go": """package main

import (
	"fmt"
	"os"
)

var (
	version = "dev"
	commit  = "none"
	extra   = ""
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "--version" {
		fmt.Println("cli", version, commit, extra)
		return
	}
	fmt.Println("cli")
}
""",
            "cmd/cli/selfupdate.go": '//go:build selfupdate\n\npackage main\n\nfunc init() { extra = "+selfupdate" }\n',
        },
        services=("cli",),
        run="cli",
        prints=f"cli {TAG.removeprefix('v')} ",
        config_has={
            "go.tags": ["selfupdate"],
            "platforms.images": ["linux/amd64", "linux/arm64", "linux/arm/v6"],
            "go.x": {"main.version": "{version_no_v}", "main.commit": "{short_commit}"},
        },
        init_says=(".goreleaser.yaml",),
    ),
    Fixture(
        name="no-version-flag",
        files={
            "go.mod": _mod("example.com/daemon"),
            "cmd/daemon/main.go": """package main

import (
	"fmt"
	"runtime"
	"time"
)

var version = "dev"

// daemon takes no flags at all: it prints a banner and serves until it is killed.
func main() {
	fmt.Printf("daemon %s starting on %s/%s\\n", version, runtime.GOOS, runtime.GOARCH)
	for {
		time.Sleep(time.Hour)
	}
}
""",
        },
        services=("daemon",),
        run="daemon",
        args=(),
        prints=f"daemon {TAG} starting on linux/arm64",
        runs_forever=True,
    ),
    Fixture(
        name="main-vars",
        files={
            "go.mod": _mod("example.com/kit"),
            "cmd/kit/main.go": """package main

import (
	"flag"
	"fmt"
)

var (
	version = "dev"
	commit  = "none"
	date    = "unknown"
)

func main() {
	v := flag.Bool("version", false, "print the version")
	flag.Parse()
	if *v {
		fmt.Printf("kit %s (%s, %s)\\n", version, commit, date)
	}
}
""",
        },
        services=("kit",),
        run="kit",
        args=("-version",),
        config_has={"go.x": {"main.version": "{version}", "main.commit": "{commit}", "main.date": "{date}"}},
    ),
]
