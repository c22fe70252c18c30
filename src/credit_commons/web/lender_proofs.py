"""The lender's proof requests (``/lender/proofs``): ask a borrower's wallet, over
OpenID4VP, for a zero-knowledge proof that the Credit Readiness Credential's score is at
least θ (docs/zk.md, "Asking for a predicate in OpenID4VP"), and read the decision.

- ``/lender/proofs/new``: the form (θ); its POST makes the verifier request through
  ``verifier.service.create_request`` for this lender client, as ``POST
  /v1/verifier/requests`` does — the DCQL query for the credential's ``zk_commitments``
  and one ``score_at_least`` predicate — counted in the ``lender-api`` group as the other
  lender acts of the console are;
- ``/lender/proofs/{id}``: while pending, the wallet's ``openid4vp://`` URL and its QR
  code (``…/qr.svg``, drawn here with segno as the issuer desk's offers are); once
  decided, the verifier's record (``verifier.service.status``, as ``GET
  /v1/verifier/requests/{id}``): allow or deny with its reason, and the statement and θ
  the request asked.  A score never reaches the platform: the wallet discloses only the
  commitment, and this page shows none of the disclosed claims.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from credit_commons.core.db import transaction
from credit_commons.core.errors import NotFoundError, ValidationError
from credit_commons.issuer.catalogue import CREDIT_READINESS
from credit_commons.runtime import Runtime
from credit_commons.verifier import PresentationRequest, TransactionStatus
from credit_commons.verifier import service as verifier_service
from credit_commons.verifier.transactions import load_transaction
from credit_commons.web.flash import add_flash
from credit_commons.web.i18n import N_
from credit_commons.web.lender import ConsoleLender, Me
from credit_commons.web.limits import count_act
from credit_commons.web.qr import qr_svg
from credit_commons.web.render import render
from credit_commons.web.routing import Area, page_router

__all__ = ["AREA", "STATEMENT", "proof_request", "router"]

router = page_router(prefix="/lender/proofs")
STATEMENT = "score_at_least"
_TRANSACTION = r"^vpt_[A-Za-z0-9]{1,36}$"
_DEFAULT_THRESHOLD = "650"


def proof_request(threshold: int) -> PresentationRequest:
    """The verifier request the form makes: the Credit Readiness Credential's commitment
    (never its score) and a proof that the committed score is at least ``threshold``."""
    return PresentationRequest.model_validate(
        {
            "dcql_query": {
                "credentials": [
                    {
                        "id": "crc",
                        "format": "dc+sd-jwt",
                        "meta": {"vct_values": [CREDIT_READINESS.vct]},
                        "claims": [{"path": ["zk_commitments"]}],
                    }
                ]
            },
            "zk_predicates": [
                {
                    "id": "score",
                    "statement": STATEMENT,
                    "credential_query_id": "crc",
                    "params": {"threshold": threshold},
                }
            ],
        }
    )


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _form(request: Request, me: ConsoleLender, threshold: str, error: str | None) -> HTMLResponse:
    context = {"me": me, "threshold": threshold, "error": error}
    return render(request, "lender/proof_new.html", context, status=422 if error else 200)


@router.get("/new")
def new_proof(request: Request, me: Me) -> HTMLResponse:
    """The form: the least score the borrower must prove."""
    return _form(request, me, _DEFAULT_THRESHOLD, None)


@router.post("")
def ask(request: Request, me: Me, threshold: Annotated[str, Form(max_length=8)] = "") -> Response:
    """Make the verifier request (``create_request``, as the API); its page after."""
    count_act(request, "lender-api", me.client_id)
    rt = _runtime(request)
    try:
        spec = proof_request(int(threshold.strip()))
        with transaction(rt.sessions) as session:
            made = verifier_service.create_request(session, rt, me.client_id, spec)
    except (ValueError, ValidationError):  # pydantic's ValidationError is a ValueError
        # Not a number, or outside the statement's bounds (the registry's check).
        return _form(request, me, threshold, N_("Give a whole number the statement allows."))
    response = RedirectResponse(f"/lender/proofs/{made.id}", status_code=303)
    add_flash(request, response, N_("Proof requested. Show the code to the borrower."), "success")
    return response


def _asked(
    request: Request, me: ConsoleLender, transaction_id: str
) -> tuple[TransactionStatus, list[tuple[str, int]], str]:
    # The verifier's record of this lender's transaction (NotFoundError for another's),
    # the statements and parameters it asked, and the wallet's URL.
    rt = _runtime(request)
    with transaction(rt.read_sessions) as session:
        status = verifier_service.status(session, rt, me.client_id, transaction_id)
        row = load_transaction(session, transaction_id)
        if row is None:
            raise NotFoundError("no such verification request")
        # The wallet's URL as create_request gave it: by reference for a signed request,
        # by value where the platform has no did:web (http or an IP address: redirect_uri).
        wallet_url = verifier_service.wallet_url_of(session, rt, transaction_id)
    asked = [
        (str(p["statement"]), int(p["params"].get("threshold", 0)))
        for p in json.loads(row.zk_predicates)
    ]
    return status, asked, wallet_url


@router.get("/{transaction_id}")
def proof_page(
    request: Request, me: Me, transaction_id: Annotated[str, Path(pattern=_TRANSACTION)]
) -> HTMLResponse:
    """The request: the wallet's code while pending, then the decision (never a score)."""
    status, asked, wallet_url = _asked(request, me, transaction_id)
    context = {"me": me, "status": status, "asked": asked, "wallet_url": wallet_url}
    return render(request, "lender/proof.html", context)


@router.get("/{transaction_id}/qr.svg")
def proof_qr(
    request: Request, me: Me, transaction_id: Annotated[str, Path(pattern=_TRANSACTION)]
) -> Response:
    """The wallet's URL as a QR code (SVG), drawn here."""
    _, _, wallet_url = _asked(request, me, transaction_id)
    return qr_svg(wallet_url, scale=4)


AREA = Area(router)
