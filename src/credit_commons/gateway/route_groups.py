"""Route groups: which rate limits a request counts against, decided from its method and
path alone (before routing, before any database connection).

Every route of the app belongs to a named group, and anything else (unknown paths) to
``other``: each group has a default limit per client address and, for groups whose callers
authenticate, per credential.  ``COMMONS_RATE_LIMITS`` overrides any of them
(``{"registration.ip": "10/minute"}``); docs/limits.md lists the groups and their defaults.
A test checks that every operation of the OpenAPI document falls in a named group.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "CLASS_OF_GROUP",
    "GROUPS",
    "GROUP_KEY",
    "OTHER",
    "READ",
    "STREAM",
    "WEB_GROUPS",
    "WRITE",
    "RouteGroup",
    "classify",
    "is_console_page",
]

WRITE = "write"
"""The route class of groups whose routes may write (admission.py)."""
READ = "read"
"""The route class of groups whose routes only read, or touch no database."""
STREAM = "stream"
"""The route class of long-lived streams (``GET /v1/subscribe``): not admitted by a
limiter (a stream would hold its turn for hours) but by its own stream slots, which bound
them per credential and per process (``gateway/routes/subscribe.py``)."""
GROUP_KEY = "route_group"
"""Where the request's group is kept in its ASGI scope's ``state`` once decided."""


@dataclass(frozen=True)
class RouteGroup:
    """A group of routes limited together: the default limit per address (``ip``) and per
    credential or client (``client``; ``None`` where callers do not authenticate), and the
    route class whose admission limiter runs its requests (``write`` or ``read``)."""

    name: str
    ip: str
    client: str | None
    routes: str
    route_class: str = WRITE


OTHER = "other"

GROUPS: tuple[RouteGroup, ...] = (
    # The lender groups take their defaults from COMMONS_RATE_LIMIT_IP/_CLIENT.
    RouteGroup("lender-api", "", "", "/v1/lender/*, POST /v1/consents, GET /v1/consents/{id}"),
    RouteGroup("lender-token", "", "", "POST /oauth/token"),
    RouteGroup("registration", "30/minute;300/hour", "120/minute", "POST /v1/identities"),
    RouteGroup("identity", "300/minute", "120/minute", "/v1/identities/{token}, delegations"),
    RouteGroup("profile", "120/minute", "60/minute", "GET /v1/identities/{token}/profile"),
    RouteGroup("export", "20/minute", "10/minute", "POST /v1/identities/{token}/export"),
    RouteGroup("erase", "10/minute", "5/minute", "DELETE /v1/identities/{token}"),
    RouteGroup("dsr", "30/minute", "20/minute", "/v1/identities/{token}/requests/*"),
    RouteGroup("attestations", "60/minute", "30/minute", "POST /v1/identities/{token}/verify"),
    RouteGroup("onboarding", "300/minute", "120/minute", "/v1/onboarding/*"),
    RouteGroup("consent", "120/minute", "60/minute", "/v1/borrowers/*, consent assist, approval"),
    RouteGroup("verification", "120/minute", "120/minute", "/v1/credentials/verify, presentations"),
    RouteGroup("verifier", "600/minute", "600/minute", "/v1/verifier/* (OpenID4VP)"),
    RouteGroup("issuance", "600/minute", "600/minute", "/v1/credentials*, /v1/credential-types*"),
    RouteGroup("admin", "300/minute", "300/minute", "/v1/admin/*, /v1/verifier/policies*"),
    RouteGroup("oid4vci-offers", "60/minute", "60/minute", "/v1/credential-offers*"),
    RouteGroup("oid4vci-token", "60/minute", None, "POST /token"),
    RouteGroup("oid4vci-credential", "60/minute", "30/minute", "POST /credential, POST /nonce"),
    RouteGroup("log", "600/minute", None, "/v1/log/*", READ),
    RouteGroup("tiles", "1200/minute", None, "/tile/*, /checkpoint", READ),
    # The checkpoint committee: members poll their task and post partial signatures, which
    # authenticate themselves (a BLS pairing check each, so partials are limited harder).
    RouteGroup("committee-tasks", "600/minute", None, "GET /v1/tasks/current, /v1/committee", READ),
    RouteGroup("committee-partials", "120/minute", None, "POST /v1/partials"),
    RouteGroup("status-lists", "600/minute", None, "/status-lists/*", READ),
    RouteGroup("zk-statements", "600/minute", None, "/v1/zk/statements*", READ),
    RouteGroup("rules", "600/minute", None, "GET /v1/rules/active, GET /v1/rules/{id}", READ),
    # Reputation events are signed by their sender's did:key, gated by membership and the
    # per-epoch budgets; a membership runs the verifier's pipeline, so it is limited harder.
    RouteGroup("reputation-events", "300/minute", None, "POST /v1/events"),
    RouteGroup(
        "reputation-members",
        "30/minute;300/hour",
        None,
        "POST /v1/reputation/members, POST /v1/reputation/members/tombstone",
    ),
    # Server-sent events for the platform's own services (administrators): each request
    # opens a stream, so few per minute; the open streams are bounded apart (STREAM).
    RouteGroup("subscribe", "30/minute", "30/minute", "GET /v1/subscribe", STREAM),
    RouteGroup(
        "blobs",
        "1200/minute",
        None,
        "GET /v1/blobs/{cid}, GET /v1/reputation/members/{event_id}",
        READ,
    ),
    RouteGroup("scores", "300/minute", None, "GET /v1/scores, GET /v1/reputation/capabilities"),
    RouteGroup("well-known", "600/minute", None, "/.well-known/*, the JWK Sets, /v1/routes", READ),
    RouteGroup("operations", "600/minute", None, "/healthz, /readyz, /metrics", READ),
    # The platform's own services (service tokens): a few processes on the internal network.
    RouteGroup("internal", "3000/minute", "1200/minute", "/v1/internal/*", READ),
    RouteGroup("docs", "60/minute", None, "/openapi.json, /docs, /docs/assets/*", READ),
    # The web console (docs/console.md): its pages, its sign-in (stricter: each attempt
    # checks a credential or sends a code), its static assets.
    # Per identity too ("client"): the identity a one-time code is asked for or tried
    # against, counted by the page (web/limits.py), so spreading the guesses of one
    # identity's code over many addresses does not multiply them.
    RouteGroup("web-signin", "10/minute;60/hour", "5/minute;20/hour", "POST /signin, /signin/*"),
    RouteGroup("web", "300/minute", None, "/, /lang/*, /signin*, /signout*, the areas' pages"),
    RouteGroup("web-static", "600/minute", None, "/static/*", READ),
    RouteGroup(OTHER, "120/minute", None, "any other path (404)", READ),
)

WEB_GROUPS = frozenset({"web-signin", "web", "web-static"})
"""The console's own groups.  A console page whose act the API limits more strictly counts
in the API's group instead (export, erasure, assisted consent, lender retrieval): a refusal
of any console page is an HTML page, not problem+json (:func:`is_console_page`)."""

CLASS_OF_GROUP: dict[str, str] = {group.name: group.route_class for group in GROUPS}
"""Each group's route class."""

