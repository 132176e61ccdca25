# A Go builder image made without pulling anything (see README, "Offline Go
# builder image"): busybox for a shell plus a copy of the host's GOROOT.
# Context: a directory holding `busybox` (static) and `go/` (a GOROOT).
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY go /usr/local/go
ENV PATH=/usr/local/go/bin:/bin GOROOT=/usr/local/go GOPATH=/go HOME=/root GOTOOLCHAIN=local GOFLAGS=-mod=mod
RUN mkdir -p /tmp /root /go && chmod 1777 /tmp
