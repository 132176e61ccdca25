"""Compose files read the way `docker compose` reads them: ${VAR} substitution from the environment
and .env (the environment wins), defaults, required variables, `$$`; build-only services kept.

The expected values follow the compose specification's interpolation rules (interpolation.md);
docker compose itself is not installed here, so the cases spell the rules out one by one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from crossbuild import audit
from crossbuild import compose as compose_mod
from crossbuild.compose import ComposeService, RequiredVariable
from crossbuild.errors import UserError

VARS = {"SET": "value", "EMPTY": "", "TAG": "7.2", "REG": "127.0.0.1:5001"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("$SET", "value"),
        ("${SET}", "value"),
        ("x${SET}y", "xvaluey"),
        ("$SET-suffix", "value-suffix"),
        ("$SET.suffix", "value.suffix"),
        ("${SET}${TAG}", "value7.2"),
        ("${SET:-default}", "value"),
        ("${EMPTY:-default}", "default"),
        ("${NOPE:-default}", "default"),
        ("${SET-default}", "value"),
        ("${EMPTY-default}", ""),
        ("${NOPE-default}", "default"),
        ("${NOPE:-}", ""),
        ("${NOPE:-${TAG}}", "7.2"),
        ("${NOPE:-${ALSO_NOPE:-deep}}", "deep"),
        ("${NOPE:-a}b}", "ab}"),
        ("${SET:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${EMPTY+alt}", "alt"),
        ("${NOPE+alt}", ""),
        ("${SET:?must be set}", "value"),
        ("${EMPTY?only unset is an error}", ""),
        ("$$", "$"),
        ("$$SET", "$SET"),
        ("$${SET}", "${SET}"),
        ("a$$$SET", "a$value"),
        ("${NOPE:-$$}", "$"),
        ("${REG}/redis:${TAG}", "127.0.0.1:5001/redis:7.2"),
        ("${SET:-x:y/z@sha256}", "value"),
        ("${NOPE:-a:b-c}", "a:b-c"),
        ("no dollar at all: {} }", "no dollar at all: {} }"),
    ],
    ids=lambda v: repr(v) if isinstance(v, str) else None,
)
def test_interpolate(text: str, expected: str) -> None:
    result = compose_mod.interpolate(text, VARS)
    assert result.text == expected
    assert result.unset == []


@pytest.mark.parametrize(
    ("text", "expected", "unset"),
    [
        ("$NOPE", "", ["NOPE"]),
        ("${NOPE}", "", ["NOPE"]),
        ("${REG}/${IMAGE}:${VERSION}", "127.0.0.1:5001/:", ["IMAGE", "VERSION"]),
        ("${NOPE:-${GONE}}", "", ["GONE"]),
    ],
    ids=["bare", "braced", "two-in-one", "inside-a-default"],
)
def test_unset_variables_become_empty_and_are_reported(text: str, expected: str, unset: list[str]) -> None:
    result = compose_mod.interpolate(text, VARS)
    assert (result.text, result.unset) == (expected, unset)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "${NOPE:?set NOPE to the mongo image}",
            "required variable NOPE is missing a value: set NOPE to the mongo image",
        ),
        ("${EMPTY:?}", "required variable EMPTY is missing a value"),
        ("${NOPE?no default}", "required variable NOPE is missing a value: no default"),
        ("${NOPE:?two\nlines}", "required variable NOPE is missing a value: two lines"),
    ],
    ids=["colon-question", "empty-with-colon", "question", "message-on-one-line"],
)
def test_required_variables(text: str, message: str) -> None:
    with pytest.raises(RequiredVariable) as exc:
        compose_mod.interpolate(text, VARS)
    assert str(exc.value) == message
    assert exc.value.name in text


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("$", "followed by neither a name"),
        ("price: 5$", "followed by neither a name"),
        ("$1", "followed by neither a name"),
        ("${", "not followed by a variable name"),
        ("${}", "not followed by a variable name"),
        ("${1X}", "not followed by a variable name"),
        ("${SET", "never closed"),
        ("${SET:-never closed", "never closed"),
        ("${SET!}", "unexpected '!'"),
        ("${SET:x}", "unexpected ':'"),
    ],
    ids=repr,
)
def test_invalid_interpolation_is_one_line(text: str, why: str) -> None:
    with pytest.raises(UserError) as exc:
        compose_mod.interpolate(text, VARS)
    message = str(exc.value)
    assert why in message and "write $$ for a literal $" in message and "\n" not in message


# --- .env -----------------------------------------------------------------------------------------


def test_env_file_rules(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(
        "# a comment\n"
        "\n"
        "PLAIN=redis:7\n"
        "SPACED = spaced  \n"
        "export EXPORTED=yes\n"
        "COMMENTED=value # trailing comment\n"
        "HASH=a#b\n"
        "SINGLE='${PLAIN} stays literal'\n"
        'DOUBLE="tab\\there ${PLAIN}"\n'
        'ESCAPED="\\$PLAIN"\n'
        "REUSE=${PLAIN}-again\n"
        "FROM_ENV=${HOME_DIR}/x\n"
        "EMPTY=\n"
        "BARE_FROM_ENV\n"
        "BARE_UNSET\n"
    )
    values = compose_mod.read_env_file(env, {"HOME_DIR": "/home/u", "BARE_FROM_ENV": "from env"})
    assert values == {
        "PLAIN": "redis:7",
        "SPACED": "spaced",
        "EXPORTED": "yes",
        "COMMENTED": "value",
        "HASH": "a#b",
        "SINGLE": "${PLAIN} stays literal",
        "DOUBLE": "tab\there redis:7",
        "ESCAPED": "$PLAIN",
        "REUSE": "redis:7-again",
        "FROM_ENV": "/home/u/x",
        "EMPTY": "",
        "BARE_FROM_ENV": "from env",
    }


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not a key value line", "line 1: not KEY=VALUE"),
        ("1BAD=x", "line 1: not KEY=VALUE"),
        ("OPEN='never closed", "line 1: .*a single quote is never closed"),
        ('OPEN="never closed', "line 1: .*a double quote is never closed"),
        ("BROKEN=${", "line 1: .*invalid interpolation"),
    ],
    ids=["no-equals", "bad-name", "single-quote", "double-quote", "bad-substitution"],
)
def test_env_file_errors_name_the_line(tmp_path: Path, line: str, message: str) -> None:
    env = tmp_path / ".env"
    env.write_text(line + "\n")
    with pytest.raises(UserError, match=message):
        compose_mod.read_env_file(env, {})


def test_the_environment_wins_over_dot_env(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("A=from-file\nB=from-file\n")
    compose = tmp_path / "docker-compose.yml"
    assert compose_mod.compose_variables(compose, {"B": "from-env", "C": "env-only"}) == {
        "A": "from-file",
        "B": "from-env",
        "C": "env-only",
    }


def test_an_explicit_env_file_replaces_dot_env(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("A=dot-env\n")
    other = tmp_path / "prod.env"
    other.write_text("A=prod\n")
    assert compose_mod.compose_variables(tmp_path / "c.yml", {}, other) == {"A": "prod"}
    with pytest.raises(UserError, match="cannot read"):
        compose_mod.compose_variables(tmp_path / "c.yml", {}, tmp_path / "missing.env")


# --- compose files --------------------------------------------------------------------------------

COMPOSE = """\
services:
  web:
    image: ${REG}/web:${WEB_TAG:-1}
    ports:
      - "${WEB_PORT:-8080}:80"
      - target: 443
        published: ${TLS_PORT}
  db:
    image: ${MONGO_IMAGE}
  worker:
    build: ./worker
    ports: ["9000:9000"]
  both:
    build:
      context: ./both
      dockerfile: Dockerfile.prod
    image: ${REG}/both:2
  required:
    image: ${CACHE_IMAGE:?set CACHE_IMAGE in .env}
  broken:
    image: redis:$
  neither:
    environment: {A: b}
  unset:
    image: ${REG}/${NOT_SET}:1
  literal:
    image: ${REG}/dollar:$$1
