"""``commons verify …``: the verifier (docs/verifier.md).

``commons verify trust …`` (the trust bundle, pinned bundles) and ``commons verify policy
…`` (verifiers' policies) are in :mod:`credit_commons.cli.verify_trust`; the OpenID4VP
commands join this group beside them.
"""

from __future__ import annotations

from credit_commons.cli import verify_trust
from credit_commons.cli.support import group

__all__ = ["app"]

app = group("verify", "The verifier: trust bundle, pinned bundles, policies.")
app.add_typer(verify_trust.trust_app, name="trust")
app.add_typer(verify_trust.policy_app, name="policy")
