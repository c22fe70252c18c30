"""``commons lender …``: a lender's path through the platform, one command each, built on
:class:`credit_commons.client.Lender` (docs/lenders.md).

Settings come from options or ``COMMONS_LENDER_*`` variables: the platform's URL
(``COMMONS_LENDER_URL``, its public URL), the client id the administrator's approval names
(``COMMONS_LENDER_CLIENT_ID``), the key file (``COMMONS_LENDER_KEY_FILE``), and for
verification the pinned log key (``COMMONS_LENDER_LOG_KEY``), witness keys and trusted
issuers; for mutual TLS the client certificate and key (``COMMONS_LENDER_TLS_CERT``,
``COMMONS_LENDER_TLS_KEY``) and the platform's CA (``COMMONS_LENDER_CA_FILE``).
``commons admin lender approve`` is the administrator's side: it registers a printed
registration request on the platform's database.
"""

from __future__ import annotations

import json
import os
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from credit_commons.cli.support import (
    JsonOption,
    KeyTypeChoice,
    emit,
    group,
    read_json_file,
    read_text_file,
)
from credit_commons.client import Consent, Lender, LenderKey, Retrieval
from credit_commons.client.http import client_tls
from credit_commons.client.lender import registration_request
from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import ValidationError
from credit_commons.core.files import path_error, write_private

__all__ = ["app", "lender_client"]

app = group(
    "lender", "A lender's path: key, registration, token, consent, retrieval, verification."
)
consent_app = typer.Typer(help="Consent requests and decisions.", no_args_is_help=True)
webhook_app = typer.Typer(help="Webhook notices from the platform.", no_args_is_help=True)
key_app = typer.Typer(help="The lender's client key.", no_args_is_help=True)
app.add_typer(key_app, name="key")
app.add_typer(consent_app, name="consent")
app.add_typer(webhook_app, name="webhook")

UrlOption = Annotated[
    str,
    typer.Option(
        "--url", envvar="COMMONS_LENDER_URL", help="The platform's public URL.", show_default=False
    ),
]
ClientIdOption = Annotated[
    str | None,
    typer.Option("--client-id", envvar="COMMONS_LENDER_CLIENT_ID", help="The client id (lnd_…)."),
]
KeyFileOption = Annotated[
    Path,
    typer.Option(
        "--key-file",
        envvar="COMMONS_LENDER_KEY_FILE",
        help="The client key file.",
        readable=False,
    ),
]
LogKeyOption = Annotated[
    str | None,
    typer.Option(
        "--log-key",
        envvar="COMMONS_LENDER_LOG_KEY",
        help="The log's verifier key, pinned (see `commons lender log-key`).",
    ),
]
WitnessOption = Annotated[
    list[str] | None,
    typer.Option(
        "--witness-key",
        envvar="COMMONS_LENDER_WITNESS_KEYS",
        help="A witness verifier key whose cosignature receipts need (repeat).",
    ),
]
QuorumOption = Annotated[
    int | None,
    typer.Option("--quorum", min=1, help="Witnesses required (default: all given)."),
]
TrustedOption = Annotated[
    list[str] | None,
    typer.Option(
        "--trusted-issuer",
        envvar="COMMONS_LENDER_TRUSTED_ISSUERS",
        help="Another issuer whose credentials to accept (repeat).",
    ),
]
BundleKeyOption = Annotated[
    str | None,
    typer.Option(
        "--trust-bundle-key",
        envvar="COMMONS_LENDER_TRUST_BUNDLE_KEY",
        help="The platform's trust bundle key (did:key or JWK, `commons verify trust key`): "
        "judge issuers by its bundle.",
    ),
]
MarkOption = Annotated[
    list[str] | None,
    typer.Option("--require-mark", help="A trust mark the bundle must give the issuer (repeat)."),
]
DEFAULT_KEY_FILE = Path("lender-key.json")
_TLS_VARIABLES = ("COMMONS_LENDER_TLS_CERT", "COMMONS_LENDER_TLS_KEY", "COMMONS_LENDER_CA_FILE")


