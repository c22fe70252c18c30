from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given
from hypothesis import strategies as st

from credit_commons.core.encoding import b64url_encode
from credit_commons.keys import algorithms as algorithms_module
from credit_commons.keys import jwk as jwk_module
from credit_commons.keys.algorithms import ACCEPTED_ALGS, KeyType, PrivateKey, PublicKey, check_alg
from credit_commons.keys.errors import (
    AlgorithmNotAllowed,
    KeyInvalid,
    KeyTypeMismatch,
    SignatureInvalid,
)
from credit_commons.keys.jwk import (
    private_key_from_jwk,
    private_key_to_jwk,
    public_key_from_jwk,
    public_key_to_jwk,
    thumbprint,
)


@pytest.mark.parametrize("key_type", list(KeyType))
def test_sign_and_verify_round_trip(key_type: KeyType) -> None:
    key = PrivateKey.generate(key_type)
    signature = key.sign(b"hello")
    assert len(signature) == 64
    key.public_key.verify(key.alg, b"hello", signature)
    with pytest.raises(SignatureInvalid):
        key.public_key.verify(key.alg, b"hellO", signature)


def test_emitted_algs() -> None:
    assert PrivateKey.generate(KeyType.ED25519).alg == "EdDSA"
    assert PrivateKey.generate(KeyType.P256).alg == "ES256"
    assert set(ACCEPTED_ALGS) == {"EdDSA", "Ed25519", "ES256"}


@pytest.mark.parametrize(
    "alg", ["none", "None", "HS256", "RS256", "PS256", "ES384", "ES256K", "Ed448", "", None, 1]
)
def test_everything_else_is_rejected(alg: object) -> None:
    key = PrivateKey.generate(KeyType.ED25519)
    with pytest.raises(AlgorithmNotAllowed):
        key.public_key.verify(alg, b"m", key.sign(b"m"))


def test_key_type_confusion_is_rejected() -> None:
    ed = PrivateKey.generate(KeyType.ED25519)
    p256 = PrivateKey.generate(KeyType.P256)
    with pytest.raises(KeyTypeMismatch):
        ed.public_key.verify("ES256", b"m", ed.sign(b"m"))
    with pytest.raises(KeyTypeMismatch):
        p256.public_key.verify("EdDSA", b"m", p256.sign(b"m"))
    with pytest.raises(KeyTypeMismatch):
        check_alg("Ed25519", KeyType.P256)


def test_es256_signature_must_be_raw_r_s() -> None:
    key = PrivateKey.generate(KeyType.P256)
    signature = key.sign(b"m")
    with pytest.raises(SignatureInvalid):
        key.public_key.verify("ES256", b"m", signature[:-1])
    native = key.cryptography_key
    assert isinstance(native, ec.EllipticCurvePrivateKey)
    der = native.sign(b"m", ec.ECDSA(hashes.SHA256()))
    with pytest.raises(SignatureInvalid):
        key.public_key.verify("ES256", b"m", der)


def test_other_key_types_are_refused() -> None:
    with pytest.raises(KeyInvalid):
        PrivateKey(ec.generate_private_key(ec.SECP384R1()))  # type: ignore[arg-type]
    with pytest.raises(KeyInvalid):
        PublicKey.from_cryptography(rsa.generate_private_key(65537, 2048).public_key())
    with pytest.raises(KeyInvalid):
        PrivateKey.from_raw(KeyType.ED25519, b"short")
    with pytest.raises(KeyInvalid):
        PrivateKey.from_raw(KeyType.P256, b"\xff" * 32)  # scalar >= group order
    with pytest.raises(KeyInvalid):
        PublicKey.from_raw(KeyType.ED25519, b"\x00" * 31)


@pytest.mark.parametrize("key_type", list(KeyType))
def test_jwk_round_trips_and_thumbprint(key_type: KeyType) -> None:
    key = PrivateKey.generate(key_type)
    jwk = public_key_to_jwk(key.public_key, kid="k1")
    assert jwk["kid"] == "k1"
    assert "d" not in jwk
    assert public_key_from_jwk({k: v for k, v in jwk.items() if k != "kid"}) == key.public_key
    private = private_key_to_jwk(key)
    assert private_key_from_jwk(private).raw() == key.raw()
    assert len(thumbprint(key.public_key)) == 43
    assert repr(key) == f"PrivateKey({key_type})"


