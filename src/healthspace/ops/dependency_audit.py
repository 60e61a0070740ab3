"""The dependency audit CI runs (docs/security.md): pip-audit over the installed
environment (``.venv``, made by ``./hs setup``: the project and its dev extras), failing on
any known vulnerability that is not in the documented ignore list.

    .venv/bin/python -m healthspace.ops.dependency_audit            # as CI runs it

The ignore list is ``[[tool.healthspace.pip-audit.ignore]]`` in pyproject.toml; every entry
names the vulnerability (``id``, as pip-audit reports it or one of its aliases), the
``package``, a ``reason`` (why it does not affect HealthSpace, or what is done instead) and
a ``review_by`` date (ISO), after which the entry no longer counts and the audit fails
again. An entry without all four is an error, as is one that no longer matches anything
(so the list cannot silently grow stale).

pip-audit asks the vulnerability service (PyPI's JSON API) about each package. Packages it
could not ask about are listed; when none could be audited at all (the service not
reachable or not serving) the audit says so loudly and passes, unless
``HEALTHSPACE_AUDIT_STRICT=1``, when it fails: a CI machine that reaches PyPI's JSON API
should set it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

REQUIRED = ("id", "package", "reason", "review_by")


@dataclass(frozen=True)
class Ignored:
    id: str
    package: str
    reason: str
    review_by: date


@dataclass
class Verdict:
    failures: list[str] = field(default_factory=list)  # what fails the audit
    ignored: list[str] = field(default_factory=list)  # known, justified, still in date
    unaudited: list[str] = field(default_factory=list)  # packages pip-audit could not ask about
    audited: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures


def ignore_list(pyproject: dict[str, Any]) -> tuple[list[Ignored], list[str]]:
    """The ignore entries, and the errors in them (missing fields, bad dates)."""
    entries = pyproject.get("tool", {}).get("healthspace", {}).get("pip-audit", {}).get("ignore")
    out, errors = [], []
    for n, entry in enumerate(entries or []):
        missing = [k for k in REQUIRED if not str(entry.get(k) or "").strip()]
        if missing:
            errors.append(f"ignore entry {n + 1}: missing {', '.join(missing)}")
            continue
        review_by = entry["review_by"]
        if not isinstance(review_by, date):
            try:
                review_by = date.fromisoformat(str(review_by))
            except ValueError:
                errors.append(f"ignore entry {n + 1} ({entry['id']}): review_by is not a date")
                continue
        out.append(Ignored(entry["id"], entry["package"].lower(), entry["reason"], review_by))
    return out, errors


def judge(
    report: dict[str, Any], ignores: list[Ignored], *, today: date, strict: bool = False
) -> Verdict:
    """What a pip-audit JSON report means for CI (pure)."""
    verdict = Verdict()
    used: set[tuple[str, str]] = set()
    for dep in report.get("dependencies", []):
        name = str(dep.get("name", "")).lower()
        if "skip_reason" in dep:
            verdict.unaudited.append(f"{name}: {dep['skip_reason']}")
            continue
        verdict.audited += 1
        for vuln in dep.get("vulns", []):
            ids = {vuln.get("id"), *(vuln.get("aliases") or [])}
            entry = next((i for i in ignores if i.package == name and i.id in ids), None)
            fixes = ", ".join(vuln.get("fix_versions") or []) or "no fixed version yet"
            line = f"{name} {dep.get('version')}: {vuln.get('id')} (fixed in: {fixes})"
            if entry is None:
                verdict.failures.append(line)
            elif entry.review_by < today:
                used.add((entry.package, entry.id))
                verdict.failures.append(f"{line}: ignore entry expired on {entry.review_by}")
            else:
                used.add((entry.package, entry.id))
                verdict.ignored.append(f"{line}: ignored until {entry.review_by}: {entry.reason}")
    if verdict.audited:
        # an entry that matches nothing any more is stale: remove it
        verdict.failures += [
            f"ignore entry {i.id} ({i.package}) matches no reported vulnerability: remove it"
            for i in ignores
            if (i.package, i.id) not in used
        ]
    elif strict:
        verdict.failures.append("no package could be audited (is PyPI's JSON API reachable?)")
    return verdict


def run_pip_audit() -> dict[str, Any]:
    pip_audit = Path(sys.executable).with_name("pip-audit")
    result = subprocess.run(  # noqa: S603 - fixed argv: our own venv's pip-audit
        [str(pip_audit), "--skip-editable", "--progress-spinner", "off", "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    # pip-audit exits 1 when it finds vulnerabilities; the report is on stdout either way
    try:
        return json.loads(result.stdout)
    except ValueError:
        sys.stderr.write(result.stderr)
        raise SystemExit(f"pip-audit did not produce a report (exit {result.returncode})") from None


def main(argv: list[str] | None = None) -> int:
    root = Path(__file__).resolve().parents[3]
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    ignores, errors = ignore_list(pyproject)
    strict = os.environ.get("HEALTHSPACE_AUDIT_STRICT") == "1"
    verdict = judge(run_pip_audit(), ignores, today=date.today(), strict=strict)
    verdict.failures = errors + verdict.failures
    print(f"pip-audit: {verdict.audited} packages audited, {len(verdict.unaudited)} not")
    for line in verdict.ignored:
        print(f"  ignored  {line}")
    if verdict.unaudited and not verdict.audited:
        print(
            "  WARNING: no package could be audited: the vulnerability service was not "
            "reachable from here (set HEALTHSPACE_AUDIT_STRICT=1 to fail on this)."
        )
    elif verdict.unaudited:
        for line in verdict.unaudited:
            print(f"  not audited  {line}")
    for line in verdict.failures:
        print(f"  FAIL  {line}")
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
