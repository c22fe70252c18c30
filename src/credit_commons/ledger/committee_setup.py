"""The checkpoint committee's public description and a member's share file (trusted dealer).

A dealer (``commons committee deal``) runs :func:`committee.deal` once and writes:

- the **group file** (public), ``credit-commons-committee/v1``: the committee's note key
  name, threshold ``t``, the group key and every member's public key, in index order —
  what the log registers (``commons committee register``) and what a verifier's group
  vkey is computed from;
- one **share file** per member (secret), ``credit-commons-committee-share/v1``: the group
  file's members plus that member's index and 33-byte key share.  The member imports it
  into its own node (``commons committee member import``), which wraps the share under its
  master key; the dealer then destroys the files and forgets the group secret.

Parsing checks everything a file claims: each key passes KeyValidate, the member list is
complete, ``1 <= t <= n``, and a share's public key is the key listed at its index.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from credit_commons.core.encoding import JsonObject, b64_decode, b64_encode
from credit_commons.core.errors import CommonsError
from credit_commons.ledger import committee
from credit_commons.ledger.committee_errors import CommitteeKeyInvalid, CommitteeParametersInvalid

__all__ = [
    "GROUP_FORMAT",
    "NAME_PATTERN",
    "SHARE_FORMAT",
    "CommitteeGroup",
    "MemberShare",
    "deal_files",
]

GROUP_FORMAT = "credit-commons-committee/v1"
SHARE_FORMAT = "credit-commons-committee-share/v1"
# A signed-note key name that is also a spine Token (the equivocation event names it).
NAME_PATTERN = re.compile(r"[A-Za-z0-9._:#/=-]{1,128}")


@dataclass(frozen=True)
class CommitteeGroup:
    """A committee's public description; valid once built.

    Raises :class:`CommitteeKeyInvalid` for a bad name or key and
    :class:`CommitteeParametersInvalid` for an impossible threshold.
    """

    name: str
    threshold: int
    group_key: bytes
    member_keys: tuple[bytes, ...]
    group: committee.GroupPublicKey = field(init=False, repr=False, compare=False)
    members: tuple[committee.MemberKey, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not NAME_PATTERN.fullmatch(self.name):
            raise CommitteeKeyInvalid(
                "a committee name is 1-128 characters from [A-Za-z0-9._:#/=-]"
            )
        object.__setattr__(self, "member_keys", tuple(self.member_keys))
        n = len(self.member_keys)
        t = self.threshold
        if (
            isinstance(t, bool)
            or not isinstance(t, int)
            or not 1 <= t <= n <= committee.MAX_MEMBERS
        ):
            raise CommitteeParametersInvalid(f"need 1 <= t <= n <= {committee.MAX_MEMBERS}")
        object.__setattr__(self, "group", committee.GroupPublicKey(self.group_key))
        members = tuple(committee.MemberKey(i, k) for i, k in enumerate(self.member_keys, 1))
        if len({m.public_key for m in members}) != n:
            raise CommitteeKeyInvalid("two members have the same key")
        object.__setattr__(self, "members", members)

    @property
    def size(self) -> int:
        """``n``, the number of members."""
        return len(self.member_keys)

    @property
    def verifier(self) -> committee.CommitteeVerifier:
        """The signed-note verifier of the committee's line (its vkey is the group vkey)."""
        return committee.CommitteeVerifier(self.name, self.group)

    @property
    def vkey(self) -> str:
        """The group vkey ``<name>+<hex id>+base64(0xff || ID || group key)``."""
        return self.verifier.vkey

    def member(self, index: int) -> committee.MemberKey:
        """Member ``index``'s key; raises :class:`CommitteeKeyInvalid` for no such member."""
        if isinstance(index, bool) or not isinstance(index, int) or not 1 <= index <= self.size:
            raise CommitteeKeyInvalid(f"the committee has no member {index!r}")
        return self.members[index - 1]

    def to_json(self) -> JsonObject:
        """The group file's JSON."""
        return {
            "format": GROUP_FORMAT,
            "name": self.name,
            "threshold": self.threshold,
            "members": self.size,
            "group_key": b64_encode(self.group_key),
            "member_keys": [b64_encode(k) for k in self.member_keys],
            "vkey": self.vkey,
        }

    @classmethod
    def from_json(cls, data: object) -> CommitteeGroup:
        """Parse a group (or share) file's JSON; raises :class:`CommitteeKeyInvalid` or
        :class:`CommitteeParametersInvalid`."""
        if not isinstance(data, dict) or data.get("format") not in (GROUP_FORMAT, SHARE_FORMAT):
            raise CommitteeKeyInvalid(f"not a {GROUP_FORMAT} document")
        try:
            name, threshold = data["name"], data["threshold"]
            keys = data["member_keys"]
            if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
                raise CommitteeKeyInvalid("member_keys must be a list of base64 keys")
            if data.get("members", len(keys)) != len(keys):
                raise CommitteeParametersInvalid("members does not count member_keys")
            group = cls(
                name, threshold, b64_decode(data["group_key"]), tuple(b64_decode(k) for k in keys)
            )
        except KeyError as e:
            raise CommitteeKeyInvalid(f"missing member {e.args[0]!r}") from e
        except CommonsError as e:
            if isinstance(e, CommitteeKeyInvalid | CommitteeParametersInvalid):
                raise
            raise CommitteeKeyInvalid(f"malformed committee document: {e.detail}") from e
        vkey = data.get("vkey")
        if vkey is not None and vkey != group.vkey:
            raise CommitteeKeyInvalid("the document's vkey is not its group key's")
        return group


