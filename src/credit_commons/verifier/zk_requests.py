"""The zero-knowledge predicates a verifier asks for, checked as its request is made
(docs/zk.md "Asking for a predicate in OpenID4VP"): each names a statement of the registry
whose setup this platform accepts, a credential query of the request's DCQL, and exactly the
statement's parameters, each within its bounds."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy.orm import Session

from credit_commons.core.encoding import JsonObject
from credit_commons.core.errors import CommonsError, ValidationError
from credit_commons.formats.oid4vp import ZkPredicateRequest
from credit_commons.runtime import Runtime
from credit_commons.zk import SetupNotAllowed, load_statement

__all__ = ["check_predicates"]


def check_predicates(
    session: Session, rt: Runtime, asked: Sequence[ZkPredicateRequest], queries: Collection[str]
) -> list[JsonObject]:
    """The predicates as stored with the transaction (sorted by id), each checked against
    its statement (``queries``: the DCQL credential query ids).

    Raises :class:`ValidationError` naming the predicate: a duplicate id, an unknown query,
    a statement the registry cannot load here (unknown, an artefact that does not hash as
    registered), or parameters that are not the statement's; ``SetupNotAllowed`` naming it
    for a ``dev`` statement in production.
    """
    stored: list[JsonObject] = []
    for predicate in sorted(asked, key=lambda p: p.id):
        where = f"zk_predicates[{predicate.id}]"
        if any(p["id"] == predicate.id for p in stored):
            raise ValidationError(f"{where}: predicate ids are unique")
        if predicate.credential_query_id not in queries:
            raise ValidationError(f"{where}: credential_query_id is not a query of dcql_query")
        try:
            statement = load_statement(session, rt, predicate.statement).statement
        except SetupNotAllowed as e:  # its own code: the operator must register a ceremony's
            raise SetupNotAllowed(f"{where}: statement {predicate.statement}: {e.detail}") from e
        except CommonsError as e:
            raise ValidationError(f"{where}: statement {predicate.statement}: {e.detail}") from e
        if set(predicate.params) != set(statement.params):
            names = ", ".join(sorted(statement.params)) or "none"
            raise ValidationError(f"{where}: the statement's params are {names}")
        for name, value in predicate.params.items():
            bounds = statement.params[name]
            if bounds.set_of is not None:
                if not isinstance(value, tuple) or len(value) > bounds.max_items:
                    raise ValidationError(
                        f"{where}: {name} is a list of at most {bounds.max_items}"
                    )
            elif not isinstance(value, int) or not bounds.min <= value <= bounds.max:
                raise ValidationError(
                    f"{where}: {name} is an integer in [{bounds.min}, {bounds.max}]"
                )
        stored.append(predicate.model_dump(mode="json"))
    return stored
