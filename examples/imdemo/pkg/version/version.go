// Package version holds build metadata that is injected at link time with
// -ldflags "-X github.com/crossbuild-example/imdemo/pkg/version.<Var>=<value>".
package version

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// These variables are meant to be overridden by the linker (-X). They must
// stay plain, uninitialised-by-function string variables for -X to work.
var (
	Version      = "v0.0.0-dev"
	GitCommit    = "unknown"
	BuildDate    = "unknown"
	GitTreeState = "unknown"
)

// Info is everything printed by --version.
type Info struct {
	Name         string
	Version      string
	GitCommit    string
	BuildDate    string
	GitTreeState string
	GOOS         string
	GOARCH       string
	GOARM        string // build setting, only meaningful for GOARCH=arm
	GOAMD64      string // build setting, only meaningful for GOARCH=amd64
	GoVersion    string
}

// Get collects the version information of the running binary for the
// service called name.
func Get(name string) Info {
	info := Info{
		Name:         name,
		Version:      Version,
		GitCommit:    GitCommit,
		BuildDate:    BuildDate,
		GitTreeState: GitTreeState,
		GOOS:         runtime.GOOS,
		GOARCH:       runtime.GOARCH,
		GoVersion:    runtime.Version(),
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "GOARM":
				info.GOARM = s.Value
			case "GOAMD64":
				info.GOAMD64 = s.Value
			}
		}
	}
	return info
}

// Platform renders "<goos>/<goarch>" plus " GOARM=<n>" for arm and
// " GOAMD64=<v>" for amd64 when the level is set and not v1.
func Platform(goos, goarch, goarm, goamd64 string) string {
	p := goos + "/" + goarch
	switch goarch {
	case "arm":
		if goarm != "" {
			p += " GOARM=" + goarm
		}
	case "amd64":
		if goamd64 != "" && goamd64 != "v1" {
			p += " GOAMD64=" + goamd64
		}
	}
	return p
}

// Format renders info in the --version layout. It is a pure function.
func Format(info Info) string {
	var b strings.Builder
	b.WriteString(info.Name + "\n")
	b.WriteString("  version:    " + info.Version + "\n")
	b.WriteString("  commit:     " + info.GitCommit + "\n")
	b.WriteString("  build date: " + info.BuildDate + "\n")
	b.WriteString("  tree state: " + info.GitTreeState + "\n")
	b.WriteString("  platform:   " + Platform(info.GOOS, info.GOARCH, info.GOARM, info.GOAMD64) + "\n")
	b.WriteString("  go:         " + info.GoVersion + "\n")
	return b.String()
}

// String is a convenience for Format(Get(name)).
func String(name string) string {
	return Format(Get(name))
}
