"""Fixtures of the integration tests (the consent world is shared by several modules)."""

from tests.integration.consent_world import world

__all__ = ["world"]
