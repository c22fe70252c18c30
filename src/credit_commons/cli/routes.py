"""``commons routes …``: the route registry (docs/operations.md, "The route registry")."""

from __future__ import annotations

import tempfile
from pathlib import Path

import typer

from credit_commons.cli.support import JsonOption, emit, group
from credit_commons.core.errors import ConfigurationError
from credit_commons.core.settings import Settings
from credit_commons.gateway import surface
from credit_commons.gateway.app import assemble_app

__all__ = ["app", "built_registry"]

app = group("routes", "The route registry: every route, its authentication and rate limit.")

_PIN_FILE = Path(surface.__file__).with_name("surface_pin.py")
_PIN = '''"""The SHA-256 of the committed route registry (``surface_registry.json``), over its
RFC 8785 canonical JSON: written by ``commons routes build`` with it, checked at start-up."""

SURFACE_REGISTRY_SHA256 = "{digest}"
'''


def built_registry() -> surface.Registry:
    """The registry of the app as this code assembles it (in a scratch data directory:
    the routes do not depend on the settings).  Raises ``ConfigurationError`` for a route
    whose authentication is not declared."""
    with tempfile.TemporaryDirectory() as scratch:
        assembled = assemble_app(Settings(data_dir=Path(scratch), env="development"))
        try:
            return surface.build(assembled)
        finally:
            assembled.state.runtime.close()


@app.command("build")
def routes_build(
    check: bool = typer.Option(
        False, "--check", help="write nothing; fail when the committed registry is not the app's"
    ),
    as_json: JsonOption = False,
) -> None:
    """Build the registry from the app and write it with its pinned SHA-256 (make routes),
    and print that SHA-256: the hash an operator reviews and sets as
    COMMONS_SURFACE_REGISTRY_SHA256 (deploy/ carries none: production requires the
    operator's own)."""
    registry = built_registry()
    digest = registry.sha256
    current = (
        surface.REGISTRY_FILE.read_text(encoding="utf-8") if surface.REGISTRY_FILE.exists() else ""
    )
    pin = _PIN.format(digest=digest)
    pinned = _PIN_FILE.read_text(encoding="utf-8") if _PIN_FILE.exists() else ""
    same = current == registry.text() and pinned == pin
    if check and not same:
        raise ConfigurationError(
            "the committed route registry is not the app's",
            hint="run `make routes` (commons routes build) and commit the registry",
        )
    if not check and not same:
        surface.REGISTRY_FILE.write_text(registry.text(), encoding="utf-8")
        _PIN_FILE.write_text(pin, encoding="utf-8")
    data = {"sha256": digest, "routes": len(registry.routes), "changed": not same}
    verb = "is up to date" if same else ("written" if not check else "differs")
    emit(as_json, data, f"route registry ({len(registry.routes)} routes, sha256 {digest}) {verb}")


@app.command("show")
def routes_show(as_json: JsonOption = False) -> None:
    """List the committed registry's routes (method, path, authentication, rate-limit group)."""
    registry = surface.load()
    lines = [
        f"{r.method:7} {r.path}  {r.auth}{' ' + ','.join(r.scopes) if r.scopes else ''}  {r.group}"
        for r in registry.routes
    ]
    emit(as_json, registry.document(), "\n".join([*lines, f"sha256 {registry.sha256}"]))
