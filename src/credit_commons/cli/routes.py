"""``commons routes …``: the route registry (docs/operations.md, "The route registry")."""

from __future__ import annotations

import re
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


# A checkout's deployment files carry the release's pin as COMMONS_SURFACE_REGISTRY_SHA256
# (production requires it): rewritten with the package's pin, and checked by --check.  An
# installed package has no such files beside it, and then there is nothing to rewrite.
_DEPLOY = Path(surface.__file__).resolve().parents[3] / "deploy"
_DEPLOY_PINS = (
    (_DEPLOY / "compose.yaml", re.compile(r"(COMMONS_SURFACE_REGISTRY_SHA256:-)[0-9a-f]{64}")),
    (_DEPLOY / "env.example", re.compile(r"(?m)^(COMMONS_SURFACE_REGISTRY_SHA256=)[0-9a-f]{64}")),
    (
        _DEPLOY / "helm" / "commons" / "values.yaml",
        re.compile(r'(surfaceRegistrySha256: ")[0-9a-f]{64}'),
    ),
)


def _deploy_pins(digest: str) -> dict[Path, str]:
    """The checkout's deployment files whose pin is not ``digest``, with it set to
    ``digest``.  Raises ``ConfigurationError`` for a file that carries no pin."""
    stale: dict[Path, str] = {}
    for path, pattern in _DEPLOY_PINS:
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8")
        pinned, count = pattern.subn(lambda m: m.group(1) + digest, text)
        if count != 1:
            raise ConfigurationError(
                f"{path} does not carry one route registry pin",
                hint="set COMMONS_SURFACE_REGISTRY_SHA256 there (docs/operations.md)",
            )
        if pinned != text:
            stale[path] = pinned
    return stale


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
    """Build the registry from the app and write it with its pinned SHA-256, and that pin
    into the checkout's deploy/ files (make routes)."""
    registry = built_registry()
    digest = registry.sha256
    current = (
        surface.REGISTRY_FILE.read_text(encoding="utf-8") if surface.REGISTRY_FILE.exists() else ""
    )
    pin = _PIN.format(digest=digest)
    pinned = _PIN_FILE.read_text(encoding="utf-8") if _PIN_FILE.exists() else ""
    deploy = _deploy_pins(digest)
    same = current == registry.text() and pinned == pin and not deploy
    if check and not same:
        raise ConfigurationError(
            "the committed route registry is not the app's"
            if current != registry.text() or pinned != pin
            else "the deployment files' route registry pin is stale: "
            + ", ".join(sorted(str(path) for path in deploy)),
            hint="run `make routes` (commons routes build) and commit the registry",
        )
    if not check and not same:
        if current != registry.text() or pinned != pin:
            surface.REGISTRY_FILE.write_text(registry.text(), encoding="utf-8")
            _PIN_FILE.write_text(pin, encoding="utf-8")
        for path, text in deploy.items():
            path.write_text(text, encoding="utf-8")
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
