#!/usr/bin/env bash
# Provision everything crossbuild's full test suite needs on a Debian machine,
# idempotently: each step checks first and skips what is already in place.
#   dockerd (Debian docker.io), docker-registry, skopeo, qemu-user-static + binfmt,
#   ca-certificates and tzdata (what crossbuild's static base image is made of),
#   openssl and iproute2 (client certificates and network namespaces of the tests),
#   buildx, buildkitd and cosign built with `go install` at pinned versions, and a
#   `remote` buildx builder pointing at that buildkitd.
# What has been verified on this machine type: ../shared/INFRA.md.
set -euo pipefail

BUILDX_VERSION=${BUILDX_VERSION:-v0.36.1}
BUILDKIT_VERSION=${BUILDKIT_VERSION:-v0.32.2}
# cosign signs the images ([sign]); the newest v2 release the Go module proxy serves and that builds here.
COSIGN_VERSION=${COSIGN_VERSION:-v2.6.5}
BUILDKIT_SOCK=${CROSSBUILD_BUILDKIT_SOCK:-/run/crossbuild-buildkitd.sock}
BUILDKIT_ROOT=${CROSSBUILD_BUILDKIT_ROOT:-/var/lib/crossbuild-buildkit}
BUILDER_NAME=${CROSSBUILD_BUILDER:-crossbuild}
STATE_DIR=/var/lib/crossbuild-tools
LOG_DIR=/var/log/crossbuild
APT_PACKAGES=(docker.io docker-registry skopeo qemu-user-static busybox-static runc file binutils curl ca-certificates tzdata openssl iproute2)
BINFMT_ARCHES=(aarch64 arm riscv64 ppc64le s390x)

say() { printf '\033[36m==> %s\033[0m\n' "$*"; }
ok() { printf '    ok: %s\n' "$*"; }
missing=()

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "make tools installs system packages and needs root on Debian/Ubuntu. Missing pieces:" >&2
  command -v docker >/dev/null || missing+=("docker engine: https://docs.docker.com/engine/install/")
  docker buildx version >/dev/null 2>&1 || missing+=("docker buildx: go install github.com/docker/buildx/cmd/buildx@${BUILDX_VERSION} && cp \$(go env GOPATH)/bin/buildx ~/.docker/cli-plugins/docker-buildx")
  command -v skopeo >/dev/null || missing+=("skopeo: your distribution's skopeo package")
  ls /proc/sys/fs/binfmt_misc/qemu-aarch64 >/dev/null 2>&1 || missing+=("QEMU binfmt: install qemu-user-static and register /usr/lib/binfmt.d/qemu-*.conf")
  command -v go >/dev/null || missing+=("Go >= 1.26.3: https://go.dev/dl/")
  command -v cosign >/dev/null || missing+=("cosign (image signing): go install github.com/sigstore/cosign/v2/cmd/cosign@${COSIGN_VERSION}")
  { [ -s /etc/ssl/certs/ca-certificates.crt ] && [ -f /usr/share/zoneinfo/Etc/UTC ]; } || missing+=("CA certificates and zoneinfo for the static base image: your distribution's ca-certificates and tzdata packages (or set [image] base_image = \"scratch\")")
  if [ ${#missing[@]} -eq 0 ]; then echo "    nothing missing"; exit 0; fi
  printf '    - %s\n' "${missing[@]}" >&2
  exit 1
fi

mkdir -p "$STATE_DIR" "$LOG_DIR"

say "Debian packages"
need=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d keeps the packages from starting services of their own: we start what we need below.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi
ok "${APT_PACKAGES[*]}"

say "QEMU binfmt handlers"
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
for a in "${BINFMT_ARCHES[@]}"; do
  if [ ! -e "/proc/sys/fs/binfmt_misc/qemu-$a" ] && [ -f "/usr/lib/binfmt.d/qemu-$a.conf" ]; then
    cat "/usr/lib/binfmt.d/qemu-$a.conf" > /proc/sys/fs/binfmt_misc/register
  fi
done
ok "$(cd /proc/sys/fs/binfmt_misc && ls -d qemu-* | tr '\n' ' ')"

say "dockerd"
if ! docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
  setsid nohup dockerd >"$LOG_DIR/dockerd.log" 2>&1 < /dev/null &
  for _ in $(seq 1 60); do
    docker version --format '{{.Server.Version}}' >/dev/null 2>&1 && break
    sleep 0.5
  done
fi
ok "docker server $(docker version --format '{{.Server.Version}}')"

say "local registry on 127.0.0.1:5000"
if ! curl -fsS -o /dev/null http://127.0.0.1:5000/v2/ 2>/dev/null; then
  mkdir -p /var/lib/crossbuild-registry /etc/crossbuild
  cat > /etc/crossbuild/registry.yml <<YAML
version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: /var/lib/crossbuild-registry}, delete: {enabled: true}}
http: {addr: 127.0.0.1:5000}
YAML
  setsid nohup docker-registry serve /etc/crossbuild/registry.yml >"$LOG_DIR/registry.log" 2>&1 < /dev/null &
  for _ in $(seq 1 40); do
    curl -fsS -o /dev/null http://127.0.0.1:5000/v2/ 2>/dev/null && break
    sleep 0.25
  done
