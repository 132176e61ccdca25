"""crossbuild: cross-compile Go services for every CPU and publish multi-arch images."""

__version__ = "0.1.0"
