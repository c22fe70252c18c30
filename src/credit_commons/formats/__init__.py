"""Pure, spec-named encodings shared by the issuer, the verifier, the wallet and the lender
client: compact JWS (``jws``), VC-JWT (``vc_jwt``), the SD-JWT data model and its
serializations (``sd_jwt_format``, with its errors in ``sd_jwt_errors``), the IETF Token
Status List (``status_list``), the W3C Bitstring Status List (``bitstring_status_list``),
OAuth 2.0 error responses (``oauth``), DCQL (``dcql``) and OpenID4VP 1.0 messages
(``oid4vp``, with ``oid4vp_response`` and ``oid4vp_errors``).

No database, no service, no HTTP; imports only ``core`` and third-party libraries.  Keys are
reached through the small protocols in ``jws`` (``SignatureVerifier``, ``JwsSigner``), which
the keys domain's ``PublicKey`` and ``Signer`` satisfy.
"""
