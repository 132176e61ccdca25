# crossbuild "multistage" image: the Go build runs inside BuildKit on the
# BUILD platform and cross-compiles for the TARGET platform (GOOS/GOARCH/GOARM
# from TARGETOS/TARGETARCH/TARGETVARIANT), so no stage runs under emulation.
# The builder stage compiles every service that shares it in ONE `go build`; it is
# the same for all those services, so BuildKit runs it once per platform and each
# service's image copies its own binary out of it.
# crossbuild renders the placeholders (package list, output, service name, user,
# ports, arguments) per service into build/dockerfiles/: see crossbuild/dockerfiles.py.
ARG GO_IMAGE=localhost:5000/golang:local
ARG BASE_IMAGE=scratch

FROM --platform=$BUILDPLATFORM ${GO_IMAGE} AS builder
ARG TARGETOS
ARG TARGETARCH
ARG TARGETVARIANT
ARG LDFLAGS=""
ARG GO_TAGS=""
ARG CGO_ENABLED=0
ARG TRIMPATH=-trimpath
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/root/.cache/go-build \
    --mount=type=cache,target=/go/pkg/mod \
    case "$TARGETARCH" in \
      arm) export GOARM="${TARGETVARIANT#v}" ;; \
      amd64) export GOAMD64="${TARGETVARIANT:-v1}" ;; \
    esac; \
    GOOS="$TARGETOS" GOARCH="$TARGETARCH" CGO_ENABLED="$CGO_ENABLED" \
    go build -buildvcs=false $TRIMPATH -tags "$GO_TAGS" -ldflags "$LDFLAGS" \
      -o /out/@OUTPUT@ @PACKAGES@

FROM ${BASE_IMAGE}
COPY --from=builder /out/@SERVICE@ /usr/local/bin/@SERVICE@
EXPOSE @EXPOSE@
USER @USER@
ENTRYPOINT ["/usr/local/bin/@SERVICE@"]
CMD @CMD@
