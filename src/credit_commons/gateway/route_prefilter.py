"""A request tries only the included routers whose routes can match its path.

FastAPI's router tries its routes in order, and an included router (``include_router``)
is one entry that tries each of its own routes: every route of every router before the
one that answers costs the request a match (a context switch in the request's scope and
the route's regular expression, a few microseconds each).  ``GET /healthz``, after about
190 routes, spent most of its CPU there; a route of a late router pays the same.

Every path a route's template matches begins with the template's literal part, up to its
first parameter (``/v1/verifier/responses/`` for ``/v1/verifier/responses/{id}``), and so
does the trailing-slash variant the router tries before it redirects; a template without
parameters matches its own path only (or, for the redirect, the path with or without its
trailing slash).  So for an included router none of whose routes can match the path, its
``matches`` answers "no match" at once, and the router's real matching runs for the others
exactly as before (in the same order, with the same partial matches, 405s and redirects).
A router holding a route without a literal template (a mount, a catch-all, anything this
module does not recognise) is left as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.routing import _EffectiveRouteContext, _IncludedRouter
from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

__all__ = ["PathFilter", "path_filter", "prefilter_routers"]

Matches = Callable[[Scope], tuple[Match, Scope]]


@dataclass(frozen=True)
class PathFilter:
    """The paths a router's routes can match: those beginning with one of ``prefixes``
    (the literal part of a template with parameters, up to its first ``{``) and the
    ``exact`` paths of templates without parameters (each with and without a trailing
    slash: the router tries the other form before it redirects)."""

    prefixes: tuple[str, ...]
    exact: frozenset[str]

    def admits(self, path: str) -> bool:
        """Whether a route of the router could match ``path``."""
        return path in self.exact or path.startswith(self.prefixes)


def path_filter(templates: Iterable[str]) -> PathFilter | None:
    """The :class:`PathFilter` of ``templates``; None when one has no literal part before
    its first parameter (it could match any path)."""
    prefixes: set[str] = set()
    exact: set[str] = set()
    for template in templates:
        literal, parameter, _ = template.partition("{")
        if not parameter:
            exact |= {literal, literal.rstrip("/") or "/", literal.rstrip("/") + "/"}
        elif literal in ("", "/"):
            return None
        else:
            prefixes.add(literal)
    return PathFilter(tuple(sorted(prefixes)), frozenset(exact))


def _templates(router: _IncludedRouter) -> list[str] | None:
    # The effective path of every route the included router holds, through nested
    # includes; None for anything that is not a plain route with a template.
    found: list[str] = []
    for candidate in router.effective_candidates():
        if isinstance(candidate, _IncludedRouter):
            nested = _templates(candidate)
            if nested is None:
                return None
            found += nested
        elif isinstance(candidate, _EffectiveRouteContext) and candidate.path:
            found.append(candidate.path)
        else:
            return None
    return found


class _Prefilter:
    """The pre-check of one included router: its literal prefixes, worked out again when
    its routes change (FastAPI rebuilds the router's candidate list then)."""

    def __init__(self, router: _IncludedRouter, matches: Matches) -> None:
        self._router = router
        self._matches = matches
        self._seen: object = None
        self._filter: PathFilter | None = None

    def filter(self) -> PathFilter | None:
        """The router's filter for its routes now (None: every path is tried)."""
        candidates = self._router.effective_candidates()
        if candidates is not self._seen:
            templates = _templates(self._router)
            self._filter = None if templates is None else path_filter(templates)
            self._seen = candidates
        return self._filter

    def __call__(self, scope: Scope) -> tuple[Match, Scope]:
        paths = self.filter()
        if (
            paths is not None
            and scope["type"] in ("http", "websocket")
            and not paths.admits(get_route_path(scope))
        ):
            return Match.NONE, {}
        return self._matches(scope)


def prefilter_routers(app: FastAPI) -> int:
    """Give each of ``app``'s included routers a path pre-check (see the module's
    docstring); how many got one (a router whose routes change later has its prefixes
    worked out again; one without a literal template throughout gets none)."""
    done = 0
    route: BaseRoute
    for route in app.router.routes:
        if not isinstance(route, _IncludedRouter) or "matches" in vars(route):
            continue
        prefilter = _Prefilter(route, route.matches)
        if prefilter.filter() is None:
            continue
        # An attribute of this entry, shadowing its class's method: the router calls
        # route.matches(scope) on each entry in turn.
        route.matches = prefilter  # type: ignore[method-assign]
        done += 1
    return done
