"""``commons verify request|status|decision``: a verifier's OpenID4VP transactions, through
the platform's HTTP API as a lender client (:class:`credit_commons.client.Lender`;
docs/verifier.md, "Running a verifier").

The client settings are the lender's (``COMMONS_LENDER_URL``, ``COMMONS_LENDER_CLIENT_ID``,
``COMMONS_LENDER_KEY_FILE``, and for mutual TLS ``COMMONS_LENDER_TLS_CERT``/``_KEY`` and
``COMMONS_LENDER_CA_FILE``): the client is ``commons lender``'s own (``lender_client``).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from credit_commons.cli.lender import ClientIdOption, KeyFileOption, UrlOption, lender_client
from credit_commons.cli.support import JsonOption, emit, read_json_file
from credit_commons.core.errors import ValidationError

__all__ = ["decision", "request", "status"]


class Prefix(StrEnum):
    """The client identifier prefixes a request can be made with."""

    DECENTRALIZED_IDENTIFIER = "decentralized_identifier"
    REDIRECT_URI = "redirect_uri"


class Mode(StrEnum):
    """The response modes a request can ask for."""

    DIRECT_POST = "direct_post"
    DIRECT_POST_JWT = "direct_post.jwt"


def request(
    dcql: Annotated[
        Path, typer.Option("--dcql", help="The DCQL query, a JSON file (- for stdin).")
    ],
    url: UrlOption,
    client_id: ClientIdOption = None,
    key_file: KeyFileOption = Path("lender-key.json"),
    policy: Annotated[
        str | None, typer.Option("--policy", help="The policy to judge the response under.")
    ] = None,
    purpose: Annotated[
        str | None, typer.Option("--purpose", help="The purpose the request declares.")
    ] = None,
    prefix: Annotated[
        Prefix | None,
        typer.Option(
            "--prefix",
            help="decentralized_identifier: the platform's did:web signs the request, passed "
            "by reference; redirect_uri: unsigned, by value.  Default: the platform's choice, "
            "decentralized_identifier when its public URL carries a did:web (https, a domain "
            "name), else redirect_uri.",
            show_default=False,
        ),
    ] = None,
    mode: Annotated[
        Mode, typer.Option("--mode", help="direct_post, or direct_post.jwt (encrypted).")
    ] = Mode.DIRECT_POST,
    redirect_uri: Annotated[
        str | None,
        typer.Option("--redirect-uri", help="Where the wallet is sent with the response code."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Make an OpenID4VP presentation request; prints the wallet URL."""
    query = read_json_file(dcql, "the DCQL query")
    if not isinstance(query, dict):
        raise ValidationError("the DCQL query must be a JSON object")
    with lender_client(url, client_id, key_file) as verifier:
        made = verifier.presentation_request(
            query,
            policy_id=policy,
            purpose=purpose,
            client_id_prefix=prefix.value if prefix is not None else None,
            response_mode=mode.value,
            redirect_uri=redirect_uri,
        )
    emit(as_json, made.model_dump(mode="json"), f"{made.id}\n{made.wallet_url}")


def status(
    transaction_id: Annotated[str, typer.Argument(help="The request's id (vpt_…).")],
    url: UrlOption,
    client_id: ClientIdOption = None,
    key_file: KeyFileOption = Path("lender-key.json"),
    as_json: JsonOption = False,
) -> None:
    """A request's status, with the decision and, for a denial, its precise reason."""
    with lender_client(url, client_id, key_file) as verifier:
        found = verifier.presentation_status(transaction_id)
    text = f"{found.state} {found.decision or ''} {found.reason or ''}".strip()
    emit(as_json, found.model_dump(mode="json"), text)


def decision(
    transaction_id: Annotated[str, typer.Argument(help="The request's id (vpt_…).")],
    code: Annotated[
        str, typer.Option("--code", help="The response code the wallet was redirected with.")
    ],
    url: UrlOption,
    client_id: ClientIdOption = None,
    key_file: KeyFileOption = Path("lender-key.json"),
    as_json: JsonOption = False,
) -> None:
    """The accepted decision with the disclosed claims (once, for the response code)."""
    with lender_client(url, client_id, key_file) as verifier:
        found = verifier.presentation_decision(transaction_id, code)
    lines = [f"{c.query_id}: {c.vct} from {c.issuer}" for c in found.credentials]
    emit(as_json, found.model_dump(mode="json"), "\n".join([found.decision, *lines]))
