"""The SHA-256 of the committed route registry (``surface_registry.json``), over its
RFC 8785 canonical JSON: written by ``commons routes build`` with it, checked at start-up."""

SURFACE_REGISTRY_SHA256 = "5d8d99a120b49874bc2f227c56d238a92739697bd93398398f73ecaf7a9d4c49"
