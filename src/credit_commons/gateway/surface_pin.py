"""The SHA-256 of the committed route registry (``surface_registry.json``), over its
RFC 8785 canonical JSON: written by ``commons routes build`` with it, checked at start-up."""

SURFACE_REGISTRY_SHA256 = "4df8bbcaaf5d1fc027b14fda1355cb56a0aea1e993f9bf3e7f12b5314360b225"
