"""Unit tests of credit_commons.ledger.committee (t-of-n BLS threshold checkpoint signatures).

External vectors, inline because they are few:

* RFC 9380 Appendix J.10.1 (``BLS12381G2_XMD:SHA-256_SSWU_RO_``), msg "" and
  "abcdef0123456789": the library's hash_to_curve, which the committee uses.
* ethereum/bls12-381-tests ``sign_case_c82df61aa3ee60fb`` (also in consensus-spec-tests
  phase0 bls/sign): the private key, public key and signature for 32 zero bytes under
  ``BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_`` — the same G1-key/G2-signature
  pipeline and compressed encodings, with that scheme's DST swapped in.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import random
from types import ModuleType

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from py_arkworks_bls12381 import G1Point, G2Point

from credit_commons.core.encoding import b64_decode, b64_encode
from credit_commons.core.errors import IntegrityError, ValidationError
from credit_commons.ledger import committee, committee_errors, note
from credit_commons.ledger.checkpoint import Checkpoint, verify_checkpoint
from credit_commons.ledger.committee import (
    CommitteeVerifier,
    GroupPublicKey,
    KeyShare,
    MemberKey,
    PartialSignature,
    combine,
    deal,
)
from credit_commons.ledger.committee_errors import (
    CommitteeKeyInvalid,
    CommitteeNotEnoughShares,
    CommitteeParametersInvalid,
    CommitteeShareInvalid,
    CommitteeSignatureInvalid,
    CommitteeSignatureMissing,
)
from credit_commons.ledger.errors import NoteInvalid, NoteSignatureInvalid, SignatureMissing
from credit_commons.ledger.rfc6962 import leaf_hash

R = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001
ORIGIN = "log.example/credit"
NAME = "committee.example/checkpoints"
LOG = note.Ed25519Signer.from_private_key(
    ORIGIN, Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
)
BODY = Checkpoint(ORIGIN, 1000, leaf_hash(b"r")).format()
MESSAGE = BODY.encode("utf-8")


def _rng(seed: int) -> random.Random:
    return random.Random(seed)


def _committee(t: int, n: int, seed: int = 7) -> tuple[GroupPublicKey, list[KeyShare]]:
    return deal(t, n, rng=_rng(seed).randbytes)


def _members(shares: list[KeyShare]) -> list[MemberKey]:
    return [s.member for s in shares]


def _group_secret(shares: list[KeyShare]) -> int:
    """A naive reference: Lagrange-interpolate the share secrets at 0 with Python ints."""
    total = 0
    for s in shares:
        weight = 1
        for o in shares:
            if o.index != s.index:
                weight = weight * o.index * pow(o.index - s.index, -1, R) % R
        total = (total + weight * s.secret) % R
    return total


GROUP, SHARES = _committee(3, 5)
MEMBERS = _members(SHARES)
PARTIALS = [s.sign(MESSAGE) for s in SHARES]
# What f(0) itself would sign: one "share" at index 1 holding the group secret.
REFERENCE = KeyShare(1, _group_secret(SHARES[:3])).sign(MESSAGE).signature


def _combine(partials: list[PartialSignature], t: int = 3, message: bytes = MESSAGE) -> bytes:
    return combine(partials, t, message=message, group=GROUP, members=MEMBERS)


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


# --- library and scheme vectors -------------------------------------------------------------


@pytest.mark.parametrize(
    ("msg", "xy"),
    [
        (
            b"",
            "0141ebfbdca40eb85b87142e130ab689c673cf60f1a3e98d69335266f30d9b8d4ac44c1038e9dcdd5393"
            "faf5c41fb78a05cb8437535e20ecffaef7752baddf98034139c38452458baeefab379ba13dff5bf5dd71"
            "b72418717047f5b0f37da03d0503921d7f6a12805e72940b963c0cf3471c7b2a524950ca195d11062e"
            "e75ec076daf2d4bc358c4b190c0c98064fdd9212424ac32561493f3fe3c260708a12b7c620e7be0009"
            "9a974e259ddc7d1f6395c3c811cdd19f1e8dbf3e9ecfdcbab8d6",
        ),
        (
            b"abcdef0123456789",
            "121982811d2491fde9ba7ed31ef9ca474f0e1501297f68c298e9f4c0028add35aea8bb83d53c08cfc007"
            "c1e005723cd0190d119345b94fbd15497bcba94ecf7db2cbfd1e1fe7da034d26cbba169fb3968288b3"
            "fafb265f9ebd380512a71c3f2c05571a0f8d3c08d094576981f4a3b8eda0a8e771fcdcc8ecceaf1356"
            "a6acf17574518acb506e435b639353c2e14827c80bb5e7572275c567462d91807de765611490205a94"
            "1a5a6af3b1691bfe596c31225d3aabdf15faff860cb4ef17c7c3be",
        ),
    ],
)
def test_hash_to_curve_is_rfc9380(msg: bytes, xy: str) -> None:
    dst = b"QUUX-V01-CS02-with-BLS12381G2_XMD:SHA-256_SSWU_RO_"
    assert G2Point.hash_to_curve(msg, dst).to_xy_bytes_be().hex() == xy


def test_sign_and_verify_match_eth2_vector(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(committee, "DST", b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_")
    secret = 0x263DBD792F5B1BE47ED85F8938C0F29586AF0D3AC7B977F21C278FE1462040E3
    public = bytes.fromhex(
        "a491d1b0ecd9bb917989f0e74f0dea0422eac4a873e5e2644f368dffb9a6e20fd6e10c1b77654d067c06"
        "18f6e5a7f79a"
    )
    signature = bytes.fromhex(
        "b6ed936746e01f8ecf281f020953fbf1f01debd5657c4a383940b020b26507f6076334f91e2366c96e9a"
        "b279fb5158090352ea1c5b0c9274504f4f0e7053af24802e51e4568d164fe986834f41e55c8e850ce1f9"
        "8458c0cfc9ab380b55285a55"
    )
    share = KeyShare(1, secret)
    assert share.public_key == public
    assert share.sign(bytes(32)).signature == signature
    GroupPublicKey(public).verify(bytes(32), signature)
    with pytest.raises(CommitteeSignatureInvalid):
        GroupPublicKey(public).verify(bytes(31), signature)


def test_own_dst_known_answer() -> None:
    # A regression vector for this project's DST: changing the DST changes every signature.
    assert committee.DST.endswith(b"_BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_NUL_")
    signed = KeyShare(1, 1).sign(b"credit commons\n").signature
    assert signed == G2Point.hash_to_curve(b"credit commons\n", committee.DST).to_compressed_bytes()
    assert signed != KeyShare(1, 1).sign(b"credit commons").signature


# --- deal, sign, combine ----------------------------------------------------------------------


@pytest.mark.parametrize(("t", "n"), [(1, 1), (2, 3), (3, 5), (5, 7)])
def test_threshold_signature_verifies_under_group_key(t: int, n: int) -> None:
    group, shares = _committee(t, n, seed=t * 100 + n)
    assert len(shares) == n
    assert [s.index for s in shares] == list(range(1, n + 1))
    assert len({s.public_key for s in shares}) == n
    chosen = random.Random(n).sample(shares, t)
    partials = [s.sign(MESSAGE) for s in chosen]
    signature = combine(partials, t, message=MESSAGE, group=group, members=_members(shares))
    assert len(signature) == committee.SIGNATURE_SIZE
    group.verify(MESSAGE, signature)
    # The group key is f(0)·P1 and the signature what f(0) would sign itself.
    secret = _group_secret(shares[:t])
    assert GroupPublicKey(KeyShare(1, secret).public_key) == group
    assert signature == KeyShare(1, secret).sign(MESSAGE).signature


def test_every_t_subset_of_3_of_5_gives_the_same_signature() -> None:
    subsets = list(itertools.combinations(PARTIALS, 3))
    assert len(subsets) == 10
    assert {_combine(list(subset)) for subset in subsets} == {REFERENCE}
    # More than t partials interpolate to the same point too, in any order.
    assert _combine(PARTIALS[::-1]) == REFERENCE


@settings(max_examples=15, deadline=None)
@given(st.sets(st.integers(1, 5), min_size=3))
def test_any_quorum_combines_to_the_reference(indexes: set[int]) -> None:
    assert _combine([PARTIALS[i - 1] for i in sorted(indexes)]) == REFERENCE


@settings(max_examples=10, deadline=None)
@given(st.sets(st.integers(1, 5), max_size=2))
def test_fewer_than_t_never_combine(indexes: set[int]) -> None:
    with pytest.raises(CommitteeNotEnoughShares):
        _combine([PARTIALS[i - 1] for i in sorted(indexes)])


def test_t_minus_one_shares_fail() -> None:
    for t, n in [(2, 3), (5, 7)]:
        group, shares = _committee(t, n)
        partials = [s.sign(MESSAGE) for s in shares[: t - 1]]
        with pytest.raises(CommitteeNotEnoughShares) as caught:
            combine(partials, t, message=MESSAGE, group=group, members=_members(shares))
        assert caught.value.code == "committee.not_enough_shares"
        assert isinstance(caught.value, ValidationError)


def test_deal_is_reproducible_with_a_seeded_rng_and_random_by_default() -> None:
    assert _committee(3, 5) == (GROUP, SHARES)
    assert _committee(3, 5, seed=8)[0] != GROUP
    assert deal(2, 3)[0] != deal(2, 3)[0]


def test_deal_rejects_impossible_shapes_and_broken_rngs() -> None:
    for t, n in [(0, 3), (4, 3), (1, 0), (2, 256), (True, 3), (2, 3.0)]:
        with pytest.raises(CommitteeParametersInvalid):
            deal(t, n)  # type: ignore[arg-type]
    with pytest.raises(CommitteeParametersInvalid, match="zero"):
        deal(2, 3, rng=bytes)
    with pytest.raises(CommitteeParametersInvalid, match="bytes"):
        deal(2, 3, rng=lambda k: bytes(k - 1))


# --- rejected partials and signatures --------------------------------------------------------


def test_duplicate_and_out_of_range_partials_are_rejected() -> None:
    with pytest.raises(CommitteeShareInvalid, match="two partial"):
        _combine([PARTIALS[0], PARTIALS[1], PARTIALS[0]])
    _, seven = _committee(3, 7)
    with pytest.raises(CommitteeShareInvalid, match="names no member"):
        _combine([*PARTIALS[:2], seven[6].sign(MESSAGE)])
    for index in (0, 256, -1, True):
        with pytest.raises(CommitteeShareInvalid):
            PartialSignature(index, PARTIALS[0].signature)


def test_a_tampered_partial_is_rejected() -> None:
    other_message = PARTIALS[1].index, SHARES[1].sign(MESSAGE + b"x").signature
    wrong_member = PARTIALS[1].index, PARTIALS[2].signature
    for index, signature in (other_message, wrong_member):
        with pytest.raises(CommitteeShareInvalid) as caught:
            _combine([PARTIALS[0], PartialSignature(index, signature), PARTIALS[3]])
        assert caught.value.extra == {"member_index": 2}
        assert isinstance(caught.value, IntegrityError)
    with pytest.raises(CommitteeShareInvalid):
        committee.verify_partial(PARTIALS[0], MESSAGE, MEMBERS[1])
    committee.verify_partial(PARTIALS[0], MESSAGE, MEMBERS[0])
    # A flipped bit is caught when the partial is decoded or, failing that, when verified.
    for bit in range(0, 8 * committee.SIGNATURE_SIZE, 97):
        with pytest.raises(CommitteeShareInvalid):
            _combine([PartialSignature(1, _flip(PARTIALS[0].signature, bit)), *PARTIALS[1:3]])
    # A different valid point under the right index.
    doubled = SHARES[0].sign(MESSAGE + b"other").signature
    with pytest.raises(CommitteeShareInvalid):
        _combine([PartialSignature(1, doubled), *PARTIALS[1:3]])


def test_a_tampered_message_signature_or_group_key_fails() -> None:
    GROUP.verify(MESSAGE, REFERENCE)
    with pytest.raises(CommitteeSignatureInvalid):
        GROUP.verify(MESSAGE.replace(b"1000", b"1001"), REFERENCE)
    for bit in (0, 5, 100, 383, 700, 767):
        with pytest.raises(CommitteeSignatureInvalid):
            GROUP.verify(MESSAGE, _flip(REFERENCE, bit))
    other_group, other_shares = _committee(3, 5, seed=99)
    with pytest.raises(CommitteeSignatureInvalid):
        other_group.verify(MESSAGE, REFERENCE)
    # Partials from one committee against another's member keys, or the right members
    # under the wrong group key.
    with pytest.raises(CommitteeShareInvalid):
        _combine([s.sign(MESSAGE) for s in other_shares[:3]])
    with pytest.raises(CommitteeSignatureInvalid, match="does not verify"):
        combine(PARTIALS[:3], 3, message=MESSAGE, group=other_group, members=MEMBERS)


def test_combine_rejects_a_bad_member_list() -> None:
    for members in (MEMBERS[::-1], MEMBERS[1:], MEMBERS[:2]):
        with pytest.raises(CommitteeParametersInvalid):
            combine(PARTIALS[:3], 3, message=MESSAGE, group=GROUP, members=members)


# --- encodings ---------------------------------------------------------------------------------

NON_SUBGROUP_G1 = bytes([0x80]) + bytes(46) + bytes([4])
NON_SUBGROUP_G2 = bytes([0x80]) + bytes(94) + bytes([2])


def test_non_subgroup_fixtures_are_on_the_curve_outside_the_subgroup() -> None:
    assert not G1Point.from_compressed_bytes_unchecked(NON_SUBGROUP_G1).is_in_subgroup()
    assert not G2Point.from_compressed_bytes_unchecked(NON_SUBGROUP_G2).is_in_subgroup()


def test_round_trips() -> None:
    assert GroupPublicKey(GROUP.public_key) == GROUP
    assert len(GROUP.public_key) == committee.PUBLIC_KEY_SIZE
    for share, partial in zip(SHARES, PARTIALS, strict=True):
        assert KeyShare.from_bytes(share.to_bytes()) == share
        assert PartialSignature.from_bytes(partial.to_bytes()) == partial
        assert MemberKey(share.index, share.public_key) == share.member
    assert str(SHARES[0].secret) not in repr(SHARES[0])
    verifier = CommitteeVerifier(NAME, GROUP)
    assert CommitteeVerifier.from_vkey(verifier.vkey) == verifier


def test_key_id_and_vkey_follow_signed_note_with_type_0xff() -> None:
    verifier = CommitteeVerifier(NAME, GROUP)
    material = b"\xff" + committee.SIGNATURE_TYPE_ID + GROUP.public_key
    digest = hashlib.sha256(NAME.encode() + b"\n" + material).digest()
    assert verifier.key_id == int.from_bytes(digest[:4], "big")
    assert verifier.vkey == f"{NAME}+{verifier.key_id:08x}+{b64_encode(material)}"
    assert note.split_vkey(verifier.vkey)[2] == committee.SIGNATURE_TYPE == 0xFF


@pytest.mark.parametrize(
    "public",
    [
        b"",
        bytes(48),  # no compression flag
        bytes([0xC0]) + bytes(47),  # the identity
        bytes([0xE0]) + bytes(47),  # a non-canonical identity the library accepts
        bytes([0xC0]) + bytes(46) + b"\x01",  # another one
        NON_SUBGROUP_G1,
        GROUP.public_key[:-1],
        GROUP.public_key + b"\x00",
        _flip(GROUP.public_key, 7),  # the compression flag cleared
        PARTIALS[0].signature,  # a G2 point
    ],
)
def test_malformed_public_keys_are_rejected(public: bytes) -> None:
    with pytest.raises(CommitteeKeyInvalid) as caught:
        GroupPublicKey(public)
    assert caught.value.code == "committee.key_invalid"
    with pytest.raises(CommitteeKeyInvalid):
        MemberKey(1, public)


@pytest.mark.parametrize(
    "signature",
    [
        bytes(96),
        bytes([0xC0]) + bytes(95),
        bytes([0xE0]) + bytes(95),
        NON_SUBGROUP_G2,
        REFERENCE[:-1],
        GROUP.public_key,
    ],
)
def test_malformed_signatures_are_rejected(signature: bytes) -> None:
    with pytest.raises(CommitteeSignatureInvalid):
        GROUP.verify(MESSAGE, signature)
    with pytest.raises(CommitteeShareInvalid):
        PartialSignature(1, signature)


def test_malformed_serialised_shares_and_partials_are_rejected() -> None:
    for data in (b"", SHARES[0].to_bytes()[:-1], b"\x00" + bytes(32), b"\x01" + bytes(32)):
        with pytest.raises(CommitteeKeyInvalid):
            KeyShare.from_bytes(data)
    with pytest.raises(CommitteeKeyInvalid):
        KeyShare.from_bytes(b"\x01" + R.to_bytes(32, "big"))
    for data in (b"", PARTIALS[0].to_bytes()[:-1], b"\x00" + PARTIALS[0].signature):
        with pytest.raises(CommitteeShareInvalid):
            PartialSignature.from_bytes(data)


def test_malformed_vkeys_are_rejected() -> None:
    verifier = CommitteeVerifier(NAME, GROUP)
    name, key_id, _, material = note.split_vkey(verifier.vkey)
    other_id = b"X" + committee.SIGNATURE_TYPE_ID[1:]  # an unknown identifier, same length
    bad = [
        LOG.verifier().vkey,  # an Ed25519 key
        verifier.vkey.replace(f"+{key_id:08x}+", "+00000000+"),
        verifier.vkey + "=",
        note.format_vkey(name, 0xFF, material[1:]),  # identifier truncated
        note.format_vkey(name, 0xFF, other_id + GROUP.public_key),
        note.format_vkey(name, 0xFF, committee.SIGNATURE_TYPE_ID + bytes([0xC0]) + bytes(47)),
        note.format_vkey(name, 0xFE, material),
        "no-plus-signs",
    ]
    for vkey in bad:
        with pytest.raises(CommitteeKeyInvalid):
            CommitteeVerifier.from_vkey(vkey)
    for bad_name in ("", "has space", "a+b"):
        with pytest.raises(CommitteeKeyInvalid):
            CommitteeVerifier(bad_name, GROUP)


# --- on the signed note ------------------------------------------------------------------------


def _logged() -> str:
    return note.sign_note(BODY, LOG)


def test_committee_line_round_trip_and_plain_verifiers_ignore_it() -> None:
    signed = committee.add_committee_signature(_logged(), NAME, REFERENCE, group=GROUP)
    assert signed.startswith(_logged())
    line = signed.splitlines()[-1]
    assert line.startswith(f"\u2014 {NAME} ")
    assert b64_decode(line.split(" ")[-1])[4:] == REFERENCE
    # A plain signed-note / checkpoint verifier that does not know the committee key.
    assert verify_checkpoint(signed, LOG.verifier()) == Checkpoint.parse(BODY)
    opened = note.verify_note(signed, [LOG.verifier()])
    assert [s.name for s in opened.unverified] == [NAME]
    # The committee key alone, by vkey or verifier, and both keys together.
    verifier = CommitteeVerifier(NAME, GROUP)
    for key in (verifier.vkey, verifier):
        assert committee.verify_committee_signature(signed, key).text == BODY
    both = note.verify_note(signed.encode(), [LOG.verifier(), verifier])
    assert len(both.verified) == 2
    # Adding again replaces the line rather than duplicating it.
    assert committee.add_committee_signature(signed, NAME, REFERENCE, group=GROUP) == signed


def test_add_refuses_a_signature_that_does_not_verify_and_a_bare_body() -> None:
    other = KeyShare(1, 5).sign(MESSAGE).signature
    with pytest.raises(CommitteeSignatureInvalid):
        committee.add_committee_signature(_logged(), NAME, other, group=GROUP)
    with pytest.raises(NoteInvalid):
        committee.add_committee_signature(BODY, NAME, REFERENCE, group=GROUP)
    with pytest.raises(CommitteeKeyInvalid):
        committee.add_committee_signature(_logged(), "bad name", REFERENCE, group=GROUP)


def test_verify_committee_signature_rejects_tampering_and_absence() -> None:
    signed = committee.add_committee_signature(_logged(), NAME, REFERENCE, group=GROUP)
    vkey = CommitteeVerifier(NAME, GROUP).vkey
    tampered = signed.replace("\n1000\n", "\n1001\n")
    with pytest.raises(CommitteeSignatureInvalid) as caught:
        committee.verify_committee_signature(tampered, vkey)
    assert isinstance(caught.value, NoteSignatureInvalid)
    assert caught.value.code == "committee.signature_invalid"
    assert caught.value.extra["key_name"] == NAME
    # A line by the committee key whose signature was swapped for another valid point.
    parsed = note.parse_note(signed)
    forged = note.Signature(NAME, parsed.signatures[-1].key_id, PARTIALS[0].signature)
    with pytest.raises(CommitteeSignatureInvalid):
        committee.verify_committee_signature(parsed.with_signatures(forged).format(), vkey)
    # No line at all, and a line by the same name under another group key (so another ID).
    other_group, _ = _committee(3, 5, seed=99)
    for data, key in ((_logged(), vkey), (signed, CommitteeVerifier(NAME, other_group).vkey)):
        with pytest.raises(CommitteeSignatureMissing) as missing:
            committee.verify_committee_signature(data, key)
        assert isinstance(missing.value, SignatureMissing)
        assert missing.value.code == "committee.signature_missing"


def test_end_to_end_checkpoint_flow() -> None:
    group, shares = _committee(2, 3, seed=3)
    logged = _logged()
    text = note.parse_note(logged).text.encode("utf-8")
    partials = [shares[2].sign(text), shares[0].sign(text)]
    signature = combine(partials, 2, message=text, group=group, members=_members(shares))
    signed = committee.add_committee_signature(logged, NAME, signature, group=group)
    committee.verify_committee_signature(signed, CommitteeVerifier(NAME, group).vkey)
    verify_checkpoint(signed, LOG.verifier(), origin=ORIGIN)


def test_error_codes_are_stable() -> None:
    codes = {
        CommitteeSignatureInvalid: "committee.signature_invalid",
        CommitteeSignatureMissing: "committee.signature_missing",
        CommitteeNotEnoughShares: "committee.not_enough_shares",
        CommitteeShareInvalid: "committee.share_invalid",
        CommitteeKeyInvalid: "committee.key_invalid",
        CommitteeParametersInvalid: "committee.parameters_invalid",
    }
    for error, code in codes.items():
        assert error.code == code
    for error in (CommitteeSignatureInvalid, CommitteeShareInvalid, CommitteeKeyInvalid):
        assert issubclass(error, IntegrityError)
    for error in (CommitteeNotEnoughShares, CommitteeParametersInvalid):
        assert issubclass(error, ValidationError)


@pytest.mark.parametrize("module", [committee, committee_errors])
def test_public_names_exist_and_are_documented(module: ModuleType) -> None:
    for name in module.__all__:
        value = getattr(module, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            # A dataclass without a docstring gets its signature as one; that does not count.
            assert not (inspect.getdoc(value) or f"{name}(").startswith(f"{name}("), name
