"""[image] sbom, [sign] and SIGN=: defaults, precedence, one-line errors, and the content key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from crossbuild import config, cosign
from crossbuild import plan as plan_mod
from crossbuild.config import Config, Overrides
from crossbuild.errors import UserError
from crossbuild.platforms import Platform

pytestmark = pytest.mark.usefixtures("git_isolated")
ENV = {"SOURCE_DATE_EPOCH": "1700000000"}


@pytest.fixture
def root(imdemo_copy: Path) -> Path:
    return imdemo_copy.parent.parent


def load(root: Path, body: str = "", env: dict[str, str] | None = None) -> Config:
    path = root / "config.toml"
    path.write_text('[project]\nmodule_dir = "examples/imdemo"\n\n' + textwrap.dedent(body))
    return config.load(path, Overrides(), {**ENV, **(env or {})})


def keys(root: Path) -> None:
    (root / "cosign.key").write_text("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    (root / "cosign.pub").write_text("-----BEGIN PUBLIC KEY-----\n")


def test_defaults_sbom_on_spdx_and_no_signing(root: Path) -> None:
    cfg = load(root)
    assert (cfg.image.sbom, cfg.image.sbom_format) == (True, "spdx")
    assert not cfg.sign.signs and not cfg.sign.verifies and cfg.sign.signer == ""


def test_sbom_off_in_config_and_on_from_the_environment(root: Path) -> None:
    assert load(root, "[image]\nsbom = false\n").image.sbom is False
    assert load(root, "[image]\nsbom = false\n", {"SBOM": "1"}).image.sbom is True


def test_unknown_sbom_format_is_one_line(root: Path) -> None:
    with pytest.raises(UserError, match=r"image\.sbom_format = 'syft': use one of spdx, cyclonedx"):
        load(root, '[image]\nsbom_format = "syft"\n')


def test_sign_key_and_its_public_key(root: Path) -> None:
    keys(root)
    cfg = load(root, '[sign]\nkey = "cosign.key"\n')
    assert cfg.sign.key == root / "cosign.key" and cfg.sign.public_key == root / "cosign.pub"
    assert cfg.sign.signs and cfg.sign.verifies and cfg.sign.password_env == "COSIGN_PASSWORD"
    assert cfg.sign.signer.startswith("key ")


def test_missing_key_file_says_how_to_make_one(root: Path) -> None:
    with pytest.raises(UserError, match=r"no key file .*cosign generate-key-pair"):
        load(root, '[sign]\nkey = "cosign.key"\n')


def test_sign_env_overrides_the_config(root: Path) -> None:
    keys(root)
    assert not load(root, '[sign]\nkey = "cosign.key"\n', {"SIGN": "off"}).sign.signs
    keyless = load(root, '[sign]\nkey = "cosign.key"\n', {"SIGN": "keyless", "GITHUB_REPOSITORY": "o/r"}).sign
    assert keyless.keyless and keyless.key is None
    assert keyless.identity == "^https://github\\.com/o/r/"
    assert load(root, "", {"SIGN": "cosign.key"}).sign.key == root / "cosign.key"


def test_key_and_keyless_together_is_refused(root: Path) -> None:
    keys(root)
    with pytest.raises(UserError, match="both key and keyless"):
        load(root, '[sign]\nkey = "cosign.key"\nkeyless = true\n')


def test_bad_password_variable_name(root: Path) -> None:
    with pytest.raises(UserError, match="is not an environment variable name"):
        load(root, '[sign]\npassword_env = "MY PASSWORD"\n')


def test_sbom_and_signer_are_part_of_the_content_key(root: Path) -> None:
    keys(root)
    plats = (Platform("linux", "amd64"),)

    def key(body: str) -> str:
        cfg = load(root, body)
        target = plan_mod.plan(cfg, plats, cfg.services[:1]).targets[0]
        return plan_mod.content_key(cfg, target)

    base = key("")
    assert key("[image]\nsbom = false\n") != base
    assert key('[image]\nsbom_format = "cyclonedx"\n') != base
    assert key('[sign]\nkey = "cosign.key"\n') != base
    assert key("") == base


def test_cosign_command_never_holds_the_password(root: Path) -> None:
    keys(root)
    cfg = load(root, '[sign]\nkey = "cosign.key"\n')
    argv = cosign.sign_argv(cfg.sign, ["localhost:5000/ns/api@sha256:" + "a" * 64])
    assert argv[:3] == ["cosign", "sign", "--yes"] and "--tlog-upload=false" in argv
    assert argv[argv.index("--key") + 1] == str(root / "cosign.key")
    assert "--allow-insecure-registry" not in argv  # loopback is plain HTTP to cosign already
    line = cosign.describe(cfg.sign, "<digests>")
    assert line.endswith("< $COSIGN_PASSWORD")


def test_signing_without_a_password_variable_is_one_line(root: Path) -> None:
    from crossbuild.runner import Runner

    keys(root)
    cfg = load(root, '[sign]\nkey = "cosign.key"\n')
    with pytest.raises(UserError, match=r"needs its password in \$COSIGN_PASSWORD"):
        cosign.sign(Runner(), cfg.sign, ["localhost:5000/ns/api@sha256:" + "a" * 64], environ={})


def test_cosign_errors_become_one_phrase() -> None:
    text = (
        "Error: signing [localhost:5000/a@sha256:1 b@sha256:2]: signing digest: getting signer: reading key: "
        "decrypt: encrypted: decryption failed\nerror during command execution: signing [localhost:5000/a@sha256:1]: "
        "signing digest: getting signer: reading key: decrypt: encrypted: decryption failed\n"
    )
    assert (
        cosign.reason(text)
        == "signing : signing digest: getting signer: reading key: decrypt: encrypted: decryption failed"
    )
