"""``bench/web.py`` cannot rot: its page discovery finds every console page of the app and
knows how to request each one, and one run on a tiny seeded platform measures a page."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from credit_commons.core.settings import Settings
from credit_commons.gateway.app import create_app
from credit_commons.runtime import Runtime

BENCH = Path(__file__).parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import web  # noqa: E402
from web_seed import World  # noqa: E402

WORLD = World(
    borrower="idt_" + "B" * 22,
    agent="idt_" + "A" * 22,
    lender="lnd_" + "L" * 22,
    lenders=["lnd_" + "L" * 22],
    borrower_consents={"ACTIVE": ["cns_ACTIVE"], "PENDING": ["cns_PENDING"]},
    lender_consents={"ACTIVE": ["cns_LENDER"]},
    lender_access_events=["evt_ACCESS"],
    credentials=["crd_ONE"],
    agent_delegation="dlg_ONE",
)
FRESH = web.Fresh(
    offer="off_ONE", preparing="cns_PREP", assisted="cns_DONE", log_size=10, proof="vpt_ONE"
)


def test_every_console_page_is_found_and_can_be_requested(
    runtime: Runtime, settings: Settings
) -> None:
    pages = web.console_pages(create_app(settings, runtime=runtime))
    paths = {page.path for page in pages}
    assert {"/", "/signin"} <= paths
    assert not any(p.startswith(("/v1/", "/docs", "/healthz", "/static")) for p in paths)
    for page in pages:
        urls = web.urls_of(page, WORLD, FRESH)  # raises for a page the bench cannot request
        assert urls[0].startswith("/")
        assert "{" not in "".join(urls), page
        assert page.role == web.role_of(page.path)
    assert web.role_of("/borrower/assisted/x") == "borrower"
    assert web.role_of("/audit/entry") is None


def test_a_page_the_bench_cannot_supply_fails_loudly() -> None:
    page = web.Page("/borrower/things/{thing_id}", "borrower", ("thing_id",), (), ())
    with pytest.raises(web.Unmeasurable, match="thing_id"):
        web.urls_of(page, WORLD, FRESH)
    needs = web.Page("/audit/search", None, (), ("term",), ())
    with pytest.raises(web.Unmeasurable, match="term"):
        web.urls_of(needs, WORLD, FRESH)


@pytest.mark.slow
def test_the_bench_measures_a_page_on_a_tiny_seed() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH / "web.py"),
            "--consents=60",
            "--borrower-consents=12",
            "--lenders=2",
            "--requests=3",
            "--warmup=1",
            "--no-cache",
            "--pages=^/audit/entry$",
        ],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = [json.loads(line) for line in done.stdout.splitlines()]
    assert [f["figure"] for f in figures] == ["web_baseline", "web_page", "web_page"]
    bare, lookup = figures[1:]
    assert bare["url"] == "/audit/entry"
    assert lookup["url"].startswith("/audit/entry?index=")
    for found in figures:
        assert found["requests"] == 3
        assert 0 <= found["p50_ms"] <= found["p95_ms"] <= found["p99_ms"] <= found["max_ms"]
        assert found["bytes"] > found["body_bytes"] > 0
        # The server's CPU per request, from /proc in clock ticks (three requests may
        # take less than one tick).
        assert isinstance(found["server_cpu_ms"], float)
        assert found["server_cpu_ms"] >= 0
    assert lookup["first_visit_bytes"] > lookup["bytes"]  # the page and its stylesheet
    assert "meets_target" in lookup
