"""The issuer desk through the HTTP app: issuing from the schema-generated form (field
errors from the service's schema check, then success and the event the API writes),
finding a credential and suspending, reinstating and revoking it, OID4VCI offers with
their QR code and transaction code, and the refusals (CSRF, not signed in, wrong role)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.lenders import events

from credit_commons.core.clock import FixedClock
from credit_commons.core.db import transaction
from credit_commons.core.settings import Settings
from credit_commons.events.models import EventRow
from credit_commons.gateway.app import create_app
from credit_commons.identity import service as identity_service
from credit_commons.identity.auth import issue_admin_token
from credit_commons.identity.schemas import IdentityCreate
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.runtime import Runtime
from credit_commons.web.models import WebSessionRow
from credit_commons.web.sessions import prune_sessions

LOOPBACK = "http://127.0.0.1:8000"
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TYPE = "CreditReadinessCredential"


def csrf_of(response: httpx.Response) -> str:
    found = _CSRF.search(response.text)
    assert found, response.text
    return found.group(1)


@pytest.fixture
def browser(runtime: Runtime, settings: Settings) -> Iterator[TestClient]:
    with TestClient(
        create_app(settings, runtime=runtime), base_url=LOOPBACK, raise_server_exceptions=False
    ) as client:
        yield client


@pytest.fixture
def borrower(runtime: Runtime) -> tuple[str, str]:
    with transaction(runtime.sessions) as session:
        body = IdentityCreate.model_validate({"roles": ["business"], "profile": {"name": "Asha"}})
        made = identity_service.create_identity(session, runtime, body)
    return made.identity_token, made.access_token


def admin_token(runtime: Runtime) -> str:
    with transaction(runtime.sessions) as session:
        token, _ = issue_admin_token(session, runtime, "desk")
    return token


def sign_in(client: TestClient, token: str, role: str) -> None:
    page = client.get("/signin", headers=HTML)
    answer = client.post(
        "/signin",
        data={"csrf_token": csrf_of(page), "token": token, "role": role, "next": "/issuer"},
        headers=HTML,
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text


@pytest.fixture
def officer(browser: TestClient, runtime: Runtime) -> TestClient:
    sign_in(browser, admin_token(runtime), "issuer")
    return browser


def claims_form(subject: str, **overrides: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "type": TYPE,
        "subject": subject,
        "format": "dc+sd-jwt",
        "claims.enterprise.identity_token": subject,
        "claims.credit_tier": "B",
        "claims.income_bracket": "5L-25L",
        "claims.debt_ratio_bracket": "0.2-0.4",
        "claims.score_opening.score": "702",
        "claims.verification_sources": ["udyam", "itr"],
    }
    form.update(overrides)
    return form


def holder_jwk() -> str:
    return json.dumps(public_key_to_jwk(PrivateKey.generate(KeyType.ED25519).public_key))


def post(client: TestClient, path: str, form: dict[str, Any], page: str) -> httpx.Response:
    token = csrf_of(client.get(page, headers=HTML))
    return client.post(
        path, data={"csrf_token": token, **form}, headers=HTML, follow_redirects=False
    )


def events_of(runtime: Runtime, kind: str) -> list[EventRow]:
    return events(runtime, kind)


def issue(officer: TestClient, subject: str, **overrides: Any) -> str:
    form = claims_form(subject, holder_jwk=holder_jwk(), **overrides)
    answer = post(officer, "/issuer/issue", form, f"/issuer/issue?type={TYPE}")
    assert answer.status_code == 303, answer.text
    return answer.headers["location"].rsplit("/", 1)[1]


def test_the_form_is_built_from_the_schema(officer: TestClient) -> None:
    desk = officer.get("/issuer", headers=HTML)
    assert desk.status_code == 200
    assert 'href="/issuer/issue"' in desk.text
    page = officer.get(f"/issuer/issue?type={TYPE}", headers=HTML)
    assert page.status_code == 200
    text = page.text
    assert len(page.content) <= 100_000
    # Nested object -> a group; enums -> selects; the array of choices -> check boxes;
    # the integer's bounds in its hint; the claims the platform computes are optional.
    assert '<fieldset class="group">' in text
    assert 'name="claims.enterprise.identity_token"' in text
    assert '<select id="field-claims.credit_tier" name="claims.credit_tier"' in text
    assert '<option value="5L-25L">' in text
    assert text.count('type="checkbox" id="field-claims.verification_sources-') == 6
    assert "A whole number from 300 to 900." in text
    assert "Leave it empty and the platform works it out." in text
    assert 'name="holder_jwk"' in text
    assert officer.get("/issuer/issue?type=NoSuchType", headers=HTML).status_code == 404


def test_issue_with_field_errors_then_fixed(
    officer: TestClient, runtime: Runtime, borrower: tuple[str, str]
) -> None:
    subject, _ = borrower
    jwk = holder_jwk()
    wrong = claims_form(
        subject,
        holder_jwk=jwk,
        **{"claims.score_opening.score": "1200", "claims.income_bracket": ""},
    )
    answer = post(officer, "/issuer/issue", wrong, f"/issuer/issue?type={TYPE}")
    assert answer.status_code == 422
    text = answer.text
    # Each error next to its field (aria) and in the summary, linking to it.
    assert 'id="error-claims.score_opening.score"' in text
    assert "Enter a number from 300 to 900." in text
    assert 'id="error-claims.income_bracket"' in text
    assert "Enter this; it is required." in text
    assert 'href="#field-claims.score_opening.score"' in text
    described = "hint-claims.score_opening.score error-claims.score_opening.score"
    assert f'aria-describedby="{described}"' in text
    assert 'value="1200"' in text  # what was typed is kept
    assert events_of(runtime, "credential.issued") == []
    fixed = claims_form(subject, holder_jwk=jwk)
    done = post(officer, "/issuer/issue", fixed, f"/issuer/issue?type={TYPE}")
    assert done.status_code == 303
    location = done.headers["location"]
    assert re.fullmatch(r"/issuer/credentials/crd_[0-9A-Z]{26}", location)
    page = officer.get(location, headers=HTML)
    assert "Credential issued." in page.text
    assert "Valid" in page.text
    issued = events_of(runtime, "credential.issued")
    assert len(issued) == 1  # the API's event, by the officer's administrator principal


def test_other_field_errors(officer: TestClient) -> None:
    bad = claims_form(
        "idt_short",
        holder_jwk="not json",
        format="jwt_vc_json",
        **{"claims.score_opening.score": "seven", "claims.credit_tier": "Z"},
    )
    del bad["claims.verification_sources"]
    text = post(officer, "/issuer/issue", bad, f"/issuer/issue?type={TYPE}").text
    for name in (
        "subject",
        "holder_jwk",
        "format",
        "claims.score_opening.score",
        "claims.credit_tier",
        "claims.verification_sources",
    ):
        assert f'id="error-{name}"' in text, name
    assert "Enter a whole number, such as 702." in text
    assert "Choose one of the options." in text
    unknown = claims_form("idt_" + "x" * 20, holder_jwk=holder_jwk())
    refused = post(officer, "/issuer/issue", unknown, f"/issuer/issue?type={TYPE}")
    assert refused.status_code == 422
    assert "No borrower has this identity token." in refused.text


def test_find_suspend_reinstate_revoke(
    officer: TestClient, runtime: Runtime, borrower: tuple[str, str]
) -> None:
    subject, _ = borrower
    credential_id = issue(officer, subject)
    # The search is a POST: a borrower's identity token is never in a URL.
    found = post(officer, "/issuer/credentials", {"q": subject}, "/issuer/credentials")
    assert credential_id in found.text
    assert "idt_" not in "".join(re.findall(r'(?:href|action|src)="([^"]*)"', found.text))
    direct = post(officer, "/issuer/credentials", {"q": credential_id}, "/issuer/credentials")
    assert direct.headers["location"] == f"/issuer/credentials/{credential_id}"
    page = f"/issuer/credentials/{credential_id}"
    for action, status, flash in (
        ("suspend", "Suspended", "Credential suspended."),
        ("reinstate", "Valid", "Credential reinstated."),
        ("revoke", "Revoked", "Credential revoked."),
    ):
        answer = post(officer, f"{page}/{action}", {}, page)
        assert answer.status_code == 303
        shown = officer.get(page, headers=HTML).text
        assert flash in shown
        assert 'id="credential-status"><strong class="status status-' in shown
        assert status in shown
    assert [e.type for e in events_of(runtime, "credential.status_changed")] == [
        "credential.status_changed"
    ] * 3
    # Revocation is final: the service refuses, the page says so, nothing is written.
    again = post(officer, f"{page}/reinstate", {}, page)
    refused = officer.get(again.headers["location"], headers=HTML).text
    assert "This change is not possible" in refused
    assert len(events_of(runtime, "credential.status_changed")) == 3
    assert officer.get(f"{page}/revoke", headers=HTML).status_code == 200
    assert officer.get("/issuer/credentials/crd_" + "0" * 26, headers=HTML).status_code == 404
    nonsense = post(officer, "/issuer/credentials", {"q": "nonsense"}, "/issuer/credentials")
    assert nonsense.status_code == 422


def test_offer_qr_and_transaction_code(
    officer: TestClient, browser: TestClient, borrower: tuple[str, str], settings: Settings
) -> None:
    subject, _ = borrower
    form = claims_form(subject, tx_code="yes")
    answer = post(officer, "/issuer/offers", form, f"/issuer/offers/new?type={TYPE}")
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    offer_id = location.rsplit("/", 1)[1]
    page = officer.get(location, headers=HTML)
    assert page.status_code == 200
    reference = f"{settings.public_url.rstrip('/')}/v1/credential-offers/{offer_id}"
    uri = "openid-credential-offer://?credential_offer_uri=" + quote(reference, safe="")
    assert f'<code class="uri" id="offer-uri">{uri}</code>' in page.text
    code = re.search(r'<p class="tx-code" id="tx-code">([0-9]{6})</p>', page.text)
    assert code is not None
    # Shown once: the next visit has no code.
    assert 'id="tx-code"' not in officer.get(location, headers=HTML).text
    qr = officer.get(f"{location}/qr.svg")
    assert qr.status_code == 200
    assert qr.headers["content-type"] == "image/svg+xml"
    assert qr.content.startswith(b"<svg")
    # The offer the URI names is the API's, and its code redeems with the code shown.
    offer = browser.get(f"/v1/credential-offers/{offer_id}").json()
    grant = offer["grants"]["urn:ietf:params:oauth:grant-type:pre-authorized_code"]
    token = browser.post(
        "/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:pre-authorized_code",
            "pre-authorized_code": grant["pre-authorized_code"],
            "tx_code": code.group(1),
        },
    )
    assert token.status_code == 200, token.text


def test_offer_field_errors(officer: TestClient, borrower: tuple[str, str]) -> None:
    subject, _ = borrower
    form = claims_form(subject, **{"claims.debt_ratio_bracket": ""})
    answer = post(officer, "/issuer/offers", form, f"/issuer/offers/new?type={TYPE}")
    assert answer.status_code == 422
    assert 'id="error-claims.debt_ratio_bracket"' in answer.text


def test_refusals(browser: TestClient, runtime: Runtime, borrower: tuple[str, str]) -> None:
    subject, access = borrower
    # Not signed in: to the sign-in page, coming back here.
    away = browser.get("/issuer/issue", headers=HTML, follow_redirects=False)
    assert away.status_code == 303
    assert away.headers["location"] == "/signin?next=/issuer/issue"
    # Another role: the 403 page.
    sign_in(browser, access, "borrower")
    assert browser.get("/issuer", headers=HTML).status_code == 403
    # Signed in as the desk, a POST without the CSRF token does nothing.
    sign_in(browser, admin_token(runtime), "issuer")
    refused = browser.post(
        "/issuer/issue",
        data=claims_form(subject, holder_jwk=holder_jwk()),
        headers=HTML,
        follow_redirects=False,
    )
    assert refused.status_code == 403
    assert events_of(runtime, "credential.issued") == []


def test_a_type_the_form_cannot_show_is_named_not_half_shown(
    officer: TestClient, runtime: Runtime, borrower: tuple[str, str]
) -> None:
    subject, _ = borrower
    definition = {
        "name": "TradeLicence",
        "vct": "urn:example:trade-licence",
        "schema": {
            "type": "object",
            "required": ["number"],
            "properties": {
                "number": {"type": "string"},
                "status": {"oneOf": [{"const": "active"}, {"const": "lapsed"}]},
            },
        },
    }
    admin = {"Authorization": f"Bearer {admin_token(runtime)}"}
    assert officer.put("/v1/credential-types", json=definition, headers=admin).status_code == 200
    page = officer.get("/issuer/issue?type=TradeLicence", headers=HTML)
    assert page.status_code == 200
    assert "the keyword oneOf at /status" in page.text
    assert 'name="claims.number"' not in page.text  # no form that leaves the rule out
    form = {"type": "TradeLicence", "subject": subject, "claims.number": "TL-1"}
    refused = post(officer, "/issuer/issue", form, "/issuer/issue?type=TradeLicence")
    assert refused.status_code == 422
    assert events_of(runtime, "credential.issued") == []


def test_the_transaction_code_stays_on_the_server(
    officer: TestClient, runtime: Runtime, borrower: tuple[str, str], settings: Settings
) -> None:
    subject, _ = borrower
    form = claims_form(subject, tx_code="yes")
    answer = post(officer, "/issuer/offers", form, f"/issuer/offers/new?type={TYPE}")
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    cookies_set = answer.headers.get_list("set-cookie")
    assert not any(c.startswith("issuer-offer") for c in cookies_set), cookies_set
    # The same officer in another browser (another session) is not shown the code.
    with TestClient(officer.app, base_url=LOOPBACK, raise_server_exceptions=False) as other:
        with transaction(runtime.sessions) as session:
            token, _ = issue_admin_token(session, runtime, "desk-2")
        sign_in(other, token, "issuer")
        assert 'id="tx-code"' not in other.get(location, headers=HTML).text
    page = officer.get(location, headers=HTML)
    code = re.search(r'<p class="tx-code" id="tx-code">([0-9]{6})</p>', page.text)
    assert code is not None
    # No cookie ever carried it, and the page's own answer sets none.
    for header in (*cookies_set, *page.headers.get_list("set-cookie")):
        assert code.group(1) not in header
    assert all(code.group(1) not in v for v in officer.cookies.values())
    assert 'id="tx-code"' not in officer.get(location, headers=HTML).text


def test_an_unseen_transaction_code_is_not_shown_later(
    officer: TestClient,
    runtime: Runtime,
    borrower: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    subject, _ = borrower
    form = claims_form(subject, tx_code="yes")
    answer = post(officer, "/issuer/offers", form, f"/issuer/offers/new?type={TYPE}")
    later = FixedClock(runtime.clock.now() + timedelta(minutes=3))
    monkeypatch.setattr(runtime, "clock", later)
    assert 'id="tx-code"' not in officer.get(answer.headers["location"], headers=HTML).text


def test_retention_clears_an_unseen_transaction_code(
    officer: TestClient, runtime: Runtime, borrower: tuple[str, str]
) -> None:
    subject, _ = borrower
    form = claims_form(subject, tx_code="yes")
    post(officer, "/issuer/offers", form, f"/issuer/offers/new?type={TYPE}")

    def kept() -> list[str | None]:
        with transaction(runtime.read_sessions) as session:
            return [r.offer_tx_code for r in session.scalars(select(WebSessionRow))]

    assert [c for c in kept() if c is not None] != []
    with transaction(runtime.sessions) as session:
        prune_sessions(session, runtime.clock.now() + timedelta(minutes=3))
    assert [c for c in kept() if c is not None] == []


@pytest.mark.parametrize(
    ("type_name", "fields", "bad", "labels"),
    [
        (
            "KycCredential",
            {
                "claims.verification_level": "document_verified",
                "claims.birth_date": "1958-03-14",
                "claims.verified_on": "2026-11-02",
            },
            # A day that matches the pattern but does not exist: refused when committed.
            {"claims.birth_date": "1958-02-30"},
            ("Date of birth", "Identity documents checked", "जन्म तिथि"),
        ),
        (
            "ShgMembershipCredential",
            {
                "claims.shg_id": "shg-42",
                "claims.role": "treasurer",
                "claims.since": "2021-06-01",
            },
            {"claims.shg_id": "no spaces allowed"},
            ("Self-help group id", "Treasurer", "स्वयं सहायता समूह की पहचान संख्या"),
        ),
    ],
)
def test_the_desk_issues_the_kyc_and_shg_types_from_their_forms(
    officer: TestClient,
    runtime: Runtime,
    borrower: tuple[str, str],
    type_name: str,
    fields: dict[str, str],
    bad: dict[str, str],
    labels: tuple[str, str, str],
) -> None:
    subject, _ = borrower
    page = officer.get(f"/issuer/issue?type={type_name}", headers=HTML)
    assert page.status_code == 200, page.text
    english, option, hindi = labels
    assert english in page.text
    assert option in page.text
    assert 'name="claims.person.identity_token"' in page.text
    assert page.text.count('type="date"') >= 1
    officer.cookies.set("lang", "hi")
    try:
        translated = officer.get(f"/issuer/issue?type={type_name}", headers=HTML)
    finally:
        officer.cookies.delete("lang")
    assert hindi in translated.text
    form = {
        "type": type_name,
        "subject": subject,
        "format": "dc+sd-jwt",
        "holder_jwk": holder_jwk(),
        "claims.person.identity_token": subject,
        **fields,
    }
    wrong = post(officer, "/issuer/issue", {**form, **bad}, f"/issuer/issue?type={type_name}")
    assert wrong.status_code == 422, wrong.text
    (name,) = bad
    assert f'id="error-{name}"' in wrong.text
    assert "This is not in the expected form. Check it and try again." in wrong.text
    assert events_of(runtime, "credential.issued") == []
    done = post(officer, "/issuer/issue", form, f"/issuer/issue?type={type_name}")
    assert done.status_code == 303, done.text
    assert re.fullmatch(r"/issuer/credentials/crd_[0-9A-Z]{26}", done.headers["location"])
    assert len(events_of(runtime, "credential.issued")) == 1
