"""The SHA-256 of the committed route registry (``surface_registry.json``), over its
RFC 8785 canonical JSON: written by ``commons routes build`` with it, checked at start-up."""

SURFACE_REGISTRY_SHA256 = "ab8b13dae1a86e7736912b80f172c378e49350a79c663d491df57dcdf77e2fb8"