def test_rfc8037_ed25519_jwk_and_thumbprint() -> None:
    # RFC 8037 Appendix A.1-A.3.
    jwk = {
        "kty": "OKP",
        "crv": "Ed25519",
        "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
        "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
    }
    key = private_key_from_jwk(jwk)
    assert public_key_to_jwk(key.public_key)["x"] == jwk["x"]
    assert thumbprint(key.public_key) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    # RFC 8037 A.4: the signature over "Example of Ed25519 signing".
    payload = b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
    assert b64url_encode(key.sign(payload)) == (
        "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
    )


@pytest.mark.parametrize(
    "bad",
    [
        "not a dict",
        {"kty": "RSA", "n": "x", "e": "AQAB"},
        {"kty": "oct", "k": "c2VjcmV0"},
        {"kty": "OKP", "crv": "X25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
        {"kty": "OKP", "crv": "Ed25519", "x": "AAAA"},
        {"kty": "EC", "crv": "P-384", "x": "AAAA", "y": "AAAA"},
        {"kty": "OKP", "crv": "Ed25519", "x": "é" * 43},  # non-ASCII x: not a 500
        # joserfc's own parameter errors are KeyInvalid too (they were raised as they came).
        {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
            "use": "x",
        },
    ],
)
def test_bad_jwks_are_rejected(bad: object) -> None:
    with pytest.raises(KeyInvalid):
        public_key_from_jwk(bad)


def test_public_import_refuses_private_jwk_and_private_import_needs_d() -> None:
    key = PrivateKey.generate(KeyType.P256)
    with pytest.raises(KeyInvalid):
        public_key_from_jwk(private_key_to_jwk(key))
    with pytest.raises(KeyInvalid):
        private_key_from_jwk(public_key_to_jwk(key.public_key))
    off_curve = public_key_to_jwk(key.public_key)
    off_curve["y"] = off_curve["x"]
    with pytest.raises(KeyInvalid):
        public_key_from_jwk(off_curve)


def _joserfc_verdict(jwk: dict[str, str]) -> bytes | None:
    # What the joserfc import makes of a JWK: the raw public key, or None when refused.
    try:
        return PublicKey.from_cryptography(jwk_module._import(jwk).public_key).raw()
    except KeyInvalid:
        return None


_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@given(
    x=st.one_of(
        st.binary(min_size=30, max_size=34).map(b64url_encode),
        st.text(alphabet=_B64URL + "=+/ ", min_size=40, max_size=46),
    ),
    extra=st.dictionaries(
        st.sampled_from(["kid", "alg", "use", "y", "key_ops"]), st.text(max_size=8), max_size=2
    ),
    crv=st.sampled_from(["Ed25519", "X25519", "ed25519"]),
)
def test_plain_ed25519_path_agrees_with_joserfc(x: str, extra: dict[str, str], crv: str) -> None:
    # The direct Ed25519 reading gives exactly joserfc's key, and declines (leaving the
    # verdict to joserfc) for everything it does not read itself.
    jwk = {"kty": "OKP", "crv": crv, "x": x, **extra}
    fast = jwk_module._plain_ed25519(tuple(sorted(jwk.items())))
    expected = _joserfc_verdict(jwk)
    readable = crv == "Ed25519" and set(jwk) <= {"kty", "crv", "x", "kid"} and _raw32(x)
    if readable:
        assert fast is not None
        assert fast.raw() == expected
    else:
        assert fast is None


def _raw32(x: str) -> bool:
    try:
        return len(jwk_module.b64url_decode(x)) == 32
    except Exception:
        return False


@pytest.mark.parametrize("key_type", list(KeyType))
def test_sign_many_splits_a_large_batch_over_threads(
    key_type: KeyType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(algorithms_module, "_signing_threads", lambda: 3)
    key = PrivateKey.generate(key_type)
    messages = [f"message {i}".encode() for i in range(101)]  # three shares, the last short
    signatures = key.sign_many(messages)
    assert len(signatures) == len(messages)
    for message, signature in zip(messages, signatures, strict=True):
        key.public_key.verify(key_type.jose_alg, message, signature)  # in order
    if key_type is KeyType.ED25519:  # deterministic: exactly the one-by-one signatures
        assert signatures == [key.sign(m) for m in messages]
    assert key.sign_many([]) == []
    assert len(key.sign_many(messages[:3])) == 3  # small batches stay on this thread
