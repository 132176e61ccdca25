"""What every integration test shares, so each rule lives in one place.

* ``env``: the one environment filter (what a caller's shell must not steer) and git isolation.
* ``commands``: running a command and judging its result (exit code, the one `error:` line).
* ``example``: what the example project (examples/imdemo, config.toml) is expected to be.
* ``clone``: a throwaway clone of the committed project, tagged, with one venv per session.
* ``registries``: docker-registry processes of a test's own (plain, TLS, htpasswd or token auth).
* ``inputs``: test inputs made without crossbuild (`go build`, `docker buildx build`, raw registry pushes).
* ``buildkitd``: buildkitd daemons of a test's own (own --root, socket, worker platforms, tcp:// with
  client certificates) and what each one recorded it built (`buildctl debug histories` / `logs`).
* ``witness``: independent checks of what crossbuild produced (skopeo, the registry HTTP API,
  OCI layouts read with tarfile, the docker CLI).

Nothing here imports crossbuild: the witnesses share no code with what they judge.
The fixtures built on these (``project_clone``, ``clone``, ``fresh``, ``prefix``,
``local_registry``) are in tests/integration/conftest.py.
"""
