# crossbuild "prebuilt" image: copies the binary that `make build.multiarch`
# cross-compiled on the host. The build context is crossbuild's own layer-tree
# directory (build/rootfs), so no .dockerignore of the repository can hide it, and
# `${TARGETPLATFORM}/<service>/` holds usr/local/bin/<service>, the binary of the
# platform being built, every entry already at SOURCE_DATE_EPOCH (crossbuild.rootfs):
# the layer is reproducible without rewriting it after the export.
# No RUN step executes target-arch code, so no emulation is needed to build it.
# crossbuild renders the placeholders per service into build/dockerfiles/;
# a line whose placeholder is empty (no EXPOSE, no CMD, no USER) is left out.
ARG BASE_IMAGE=scratch
FROM ${BASE_IMAGE}
ARG TARGETPLATFORM
COPY ${TARGETPLATFORM}/@SERVICE@/ /
EXPOSE @EXPOSE@
USER @USER@
ENTRYPOINT ["/usr/local/bin/@SERVICE@"]
CMD @CMD@
