"""The public log explorer, ``/audit``: anyone, no sign-in (docs/console.md, "Public log").

- ``/audit``: the latest checkpoint — origin, size, root hash, time, the signed note as
  text and each witness's cosignature, checked with the witness keys the platform knows;
- ``/audit/entry?index=N``: one entry as the public log holds it (event type, time, id and
  digest: no names, numbers or pseudonyms) and its proof in the latest checkpoint;
- ``/audit/receipt?event=evt_…``, or a receipt pasted in its form: every check of the
  receipt, in plain words;
- ``/audit/checkpoint``: whether today's checkpoint extends one kept earlier, pasted.

Nothing here changes anything.  Lookups by a position or an id are GET forms (no CSRF
token); pasted text is a POST form (with the CSRF token every console POST carries),
because a receipt in a URL would pass the platform's request-line limit
(``COMMONS_MAX_HEADER_LINE_BYTES``, 431) before any page could say why.  Pasted text is
refused past :data:`MAX_PASTE` characters, with a field error; the ``web`` rate-limit group
covers every page.  The
checks themselves are :mod:`credit_commons.web.audit_checks` (the ledger's functions).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, NamedTuple

from fastapi import Form, Request
from fastapi.responses import HTMLResponse

from credit_commons.core.encoding import JsonObject, json_nesting_exceeds
from credit_commons.runtime import Runtime
from credit_commons.web import audit_checks, audit_receipts
from credit_commons.web.audit_checks import Check
from credit_commons.web.i18n import N_, format_number
from credit_commons.web.render import language, render
from credit_commons.web.routing import Area, page_router

__all__ = ["AREA", "MAX_PASTE", "router"]

router = page_router(prefix="/audit")

MAX_PASTE = 8 * 1024
"""The most characters a pasted receipt or checkpoint may have (a real one is 1–3 KB)."""
_MAX_INDEX = 2**63 - 1
_EVENT_ID = re.compile(r"evt_[0-9A-Z]{26}")
_RECEIPT_FORMAT = "credit-commons-receipt/v1"

Errors = dict[str, tuple[str, Mapping[str, object]]]
"""Field name to (msgid, its placeholders): translated where shown."""


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _numbers(request: Request, values: Mapping[str, object]) -> dict[str, object]:
    # Sizes and positions written the way the visitor's language writes numbers.
    lang = language(request)
    return {
        k: format_number(v, lang) if isinstance(v, int) and not isinstance(v, bool) else v
        for k, v in values.items()
    }


def _shown(request: Request, check: Check) -> Check:
    return Check(check.title, check.status, check.detail, _numbers(request, check.values))


def _pasted(value: str) -> str:
    # A textarea sends CRLF line breaks; a signed note's lines end in LF, and the note in
    # one final newline (trailing blank lines are not part of it).
    return value.replace("\r\n", "\n").replace("\r", "\n").strip() + "\n"


@router.get("")
def overview(request: Request) -> HTMLResponse:
    """The latest checkpoint and its witnesses."""
    latest = audit_checks.latest_checkpoint(_runtime(request))
    return render(request, "audit/index.html", {"latest": latest, "section": "latest"})


@router.get("/entry")
def entry(request: Request, index: str | None = None) -> HTMLResponse:
    """Look up the entry at position ``index`` of the public log."""
    errors: Errors = {}
    found: audit_checks.EntryView | None = None
    size: int | None = None
    text = (index or "").strip()
    if index is not None:
        if not (text.isascii() and text.isdigit() and len(text) <= 19 and int(text) <= _MAX_INDEX):
            errors["index"] = (N_("Write the position as a whole number: 0, 1, 2…"), {})
        else:
            looked_up = audit_checks.look_up_entry(_runtime(request), int(text))
            if isinstance(looked_up, int):
                size = looked_up
                errors["index"] = (
                    N_("There is no entry at this position yet: the log holds %(size)s entries."),
                    _numbers(request, {"size": size}),
                )
            else:
                found = looked_up
    context = {
        "section": "entry",
        "index": text[:40],
        "errors": errors,
        "found": found,
        "check": _shown(request, found.check) if found else None,
    }
    return render(request, "audit/entry.html", context, status=400 if errors else 200)


def _receipt_problem(document: Any) -> tuple[str, Mapping[str, object]] | None:
    # The shape verify_any_receipt needs, said in plain words; the proofs are its job.
    if not isinstance(document, dict):
        return N_("A receipt is a JSON object: it starts with { and ends with }."), {}
    if document.get("format") != _RECEIPT_FORMAT:
        return N_('This is not a Credit Commons receipt: its "format" is not %(format)s.'), {
            "format": _RECEIPT_FORMAT
        }
    if not isinstance(document.get("entry"), str):
        return N_('The receipt has no "entry" (the log entry, as text).'), {}
    if "checkpoint" in document:
        if not isinstance(document["checkpoint"], str):
            return N_('The receipt\'s "checkpoint" must be the signed checkpoint, as text.'), {}
        index, proof = document.get("index"), document.get("inclusion_proof")
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            return N_('The receipt\'s "index" must be a whole number, 0 or more.'), {}
        if not isinstance(proof, list) or not all(isinstance(h, str) for h in proof):
            return N_('The receipt\'s "inclusion_proof" must be a list of hashes.'), {}
    elif not isinstance(document.get("signed_entry"), str):
        return N_('The receipt has neither a "checkpoint" nor a "signed_entry".'), {}
    return None


_NOT_JSON_AT = N_("This is not a receipt: it is not valid JSON (line %(line)s, column %(column)s).")


class _Parsed(NamedTuple):
    # A pasted receipt: the parsed document, whose shape is checked (its proofs are
    # check_receipt's), or None and the problem in plain words (msgid, placeholders).
    document: JsonObject | None
    problem: tuple[str, Mapping[str, object]]


_MAX_DEPTH = 16
"""A receipt nests three levels; deeper JSON is refused before parsing, so the answer does
not depend on how deep the process lets the parser recurse (its recursion limit)."""


def _parse_receipt(text: str) -> _Parsed:
    if json_nesting_exceeds(text, _MAX_DEPTH):
        return _Parsed(None, (N_("This is not a receipt: it is not valid JSON."), {}))
    try:
        document = json.loads(text)
        json.dumps(document, ensure_ascii=False).encode("utf-8")  # no lone surrogate
    except json.JSONDecodeError as e:
        return _Parsed(None, (_NOT_JSON_AT, {"line": e.lineno, "column": e.colno}))
    except (ValueError, RecursionError):
        # Nesting deeper than Python recurses, a number of thousands of digits, text
        # that is no Unicode: JSON nobody's receipt is.
        return _Parsed(None, (N_("This is not a receipt: it is not valid JSON."), {}))
    problem = _receipt_problem(document)
    if problem is not None:
        return _Parsed(None, problem)
    return _Parsed(document, ("", {}))


def _receipt_page(
    request: Request, pasted: str, event_id: str, errors: Errors | None = None
) -> HTMLResponse:
    errors = dict(errors or {})
    document: JsonObject | None = None
    if pasted:
        if len(pasted) > MAX_PASTE:
            errors["receipt"] = (
                N_("This is too long for a receipt: at most %(max)s characters."),
                _numbers(request, {"max": MAX_PASTE}),
            )
        else:
            document, problem = _parse_receipt(pasted)
            if document is None:
                errors["receipt"] = (problem[0], _numbers(request, problem[1]))
    elif event_id:
        if not _EVENT_ID.fullmatch(event_id):
            errors["event"] = (
                N_("An event id is evt_ followed by 26 capital letters and digits."),
                {},
            )
        else:
            document = audit_receipts.public_receipt(_runtime(request), event_id)
            if document is None:
                errors["event"] = (
                    N_("No checkpoint covers this event yet, or there is no such event."),
                    {},
                )
    result = audit_receipts.check_receipt(_runtime(request), document) if document else None
    context = {
        "section": "receipt",
        "receipt_text": pasted[: MAX_PASTE + 1],
        "event_id": event_id[:60],
        "errors": errors,
        "result": result,
        "checks": [_shown(request, c) for c in result.checks] if result else [],
        "from_event": bool(event_id),
        "document": json.dumps(document, indent=2, sort_keys=True) if document else "",
    }
    return render(request, "audit/receipt.html", context, status=400 if errors else 200)


@router.get("/receipt")
def receipt_by_event(request: Request, event: str | None = None) -> HTMLResponse:
    """The receipt forms, or the checks of the public receipt of event ``event``."""
    event_id = (event or "").strip()
    if event is not None and not event_id:
        return _receipt_page(request, "", "", {"event": (N_("Write the event id."), {})})
    return _receipt_page(request, "", event_id)


@router.post("/receipt")
def receipt_pasted(request: Request, receipt: Annotated[str, Form()] = "") -> HTMLResponse:
    """The checks of a pasted receipt (a POST: a receipt is longer than a URL may be)."""
    pasted = receipt.strip()
    if not pasted:
        return _receipt_page(request, "", "", {"receipt": (N_("Paste a receipt."), {})})
    return _receipt_page(request, pasted, "")


_MALFORMED = N_(
    "This is not a signed checkpoint. It needs the log's name, the size, the root hash, "
    "a blank line and the signature lines, as the log published them."
)


@router.get("/checkpoint")
def kept_checkpoint_form(request: Request) -> HTMLResponse:
    """The form for a kept checkpoint."""
    return _checkpoint_page(request, None)


@router.post("/checkpoint")
def kept_checkpoint(request: Request, checkpoint: Annotated[str, Form()] = "") -> HTMLResponse:
    """Check that today's checkpoint extends the pasted one (a POST: a cosigned note may be
    longer than a URL may be)."""
    return _checkpoint_page(request, checkpoint)


def _checkpoint_page(request: Request, checkpoint: str | None) -> HTMLResponse:
    errors: Errors = {}
    result: audit_checks.ExtensionResult | None = None
    pasted = (checkpoint or "").strip()
    if checkpoint is not None:
        if not pasted:
            errors["checkpoint"] = (N_("Paste a checkpoint you kept."), {})
        elif len(pasted) > MAX_PASTE:
            errors["checkpoint"] = (
                N_("This is too long for a checkpoint: at most %(max)s characters."),
                _numbers(request, {"max": MAX_PASTE}),
            )
        else:
            result = audit_checks.check_extension(_runtime(request), _pasted(pasted))
            if result.outcome == "malformed":
                errors["checkpoint"] = (_MALFORMED, {})
    context = {
        "section": "checkpoint",
        "checkpoint_text": pasted[: MAX_PASTE + 1],
        "errors": errors,
        "result": result,
        "origin": audit_checks.log_origin(_runtime(request)),
    }
    return render(request, "audit/checkpoint.html", context, status=400 if errors else 200)


AREA = Area(router)
