"""`python -m crossbuild`: the crossbuild command, for a Python whose scripts directory is not on PATH."""

from crossbuild.cli import main

main()
