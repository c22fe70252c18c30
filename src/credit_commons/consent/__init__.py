"""Consent: requests, signed artefacts, the consent check, and access records (issue 6)."""
