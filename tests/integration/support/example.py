"""What the committed project's example (config.toml over examples/imdemo) is expected to be.

Tests compare crossbuild's results with these facts, written out here rather than read
back from crossbuild, and the clone is tagged TAG so the version is predictable.
"""

from __future__ import annotations

# The one tag of every clone: `git describe` there, so the version stamped into binaries and images.
TAG = "v3.1.0"
MODULE = "github.com/crossbuild-example/imdemo"
VERSION_PKG = f"{MODULE}/pkg/version"
SERVICES = ("api", "msggateway", "push", "rpc-user")  # the cmd/*/ main packages
PLATFORMS = ("linux/amd64", "linux/arm64", "linux/arm/v7")  # [platforms] images
SOURCE_URL = "https://github.com/crossbuild-example/imdemo"  # [project] source
BUILDER = "crossbuild"  # [builder] name
GO_IMAGE = "localhost:5000/golang:local"  # [image] go_image
REGISTRY = "127.0.0.1:5000"  # [registry] address: the machine's registry (make tools), or the embedded one
PREFIX_REGISTRY = "localhost:5000"  # the same registry as [image] registry_prefix names it

# The `platform:` line `<service> --version` prints on each platform.
RUN_SAYS = {
    "linux/amd64": "linux/amd64",
    "linux/arm64": "linux/arm64",
    "linux/arm/v7": "linux/arm GOARM=7",
}
