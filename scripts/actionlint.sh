#!/usr/bin/env bash
# Install actionlint (the GitHub Actions workflow linter the integration tests
# run on .github/workflows/*.yml) at a pinned version into $(go env GOPATH)/bin,
# built from source with `go install`. Idempotent: an installed binary of the
# pinned version is kept. Prints the binary's path on stdout, progress on stderr.
#   ACTIONLINT_VERSION=v1.7.12 bash scripts/actionlint.sh
set -euo pipefail

ACTIONLINT_VERSION=${ACTIONLINT_VERSION:-v1.7.12}

if ! command -v go >/dev/null 2>&1; then
  echo "actionlint.sh: go not found: install Go >= 1.22 (https://go.dev/dl/), then run this again" >&2
  exit 1
fi
gobin="$(go env GOPATH)/bin"
bin="$gobin/actionlint"

if [ -x "$bin" ] && [ "$("$bin" -version 2>/dev/null | head -n 1)" = "$ACTIONLINT_VERSION" ]; then
  echo "$bin"
  exit 0
fi

echo "==> go install github.com/rhysd/actionlint/cmd/actionlint@${ACTIONLINT_VERSION}" >&2
# GOBIN pins the destination (a GOBIN in the environment would send it elsewhere);
# run outside any module so a go.mod or GOFLAGS=-mod=vendor nearby has no say.
(cd / && GOBIN="$gobin" GOFLAGS=-mod=mod go install "github.com/rhysd/actionlint/cmd/actionlint@${ACTIONLINT_VERSION}")

installed="$("$bin" -version | head -n 1)"
if [ "$installed" != "$ACTIONLINT_VERSION" ]; then
  echo "actionlint.sh: $bin reports $installed, expected $ACTIONLINT_VERSION" >&2
  exit 1
fi
echo "$bin"
