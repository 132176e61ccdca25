"""The stages pipelines are made of (crossbuild.pipeline), grouped by what they do."""
