"""What each route asks of its caller, as the surface registry records it (``surface.py``).

Routes authenticate in different ways — a dependency (``PrincipalDep``, ``LenderDep``,
``lender_for``), or inside the handler where it must share a thread hop or read the raw body
— so the registry cannot read every route's requirement off FastAPI's dependency graph.  The
requirement is declared here, by rules like the rate-limit groups' (``route_groups.py``):
the first rule whose methods and path-template pattern fit a route is its requirement.  A
route that no rule fits stops ``commons routes build`` (and the registry test), so a new
route is declared before it can ship; tests/unit/gateway/test_surface.py checks the rules
against the dependency graph wherever a route takes its caller as a dependency.

Kinds (docs/operations.md, "The route registry"):

- ``none``: no credential (public documents, keys, the log, sign-in pages);
- ``identity``: an identity's bearer token (``Bearer cct_…``); the service decides what
  that identity may do (itself, its delegations, its roles);
- ``admin``: an identity's bearer token with the administrator role;
- ``identity-optional``: anonymous, or an identity's bearer token that widens the answer;
- ``borrower``: an identity's bearer token or a request signed by the borrower's DID key
  (``Holder …``);
- ``lender``: a lender's OAuth access token, with the ``scopes`` the route requires;
- ``lender-or-identity``: either of those (an onboarding binding);
- ``client-assertion``: a lender client's signed assertion (the OAuth token endpoint);
- ``oid4vci``: OpenID4VCI's pre-authorized code or its access token;
- ``signed-body``: the body is signed by its sender's DID key (reputation events) or is a
  holder's presentation;
- ``subject-proof``: a proof signed by the DID the answer is about (``Subject-Proof``);
- ``transaction``: an OpenID4VP transaction's own state and nonce (a wallet's response);
- ``console-session``: the web console's signed session cookie;
- ``service``: a platform service's short-lived token (``service+jwt``, keys/service_tokens.py)
  granting the ``scopes`` the route requires.
"""

from __future__ import annotations

import re

__all__ = ["AUTH_KINDS", "RouteAuth", "auth_of"]

AUTH_KINDS = frozenset(
    {
        "none",
        "identity",
        "admin",
        "identity-optional",
        "borrower",
        "lender",
        "lender-or-identity",
        "client-assertion",
        "oid4vci",
        "signed-body",
        "subject-proof",
        "transaction",
        "console-session",
        "service",
    }
)
"""Every kind of caller authentication a route may declare."""

RouteAuth = tuple[str, tuple[str, ...]]
"""A route's authentication kind and the scopes it requires (sorted)."""

