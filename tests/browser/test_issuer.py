"""The issuer desk's whole story in a browser at a phone's width, in English and in Urdu:
sign in with an administrator's token, issue from the schema-generated form (a field error,
then fixed), see the credential, suspend it, revoke it, find it, and make an OID4VCI offer
whose QR code the platform serves and whose URI is the offer the API returns.  axe-core on
every page, and every page's screenshots in docs/console/."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from urllib.parse import quote

import pytest
from playwright.sync_api import Page, expect
from tests.browser.live import LiveServer
from tests.browser.support import Network

from credit_commons.core.db import transaction
from credit_commons.identity.auth import issue_admin_token
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.jwk import public_key_to_jwk

TYPE = "CreditReadinessCredential"
Check = Callable[[Page], None]
Shoot = Callable[[Page, str], None]


def admin_token(server: LiveServer) -> str:
    with transaction(server.runtime.sessions) as session:
        token, _ = issue_admin_token(session, server.runtime, "desk")
    return token


def sign_in_as_desk(page: Page, server: LiveServer, code: str) -> None:
    if code != "en":
        page.goto(f"/lang/{code}?next=/issuer")
    else:
        page.goto("/issuer")
    expect(page).to_have_url(re.compile(r"/signin\?next=/issuer$"))
    page.locator("#field-token").fill(admin_token(server))
    page.locator("#field-role-issuer").check()
    page.locator('form[action="/signin"] button[type="submit"]').click()
    expect(page).to_have_url(re.compile(r"/issuer$"))


def fill_claims(page: Page, subject: str, score: str) -> None:
    page.locator('[name="subject"]').fill(subject)
    page.locator('[name="claims.enterprise.identity_token"]').fill(subject)
    page.locator('[name="claims.credit_tier"]').select_option("B")
    page.locator('[name="claims.debt_ratio_bracket"]').select_option("0.2-0.4")
    page.locator('[name="claims.score_opening.score"]').fill(score)
    page.locator('input[name="claims.verification_sources"][value="udyam"]').check()


@pytest.mark.parametrize("code", ["en", "ur"])
def test_the_issuer_desk(
    page: Page,
    server: LiveServer,
    network: Network,
    check_accessibility: Check,
    screenshot: Shoot,
    code: str,
) -> None:
    borrower = server.register_identity("Asha Textiles")
    subject = borrower.identity_token
    sign_in_as_desk(page, server, code)
    expect(page.locator("html")).to_have_attribute("lang", code)
    check_accessibility(page)
    screenshot(page, f"issuer-desk-{code}")

    # Issue: choose the type, get its form, send it with a score out of range and no
    # income bracket; the errors are next to their fields and in the summary.
    page.locator('a[href="/issuer/issue"]').first.click()
    page.locator("#field-type").select_option(TYPE)  # other tests may add types
    page.locator("form.choose-type button").click()
    expect(page).to_have_url(re.compile(rf"/issuer/issue\?type={TYPE}$"))
    check_accessibility(page)
    screenshot(page, f"issuer-issue-form-{code}")
    holder = PrivateKey.generate(KeyType.ED25519)
    page.locator('[name="holder_jwk"]').fill(json.dumps(public_key_to_jwk(holder.public_key)))
    fill_claims(page, subject, "1200")
    page.locator('form[method="post"][action="/issuer/issue"] button').click()
    score = page.locator('[name="claims.score_opening.score"]')
    expect(score).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#error-claims\\.score_opening\\.score")).to_be_visible()
    expect(page.locator("#error-claims\\.income_bracket")).to_be_visible()
    expect(page.locator(".error-summary")).to_be_visible()
    if code == "en":
        expect(page.locator("#error-claims\\.score_opening\\.score")).to_have_text(
            "Enter a number from 300 to 900."
        )
    expect(score).to_have_value("1200")  # kept as typed
    check_accessibility(page)
    screenshot(page, f"issuer-issue-errors-{code}")

    # Fixed: the credential's page, valid.
    score.fill("702")
    page.locator('[name="claims.income_bracket"]').select_option("5L-25L")
    page.locator('form[method="post"][action="/issuer/issue"] button').click()
    expect(page).to_have_url(re.compile(r"/issuer/credentials/crd_[0-9A-Z]{26}$"))
    credential_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("#credential-status .status-valid")).to_be_visible()
    expect(page.locator(".flash-success")).to_be_visible()
    check_accessibility(page)
    screenshot(page, f"issuer-credential-{code}")

    # Suspend, then revoke (a confirmation page first: revocation is final).
    page.locator('form[action$="/suspend"] button').click()
    expect(page.locator("#credential-status .status-suspended")).to_be_visible()
    check_accessibility(page)
    screenshot(page, f"issuer-credential-suspended-{code}")
    page.locator(f'a[href="/issuer/credentials/{credential_id}/revoke"]').click()
    check_accessibility(page)
    screenshot(page, f"issuer-revoke-confirm-{code}")
    page.locator('form[action$="/revoke"] button').click()
    expect(page.locator("#credential-status .status-revoked")).to_be_visible()
    expect(page.locator('form[action$="/reinstate"]')).to_have_count(0)
    check_accessibility(page)
    screenshot(page, f"issuer-credential-revoked-{code}")

    # Find it again by the borrower's identity token.
    page.goto("/issuer")
    page.locator("#field-q").fill(subject)
    page.locator('form[action="/issuer/credentials"] button').click()
    expect(page.locator(f'a[href="/issuer/credentials/{credential_id}"]')).to_be_visible()
    check_accessibility(page)
    screenshot(page, f"issuer-find-{code}")

    # An offer: its QR code is served by the platform, its URI is the API's offer.
    page.goto("/issuer")
    page.locator('a[href="/issuer/offers/new"]').first.click()
    page.locator("#field-type").select_option(TYPE)  # other tests may add types
    page.locator("form.choose-type button").click()
    check_accessibility(page)
    screenshot(page, f"issuer-offer-form-{code}")
    fill_claims(page, subject, "702")
    page.locator('[name="claims.income_bracket"]').select_option("5L-25L")
    expect(page.locator("#field-tx_code")).to_be_checked()
    page.locator('form[method="post"][action="/issuer/offers"] button').click()
    expect(page).to_have_url(re.compile(r"/issuer/offers/off_[0-9A-Z]{26}$"))
    offer_id = page.url.rsplit("/", 1)[1]
    api_offer = server.http.get(f"/v1/credential-offers/{offer_id}")
    assert api_offer.status_code == 200
    issuer = api_offer.json()["credential_issuer"]
    reference = f"{issuer}/v1/credential-offers/{offer_id}"
    expect(page.locator("#offer-uri")).to_have_text(
        "openid-credential-offer://?credential_offer_uri=" + quote(reference, safe="")
    )
    expect(page.locator("#tx-code")).to_have_text(re.compile(r"^[0-9]{6}$"))
    image = page.locator("figure.qr img")
    expect(image).to_be_visible()
    assert image.evaluate("img => img.complete && img.naturalWidth > 0")
    served = page.request.get(str(image.get_attribute("src")))
    assert served.status == 200
    assert served.headers["content-type"] == "image/svg+xml"
    assert served.body().startswith(b"<svg")
    check_accessibility(page)
    screenshot(page, f"issuer-offer-{code}")
    assert network.blocked == []


def test_a_type_the_form_cannot_show(
    page: Page, server: LiveServer, check_accessibility: Check, screenshot: Shoot
) -> None:
    definition = {
        "name": "TradeLicence",
        "vct": "urn:example:trade-licence",
        "schema": {
            "type": "object",
            "properties": {"status": {"anyOf": [{"const": "active"}, {"const": "lapsed"}]}},
        },
    }
    put = server.http.put("/v1/credential-types", json=definition, headers=server.admin_headers())
    assert put.status_code == 200, put.text
    sign_in_as_desk(page, server, "en")
    page.goto("/issuer/issue?type=TradeLicence")
    expect(page.locator(".error-summary")).to_contain_text("the keyword anyOf at /status")
    expect(page.locator('form[method="post"][action="/issuer/issue"]')).to_have_count(0)
    check_accessibility(page)
    screenshot(page, "issuer-issue-unavailable-en")
