"""Consent: requests, decisions (self, signed or assisted), signed artefacts, state changes
with their events and webhooks, the consent check, gated retrieval, access history, and
consent's share of a data-subject export and erasure (``export``, ``service``).  Above the
verifier, below privacy; it reads other domains only through their services."""