_LENDER = "lender"
# First match wins.  Patterns match the path template (``{name}`` as written).
_RULES: tuple[tuple[frozenset[str] | None, re.Pattern[str], RouteAuth], ...] = tuple(
    (frozenset(methods.split()) if methods else None, re.compile(pattern), (kind, scopes))
    for methods, pattern, kind, scopes in (
        # The lenders' API (OAuth access tokens, RFC 6749 §4.4) and its scopes.
        ("POST", r"/v1/consents", _LENDER, ("consent:request",)),
        ("GET", r"/v1/consents/jwks", "none", ()),
        ("GET", r"/v1/consents/\{consent_id\}", _LENDER, ("consent:read",)),
        ("", r"/v1/lender/credentials", _LENDER, ("credentials:read",)),
        ("GET", r"/v1/lender/discovery", _LENDER, ("discovery:read",)),
        ("GET", r"/v1/lender/client", _LENDER, ()),
        ("POST", r"/oauth/token", "client-assertion", ()),
        ("", r"/v1/verifier/requests(?:/\{transaction_id\}(?:/decision)?)?", _LENDER, ()),
        ("", r"/v1/verifier/requests/\{transaction_id\}/request\.jwt", "transaction", ()),
        ("POST", r"/v1/verifier/responses/\{transaction_id\}", "transaction", ()),
        ("", r"/v1/verifier/policies.*", "identity", ()),
        # The borrower's consent decisions and assisted consent.
        ("", r"/v1/borrowers/.*", "borrower", ()),
        ("POST", r"/v1/consents/\{consent_id\}/(?:assist|assist/confirm)", "identity", ()),
        ("POST", r"/v1/consents/\{consent_id\}/signed-approval", "signed-body", ()),
        # Identities, their data and their requests.
        ("POST", r"/v1/identities", "identity-optional", ()),
        ("POST", r"/v1/identities/\{token\}/requests", "none", ()),
        (
            "POST",
            r"/v1/identities/\{token\}/requests/\{request_id\}/confirm",
            "identity-optional",
            (),
        ),
        ("POST", r"/v1/identities/\{token\}/requests/\{request_id\}/fulfil", "admin", ()),
        ("", r"/v1/identities/.*", "identity", ()),
        ("POST", r"/v1/onboarding/bindings", "lender-or-identity", ()),
        # The platform's own services (service tokens and their scopes).
        ("GET", r"/v1/internal/log/state", "service", ("log:state",)),
        ("GET", r"/v1/internal/log/messages/\{index\}", "service", ("log:messages",)),
        ("GET", r"/v1/internal/service-keys", "service", ("keys:read",)),
        ("POST", r"/v1/internal/service-keys/rotate", "service", ("keys:rotate",)),
        # Administration.
        ("", r"/v1/admin/.*", "admin", ()),
        ("GET", r"/v1/subscribe", "admin", ()),
        # Issuance.
        ("PUT", r"/v1/credential-types", "admin", ()),
        ("GET", r"/v1/credential-types(?:/\{name\})?", "none", ()),
        ("POST", r"/v1/credentials/verify", "none", ()),
        ("POST", r"/v1/presentations/verify", "none", ()),
        ("", r"/v1/credentials.*", "identity", ()),
        ("POST", r"/v1/credential-offers", "identity", ()),
        ("GET", r"/v1/credential-offers/.*", "none", ()),
        ("POST", r"/token|/credential", "oid4vci", ()),
        ("POST", r"/nonce", "none", ()),
        # Reputation.
        ("POST", r"/v1/events", "signed-body", ()),
        ("POST", r"/v1/reputation/members", "signed-body", ()),
        ("POST", r"/v1/reputation/members/tombstone", "signed-body", ()),
        ("GET", r"/v1/reputation/capabilities", "subject-proof", ()),
        # A membership's document (its plain DID): registered full nodes only, which score.
        ("GET HEAD", r"/v1/reputation/members/[^/]+", "service", ("members:read",)),
        # The checkpoint committee: a partial comes with its member's node's service token
        # (and verifies under its member's BLS key).
        ("POST", r"/v1/partials", "service", ("partials:write",)),
        ("GET", r"/v1/tasks/current|/v1/committee", "none", ()),
        # Public documents, keys, the log and its tiles, operations, the API's own docs.
        (
            "GET HEAD",
            r"/\.well-known/.*|/oauth/jwks|/v1/(?:attestations|rules|scores|routes)(?:/.*)?"
            r"|/v1/(?:log|zk/statements|blobs)(?:/.*)?|/status-lists/.*|/tile/.*|/checkpoint"
            r"|/healthz|/readyz|/metrics|/openapi\.json|/docs(?:/.*)?",
            "none",
            (),
        ),
        # The web console: sign-in, the language switch, the auditor's pages and static
        # assets are public; every other area's pages need a session.
        ("", r"/|/lang/.*|/signin(?:/.*)?|/audit(?:/.*)?|/static/.*", "none", ()),
        ("", r"/signout(?:/.*)?|/(?:borrower|agent|lender|issuer)(?:/.*)?", "console-session", ()),
    )
)


def auth_of(method: str, template: str) -> RouteAuth | None:
    """The authentication the route ``method template`` declares, or None when no rule fits
    (the route is not declared)."""
    for methods, pattern, auth in _RULES:
        if (methods is None or method in methods) and pattern.fullmatch(template):
            return auth
    return None
