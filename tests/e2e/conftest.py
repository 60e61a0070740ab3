"""Browser tests: Playwright (sync API) driving the system Chromium against ``live_server``.

Needs /usr/bin/chromium (Debian package; browsers are never downloaded) and axe-core from
``npm ci`` (package.json devDependencies). Without them the tests are skipped, except in CI
(``CI=true``), where a missing prerequisite is a failure: CI must run them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("HEALTHSPACE_E2E_CHROMIUM", "/usr/bin/chromium"))
REPO_ROOT = Path(__file__).resolve().parents[2]
AXE_JS = REPO_ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# WCAG 2.2 level AA, as axe-core tags it (each level's new criteria have their own tag).
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
TIMEOUT_MS = 10_000
SERIOUS = ("serious", "critical")


def artifacts_dir() -> Path:
    """Where browser tests leave files for people to look at (CI keeps them as artefacts):
    ``$HEALTHSPACE_ARTIFACTS_DIR``, else build/ci-artifacts (gitignored). .ci/run prints it."""
    configured = os.environ.get("HEALTHSPACE_ARTIFACTS_DIR")
    return Path(configured) if configured else REPO_ROOT / "build" / "ci-artifacts"


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"e2e prerequisite missing in CI: {reason}", pytrace=False)
    pytest.skip(f"e2e prerequisite missing: {reason}")


@pytest.fixture(scope="module")
def _playwright(django_db_setup: None, live_server: Any) -> Iterator[Any]:
    # Depends on the test database and the live server so that both are set up before, and
    # torn down after, Playwright's event loop exists.
    if not CHROMIUM.is_file():
        _missing(f"{CHROMIUM} not found (install Debian's chromium: apt-get install chromium)")
    if not AXE_JS.is_file():
        _missing(f"{AXE_JS} not found (run `npm ci` at the repository root)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed (pip install -e '.[dev]')")
    with pytest.MonkeyPatch.context() as mp:
        # Playwright's sync API leaves its asyncio loop registered as running on this thread
        # while it is started, so Django would refuse ORM calls here (fixtures, db flushes) as
        # coming from an "async context". Nothing runs concurrently: allow it exactly while
        # Playwright runs, which is only during this module (later tests are not affected).
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            yield playwright


@pytest.fixture(scope="module")
def browser(_playwright: Any) -> Iterator[Any]:
    browser = _playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    try:
        yield browser
    finally:
        browser.close()


def _new_context(browser: Any, live_server: Any, *, bypass_csp: bool) -> Any:
    context = browser.new_context(
        base_url=live_server.url,
        bypass_csp=bypass_csp,
        viewport={"width": 1280, "height": 900},
        locale="en-GB",
        timezone_id="Europe/London",
    )
    context.set_default_timeout(TIMEOUT_MS)
    return context


@pytest.fixture
def context(browser: Any, live_server: Any) -> Iterator[Any]:
    # bypass_csp=True only so that axe-core can be injected (add_script_tag inserts an inline
    # <script> without the page's nonce, which the CSP rightly blocks). The pages themselves
    # are checked under the real CSP by the ``strict_context`` tests.
    context = _new_context(browser, live_server, bypass_csp=True)
    yield context
    context.close()


@pytest.fixture
def strict_context(browser: Any, live_server: Any) -> Iterator[Any]:
    """A context that enforces the CSP exactly as a patient's browser would."""
    context = _new_context(browser, live_server, bypass_csp=False)
    yield context
    context.close()


@pytest.fixture
def axe_strict_contexts(browser: Any, live_server: Any) -> Iterator[Callable[[], Any]]:
    """Make contexts (one per person: separate cookies, as separate browsers) with the
    real CSP, as ``strict_context``, and axe-core loaded into every page.

    axe-core comes in by an init script (CDP ``Page.addScriptToEvaluateOnNewDocument``),
    which runs before the page's own scripts and is not subject to its CSP, unlike
    ``add_script_tag``; so pages are checked exactly as a patient's browser renders them.
    """
    opened: list[Any] = []

    def new() -> Any:
        context = _new_context(browser, live_server, bypass_csp=False)
        context.add_init_script(path=str(AXE_JS))
        opened.append(context)
        return context

    yield new
    for context in opened:
        context.close()


@pytest.fixture
def page(context: Any) -> Any:
    return context.new_page()


@dataclass
class DemoPatient:
    email: str
    password: str
    nhs_number: str
    allergies: list[str] = field(default_factory=list)
    medications: list[str] = field(default_factory=list)


def _texts(bundle: dict[str, Any], rtype: str, key: str, **match: str) -> list[str]:
    out = []
    for entry in bundle["entry"]:
        res = entry["resource"]
        if res["resourceType"] == rtype and all(res.get(k) == v for k, v in match.items()):
            out.append(res[key]["text"])
    return out


