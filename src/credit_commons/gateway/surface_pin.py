"""The SHA-256 of the committed route registry (``surface_registry.json``), over its
RFC 8785 canonical JSON: written by ``commons routes build`` with it, checked at start-up."""

SURFACE_REGISTRY_SHA256 = "18d994df7f5dc19cab717e9e9bd275b70844b147af5c37eba95bc59996bac3e0"
