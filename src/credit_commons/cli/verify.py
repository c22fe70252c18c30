"""``commons verify …``: the verifier (docs/verifier.md).

The OpenID4VP commands — ``request``, ``status``, ``decision`` — are in
:mod:`credit_commons.cli.verify_oid4vp`; ``commons verify trust …`` (the trust bundle,
pinned bundles) and ``commons verify policy …`` (verifiers' policies) in
:mod:`credit_commons.cli.verify_trust`.
"""

from __future__ import annotations

from credit_commons.cli import verify_oid4vp, verify_trust
from credit_commons.cli.support import group

__all__ = ["app"]

app = group("verify", "The verifier: OpenID4VP requests and decisions, trust bundle, policies.")
app.command("request")(verify_oid4vp.request)
app.command("status")(verify_oid4vp.status)
app.command("decision")(verify_oid4vp.decision)
app.add_typer(verify_trust.trust_app, name="trust")
app.add_typer(verify_trust.policy_app, name="policy")