@pytest.fixture
def demo_patient(transactional_db: None) -> DemoPatient:
    """Three synthetic patients imported; the demo login of the one with most allergies."""
    from healthspace.core import nhs_numbers
    from healthspace.ops.demo import ensure_demo_logins
    from healthspace.records import synthetic
    from healthspace.records.importer import import_paths

    bundles = synthetic.population(3)
    with tempfile.TemporaryDirectory() as tmp:
        for i, bundle in enumerate(bundles):
            (Path(tmp) / f"synthetic-{i:02d}.json").write_text(json.dumps(bundle))
        report = import_paths([Path(tmp)], source=synthetic.SOURCE)
    assert not report.errors, report.errors
    # One patient login (the one with most allergies) is all the tests need; each login
    # costs an Argon2 hash, so no more are made.
    login = next(d for d in ensure_demo_logins(1) if d.role == "patient")
    assert login.nhs_number, "the demo login is not linked to a patient"

    def nhs_of(bundle: dict[str, Any]) -> str:
        patient = next(
            e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
        )
        return next(
            i["value"]
            for i in patient["identifier"]
            if i["system"] == nhs_numbers.NHS_NUMBER_SYSTEM
        )

    bundle = next(b for b in bundles if nhs_of(b) == login.nhs_number)
    return DemoPatient(
        email=login.email,
        password=login.password,
        nhs_number=login.nhs_number,
        # Intolerances go to "Adverse reactions"; the Allergies section holds type=allergy.
        allergies=_texts(bundle, "AllergyIntolerance", "code", type="allergy"),
        medications=_texts(bundle, "MedicationRequest", "medicationCodeableConcept"),
    )


@pytest.fixture
def axe() -> Callable[[Any], list[dict[str, Any]]]:
    """Run axe-core (WCAG 2.2 AA) on a page of a ``bypass_csp`` context; return violations."""

    def run(page: Any) -> list[dict[str, Any]]:
        if not page.evaluate("typeof window.axe !== 'undefined'"):
            page.add_script_tag(path=str(AXE_JS))
        result = page.evaluate(
            "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}})",
            WCAG_TAGS,
        )
        return result["violations"]

    return run


def describe(violations: list[dict[str, Any]]) -> str:
    """axe-core violations as lines a person can act on: rule, impact, help, where."""
    lines = []
    for v in violations:
        lines.append(f"{v['id']} ({v['impact']}): {v['help']} <{v['helpUrl']}>")
        lines.extend(f"    {n['target']}: {n['failureSummary']}" for n in v["nodes"][:5])
    return "\n".join(lines)


@dataclass
class _Visit:
    who: str
    url: str
    checked: bool = False


class Journey:
    """One user story across real pages: every document a watched page loads must be
    checked (axe-core, WCAG 2.2 AA) before the next one loads, and each check keeps a
    full-page screenshot in ``<artefacts>/screenshots/<journey>/<nn>-<name>.png``.

    ``finish()`` fails, listing them, on any serious or critical violation, and on any
    page that was loaded but never checked (so "every page was checked" cannot quietly
    stop being true when the journey changes).
    """

    def __init__(self, name: str, axe: Callable[[Any], list[dict[str, Any]]]) -> None:
        self.name = name
        self._axe = axe
        self.folder = artifacts_dir() / "screenshots" / name
        shutil.rmtree(self.folder, ignore_errors=True)  # no stale pictures from an old run
        self.folder.mkdir(parents=True)
        self.visits: list[_Visit] = []
        self.found: dict[str, list[dict[str, Any]]] = {}
        self.screenshots: list[Path] = []
        self._last: dict[int, _Visit] = {}
        self._pages: list[tuple[str, Any]] = []

    def watch(self, page: Any, who: str) -> Any:
        """Record every document ``page`` loads (not same-document moves such as #links)."""

        def loaded(p: Any) -> None:
            visit = _Visit(who, p.url)
            self.visits.append(visit)
            self._last[id(p)] = visit

        page.on("load", loaded)
        self._pages.append((who, page))
        return page

    def keep_failure_screenshots(self) -> None:
        """The journey stopped: keep each person's page as it was (``failed-<who>.png``)."""
        for who, page in self._pages:
            # A page already closed has nothing to show; the test's own failure is the news.
            with contextlib.suppress(Exception):
                page.screenshot(path=str(self.folder / f"failed-{who}.png"), full_page=True)

    def check(self, page: Any, name: str) -> list[dict[str, Any]]:
        """axe-core on the page as it is now, and a full-page screenshot."""
        page.wait_for_load_state("load")
        violations = self._axe(page)
        n = len(self.found) + 1
        label = f"{n:02d}-{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')}"
        self.found[f"{label} {page.url}"] = violations
        path = self.folder / f"{label}.png"
        page.screenshot(path=str(path), full_page=True)
        self.screenshots.append(path)
        visit = self._last.get(id(page))
        if visit is not None:
            visit.checked = True
        return violations

    def finish(self) -> None:
        serious = {
            where: [v for v in violations if v["impact"] in SERIOUS]
            for where, violations in self.found.items()
        }
        problems = [f"[{where}]\n{describe(v)}" for where, v in serious.items() if v]
        unchecked = [f"{v.who}: {v.url}" for v in self.visits if not v.checked]
        if unchecked:
            problems.append("pages loaded but never checked with axe:\n  " + "\n  ".join(unchecked))
        assert not problems, (
            f"journey {self.name!r} failed its accessibility checks "
            f"(screenshots in {self.folder}):\n" + "\n".join(problems)
        )


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    # Lets ``journey`` see, at teardown, whether the test itself failed.
    report = yield
    setattr(item, f"_report_{report.when}", report)
    return report


@pytest.fixture
def journey(request: pytest.FixtureRequest, axe) -> Iterator[Callable[[str], Journey]]:
    """``journey("patient")``: a :class:`Journey` whose screenshots go under that name.
    When the test fails, each watched page is kept too, as the journey left it."""
    started: list[Journey] = []

    def start(name: str) -> Journey:
        started.append(Journey(name, axe))
        return started[-1]

    yield start
    report = getattr(request.node, "_report_call", None)
    if report is not None and report.failed:
        for journey in started:
            journey.keep_failure_screenshots()