fi
curl -fsS -o /dev/null http://127.0.0.1:5000/v2/
ok "GET /v2/ answers 200"

say "buildx ${BUILDX_VERSION} and buildkitd ${BUILDKIT_VERSION}"
GOBIN_DIR="$(go env GOPATH)/bin"
stamp="$STATE_DIR/buildx-${BUILDX_VERSION}"
if [ ! -f "$stamp" ] || [ ! -x "$GOBIN_DIR/buildx" ]; then
  GOFLAGS=-mod=mod go install "github.com/docker/buildx/cmd/buildx@${BUILDX_VERSION}"
  touch "$stamp"
fi
mkdir -p /usr/local/lib/docker/cli-plugins
install -m 0755 "$GOBIN_DIR/buildx" /usr/local/lib/docker/cli-plugins/docker-buildx
stamp="$STATE_DIR/buildkit-${BUILDKIT_VERSION}"
if [ ! -f "$stamp" ] || [ ! -x "$GOBIN_DIR/buildkitd" ]; then
  # `go install pkg@version` refuses buildkit: its go.mod has exclude directives.
  # Build inside the downloaded module instead, where go.mod applies as the main module.
  src=$(go mod download -json "github.com/moby/buildkit@${BUILDKIT_VERSION}" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  (cd "$src" && GOFLAGS=-mod=mod go build -o "$GOBIN_DIR/" ./cmd/buildkitd ./cmd/buildctl)
  touch "$stamp"
fi
install -m 0755 "$GOBIN_DIR/buildkitd" "$GOBIN_DIR/buildctl" /usr/local/bin/
ok "$(docker buildx version)"

say "cosign ${COSIGN_VERSION}"
stamp="$STATE_DIR/cosign-${COSIGN_VERSION}"
if [ ! -f "$stamp" ] || [ ! -x "$GOBIN_DIR/cosign" ]; then
  GOFLAGS=-mod=mod go install "github.com/sigstore/cosign/v2/cmd/cosign@${COSIGN_VERSION}"
  touch "$stamp"
fi
install -m 0755 "$GOBIN_DIR/cosign" /usr/local/bin/cosign
ok "$(cosign version 2>/dev/null | sed -n 's/^GitVersion: *//p')"

say "buildkitd on unix://$BUILDKIT_SOCK"
mkdir -p /etc/crossbuild
cat > /etc/crossbuild/buildkitd.toml <<TOML
# written by crossbuild scripts/tools.sh
[registry."localhost:5000"]
  http = true
  insecure = true
[registry."127.0.0.1:5000"]
  http = true
  insecure = true
[registry."localhost:5001"]
  http = true
  insecure = true
[registry."127.0.0.1:5001"]
  http = true
  insecure = true
[worker.oci]
  enabled = true
  platforms = ["linux/amd64", "linux/arm64", "linux/arm/v7", "linux/arm/v6", "linux/386", "linux/ppc64le", "linux/s390x", "linux/riscv64"]
[worker.containerd]
  enabled = false
TOML
if ! buildctl --addr "unix://$BUILDKIT_SOCK" debug workers >/dev/null 2>&1; then
  setsid nohup buildkitd --config /etc/crossbuild/buildkitd.toml --root "$BUILDKIT_ROOT" \
    --addr "unix://$BUILDKIT_SOCK" >"$LOG_DIR/buildkitd.log" 2>&1 < /dev/null &
  for _ in $(seq 1 60); do
    buildctl --addr "unix://$BUILDKIT_SOCK" debug workers >/dev/null 2>&1 && break
    sleep 0.5
  done
fi
buildctl --addr "unix://$BUILDKIT_SOCK" debug workers >/dev/null
ok "buildkitd answers"

say "buildx builder '$BUILDER_NAME' (remote driver)"
if ! docker buildx inspect "$BUILDER_NAME" >/dev/null 2>&1; then
  docker buildx create --name "$BUILDER_NAME" --driver remote "unix://$BUILDKIT_SOCK" >/dev/null
fi
docker buildx inspect --bootstrap "$BUILDER_NAME" >/dev/null
ok "$(docker buildx inspect "$BUILDER_NAME" | grep -m1 -i '^Platforms' || true)"

say "skopeo"
ok "$(skopeo --version)"

say "actionlint"
ok "$(bash "$(dirname "$0")/actionlint.sh")"
