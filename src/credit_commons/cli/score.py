"""``commons score …``: reputation scores (docs/reputation.md "Score bundles").

``show`` prints a DID's cached score record in a context (or its whole bundle, ``--bundle``,
as ``GET /v1/scores`` serves it to a caller who is not the subject); ``verify`` checks a
bundle offline — no database, no network — and exits non-zero naming the first check that
failed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from credit_commons.cli.support import JsonOption, emit, group, read_json_file, unit
from credit_commons.ledger.identity import log_identity
from credit_commons.reputation import scores_service
from credit_commons.reputation.scores_bundle import verify_bundle

__all__ = ["app"]

app = group("score", "Reputation scores: cached records and offline-verifiable bundles.")


@app.command("show")
def score_show(
    ctx: typer.Context,
    did: Annotated[str, typer.Argument(help="The subject's did:key.")],
    context: Annotated[str, typer.Argument(help="The context, e.g. shg:savings.")],
    bundle: Annotated[
        bool, typer.Option("--bundle", help="Print the whole bundle (JSON) instead.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Show a DID's cached score record in a context."""
    with unit(ctx) as (rt, session):
        body = scores_service.score_bundle(
            session,
            rt,
            did=did,
            ctx=context,
            subject=not bundle,
            build_with=log_identity(rt).vkey,
        )
    if body is None:  # pragma: no cover - build_with assembles a missing bundle
        raise RuntimeError("no bundle")
    document = json.loads(body)
    if bundle:  # as a caller who is not the subject sees it: values as commitments
        typer.echo(json.dumps(document, indent=2, sort_keys=True))
        return
    record = document["record"]
    factors = record["factors"]
    text = "\n".join(
        [
            f"{record['did']} in {record['ctx']} as of {record['asOf']}",
            f"score {record['score']}, tier {record['tier']}, diversity {record['diversity']}"
            + (", collusion penalty applied" if record["collusionApplied"] else ""),
            "factors " + ", ".join(f"{k} {factors[k]}" for k in ("K", "A", "V", "R", "T")),
            f"rule set {record['ruleSet']['id']} v{record['ruleSet']['version']}, "
            f"{len(record['events'])} events, record hash {document['recordHash']}",
        ]
    )
    emit(as_json, {"record": record, "recordHash": document["recordHash"]}, text)


@app.command("verify")
def score_verify(
    file: Annotated[
        Path, typer.Argument(help="Score bundle JSON file ('-' for stdin).", readable=False)
    ],
    log_key: Annotated[
        str | None,
        typer.Option("--log-key", help="The log's verifier key (default: the bundle's own)."),
    ] = None,
    rules_jwks: Annotated[
        Path | None,
        typer.Option(
            "--rules-jwks",
            help="The rule-set registry's JWK Set file (default: the bundle's own).",
            readable=False,
        ),
    ] = None,
    scores_jwks: Annotated[
        Path | None,
        typer.Option(
            "--scores-jwks",
            help="The platform's score-statement JWK Set file (GET /v1/scores/jwks).",
            readable=False,
        ),
    ] = None,
    trust_bundle_keys: Annotated[
        bool,
        typer.Option(
            "--trust-bundle-keys",
            help="Use the bundle's own keys for what is not pinned (proves the bundle "
            "consistent, not that it comes from the platform, nor that no input was dropped).",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Verify a score bundle offline: the checkpoint's signature, each inclusion proof,
    each event's signature and CID, the rule set's signature and hash, the platform's
    score statement (the record's hash and exactly its inputs), then a recompute by the
    reference scorer from the bundle's inputs alone against the record's hash and visible
    fields.  The statement needs the platform's score-statement keys; without them the
    bundle is refused unless told to trust the bundle's own keys (consistency, not origin)."""
    document = read_json_file(file, "the bundle file")
    jwks = None if rules_jwks is None else read_json_file(rules_jwks, "the rule-set JWKS file")
    statement_jwks = (
        None if scores_jwks is None else read_json_file(scores_jwks, "the score-statement JWKS")
    )
    verified = verify_bundle(
        document,
        log_vkey=log_key,
        rules_jwks=jwks,
        scores_jwks=statement_jwks,
        trust_bundle_keys=trust_bundle_keys,
    )
    pinned = log_key is not None and rules_jwks is not None and scores_jwks is not None
    record = verified.record
    # A public bundle carries the score and tier as commitments: only the subject's opens them.
    shown = verified.values_checked
    data = {
        "valid": True,
        "did": record["did"],
        "ctx": record["ctx"],
        "asOf": record["asOf"],
        "score": record["score"] if shown else None,
        "tier": record["tier"] if shown else None,
        "recordHash": verified.record_hash,
        "checkpointSize": verified.checkpoint_size,
        "ruleSet": record["ruleSet"],
        "events": verified.events,
        "members": verified.members,
        "valuesChecked": verified.values_checked,
        "keysPinned": pinned,
    }
    text = (
        f"valid: {record['did']} in {record['ctx']} as of {record['asOf']}: "
        + (f"score {record['score']}, tier {record['tier']}" if shown else "score and tier hidden")
        + f" (recomputed from {verified.events} events "
        f"and {verified.members} memberships at checkpoint {verified.checkpoint_size})"
        + ("" if pinned else "; keys taken from the bundle itself, not pinned")
    )
    emit(as_json, data, text)
