"""The SHA-256 of the committed route registry (``surface_registry.json``), over its
RFC 8785 canonical JSON: written by ``commons routes build`` with it, checked at start-up."""

SURFACE_REGISTRY_SHA256 = "ad43b27e2ba525207cab5b2ce5d8fc1cae3a30fc3730dc57132bea2d477306ad"
