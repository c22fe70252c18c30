"""Credential issuance: status lists and (later) the credential issuer itself."""
