"""Pure, spec-named encodings shared by the issuer, the verifier, the wallet and the lender
client: compact JWS (``jws``), VC-JWT (``vc_jwt``), the IETF Token Status List
(``status_list``) and the W3C Bitstring Status List (``bitstring_status_list``).

No database, no service, no HTTP; imports only ``core`` and third-party libraries.  Keys are
reached through the small protocols in ``jws`` (``SignatureVerifier``, ``JwsSigner``), which
the keys domain's ``PublicKey`` and ``Signer`` satisfy.
"""