_ANY = None
# The console's pages: the home page, the language switch, sign-in and sign-out, and each
# area's pages (docs/console.md).  Another area needs its name here.
_WEB_PAGES = r"/|/(?:lang|signin|signout|borrower|agent|lender|issuer|audit)(?:/.*)?"
# First match wins; the lender API, the busiest, comes first.  "[^/]+" is one segment.
_RULES: tuple[tuple[frozenset[str] | None, re.Pattern[str], str], ...] = tuple(
    (frozenset(methods.split()) if methods else _ANY, re.compile(pattern), group)
    for methods, pattern, group in (
        ("", r"/v1/lender(?:/.*)?", "lender-api"),
        ("", r"/v1/consents/jwks", "well-known"),
        ("", r"/v1/consents/[^/]+/(?:assist|assist/confirm|signed-approval)", "consent"),
        ("POST", r"/v1/consents", "lender-api"),
        ("GET HEAD", r"/v1/consents/[^/]+", "lender-api"),
        ("POST", r"/oauth/token", "lender-token"),
        ("", r"/tile/.*|/checkpoint", "tiles"),
        ("", r"/v1/internal/.*", "internal"),
        ("", r"/v1/log(?:/.*)?", "log"),
        ("GET HEAD", r"/v1/tasks/current|/v1/committee", "committee-tasks"),
        ("POST", r"/v1/partials", "committee-partials"),
        ("", r"/status-lists/.*", "status-lists"),
        ("GET HEAD", r"/v1/zk/statements(?:/[^/]+)?", "zk-statements"),
        ("", r"/\.well-known/.*|/oauth/jwks|/v1/(?:attestations|rules|scores)/jwks", "well-known"),
        ("GET HEAD", r"/v1/routes(?:/jwks)?", "well-known"),
        ("GET HEAD", r"/v1/rules/[^/]+", "rules"),
        ("POST", r"/v1/events", "reputation-events"),
        ("POST", r"/v1/reputation/members(?:/tombstone)?", "reputation-members"),
        ("GET", r"/v1/subscribe", "subscribe"),
        ("GET HEAD", r"/v1/blobs/[^/]+", "blobs"),
        ("GET HEAD", r"/v1/reputation/members/[^/]+", "blobs"),
        ("GET HEAD", r"/v1/scores", "scores"),
        ("GET HEAD", r"/v1/reputation/capabilities", "scores"),
        ("", r"/v1/borrowers/.*", "consent"),
        ("POST", r"/v1/identities", "registration"),
        ("DELETE", r"/v1/identities/[^/]+", "erase"),
        ("GET HEAD", r"/v1/identities/[^/]+/profile", "profile"),
        ("", r"/v1/identities/[^/]+/export", "export"),
        ("", r"/v1/identities/[^/]+/requests(?:/.*)?", "dsr"),
        ("", r"/v1/identities/[^/]+/verify", "attestations"),
        ("", r"/v1/identities/.+", "identity"),
        ("", r"/v1/onboarding(?:/.*)?", "onboarding"),
        ("", r"/v1/(?:credentials|presentations)/verify", "verification"),
        ("", r"/v1/verifier/policies(?:/.*)?", "admin"),
        ("", r"/v1/verifier(?:/.*)?", "verifier"),
        ("", r"/v1/credential-offers(?:/.*)?", "oid4vci-offers"),
        ("POST", r"/token", "oid4vci-token"),
        ("", r"/credential|/nonce", "oid4vci-credential"),
        ("", r"/v1/credentials(?:/.*)?|/v1/credential-types(?:/.*)?", "issuance"),
        ("", r"/v1/admin/.*", "admin"),
        ("", r"/healthz|/readyz|/metrics", "operations"),
        ("", r"/openapi\.json|/docs(?:/oauth2-redirect|/assets/[^/]+)?", "docs"),
        # The console's acts that the API limits more strictly count in the API's groups,
        # sharing its budget per address: a caller gains nothing by using both.
        ("POST", r"/borrower/data/export\.(?:json|pdf)", "export"),
        ("POST", r"/borrower/erase(?:/final)?", "erase"),
        ("POST", r"/agent/consents/[^/]+/(?:send|confirm)|/borrower/assisted/[^/]+", "consent"),
        ("POST", r"/lender/consents/[^/]+/retrieve|/lender/proofs", "lender-api"),
        ("POST", r"/signin(?:/.*)?", "web-signin"),
        ("GET HEAD", r"/static/[^/]+", "web-static"),
        ("", _WEB_PAGES, "web"),
    )
)


def classify(method: str, path: str) -> str:
    """The name of the group of the request ``method path`` (``other`` when none fits)."""
    for methods, pattern, group in _RULES:
        if (methods is None or method in methods) and pattern.fullmatch(path):
            return group
    return OTHER


def is_console_page(path: str) -> bool:
    """Whether ``path`` is one of the console's pages (group ``web``: the home page, the
    language switch, sign-in and sign-out, each area's pages), whatever the method."""
    return classify("GET", path) == "web"
