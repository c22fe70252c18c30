"""The SHA-256 of the committed route registry (``surface_registry.json``), over its
RFC 8785 canonical JSON: written by ``commons routes build`` with it, checked at start-up."""

SURFACE_REGISTRY_SHA256 = "4c268e5e1e4f55db2165702b4ad6af805c1a4410cbd0911d3a1df84d0bd92f17"
