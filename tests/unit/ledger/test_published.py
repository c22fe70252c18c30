"""The published-checkpoint record (kept outside the database) and the gap it reveals."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from credit_commons.ledger.continuity import Claim, find_gap
from credit_commons.ledger.errors import LogDiverged
from credit_commons.ledger.published import PublishedFile, PublishedFileInvalid
from credit_commons.ledger.recovery import tile_path
from credit_commons.ledger.rfc6962 import Hash

NOW = datetime(2026, 12, 6, tzinfo=UTC)
A, B, C = Hash(b"a" * 32), Hash(b"b" * 32), Hash(b"c" * 32)


def test_the_record_only_moves_forward(tmp_path: Path) -> None:
    record = PublishedFile(tmp_path / "published.json")
    assert record.read().heads == {}
    record.record("log.example/a", 10, A, "note 10", NOW)
    record.record("log.example/a", 12, B, "note 12", NOW)
    record.record("log.example/a", 11, C, "note 11", NOW)  # another process was behind
    record.record("log.example/a", 12, B, "note 12", NOW)  # the same checkpoint again
    head = record.read().heads["log.example/a"]
    assert (head.size, head.root, head.note) == (12, B, "note 12")
    assert oct((tmp_path / "published.json").stat().st_mode & 0o777) == "0o600"


def test_another_root_at_a_recorded_size_is_a_fork(tmp_path: Path) -> None:
    record = PublishedFile(tmp_path / "published.json")
    record.record("log.example/a", 12, B, "note 12", NOW)
    with pytest.raises(LogDiverged, match="another root"):
        record.record("log.example/a", 12, C, "forked note 12", NOW)
    assert record.read().heads["log.example/a"].root == B


def test_a_frozen_origin_is_never_recorded_again(tmp_path: Path) -> None:
    record = PublishedFile(tmp_path / "published.json")
    record.record("log.example/a", 12, B, "note 12", NOW)
    record.freeze("log.example/a", "log.example/b", "log.diverged: behind", NOW)
    with pytest.raises(LogDiverged, match="frozen"):
        record.record("log.example/a", 13, C, "note 13", NOW)
    record.record("log.example/b", 13, C, "note 13", NOW)
    read = record.read()
    assert read.frozen["log.example/a"].successor == "log.example/b"
    assert {o: h.size for o, h in read.heads.items()} == {"log.example/a": 12, "log.example/b": 13}


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not json",
        b"[]",
        json.dumps({"format": "other/v1", "logs": {}, "frozen": {}}).encode(),
        json.dumps(
            {
                "format": "credit-commons-log-published/v1",
                "logs": {"o": {"size": 1, "root": "AAAA", "note": "n", "at": "t"}},
                "frozen": {},
            }
        ).encode(),
        json.dumps({"format": "credit-commons-log-published/v1", "logs": {}}).encode(),
    ],
)
def test_a_record_this_platform_did_not_write_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "published.json"
    path.write_bytes(content)
    with pytest.raises(PublishedFileInvalid):
        PublishedFile(path).read()
    with pytest.raises(PublishedFileInvalid):
        PublishedFile(path).record("o", 1, A, "n", NOW)


def test_the_gap_is_the_newest_claim_the_tree_does_not_continue() -> None:
    roots = {5: A, 8: B}

    def root_at(size: int) -> Hash:
        return roots[size]

    same = [Claim("file", 8, B), Claim("journal", 5, A), Claim("witness", 8)]
    assert find_gap(8, B, root_at, same) is None
    assert find_gap(10, C, root_at, same) is None  # further, and consistent
    behind = find_gap(5, A, root_at, [*same, Claim("witness w", 9)])
    assert behind is not None
    assert (behind.kind, behind.claim.source, behind.lost_leaves) == ("behind", "witness w", 4)
    other = find_gap(10, C, root_at, [Claim("file", 8, C)])
    assert other is not None
    assert (other.kind, other.lost_leaves) == ("different", None)
    assert "root at size 8 is another" in other.detail()
    same_size = find_gap(8, A, root_at, [Claim("file", 8, B)])
    assert same_size is not None
    assert same_size.kind == "different"


@pytest.mark.parametrize(
    ("index", "width", "path"),
    [
        (0, None, "000"),
        (7, 18, "007.p/18"),
        (999, None, "999"),
        (1000, None, "x001/000"),
        (1234067, None, "x001/x234/067"),  # the example of C2SP tlog-tiles
        (1234067, 255, "x001/x234/067.p/255"),
    ],
)
def test_tile_paths_follow_tlog_tiles(index: int, width: int | None, path: str) -> None:
    assert tile_path(index, width) == path