def _tls() -> ssl.SSLContext | None:
    # Mutual TLS (certificate-bound tokens) from the environment: the client certificate and
    # its key (0600), and a CA file for the platform's certificate; None: the defaults.
    cert, key, ca = (os.environ.get(name) or None for name in _TLS_VARIABLES)
    if cert is None and key is None and ca is None:
        return None
    return client_tls(
        Path(cert) if cert else None, Path(key) if key else None, Path(ca) if ca else None
    )


@contextmanager
def lender_client(
    url: str,
    client_id: str | None = None,
    key_file: Path | None = None,
    *,
    log_key: str | None = None,
    witness_keys: list[str] | None = None,
    quorum: int | None = None,
    trusted: list[str] | None = None,
    bundle_key: str | None = None,
    marks: list[str] | None = None,
) -> Iterator[Lender]:
    """The lender's client of the platform at ``url``, closed on exit: with the key in
    ``key_file`` (when given) and the mutual TLS settings of the environment
    (``COMMONS_LENDER_TLS_CERT``/``_KEY``, ``COMMONS_LENDER_CA_FILE``), as every command
    that calls the platform as the lender builds it (``commons lender``, ``commons verify
    request|status|decision``).  Raises what ``LenderKey.load`` and ``client_tls`` raise
    (an unreadable key file, certificate or CA file)."""
    key = LenderKey.load(key_file) if key_file is not None else None
    lender = Lender(
        url,
        tls=_tls(),
        client_id=client_id,
        key=key,
        log_key=log_key,
        witness_keys=witness_keys or [],
        quorum=quorum,
        trusted_issuers=trusted or [],
        bundle_key=bundle_key,
        required_marks=marks or [],
    )
    try:
        yield lender
    finally:
        lender.close()


def _write_or_print(out: Path | None, data: object, as_json: bool, text: str) -> None:
    # Files a lender keeps (a retrieval holds personal data) are written 0600.
    if out is None:
        emit(as_json, data, text)
        return
    try:
        write_private(out, json.dumps(data, indent=2, sort_keys=True).encode() + b"\n")
    except OSError as e:
        raise path_error(e, "write") from e
    emit(as_json, {"written": str(out)}, f"written to {out}")


# -- key and registration ------------------------------------------------------------------


@key_app.command("create")
def key_create(
    key_file: KeyFileOption = DEFAULT_KEY_FILE,
    key_type: Annotated[
        KeyTypeChoice, typer.Option("--type", help="Key type.")
    ] = KeyTypeChoice.ED25519,
    as_json: JsonOption = False,
) -> None:
    """Create the client key (mode 0600; an existing file is never overwritten)."""
    made = LenderKey.create(key_file, key_type.key_type)
    emit(
        as_json,
        {"key_file": str(key_file), "kid": made.kid, "public_jwk": made.public_jwk()},
        f"created {key_file} ({key_type.value}), kid {made.kid}",
    )


