"""The full node (issue 20, item 2; docs/federation.md, "Full node"): follows a platform's
NATS JetStream streams, verifies every message before storing it, mirrors the log's tree,
checkpoints, blobs and status lists, and verifies presentations with the mirrored lists.

Where it sits: above ``verifier`` (its verifier is the verifier domain's SD-JWT and status
list checks over mirrored lists), ``reputation`` (blob CIDs), ``federation`` (subjects,
streams, the message format) and ``ledger`` (signed notes, checkpoints, the RFC 6962 tree
and proofs it reuses instead of hashing on its own); beside the other consumers of the
verifier (``client``, ``wallet``, ``web``), which it neither needs nor serves.  Below the
edges: the ``gateway`` serves its HTTP API (``gateway/node_app.py``) and the ``cli`` runs
it (``commons node serve``).  It is not part of ``federation``, which sits below identity
and must not depend on the verifier; nor of ``jobs``, since it has tables of its own
(``node_*``, migration 0044), read only here.
"""

from credit_commons.node.follower import Follower
from credit_commons.node.gaps import StreamGap, skip_lost_gaps
from credit_commons.node.lag import PlatformLag, rotate_node_key, service_token
from credit_commons.node.messages import DROP_REASONS, Dropped, Pins, verify_message
from credit_commons.node.mirror import Mirror
from credit_commons.node.platform import Platform, parse_bundle, tile_path
from credit_commons.node.quotas import Quotas
from credit_commons.node.repair import RepairIncomplete, RepairReport, repair_inputs
from credit_commons.node.scoring import NodeScoreNotFound, NodeScorer, NodeScores
from credit_commons.node.scoring_inputs import ScoringRefused
from credit_commons.node.scoring_notes import MissingInputs
from credit_commons.node.store import DropHook, PinMismatch, TreeSource
from credit_commons.node.verify import verify_presentation

__all__ = [
    "DROP_REASONS",
    "DropHook",
    "Dropped",
    "Follower",
    "Mirror",
    "MissingInputs",
    "NodeScoreNotFound",
    "NodeScorer",
    "NodeScores",
    "PinMismatch",
    "Pins",
    "Platform",
    "PlatformLag",
    "Quotas",
    "RepairIncomplete",
    "RepairReport",
    "ScoringRefused",
    "StreamGap",
    "TreeSource",
    "parse_bundle",
    "repair_inputs",
    "rotate_node_key",
    "service_token",
    "skip_lost_gaps",
    "tile_path",
    "verify_message",
    "verify_presentation",
]
