"""This platform's extension of OpenID4VP 1.0 §5.1 for zero-knowledge predicates, pure
(docs/zk.md "Asking for a predicate in OpenID4VP"): a request's ``zk_predicates``."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictStr

__all__ = ["ZkPredicateRequest"]


class ZkPredicateRequest(BaseModel):
    """A zero-knowledge predicate a request asks for (this platform's extension of §5.1,
    docs/zk.md "Asking for a predicate in OpenID4VP"): its ``id`` (the key of its proof in
    the response's ``zk_proofs``), the registry ``statement``, the DCQL
    ``credential_query_id`` whose credential holds the commitment, and the statement's
    ``params`` (an integer, or a list of strings for a set)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    statement: Annotated[StrictStr, Field(pattern=r"^[a-z][a-z0-9_]{2,63}$")]
    credential_query_id: Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    params: dict[
        Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")],
        Annotated[int, Field(strict=True, ge=0, lt=2**64)]
        | Annotated[
            tuple[Annotated[StrictStr, Field(min_length=1, max_length=128)], ...],
            Field(min_length=1, max_length=256),
        ],
    ] = {}
