# crossbuild "prebuilt" image: copies the binary that `make build.multiarch`
# cross-compiled on the host. The build context is crossbuild's own binary
# directory (build/bin), so no .dockerignore of the repository can hide it, and
# `${TARGETPLATFORM}/<service>` is the binary of the platform being built.
# No RUN step executes target-arch code, so no emulation is needed to build it.
# crossbuild renders the placeholders per service into build/dockerfiles/;
# a line whose placeholder is empty (no EXPOSE, no CMD, no USER) is left out.
ARG BASE_IMAGE=scratch
FROM ${BASE_IMAGE}
ARG TARGETPLATFORM
COPY ${TARGETPLATFORM}/@SERVICE@ /usr/local/bin/@SERVICE@
EXPOSE @EXPOSE@
USER @USER@
ENTRYPOINT ["/usr/local/bin/@SERVICE@"]
CMD @CMD@
