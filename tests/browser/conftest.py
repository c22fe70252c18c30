"""Browser tests of the web console: a live server, Debian's Chromium driven by Playwright
(sync API), axe-core checks and the screenshots kept in ``docs/console/``.

Fixtures (docs/testing.md, "Browser tests"):

- ``live_server``: ``commons serve`` on SQLite, started once per pytest-xdist worker
  (session scope) and stopped at the end; :class:`tests.browser.live.LiveServer` has the
  helpers that create test data.  Each flow runs once, on SQLite: what the console stores
  is tested on SQLite and PostgreSQL through the HTTP app (tests/integration/web,
  tests/integration/test_web_*.py), and ``commons serve`` on PostgreSQL by tests/e2e.
- ``server``: the live server the ``page`` fixture opens (``live_server``; a module may
  override the fixture).
- ``browser``: one headless Chromium per worker, on a fresh user-data directory.
- ``page``: a fresh browser context (no cookies, no storage) and page per test, at a phone's
  viewport (360x800), asking for ``en-US``, ``base_url`` the server's, every request to
  anything but that server aborted — and the test failed for it.  ``network`` lists what
  the page requested.  On failure, a screenshot and a Playwright trace are kept (their paths
  and the server's last lines are printed in the failure report).
- ``check_accessibility(page)``, ``screenshot(page, name)``; ``use_desktop(page)`` and
  ``use_phone(page)`` (plain functions in tests/browser/support.py) switch the viewport.

Playwright's sync API runs its own event loop in a greenlet of this thread; no test here
runs an asyncio loop, so it needs no special treatment under pytest-xdist or ``-W error``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError
from tests.browser.live import LiveServer, live_server_on
from tests.browser.support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    FAILING_IMPACTS,
    PHONE,
    TIMEOUT_MS,
    Network,
    axe_violations,
    describe_violations,
    require_chromium,
    screenshots,
)

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
SCREENSHOT_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """``commons serve`` on a SQLite database in a temporary directory, for the session."""
    directory = tmp_path_factory.mktemp("live-sqlite")
    with live_server_on(directory, f"sqlite:///{directory / 'commons.db'}") as server:
        yield server


@pytest.fixture
def server(live_server: LiveServer) -> LiveServer:
    """The server ``page`` opens."""
    return live_server


# Module scope, not session: while Playwright's sync API is started, this thread has a
# running event loop, so any later test in the same worker process that calls asyncio.run()
# fails ("cannot be called from a running event loop").  pytest ends module fixtures when the
# worker moves on to another module's test, so the loop never outlives the browser tests.
@pytest.fixture(scope="module")
def _playwright() -> Iterator[Playwright]:
    with sync_playwright() as playwright:
        expect.set_options(timeout=TIMEOUT_MS)
        yield playwright


@pytest.fixture(scope="module")
def browser(_playwright: Playwright, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """Headless Debian Chromium on a fresh user-data directory, for the module.  Fails
    (never skips) when /usr/bin/chromium is missing."""
    chromium = require_chromium(CHROMIUM)
    profile = tmp_path_factory.mktemp("chromium-profile")
    persistent = _playwright.chromium.launch_persistent_context(
        profile, executable_path=chromium, headless=True, args=CHROMIUM_ARGS
    )
    try:
        launched = persistent.browser
        assert launched is not None
        yield launched
    finally:
        persistent.close()


@dataclass
class _Session:
    # What a failure report needs from a test's browser session.
    page: Page
    server: LiveServer
    directory: Path
    tracing: bool = True


_SESSION = pytest.StashKey[_Session]()


@pytest.fixture
def network(server: LiveServer) -> Network:
    """The guard of this test's ``page``: what it requested, and what was aborted."""
    return Network(server.base)


@pytest.fixture
def page(
    browser: Browser,
    server: LiveServer,
    network: Network,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> Iterator[Page]:
    """A new page in a fresh context (no cookies, no storage) at 360x800, ``base_url`` the
    server's; fails the test when the page tried to reach anything else."""
    context = browser.new_context(
        viewport=PHONE,  # type: ignore[arg-type]
        base_url=server.base,
        locale="en-US",  # Accept-Language, whatever the machine's own
        service_workers="block",
    )
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    context.route("**/*", network.guard)
    context.tracing.start(screenshots=True, snapshots=True)
    opened = context.new_page()
    session = _Session(opened, server, tmp_path)
    request.node.stash[_SESSION] = session
    try:
        yield opened
    finally:
        if session.tracing:
            context.tracing.stop()
        context.close()
    if network.blocked:
        pytest.fail(
            "the page tried to leave the live server (requests aborted):\n  "
            + "\n  ".join(network.blocked),
            pytrace=False,
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """On a failed test with a page: keep a screenshot and the trace, and say where, with
    the server's last lines, in the report."""
    report = yield
    session = item.stash.get(_SESSION, None)
    if session is not None and report.when == "call" and report.failed and session.tracing:
        report.sections.append(("browser", _keep_artefacts(session)))
    return report


def _keep_artefacts(session: _Session) -> str:
    # The failure screenshot and the trace, in the test's tmp_path; a browser that crashed
    # or closed leaves only the server's lines (the report says what could not be kept).
    shot, trace = session.directory / "failure.png", session.directory / "trace.zip"
    session.tracing = False
    lines = [f"page at failure: {session.page.url}"]
    try:
        session.page.screenshot(path=shot, full_page=True)
        lines.append(f"screenshot: {shot}")
        session.page.context.tracing.stop(path=trace)
        lines.append(f"trace: {trace} (.venv/bin/python -m playwright show-trace {trace})")
    except PlaywrightError as e:
        lines.append(f"no screenshot or trace: {e.message}")
    lines.append(f"server log, last lines:\n{session.server.log_tail()}")
    return "\n".join(lines)


@pytest.fixture
def check_accessibility(request: pytest.FixtureRequest) -> Callable[[Page], None]:
    """``check_accessibility(page)``: run axe-core on the page as it is; fail listing every
    serious or critical violation (rule, help, target nodes); the minor and moderate ones
    are reported (the test's ``axe`` user property, listed in the run's summary)."""

    def check(page: Page) -> None:
        violations = axe_violations(page)
        failing = [v for v in violations if v.get("impact") in FAILING_IMPACTS]
        reported = [v for v in violations if v.get("impact") not in FAILING_IMPACTS]
        if reported:
            request.node.user_properties.append(("axe", describe_violations(page.url, reported)))
        if failing:
            pytest.fail(
                f"axe-core: {len(failing)} serious or critical violation(s)\n"
                + describe_violations(page.url, failing),
                pytrace=False,
            )

    return check


@pytest.fixture
def screenshot() -> Callable[[Page, str], None]:
    """``screenshot(page, name)``: the full page at 360 px and at 1280 px wide, written to
    ``docs/console/<name>-360.png`` and ``<name>-1280.png`` when ``COMMONS_TEST_SCREENSHOTS=1``
    (``make screenshots``); the page is left at the phone viewport.  ``name`` is lower-case
    words joined by hyphens, unique across the suite.

    Screenshots are the console's documentation, not a check: nothing compares them, and
    every capture differs by a few bytes (random ids on the page).  So a plain test run
    checks the name and captures nothing: it neither rewrites the repository's files nor
    spends its time on ~200 full-page captures."""

    def take(page: Page, name: str) -> None:
        if not SCREENSHOT_NAME.fullmatch(name):
            pytest.fail(f"screenshot name {name!r} is not lower-case words joined by hyphens")
        if os.environ.get("COMMONS_TEST_SCREENSHOTS") == "1":
            screenshots(page, SCREENSHOTS, name)

    return take
