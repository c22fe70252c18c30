"""Pepper management: refuse to run with a pepper that silently changed (seed 002 §10).

Pseudonyms are keyed hashes; if the pepper changes, every stored pseudonym stops matching
and uniqueness, look-ups and tombstones silently break.  The first start records a public
fingerprint of each pepper (the event pseudonymiser's and the KMS's identifier pepper);
every later start compares.  A mismatch refuses to start in production and is logged in
development.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from credit_commons.core.errors import ConfigurationError
from credit_commons.core.facts import record_fact
from credit_commons.runtime import Runtime

__all__ = ["check_peppers"]

log = logging.getLogger("credit_commons.privacy.pepper")


def check_peppers(session: Session, rt: Runtime) -> dict[str, str]:
    """Record the pepper fingerprints on first use, compare them afterwards.

    Raises :class:`ConfigurationError` in production when a pepper changed.
    """
    current = {
        "pepper.events": rt.pseudonymizer.fingerprint(),
        "pepper.identifiers": rt.vault.kms.pepper_fingerprint(),
    }
    for key, fingerprint in current.items():
        # Recorded by whichever process gets there first (`commons db upgrade`, a server's
        # schema gate opening, a restore): the loser of the race reads the winner's record.
        recorded = record_fact(session, key, fingerprint, rt.clock.now())
        if recorded != fingerprint:
            message = (
                f"the {key.split('.')[1]} pseudonymisation pepper changed since it was first used"
            )
            hint = (
                "restore the original COMMONS_PSEUDONYM_PEPPER (or HSM pepper key); stored "
                "pseudonyms only match under the pepper that made them"
            )
            if rt.settings.is_production:
                raise ConfigurationError(message, hint=hint)
            log.warning(message, extra={"fields": {"fact": key}})
    return current
