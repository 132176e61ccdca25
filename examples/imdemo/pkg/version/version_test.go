package version

import (
	"runtime"
	"strings"
	"testing"
)

func TestFormat(t *testing.T) {
	got := Format(Info{
		Name:         "api",
		Version:      "v1.2.3",
		GitCommit:    "abc1234",
		BuildDate:    "2024-01-02T03:04:05Z",
		GitTreeState: "clean",
		GOOS:         "linux",
		GOARCH:       "arm",
		GOARM:        "7",
		GoVersion:    "go1.22.0",
	})
	want := "api\n" +
		"  version:    v1.2.3\n" +
		"  commit:     abc1234\n" +
		"  build date: 2024-01-02T03:04:05Z\n" +
		"  tree state: clean\n" +
		"  platform:   linux/arm GOARM=7\n" +
		"  go:         go1.22.0\n"
	if got != want {
		t.Fatalf("Format mismatch\n got: %q\nwant: %q", got, want)
	}
}

func TestPlatform(t *testing.T) {
	tests := []struct {
		goos, goarch, goarm, goamd64 string
		want                         string
	}{
		{"linux", "arm64", "", "", "linux/arm64"},
		{"linux", "arm", "6", "", "linux/arm GOARM=6"},
		{"linux", "arm", "", "", "linux/arm"},
		{"linux", "amd64", "", "v1", "linux/amd64"},
		{"linux", "amd64", "", "", "linux/amd64"},
		{"linux", "amd64", "", "v3", "linux/amd64 GOAMD64=v3"},
		{"darwin", "arm64", "7", "v3", "darwin/arm64"}, // settings ignored for other arches
		{"linux", "386", "", "v2", "linux/386"},
		{"linux", "riscv64", "", "", "linux/riscv64"},
	}
	for _, tt := range tests {
		if got := Platform(tt.goos, tt.goarch, tt.goarm, tt.goamd64); got != tt.want {
			t.Errorf("Platform(%q, %q, %q, %q) = %q, want %q",
				tt.goos, tt.goarch, tt.goarm, tt.goamd64, got, tt.want)
		}
	}
}

func TestGet(t *testing.T) {
	info := Get("push")
	// Values come from the package variables (defaults unless set with -X).
	if info.Name != "push" || info.Version != Version || info.GitCommit != GitCommit ||
		info.BuildDate != BuildDate || info.GitTreeState != GitTreeState {
		t.Fatalf("unexpected values: %+v", info)
	}
	if info.GOOS != runtime.GOOS || info.GOARCH != runtime.GOARCH || info.GoVersion != runtime.Version() {
		t.Fatalf("unexpected runtime fields: %+v", info)
	}
	out := String("push")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 7 || lines[0] != "push" {
		t.Fatalf("unexpected output shape:\n%s", out)
	}
}
