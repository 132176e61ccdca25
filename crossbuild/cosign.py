"""The cosign CLI, as crossbuild drives it: sign index and image digests, and verify keyless ones.

Key-based signing runs `cosign sign --key KEY --tlog-upload=false --yes REF...`: one process for
every digest of a run. The key's password is read from the variable [sign] password_env names
at the moment cosign runs and handed to it on standard input (cosign reads a password from stdin
when it has no terminal and COSIGN_PASSWORD is unset), so it is never on a command line, never in
what V=1 echoes, and never written anywhere. Keyless signing (`[sign] keyless`, or SIGN=keyless in
the generated GitHub workflow) leaves the identity to cosign's ambient OIDC providers.

Signatures made with a key are checked by crossbuild.signatures, in Python; keyless ones need
Fulcio's roots and Rekor, so verify hands them to `cosign verify`.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from crossbuild import hosts
from crossbuild.config import SignConfig
from crossbuild.errors import CommandError, UserError
from crossbuild.oci import parse_reference
from crossbuild.runner import Runner, add_flag, add_opt

HINT = "install cosign: `make tools` (go install github.com/sigstore/cosign/v2/cmd/cosign)"


def _registry_flags(refs: Sequence[str], insecure: Sequence[str]) -> list[str]:
    """--allow-insecure-registry / --allow-http-registry for [registry] insecure hosts (loopback is plain HTTP
    to cosign already)."""
    hosts_used = {parse_reference(r).registry for r in refs}
    if any(hosts.is_listed(h, insecure) and not hosts.is_loopback(h) for h in hosts_used):
        return ["--allow-insecure-registry", "--allow-http-registry"]
    return []


SIGN_PARALLEL = 4  # cosign processes signing at once


def sign_argv(sign: SignConfig, refs: Sequence[str], insecure: Sequence[str] = ()) -> list[str]:
    argv = ["cosign", "sign", "--yes"]
    if sign.keyless:
        argv.append("--tlog-upload=true")
    else:
        add_opt(argv, "--key", str(sign.key) if sign.key is not None else None)
        argv.append("--tlog-upload=false")
    argv += _registry_flags(refs, insecure)
    return argv + list(refs)


def sign(
    run: Runner,
    sign: SignConfig,
    refs: Sequence[str],
    insecure: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> None:
    """Sign every `refs` (each repository@digest), SIGN_PARALLEL cosign processes side by side;
    a UserError when one fails (the others' signatures are harmless: no tag moved)."""
    if not refs:
        return
    environ = os.environ if environ is None else environ
    password: str | None = None
    if not sign.keyless:
        password = environ.get(sign.password_env)
        if password is None and "COSIGN_PASSWORD" not in environ:
            raise UserError(
                f"signing with {sign.key} needs its password in ${sign.password_env} ([sign] password_env); "
                f"export it (an empty value for a key made without one)"
            )
    # cosign signs its references one after the other, each a few registry round trips (0.3 s
    # here): 48 digests (12 indexes and their 36 images) took 14 s in one process. The refs are
    # split across SIGN_PARALLEL processes that run side by side.
    chunks = [list(refs[i::SIGN_PARALLEL]) for i in range(min(SIGN_PARALLEL, len(refs)))]

    def one(chunk: list[str]) -> None:
        argv = sign_argv(sign, chunk, insecure)
        run.run(argv, input_text=password if password is not None else None, hint=HINT, timeout=600)

    try:
        with ThreadPoolExecutor(len(chunks), thread_name_prefix="cosign") as pool:
            list(pool.map(one, chunks))
    except CommandError as exc:
        raise UserError(f"cosign could not sign: {reason(exc.stderr or exc.stdout)}; no tag was moved") from None


def reason(text: str) -> str:
    """cosign's last error line without the list of references it repeats: one readable phrase."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    last = lines[-1] if lines else "no output"
    last = re.sub(r"\[[^\]]*\]", "", last.removeprefix("Error: ").removeprefix("error during command execution: "))
    return " ".join(last.split())[-240:]


def describe(sign: SignConfig, what: str) -> str:
    """The command a dry run prints; `what` stands for the digests, unknown before the build."""
    line = f"{shlex.join(sign_argv(sign, []))} {what}"
    return line if sign.keyless else f"{line} < ${sign.password_env}"


def verify_keyless(run: Runner, sign: SignConfig, ref: str, insecure: Sequence[str] = ()) -> str:
    """`cosign verify` of a keyless signature; "" when it holds, else cosign's reason in one line."""
    argv = ["cosign", "verify", "--output", "json"]
    add_opt(argv, "--certificate-identity-regexp", sign.identity or ".*")
    add_opt(argv, "--certificate-oidc-issuer", sign.issuer)
    add_flag(argv, "--allow-insecure-registry", bool(_registry_flags([ref], insecure)))
    argv.append(ref)
    result = run.run(argv, check=False, mutates=False, hint=HINT, timeout=300)
    if result.returncode == 0:
        return ""
    return reason(result.stderr or result.stdout) or f"cosign verify exited {result.returncode}"
