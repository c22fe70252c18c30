"""The console's share of a data-subject erasure: the subject's sessions and sign-in codes.

``privacy/erasure.py`` composes an erasure from each domain's own "forget"; privacy sits
below the console, so the console adds its share on the runtime it is set up on
(:func:`install_erasure`: the app does it in ``install_console``, the CLI for each runtime
it builds).  An erased borrower is signed out of every browser at once, and a code sent to
them before can no longer be used.
"""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.orm import Session

from credit_commons.privacy.erasure import add_erasure_share
from credit_commons.runtime import Runtime
from credit_commons.web.borrower_models import SignInCodeRow
from credit_commons.web.models import WebSessionRow

__all__ = ["forget_subject", "install_erasure"]


def forget_subject(session: Session, token: str) -> int:
    """Delete every console session and sign-in code of the identity ``token``; how many
    rows went."""
    gone = 0
    for table in (WebSessionRow, SignInCodeRow):
        result = session.execute(delete(table).where(table.subject == token))
        gone += int(getattr(result, "rowcount", 0) or 0)
    return gone


def install_erasure(rt: Runtime) -> None:
    """Make every erasure on ``rt`` forget the subject's console sessions and codes."""
    add_erasure_share(rt, "web", forget_subject)
