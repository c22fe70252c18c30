"""The credential issuer: the catalogue of credential types (``catalogue``, ``service``),
issuing SD-JWT VCs and VC-JWTs singly, in batches and through OID4VCI (``credentials``,
``batch``, ``build_pool``, ``oid4vci``, with ``sd_jwt`` for issuance and presentation), the
status lists it publishes (``status``, ``status_index``), the issuer identifiers it has
used (``identifiers``), and its parts of consent retrieval, export and erasure
(``holdings``, ``export``, ``erasure``).

Verifying credentials — this issuer's and trusted others' — is the verifier's
(:mod:`credit_commons.verifier`, one layer up); the issuer never imports it.
``sd_jwt_errors`` and ``status_list`` only keep the import paths of the published vector
tests (the code is in :mod:`credit_commons.formats`).
"""
