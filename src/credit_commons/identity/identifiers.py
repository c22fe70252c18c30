"""Validation and canonical forms of Indian identifiers: Aadhaar, PAN, GSTIN, Udyam, mobile.

Every identifier that enters the platform goes through :func:`normalize` once, at the
boundary.  It returns the one canonical spelling (so that ``"2341 2341 2346"`` and
``"234123412346"`` pseudonymise to the same value) or raises :class:`IdentifierInvalid`,
which names the kind and the failed check but never repeats the value.

Validation here is *syntactic*: a well-formed Aadhaar number with a correct Verhoeff digit may
still not have been issued.  Whether an identifier exists is a question for its registry.

Sources (see ``tests/vectors/identity/README.md`` for the examples used in tests):

* Aadhaar: 12 digits, the first not 0 or 1, the last a Verhoeff check digit (UIDAI).  The
  Verhoeff scheme is J. Verhoeff, *Error Detecting Decimal Codes*, Mathematical Centre
  Tract 29, Amsterdam, 1969; the tables below are the standard ones (dihedral group D5,
  permutation (1 5 7 6 2 8 3 0 9 4)) as given in the "Verhoeff algorithm" Wikipedia article.
* PAN: ``AAAAA9999A``; the fourth character is the holder type, the serial runs 0001-9999
  (Income Tax Department, "Permanent Account Number (PAN)" tutorial).
* GSTIN: 2-digit state code, the holder's PAN, an entity number (1-9, A-Z), ``Z``, and a
  check character computed with the Luhn mod 36 scheme the GST Network uses.
* Udyam registration number: ``UDYAM-XX-00-0000000`` (Ministry of MSME, Udyam portal).
* Mobile: 10-digit national significant numbers beginning 6-9 (DoT National Numbering Plan),
  canonicalised to E.164 ``+91XXXXXXXXXX`` (ITU-T E.164).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from credit_commons.core.errors import ValidationError
from credit_commons.identity.errors import IdentifierInvalid

__all__ = [
    "GST_STATE_CODES",
    "PAN_HOLDER_TYPES",
    "IdentifierKind",
    "gstin_check_character",
    "normalize",
    "normalize_aadhaar",
    "normalize_gstin",
    "normalize_mobile",
    "normalize_pan",
    "normalize_udyam",
    "verhoeff_check_digit",
]


class IdentifierKind(StrEnum):
    """The kinds of identifier :func:`normalize` understands."""

    AADHAAR = "aadhaar"
    PAN = "pan"
    GSTIN = "gstin"
    UDYAM = "udyam"
    MOBILE = "mobile"


#: PAN fourth character -> holder status (Income Tax Department PAN tutorial).  Letters some
#: secondary sources add (``E`` for LLPs, ``K`` for "Krish" trusts) are not in the official
#: list and are rejected.
PAN_HOLDER_TYPES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "A": "Association of Persons (AOP)",
        "B": "Body of Individuals (BOI)",
        "C": "Company",
        "F": "Firm",
        "G": "Government",
        "H": "Hindu Undivided Family (HUF)",
        "J": "Artificial Juridical Person",
        "L": "Local Authority",
        "P": "Individual",
        "T": "Trust (AOP)",
    }
)

#: GST state and union-territory codes (first two characters of a GSTIN), as listed by the
#: GST portal.  25 (Daman and Diu) and 28 (Andhra Pradesh, before 2014) are no longer
#: assigned but GSTINs issued under them remain in circulation.
GST_STATE_CODES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "01": "Jammu and Kashmir",
        "02": "Himachal Pradesh",
        "03": "Punjab",
        "04": "Chandigarh",
        "05": "Uttarakhand",
        "06": "Haryana",
        "07": "Delhi",
        "08": "Rajasthan",
        "09": "Uttar Pradesh",
        "10": "Bihar",
        "11": "Sikkim",
        "12": "Arunachal Pradesh",
        "13": "Nagaland",
        "14": "Manipur",
        "15": "Mizoram",
        "16": "Tripura",
        "17": "Meghalaya",
        "18": "Assam",
        "19": "West Bengal",
        "20": "Jharkhand",
        "21": "Odisha",
        "22": "Chhattisgarh",
        "23": "Madhya Pradesh",
        "24": "Gujarat",
        "25": "Daman and Diu",
        "26": "Dadra and Nagar Haveli and Daman and Diu",
        "27": "Maharashtra",
        "28": "Andhra Pradesh (before 2014)",
        "29": "Karnataka",
        "30": "Goa",
        "31": "Lakshadweep",
        "32": "Kerala",
        "33": "Tamil Nadu",
        "34": "Puducherry",
        "35": "Andaman and Nicobar Islands",
        "36": "Telangana",
        "37": "Andhra Pradesh",
        "38": "Ladakh",
        "97": "Other Territory",
    }
)

# Longest input considered at all; anything longer is rejected before any pattern runs.
_MAX_INPUT: Final = 64

# -- Verhoeff (Verhoeff 1969; tables as in the Wikipedia article "Verhoeff algorithm") ------

# Multiplication table of the dihedral group D5.
_VERHOEFF_D: Final = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
# Row i is the permutation (1 5 7 6 2 8 3 0 9 4) applied i times; it repeats with period 8.
_VERHOEFF_P: Final = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)
# Inverse of each element of D5.
_VERHOEFF_INV: Final = (0, 4, 3, 2, 1, 5, 6, 7, 8, 9)

_DIGITS: Final = re.compile(r"[0-9]+", re.ASCII)


def _verhoeff_checksum(digits: str, offset: int) -> int:
    # Digits are processed right to left; position i uses permutation row (i + offset) % 8.
    check = 0
    for i, char in enumerate(reversed(digits)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[(i + offset) % 8][ord(char) - 48]]
    return check


def verhoeff_check_digit(payload: str) -> str:
    """The Verhoeff check digit to append to the decimal string ``payload``.

    Raises :class:`ValidationError` unless ``payload`` is a non-empty string of ASCII digits.
    """
    if not isinstance(payload, str) or not _DIGITS.fullmatch(payload):
        raise ValidationError("Verhoeff payload must be a string of ASCII digits")
    # With the check digit still to come, every payload digit sits one position further left.
    return str(_VERHOEFF_INV[_verhoeff_checksum(payload, 1)])


def _verhoeff_holds(number: str) -> bool:
    return _verhoeff_checksum(number, 0) == 0


# -- GSTIN check character (Luhn mod 36) -----------------------------------------------------

_ALPHABET36: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_GSTIN_BODY: Final = re.compile(r"[0-9A-Z]{14}", re.ASCII)


def gstin_check_character(first14: str) -> str:
    """The GSTIN check character (15th) for the first 14 characters.

    Luhn mod 36: each character's code point (0-9 -> 0-9, A-Z -> 10-35) is multiplied by 1
    at odd positions and 2 at even positions counted from the left, the product's base-36
    digits are summed, and the check code is ``(36 - total % 36) % 36``.

    Raises :class:`ValidationError` unless ``first14`` is 14 characters of ``0-9A-Z``.
    """
    if not isinstance(first14, str) or not _GSTIN_BODY.fullmatch(first14):
        raise ValidationError("GSTIN body must be 14 characters of 0-9 and A-Z")
    total = 0
    for position, char in enumerate(first14):
        product = _ALPHABET36.index(char) * (1 if position % 2 == 0 else 2)
        total += product // 36 + product % 36
    return _ALPHABET36[(36 - total % 36) % 36]


# -- normalisers -----------------------------------------------------------------------------


def _prepare(kind: IdentifierKind, value: object) -> str:
    """Common first step: a string, ASCII only after trimming, of bounded length."""
    if not isinstance(value, str):
        raise IdentifierInvalid(kind, "type")
    text = value.strip()
    if not text or len(text) > _MAX_INPUT or not text.isascii():
        raise IdentifierInvalid(kind, "format")
    return text


_AADHAAR: Final = re.compile(r"([0-9]{4})[ -]?([0-9]{4})[ -]?([0-9]{4})", re.ASCII)


def normalize_aadhaar(value: str) -> str:
    """The canonical 12-digit form of an Aadhaar number.

    Accepts the digits written together or in groups of four separated by one space or
    hyphen (``1234 5678 9012``).  Raises :class:`IdentifierInvalid` with reason ``format``
    (wrong shape, or a first digit of 0 or 1) or ``checksum`` (Verhoeff digit mismatch).
    """
    kind = IdentifierKind.AADHAAR
    match = _AADHAAR.fullmatch(_prepare(kind, value))
    if match is None:
        raise IdentifierInvalid(kind, "format")
    number = "".join(match.groups())
    # UIDAI does not issue Aadhaar numbers beginning with 0 or 1.
    if number[0] in "01":
        raise IdentifierInvalid(kind, "format")
    if not _verhoeff_holds(number):
        raise IdentifierInvalid(kind, "checksum")
    return number


_PAN: Final = re.compile(r"[A-Z]{5}[0-9]{4}[A-Z]", re.ASCII)


def _check_pan(kind: IdentifierKind, pan: str) -> None:
    if pan[3] not in PAN_HOLDER_TYPES:
        raise IdentifierInvalid(kind, "holder_type")
    # The sequential part runs from 0001 to 9999.
    if pan[5:9] == "0000":
        raise IdentifierInvalid(kind, "serial")


def normalize_pan(value: str) -> str:
    """The canonical (upper-case) form of a PAN.

    Raises :class:`IdentifierInvalid` with reason ``format`` (not ``AAAAA9999A``),
    ``holder_type`` (fourth character not in :data:`PAN_HOLDER_TYPES`) or ``serial``
    (digits ``0000``).  The tenth character is a check letter, but its algorithm is not
    published, so it cannot be verified here.
    """
    kind = IdentifierKind.PAN
    pan = _prepare(kind, value).upper()
    if not _PAN.fullmatch(pan):
        raise IdentifierInvalid(kind, "format")
    _check_pan(kind, pan)
    return pan


# State code, PAN, entity number (1-9 then A-Z: the n-th registration for this PAN in this
# state), the default character Z, and the check character.
_GSTIN: Final = re.compile(r"[0-9]{2}[A-Z]{5}[0-9]{4}[A-Z][1-9A-Z]Z[0-9A-Z]", re.ASCII)


def normalize_gstin(value: str) -> str:
    """The canonical (upper-case) form of a PAN-based GSTIN.

    1. Shape: 2 digits, a PAN, an entity number ``1-9A-Z``, ``Z``, a check character.
    2. The state code is in :data:`GST_STATE_CODES`.
    3. The embedded PAN passes :func:`normalize_pan`'s holder-type and serial checks.
    4. The check character equals :func:`gstin_check_character` of the first 14.

    Raises :class:`IdentifierInvalid` with reason ``format``, ``state_code``,
    ``holder_type``, ``serial`` or ``checksum`` respectively.  Registrations that are not
    PAN-based (TDS/TCS deductors, UN bodies, non-resident online service providers) have
    other layouts and are rejected.
    """
    kind = IdentifierKind.GSTIN
    gstin = _prepare(kind, value).upper()
    if not _GSTIN.fullmatch(gstin):
        raise IdentifierInvalid(kind, "format")
    if gstin[:2] not in GST_STATE_CODES:
        raise IdentifierInvalid(kind, "state_code")
    _check_pan(kind, gstin[2:12])
    if gstin[14] != gstin_check_character(gstin[:14]):
        raise IdentifierInvalid(kind, "checksum")
    return gstin


_UDYAM: Final = re.compile(r"UDYAM-[A-Z]{2}-[0-9]{2}-[0-9]{7}", re.ASCII)


def normalize_udyam(value: str) -> str:
    """The canonical (upper-case) form of an Udyam registration number.

    The layout is ``UDYAM-XX-00-0000000``: a two-letter state code, a two-digit district
    code and a seven-digit serial.  The Ministry of MSME publishes no check digit and no
    normative list of the state letters, so only the layout is checked.  Raises
    :class:`IdentifierInvalid` with reason ``format``.
    """
    kind = IdentifierKind.UDYAM
    udyam = _prepare(kind, value).upper()
    if not _UDYAM.fullmatch(udyam):
        raise IdentifierInvalid(kind, "format")
    return udyam


_MOBILE_SEPARATORS: Final = re.compile(r"[ -]")
_MOBILE: Final = re.compile(r"(\+91|91|0)?([0-9]{10})", re.ASCII)


def normalize_mobile(value: str) -> str:
    """The E.164 form ``+91XXXXXXXXXX`` of an Indian mobile number.

    Spaces and hyphens are ignored.  The number may carry the country code (``+91`` or
    ``91``) or the trunk prefix ``0`` before its ten digits, and those ten digits must
    begin with 6, 7, 8 or 9.  Raises :class:`IdentifierInvalid` with reason ``prefix``
    (an international number outside +91) or ``format`` (wrong length or characters, or
    a first digit below 6).
    """
    kind = IdentifierKind.MOBILE
    compact = _MOBILE_SEPARATORS.sub("", _prepare(kind, value))
    if compact.startswith("+") and not compact.startswith("+91"):
        raise IdentifierInvalid(kind, "prefix")
    match = _MOBILE.fullmatch(compact)
    if match is None:
        raise IdentifierInvalid(kind, "format")
    national = match.group(2)
    if national[0] not in "6789":
        raise IdentifierInvalid(kind, "format")
    return "+91" + national


_NORMALIZERS: Final[Mapping[IdentifierKind, Callable[[str], str]]] = MappingProxyType(
    {
        IdentifierKind.AADHAAR: normalize_aadhaar,
        IdentifierKind.PAN: normalize_pan,
        IdentifierKind.GSTIN: normalize_gstin,
        IdentifierKind.UDYAM: normalize_udyam,
        IdentifierKind.MOBILE: normalize_mobile,
    }
)


def normalize(kind: IdentifierKind, value: str) -> str:
    """The canonical form of ``value`` as an identifier of ``kind``.

    This is the single entry point later code uses before pseudonymising an identifier.
    Raises :class:`IdentifierInvalid` (naming the kind and the failed check, never the
    value) and :class:`ValidationError` for an unknown ``kind``.
    """
    try:
        normalizer = _NORMALIZERS[IdentifierKind(kind)]
    except ValueError as e:
        raise ValidationError("unknown identifier kind") from e
    return normalizer(value)
