"""The one error hierarchy of Credit Commons.

Every error the platform raises on purpose is a :class:`CommonsError` with a stable,
machine-readable ``code`` (``consent.expired``, ``key.not_found``), an HTTP status and an
exit code.  The HTTP layer renders them as RFC 9457 problem+json in one handler; the CLI maps
them to an exit code in one entry point.  Third-party exceptions are translated where they
enter (``raise SignatureInvalid(...) from e``).

``detail`` is what an outsider may see.  ``diagnostics()`` is the longer, human explanation
for operators and logs; it must never contain secrets or personal data either.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:  # core.encoding raises this module's errors
    from credit_commons.core.encoding import JsonObject

__all__ = [
    "CommonsError",
    "ConfigurationError",
    "ConflictError",
    "ExitCode",
    "ForbiddenError",
    "IntegrityError",
    "NotFoundError",
    "UnauthorizedError",
    "UnavailableError",
    "ValidationError",
]


class ExitCode:
    """Process exit codes used by the CLI entry point (documented in docs/cli.md)."""

    OK = 0
    FAILURE = 1
    USAGE = 2
    VALIDATION = 3
    NOT_FOUND = 4
    CONFLICT = 5
    FORBIDDEN = 6
    INTEGRITY = 7
    CONFIGURATION = 8
    UNAVAILABLE = 9
    LOG_ORIGIN_MISMATCH = 10  # a kept checkpoint names another log (log verify-consistency)
    LOG_FORKED = 11  # today's checkpoint does not extend a kept one
    INTERRUPTED = 130  # 128 + SIGINT, as shells report a process ended by Ctrl-C


class CommonsError(Exception):
    """Root of every deliberate Credit Commons error.

    Subclasses set ``code`` (stable, dotted, lower-case), ``title``, ``status`` (HTTP) and
    ``exit_code`` (CLI).  ``extra`` carries machine-readable members added to problem+json
    (for example the failing field); it must hold only JSON values.
    """

    code: ClassVar[str] = "commons.error"
    title: ClassVar[str] = "Internal error"
    status: ClassVar[int] = 500
    exit_code: ClassVar[int] = ExitCode.FAILURE

    def __init__(
        self,
        detail: str | None = None,
        *,
        hint: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.detail = detail or self.title
        self.hint = hint
        self.extra: JsonObject = dict(extra or {})  # the problem's extension members
        super().__init__(self.detail)

    def diagnostics(self) -> str:
        """A human explanation for operators: what went wrong and, where known, what to do."""
        text = f"{self.code}: {self.detail}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def problem(self, instance: str | None = None) -> JsonObject:
        """This error as an RFC 9457 problem details object (its extension members are
        each error's own, so the document is open: ``gateway.openapi.Problem`` documents
        the fixed ones)."""
        body: JsonObject = {
            "type": f"https://credit-commons.dev/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


class ValidationError(CommonsError):
    """Input that does not have the required shape or value."""

    code = "request.invalid"
    title = "Invalid input"
    status = 422
    exit_code = ExitCode.VALIDATION


class NotFoundError(CommonsError):
    """A named thing does not exist (or the caller may not learn that it does)."""

    code = "resource.not_found"
    title = "Not found"
    status = 404
    exit_code = ExitCode.NOT_FOUND


class ConflictError(CommonsError):
    """The request conflicts with the current state (duplicate, wrong lifecycle state)."""

    code = "resource.conflict"
    title = "Conflict"
    status = 409
    exit_code = ExitCode.CONFLICT


class UnauthorizedError(CommonsError):
    """The caller is not authenticated."""

    code = "auth.unauthenticated"
    title = "Not authenticated"
    status = 401
    exit_code = ExitCode.FORBIDDEN


class ForbiddenError(CommonsError):
    """The caller may not do this.  Toward outsiders the detail stays non-oracular."""

    code = "auth.forbidden"
    title = "Not permitted"
    status = 403
    exit_code = ExitCode.FORBIDDEN


class IntegrityError(CommonsError):
    """A signature, hash, proof or ciphertext failed to verify."""

    code = "integrity.invalid"
    title = "Integrity check failed"
    status = 400
    exit_code = ExitCode.INTEGRITY


class ConfigurationError(CommonsError):
    """The platform is configured in a way it refuses to run with."""

    code = "config.invalid"
    title = "Invalid configuration"
    status = 500
    exit_code = ExitCode.CONFIGURATION


class UnavailableError(CommonsError):
    """A dependency (database, HSM, remote resolver) cannot be reached right now.

    ``retry_after`` (seconds), when set, is sent as the HTTP ``Retry-After`` field
    (RFC 9110 §10.2.3): the condition is expected to pass.
    """

    code = "service.unavailable"
    title = "Service unavailable"
    status = 503
    exit_code = ExitCode.UNAVAILABLE
    retry_after: int | None = None
