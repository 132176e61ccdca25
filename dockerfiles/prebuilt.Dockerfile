# crossbuild "prebuilt" image: copies the binary that `make build.multiarch`
# cross-compiled on the host into build/bin/$TARGETPLATFORM/. No RUN step
# executes target-arch code, so no emulation is needed to build it.
# crossbuild renders the service name and user per service into build/dockerfiles/.
ARG BASE_IMAGE=scratch
FROM ${BASE_IMAGE}
ARG TARGETPLATFORM
ARG BIN_DIR=build/bin
COPY ${BIN_DIR}/${TARGETPLATFORM}/@SERVICE@ /usr/local/bin/@SERVICE@
USER @USER@
ENTRYPOINT ["/usr/local/bin/@SERVICE@"]
