"""The SHA-256 of the committed route registry (``surface_registry.json``), over its
RFC 8785 canonical JSON: written by ``commons routes build`` with it, checked at start-up."""

SURFACE_REGISTRY_SHA256 = "9457b42fff0dca3c6340eddb5d4c542a0165d79d830b62a82ad159d85cc56a13"
