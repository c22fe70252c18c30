"""Credit Commons: verifiable credit-readiness credentials, consent and a public log."""

__version__ = "0.1.0"

__all__ = ["__version__"]