@app.command("registration")
def registration(
    name: Annotated[str, typer.Option("--name", help="The lender's name.")],
    purpose: Annotated[
        list[str], typer.Option("--purpose", help="A purpose it may ask consent for (repeat).")
    ],
    webhook_url: Annotated[
        str | None, typer.Option("--webhook-url", help="Where to POST consent notices (https).")
    ] = None,
    key_file: KeyFileOption = DEFAULT_KEY_FILE,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write it here.", readable=False)
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Print the registration request an administrator approves (public key only)."""
    body = registration_request(LenderKey.load(key_file), name, purpose, webhook_url)
    _write_or_print(out, body, as_json, json.dumps(body, indent=2, sort_keys=True))


# -- tokens, discovery, log key ---------------------------------------------------------------


@app.command("token")
def token(
    url: UrlOption,
    client_id: ClientIdOption = None,
    key_file: KeyFileOption = DEFAULT_KEY_FILE,
    scope: Annotated[
        str | None, typer.Option("--scope", help="Space-separated scopes (default: all).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Get an access token (client credentials, private_key_jwt) and print it."""
    with lender_client(url, client_id, key_file) as lender:
        got = lender.token(scope)
    expires_in = int(got.expires_at - time.time())
    emit(
        as_json,
        {"access_token": got.access_token, "expires_in": expires_in, "scope": got.scope},
        got.access_token,
    )


@app.command("tiers")
def tiers(
    url: UrlOption,
    client_id: ClientIdOption = None,
    key_file: KeyFileOption = DEFAULT_KEY_FILE,
    tier: Annotated[str | None, typer.Option("--tier", help="Only this credit tier.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=200)] = 50,
    as_json: JsonOption = False,
) -> None:
    """Discover opted-in borrowers by tier: public attributes and a borrower reference."""
    with lender_client(url, client_id, key_file) as lender:
        found = lender.tiers(tier, limit)
    rows = [vars(entry) for entry in found]
    emit(
        as_json,
        rows,
        "\n".join(
            f"{r['credit_tier']}  {r['income_bracket']:<8} {r['debt_ratio_bracket']:<8} "
            f"{r['borrower_ref']}"
            for r in rows
        )
        or "no borrowers",
    )


@app.command("log-key")
def log_key(url: UrlOption, as_json: JsonOption = False) -> None:
    """Print the log's origin and verifier key, to pin (COMMONS_LENDER_LOG_KEY) after
    checking it against what the operator publishes."""
    with lender_client(url) as lender:
        found = lender.log_identity()
    emit(as_json, found.model_dump(mode="json"), found.vkey)


# -- consent -----------------------------------------------------------------------------------


def _consent_json(consent: Consent) -> JsonObject:
    # What `commons lender consent …` prints with --json.
    return {
        "consent_id": consent.consent_id,
        "status": consent.status,
        "purpose": consent.purpose,
        "consent_expiry": consent.consent_expiry,
        "scopes": consent.scopes,
        "artefact": consent.artefact,
    }


@consent_app.command("request")
def consent_request(
    url: UrlOption,
    borrower: Annotated[
        str, typer.Option("--borrower", help="A borrower reference (bref_…) or identity token.")
    ],
    purpose: Annotated[str, typer.Option("--purpose", help="The purpose code.")],
    claim: Annotated[
        list[str], typer.Option("--claim", help="A claim path, e.g. /income_bracket (repeat).")
    ],
    days: Annotated[int, typer.Option("--days", min=1, max=366, help="How long it lasts.")],
    template: Annotated[
        str, typer.Option("--template", help="See `commons consent templates`.")
    ] = "loan_underwriting",
    credential_type: Annotated[
        str, typer.Option("--type", help="The credential type.")
    ] = "CreditReadinessCredential",
    mode: Annotated[str, typer.Option("--mode", help="VIEW or STORE.")] = "VIEW",
    client_id: ClientIdOption = None,
    key_file: KeyFileOption = DEFAULT_KEY_FILE,
    as_json: JsonOption = False,
) -> None:
    """Ask a borrower for consent (from a template, with purpose, claims and duration)."""
    with lender_client(url, client_id, key_file) as lender:
        made = lender.request_consent(
            borrower=borrower,
            template=template,
            purpose=purpose,
            claims=claim,
            duration=timedelta(days=days),
            credential_type=credential_type,
            mode=mode,
        )
    emit(as_json, _consent_json(made), f"{made.consent_id} {made.status}")


@consent_app.command("wait")
def consent_wait(
    url: UrlOption,
    consent_id: Annotated[str, typer.Argument(help="The consent id (cns_…).")],
    timeout: Annotated[
        float, typer.Option("--timeout", min=0, help="Seconds to wait at most.")
    ] = 300.0,
    client_id: ClientIdOption = None,
    key_file: KeyFileOption = DEFAULT_KEY_FILE,
    as_json: JsonOption = False,
) -> None:
    """Wait for the borrower's decision (polling with backoff); a granted consent's signed
    artefact is verified.  Still pending at the end: lender.consent_pending (exit 9)."""
    with lender_client(url, client_id, key_file) as lender:
        decided = lender.wait_for_decision(consent_id, timeout=timeout)
    emit(as_json, _consent_json(decided), f"{decided.consent_id} {decided.status}")


@webhook_app.command("verify")
def webhook_verify(
    url: UrlOption,
    file: Annotated[Path, typer.Argument(help="The webhook body ('-' for stdin).", readable=False)],
    jwks: Annotated[
        Path | None,
        typer.Option(
            "--jwks", help="The platform's consent JWKS (default: fetched).", readable=False
        ),
    ] = None,
    client_id: ClientIdOption = None,
    as_json: JsonOption = False,
) -> None:
    """Verify a webhook notice: signed by the platform, for this lender."""
    body = read_text_file(file, "the webhook body")
    keys = read_json_file(jwks, "the JWKS file") if jwks is not None else None
    with lender_client(url, client_id) as lender:
        notice = lender.verify_webhook(body, keys)
    emit(
        as_json,
        {"valid": True, **notice.as_json()},
        f"valid: {notice.consent_id} is {notice.status} (event {notice.event_id})",
    )


# -- retrieval and verification --------------------------------------------------------------


@app.command("retrieve")
def retrieve(
    url: UrlOption,
    consent_id: Annotated[str, typer.Argument(help="The consent id (cns_…).")],
    credential_type: Annotated[
        str | None, typer.Option("--type", help="The credential type (default: the only one).")
    ] = None,
    claim: Annotated[
        list[str] | None, typer.Option("--claim", help="Only this claim path (repeat).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the retrieval here (mode 0600).", readable=False),
    ] = None,
    client_id: ClientIdOption = None,
    key_file: KeyFileOption = DEFAULT_KEY_FILE,
    as_json: JsonOption = False,
) -> None:
    """Retrieve the credential a consent grants (only its granted claims)."""
    with lender_client(url, client_id, key_file) as lender:
        got = lender.retrieve(consent_id, credential_type=credential_type, claims=claim)
    _write_or_print(
        out,
        got.raw,
        as_json,
        f"{got.type} under {got.consent_id}: {', '.join(got.disclosed)} "
        f"(access {got.access_event_id})",
    )


@app.command("verify")
def verify(
    url: UrlOption,
    file: Annotated[
        Path,
        typer.Argument(
            help="A retrieval saved by `retrieve --out` ('-' for stdin).", readable=False
        ),
    ],
    receipt_timeout: Annotated[
        float,
        typer.Option("--receipt-timeout", min=0, help="Seconds to wait for a checkpoint."),
    ] = 60.0,
    log_key_value: LogKeyOption = None,
    witness_key: WitnessOption = None,
    quorum: QuorumOption = None,
    trusted_issuer: TrustedOption = None,
    trust_bundle_key: BundleKeyOption = None,
    require_mark: MarkOption = None,
    as_json: JsonOption = False,
) -> None:
    """Verify a retrieval: issuer signature, Disclosures, status list, the issuer against
    the platform's trust bundle (with --trust-bundle-key), and the log receipt of the
    access against the pinned log key."""

    try:
        retrieval = Retrieval.from_json(read_json_file(file, "the retrieval file"))
    except (KeyError, TypeError) as e:
        raise ValidationError("the retrieval file is not a retrieval") from e
    with lender_client(
        url,
        log_key=log_key_value,
        witness_keys=witness_key,
        quorum=quorum,
        trusted=trusted_issuer,
        bundle_key=trust_bundle_key,
        marks=require_mark,
    ) as lender:
        verified = lender.verify(retrieval, receipt_timeout=receipt_timeout)
    emit(
        as_json,
        verified.as_json(),
        f"valid: {verified.vct} from {verified.issuer}, status {verified.status}; access "
        f"{verified.access_event_id} is leaf {verified.leaf_index} of {verified.log_origin} "
        f"at size {verified.log_size}",
    )