@dataclass(frozen=True)
class MemberShare:
    """A member's secret share with the committee it belongs to; valid once built.

    Raises :class:`CommitteeKeyInvalid` when the share's public key is not the one the
    group lists at its index.  ``repr`` never shows the share.
    """

    group: CommitteeGroup
    share: committee.KeyShare = field(repr=False)

    def __post_init__(self) -> None:
        if self.group.member(self.share.index).public_key != self.share.public_key:
            raise CommitteeKeyInvalid(
                f"the share is not member {self.share.index}'s key in this committee"
            )

    @property
    def index(self) -> int:
        """The member's index ``1..n``."""
        return self.share.index

    def to_json(self) -> JsonObject:
        """The share file's JSON (secret)."""
        return {
            **self.group.to_json(),
            "format": SHARE_FORMAT,
            "index": self.share.index,
            "share": b64_encode(self.share.to_bytes()),
        }

    @classmethod
    def from_json(cls, data: object) -> MemberShare:
        """Parse a share file's JSON; raises :class:`CommitteeKeyInvalid`.  Errors never
        repeat the share."""
        if not isinstance(data, dict) or data.get("format") != SHARE_FORMAT:
            raise CommitteeKeyInvalid(f"not a {SHARE_FORMAT} document")
        group = CommitteeGroup.from_json(data)
        try:
            share = committee.KeyShare.from_bytes(b64_decode(data.get("share", "")))
        except CommonsError as e:
            raise CommitteeKeyInvalid("the share is not a 33-byte key share") from e
        if data.get("index") != share.index:
            raise CommitteeKeyInvalid("index does not match the share")
        return cls(group, share)


def deal_files(name: str, threshold: int, members: int) -> tuple[CommitteeGroup, list[MemberShare]]:
    """A fresh t-of-n committee: the group and each member's share (trusted dealer,
    :func:`committee.deal`); raises :class:`CommitteeParametersInvalid` or
    :class:`CommitteeKeyInvalid`."""
    group_key, shares = committee.deal(threshold, members)
    keys: Sequence[bytes] = [s.public_key for s in shares]
    group = CommitteeGroup(name, threshold, group_key.public_key, tuple(keys))
    return group, [MemberShare(group, s) for s in shares]
