"""The SHA-256 of the committed route registry (``surface_registry.json``), over its
RFC 8785 canonical JSON: written by ``commons routes build`` with it, checked at start-up."""

SURFACE_REGISTRY_SHA256 = "fc61ee1ca26ce11c39b79fb821e4a72e9fa590f5d442d5d7a3274a4d4f3d84c2"
