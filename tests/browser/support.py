"""What the browser tests share besides fixtures: the browser's settings, the viewports,
the network guard and axe-core (tests import these; the fixtures are in conftest.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, Route

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "DESKTOP",
    "FAILING_IMPACTS",
    "PHONE",
    "TIMEOUT_MS",
    "Network",
    "axe_violations",
    "describe_violations",
    "require_chromium",
    "screenshots",
    "use_desktop",
    "use_phone",
]

CHROMIUM = Path("/usr/bin/chromium")
"""Debian's chromium (scripts/ensure-system-deps.sh installs it), not a Playwright download."""
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 360, "height": 800}
DESKTOP = {"width": 1280, "height": 800}
TIMEOUT_MS = 30_000
"""Playwright's bound on each action, navigation and ``expect`` (which retries until then):
generous, so that a loaded machine is slow but not failing; only a broken page reaches it."""
FAILING_IMPACTS = frozenset({"serious", "critical"})
"""The axe-core impacts that fail a test; minor and moderate ones are reported."""

_AXE = Axe()  # axe-core's axe.min.js, as axe-playwright-python bundles it


def require_chromium(path: Path = CHROMIUM) -> Path:
    """``path`` when it is an executable; otherwise fail the test (never skip it: a run
    without its browser tests must not look green) saying how to install it."""
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"{path} is missing: the browser tests need Debian's chromium; run `make test` "
            "(scripts/ensure-system-deps.sh installs it when missing)",
            pytrace=False,
        )
    return path


def use_phone(page: Page) -> None:
    """Resize ``page`` to a phone's viewport (360x800), the one each test starts with."""
    page.set_viewport_size(PHONE)  # type: ignore[arg-type]


def use_desktop(page: Page) -> None:
    """Resize ``page`` to a desktop's viewport (1280x800)."""
    page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]


def screenshots(page: Page, directory: Path, name: str) -> list[Path]:
    """The full ``page`` at 360 px and at 1280 px wide, written to ``<directory>/<name>-360.png``
    and ``<name>-1280.png`` (each written whole, then renamed: a reader never sees half a
    file); the page is left at the phone viewport."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for width, resize in ((360, use_phone), (1280, use_desktop)):
        resize(page)
        target = directory / f"{name}-{width}.png"
        partial = target.with_name(f".{name}-{width}.{os.getpid()}.png")
        page.screenshot(
            path=partial, full_page=True, animations="disabled", caret="hide", scale="css"
        )
        partial.replace(target)
        written.append(target)
    use_phone(page)
    return written


@dataclass
class Network:
    """A guard for a browser context's requests: those to ``origin`` (the live server's)
    go through, anything else is aborted and kept in ``blocked``; ``requested`` is every
    URL asked for, in order."""

    origin: str
    requested: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    def guard(self, route: Route) -> None:
        """The route handler: ``context.route("**/*", network.guard)``."""
        url = route.request.url
        self.requested.append(url)
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" == self.origin:
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort("blockedbyclient")


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations on ``page`` as it is now (every rule but the experimental
    ones), each with its ``id``, ``impact``, ``help`` and ``nodes``.  axe is injected with
    ``page.evaluate``, which a Content-Security-Policy without inline script allows."""
    violations: list[dict[str, Any]] = _AXE.run(page).response["violations"]
    return violations


def describe_violations(url: str, violations: list[dict[str, Any]]) -> str:
    """One line per violation (impact, rule, help) and one per node it targets."""
    lines = []
    for violation in violations:
        lines.append(f"{url}: [{violation.get('impact')}] {violation['id']}: {violation['help']}")
        lines += [f"    {node['target']}" for node in violation["nodes"]]
    return "\n".join(lines)
