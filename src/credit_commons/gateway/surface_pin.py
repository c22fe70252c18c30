"""The SHA-256 of the committed route registry (``surface_registry.json``), over its
RFC 8785 canonical JSON: written by ``commons routes build`` with it, checked at start-up."""

SURFACE_REGISTRY_SHA256 = "50c77cd209e75943912b6085afad2a684b475e34b7a1bb0bc517bc9a3335223e"
