"""Issuing credentials from JSON lines, one committed transaction per batch (the CLI's
``commons issuer issue-batch``).

Each line is an :class:`~credit_commons.issuer.schemas.IssueItem`.  Lines are read, parsed and
issued ``batch`` at a time through :func:`credentials.issue_credentials`, each batch in its
own transaction; a batch's results are written only after it commits, so the results
written are exactly the committed credentials.  On an error the failing batch is rolled
back, and the error names the failing ``line`` and ``committed_through`` (the last line
whose credential was committed): rerunning with ``skip=committed_through`` resumes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from itertools import islice

import pydantic

from credit_commons.core.db import transaction
from credit_commons.core.errors import CommonsError, ValidationError
from credit_commons.identity import Principal
from credit_commons.issuer import credentials
from credit_commons.issuer.build_pool import BuildPool
from credit_commons.issuer.schemas import MAX_BATCH, IssueItem
from credit_commons.runtime import Runtime

__all__ = ["issue_lines"]


def _parse(number: int, text: str) -> IssueItem:
    try:
        return IssueItem.model_validate_json(text)
    except pydantic.ValidationError as e:
        fields = [
            {"field": "/" + "/".join(str(p) for p in err["loc"]), "message": err["msg"]}
            for err in e.errors(include_url=False)
        ]
        raise ValidationError(
            f"line {number} is not an issuance request", extra={"errors": fields, "line": number}
        ) from e


def _numbered(lines: Iterable[str], skip: int) -> Iterator[tuple[int, str]]:
    # Line numbers count every line of the file (from 1); blank lines are skipped.
    for number, text in enumerate(lines, start=1):
        if number > skip and text.strip():
            yield number, text


def issue_lines(
    rt: Runtime,
    principal: Principal,
    lines: Iterable[str],
    *,
    batch: int = 500,
    skip: int = 0,
    write: Callable[[str], object],
    progress: Callable[[str], object] = lambda _: None,
    builders: BuildPool | None = None,
) -> int:
    """Issue one credential per JSON line; returns how many were issued.

    ``write`` receives one JSON text per issued credential (``line`` plus what
    :func:`credentials.issue_credentials` returns), after its batch commits.  Raises
    :class:`ValidationError` for a malformed line or ``batch`` out of 1..1000, and whatever
    issuance raises; either way the error's ``line`` is the failing line and
    ``committed_through`` the last committed one.
    """
    if not 1 <= batch <= MAX_BATCH:
        raise ValidationError(f"batch must be between 1 and {MAX_BATCH}")
    numbered = _numbered(lines, skip)
    committed_through, issued = skip, 0
    while chunk := list(islice(numbered, batch)):
        try:
            items = [(number, _parse(number, text)) for number, text in chunk]
            with transaction(rt.sessions) as session:
                results = credentials.issue_credentials(
                    session,
                    rt,
                    principal,
                    [item.request() for _, item in items],
                    builders=builders,
                )
        except CommonsError as e:
            position = e.extra.pop("item", None)
            if isinstance(position, int) and 0 <= position < len(chunk):
                e.extra["line"] = chunk[position][0]
            elif "line" not in e.extra and len(chunk) == 1:
                e.extra["line"] = chunk[0][0]
            e.extra["committed_through"] = committed_through
            progress(
                f"# stopped: lines up to {committed_through} are committed; "
                f"rerun with --skip {committed_through} after fixing the error"
            )
            raise
        for (number, _), result in zip(items, results, strict=True):
            write(json.dumps({"line": number, **result.model_dump(mode="json")}, sort_keys=True))
        committed_through, issued = chunk[-1][0], issued + len(chunk)
        progress(f"# committed {issued:,} credentials (through line {committed_through})")
    return issued