"""


def test_read_compose_rows(tmp_path: Path) -> None:
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(COMPOSE)
    (tmp_path / ".env").write_text("REG=127.0.0.1:5001\nMONGO_IMAGE=mongo:from-dot-env\nTLS_PORT=8443\n")
    rows = {r.service: r for r in compose_mod.read_compose(compose, {"MONGO_IMAGE": "mongo:from-env", "WEB_TAG": "3"})}
    assert list(rows) == ["web", "db", "worker", "both", "required", "broken", "neither", "unset", "literal"]
    assert rows["web"] == ComposeService("web", "127.0.0.1:5001/web:3", ["8080:80", "8443:443"])
    assert rows["db"] == ComposeService("db", "mongo:from-env")  # the environment wins
    assert rows["worker"] == ComposeService("worker", "", ["9000:9000"], build="./worker")
    assert rows["both"] == ComposeService("both", "127.0.0.1:5001/both:2", build="./both")
    assert rows["required"].error == "required variable CACHE_IMAGE is missing a value: set CACHE_IMAGE in .env"
    assert "invalid interpolation in 'redis:$'" in rows["broken"].error
    assert rows["neither"].error == "has neither image: nor build:"
    assert rows["unset"].error == (
        f"NOT_SET not set in the environment or {tmp_path / '.env'}, "
        "so image '${REG}/${NOT_SET}:1' is '127.0.0.1:5001/:1'"
    )
    assert rows["literal"].image == "127.0.0.1:5001/dollar:$1"


def test_build_only_services_become_built_here_rows_without_a_registry(tmp_path: Path) -> None:
    """audit() asks no registry about a service that only builds: an unreachable client is never used."""
    compose = tmp_path / "docker-compose.yml"
    compose.write_text("services:\n  app:\n    build: .\n    ports: ['80:80']\n  bad:\n    image: ${X:?need X}\n")
    entries = compose_mod.read_compose(compose, {})
    client = audit.Client(timeout=0.01)
    rows = audit.audit(client, entries, [])
    assert [(r.service, r.built_here, r.error, r.ok) for r in rows] == [
        ("app", "build: .", "", True),
        ("bad", "", "required variable X is missing a value: need X", False),
    ]
    assert audit.table_rows(rows) == [
        ["app", "-", "-", "80:80", "-", "built here (build: .)"],
        ["bad", "${X:?need X}", "-", "-", "-", "error: required variable X is missing a value: need X"],
    ]
