"""invoke entry point: the task collection lives in crossbuild.tasks."""

from crossbuild.tasks import ns

__all__ = ["ns"]
