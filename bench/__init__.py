"""The crossbuild benchmark (bench/README.md): `python bench/run.py` or `python -m bench.run`."""
