"""The SHA-256 of the committed route registry (``surface_registry.json``), over its
RFC 8785 canonical JSON: written by ``commons routes build`` with it, checked at start-up."""

SURFACE_REGISTRY_SHA256 = "d6622cf4bb3ee5f7eaadd1a10ca792091296d0f0ed06b51b7d9db2354cb37777"
