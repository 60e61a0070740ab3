"""The dependency audit's verdict (healthspace.ops.dependency_audit): a known
vulnerability fails CI unless a justified, in-date ignore entry names it; stale or
incomplete entries fail too."""

from __future__ import annotations

from datetime import date

from healthspace.ops.dependency_audit import ignore_list, judge

TODAY = date(2026, 12, 2)


def _report(*vulns, skipped=()):
    deps = [{"name": "Django", "version": "6.1.0", "vulns": list(vulns)}]
    deps.append({"name": "requests", "version": "2.34.2", "vulns": []})
    deps += [{"name": n, "skip_reason": "Dependency not found on PyPI"} for n in skipped]
    return {"dependencies": deps}


VULN = {"id": "PYSEC-2026-1", "aliases": ["CVE-2026-1234", "GHSA-xxxx"], "fix_versions": ["6.1.1"]}


def _ignores(**entry):
    base = {
        "id": "CVE-2026-1234",
        "package": "django",
        "reason": "only in the admin's ... which HealthSpace does not mount",
        "review_by": "2027-01-31",
    }
    return ignore_list({"tool": {"healthspace": {"pip-audit": {"ignore": [base | entry]}}}})


def test_a_known_vulnerability_fails():
    verdict = judge(_report(VULN), [], today=TODAY)
    assert not verdict.ok and "PYSEC-2026-1" in verdict.failures[0]
    assert "6.1.1" in verdict.failures[0] and verdict.audited == 2


def test_a_justified_entry_ignores_it_by_any_alias_until_its_review_date():
    ignores, errors = _ignores()
    assert not errors
    verdict = judge(_report(VULN), ignores, today=TODAY)
    assert verdict.ok and "does not mount" in verdict.ignored[0]
    expired = judge(_report(VULN), ignores, today=date(2027, 2, 1))
    assert not expired.ok and "expired" in expired.failures[0]


def test_an_entry_for_another_package_does_not_count():
    ignores, _ = _ignores(package="requests")
    verdict = judge(_report(VULN), ignores, today=TODAY)
    assert not verdict.ok
    assert any("PYSEC-2026-1" in f for f in verdict.failures)
    assert any("matches no reported vulnerability" in f for f in verdict.failures)


def test_entries_must_say_why_and_until_when():
    _, errors = _ignores(reason="")
    assert errors == ["ignore entry 1: missing reason"]
    _, errors = _ignores(review_by="soon")
    assert "not a date" in errors[0]


def test_a_stale_entry_fails():
    ignores, _ = _ignores()
    verdict = judge(_report(), ignores, today=TODAY)
    assert not verdict.ok and "remove it" in verdict.failures[0]


def test_nothing_audited_passes_with_a_warning_unless_strict():
    report = {"dependencies": [{"name": "django", "skip_reason": "not found"}]}
    assert judge(report, [], today=TODAY).ok
    assert judge(report, [], today=TODAY).unaudited == ["django: not found"]
    assert not judge(report, [], today=TODAY, strict=True).ok


def test_the_projects_own_ignore_list_is_well_formed():
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).resolve().parents[4] / "pyproject.toml").read_text())
    ignores, errors = ignore_list(pyproject)
    assert not errors
    assert all(i.reason.strip() for i in ignores)
    assert "pip-audit" in " ".join(pyproject["project"]["optional-dependencies"]["dev"])
