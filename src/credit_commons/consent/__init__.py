"""Consent: requests, decisions (self, signed or assisted), signed artefacts, state changes
with their events and webhooks, the consent check, gated retrieval, access history, and
consent's share of a data-subject export and erasure (``export``, ``service``).  Above the
verifier, below privacy; it reads other domains only through their public names
(their packages' exports and services)."""

from __future__ import annotations

from credit_commons.consent.denial_counts import prune_denial_counts
from credit_commons.consent.export import export_subject
from credit_commons.consent.model import TEMPLATES
from credit_commons.consent.notify import forget_codes
from credit_commons.consent.schemas import AccessRecord, ExportedConsent

__all__ = [
    "TEMPLATES",
    "AccessRecord",
    "ExportedConsent",
    "export_subject",
    "forget_codes",
    "prune_denial_counts",
]
