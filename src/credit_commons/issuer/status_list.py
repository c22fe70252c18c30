"""The status-list encodings, at the path the published vector tests import.

The code is ``formats/status_list.py`` (IETF Token Status List) and
``formats/bitstring_status_list.py`` (W3C Bitstring Status List); ``tests/vectors`` is never
edited, so its import path is kept here.  Other code imports ``formats``.
"""

from credit_commons.formats.bitstring_status_list import BitstringStatusList
from credit_commons.formats.status_list import (
    BITSTRING_MIN_ENTRIES,
    BITSTRING_STATUS_SIZE_MAX,
    DEFAULT_MAX_DECOMPRESSED_BYTES,
    TOKEN_STATUS_LIST_BITS,
    StatusList,
    TokenStatus,
)

__all__ = [
    "BITSTRING_MIN_ENTRIES",
    "BITSTRING_STATUS_SIZE_MAX",
    "DEFAULT_MAX_DECOMPRESSED_BYTES",
    "TOKEN_STATUS_LIST_BITS",
    "BitstringStatusList",
    "StatusList",
    "TokenStatus",
]
