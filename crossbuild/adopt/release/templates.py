"""Release template values (GoReleaser's, promu's, a Makefile's `$(shell ...)`) as crossbuild templates.

A value that cannot be mapped gives None, and the caller reports it instead of guessing.
"""

from __future__ import annotations

import re

# GoReleaser template fields -> crossbuild template fields.
_GR_FIELDS = {
    "Version": "{version_no_v}",
    "RawVersion": "{version_no_v}",
    "Tag": "{version}",
    "Summary": "{version}",
    "Commit": "{commit}",
    "FullCommit": "{commit}",
    "ShortCommit": "{short_commit}",
    "Date": "{date}",
    "CommitDate": "{date}",
    "Timestamp": "{timestamp}",
    "CommitTimestamp": "{timestamp}",
    "ProjectName": "{project}",
}
# Go time layouts -> crossbuild fields.
_LAYOUTS = {
    "2006-01-02": "{date_short}",
    "2006-01-02T15:04:05Z07:00": "{date}",
    "2006-01-02T15:04:05Z": "{date}",
}
_GR_TEMPLATE = re.compile(r"\{\{-?\s*(?P<body>.*?)\s*-?\}\}")


def goreleaser_template(value: str) -> str | None:
    """A GoReleaser value as a crossbuild template; None when a part cannot be mapped."""
    out: list[str] = []
    pos = 0
    for m in _GR_TEMPLATE.finditer(value):
        out.append(value[pos : m.start()].replace("{", "{{").replace("}", "}}"))
        body = m.group("body")
        field_m = re.fullmatch(r"\.(\w+)", body)
        time_m = re.fullmatch(r'(?:time|\.Now\.Format|\.CommitDate\.Format|\.Date\.Format)\s+"([^"]+)"', body)
        if field_m and field_m.group(1) in _GR_FIELDS:
            out.append(_GR_FIELDS[field_m.group(1)])
        elif time_m and time_m.group(1) in _LAYOUTS:
            out.append(_LAYOUTS[time_m.group(1)])
        else:
            return None
        pos = m.end()
    out.append(value[pos:].replace("{", "{{").replace("}", "}}"))
    return "".join(out)


def shell_template(expanded: str, var: str) -> str | None:
    """A make/shell value (variables already expanded) as a crossbuild template, by what it runs."""
    text = expanded.strip().strip("'\"")
    if "$" not in text and "`" not in text and "(" not in text:
        return text.replace("{", "{{").replace("}", "}}") if text else None
    lower = text.lower()
    if "describe" in lower or re.search(r"\b(git_)?(version|tag)\b", lower):
        return "{version}"
    if "rev-parse" in lower and ("--short" in lower or "cut -c" in lower or "head -c" in lower):
        return "{short_commit}"
    if "rev-parse" in lower or re.search(r"\b(git_)?(commit|sha|revision|hash)\b", lower):
        return "{commit}"
    if re.search(r"\bdate\b", lower):
        if "%s" in text:
            return "{timestamp}"
        if re.search(r"\+['\"]?%Y-%m-%d['\"]?(\s|\)|$)", text):
            return "{date_short}"
        return "{date}"
    if "status" in lower or "dirty" in lower or "tree" in lower:
        return "{tree_state}"
    return None


_PROMU_FIELDS = {"Version": "{version_no_v}", "Revision": "{commit}"}


def promu_template(value: str) -> str | None:
    """A promu -X value ({{.Version}} is the VERSION file's, {{.Revision}} the commit) as a crossbuild template."""
    out: list[str] = []
    pos = 0
    for m in _GR_TEMPLATE.finditer(value):
        out.append(value[pos : m.start()].replace("{", "{{").replace("}", "}}"))
        field_m = re.fullmatch(r"\.(\w+)", m.group("body"))
        if not field_m or field_m.group(1) not in _PROMU_FIELDS:
            return None
        out.append(_PROMU_FIELDS[field_m.group(1)])
        pos = m.end()
    out.append(value[pos:].replace("{", "{{").replace("}", "}}"))
    return "".join(out)
