"""What the ``commons`` commands may do while the instance is held in backup-restore mode
(ledger/restore_mode.py; docs/operations.md, "Backup and restore").

Every command that opens this instance's database opens it through
:func:`credit_commons.cli.support.runtime`, which reads the mode first.  While held it lets
through only the commands of :data:`ALLOWED_WHILE_HELD` — those that read what the API
serves to reads while held, and those of the restore procedure itself — and refuses every
other with the API's own ``service.restore_mode`` (exit 9).  The list is fail-closed: a
command missing from it is refused.

Every command is classified here, in exactly one of the three sets
(``tests/unit/cli/test_while_held.py`` walks the command tree and names any that is not):
:data:`REFUSED_WHILE_HELD` lists the refusals on purpose, and :data:`WITHOUT_RUNTIME` the
commands that never open this instance's database through ``runtime()`` — another party's
tools (wallet, lender, verifier client), a database of their own (node, witness, demo), no
database at all, or the HTTP server, whose guard answers writes itself
(gateway/restore_guard.py).  Were one of those to call ``runtime()`` later, it would be
refused while held, not let through.
"""

from __future__ import annotations

import typer

__all__ = [
    "ALLOWED_WHILE_HELD",
    "REFUSED_WHILE_HELD",
    "RESTORE_PROCEDURE",
    "WITHOUT_RUNTIME",
    "command_name",
]

RESTORE_PROCEDURE = frozenset(
    {
        # Loading a backup (into an empty instance), --status, and --confirm.
        "restore",
        # The restore migrates the schema to this version's head itself; the schema's owner
        # grants the service role its privileges after it, as restore's own output says.
        "db upgrade",
        "db grant-service-role",
        # Erasures made after the backup, applied again from the live database (the step
        # `commons restore --from` runs), before the instance accepts writes.
        "privacy restore",
        # A restored log behind the published one, recovered (docs/log.md): published leaves
        # and an already-signed checkpoint appended, or a new origin declared.  Neither signs;
        # the log sequences again only after --confirm.
        "log replay",
        "log new-origin",
        # A running worker waits while held; `worker --once` refuses itself (exit 9).
        "worker",
    }
)
"""The commands of the restore procedure: allowed while held."""

_READS = frozenset(
    {
        "backup",
        "db current",
        "db check-role",
        "anchor status",
        "log audit",
        "log status",
        "log checkpoint",  # with --publish it refuses itself while held (exit 9)
        "log entries",
        "log prove-inclusion",
        "log prove-consistency",
        "log receipt",
        "log verify-consistency",
        "vault status",
        "keys list",
        "keys export-public",
        "identity show",
        "identity authority list",
        "admin lender console-tokens",
        "consent list",
        "consent show",
        "consent history",
        "consent denials",
        "consent codes",
        "committee show",
        "committee member status",
        "issuer type list",
        "issuer type show",
        "issuer trust list",
        "verify trust show",
        "verify trust pins",
        "verify policy show",
        "verify policy list",
        "privacy epochs",
        "rules list",
        "rules show",
        "zk statements list",
        "zk statements show",
        "service-token keys",
    }
)

ALLOWED_WHILE_HELD = RESTORE_PROCEDURE | _READS
"""The commands ``runtime()`` lets through while held: reads (what the API serves to a
``GET`` while held) and the restore procedure.  Fail-closed: any other is refused."""

REFUSED_WHILE_HELD = frozenset(
    {
        "admin token",
        "admin lender approve",
        "admin lender certificate",
        "admin lender console-token",
        "admin lender revoke-console-token",
        "committee bind",
        "committee register",
        "committee member import",
        # A member restored from a backup could sign a second root for a size it signed.
        "committee member serve",
        "consent approve",
        "consent pause",
        "consent reject",
        "consent resume",
        "consent revoke",
        "consent revoke-all",
        "consent expire",
        "identity create",
        "identity delegate",
        "identity bind",
        "identity authority add",
        "identity authority deactivate",
        "identity authority token",
        "issuer issue-batch",
        "issuer reinstate",
        "issuer revoke",
        "issuer suspend",
        "issuer trust add",
        "issuer trust remove",
        "issuer type put",
        "keys create",
        "keys rotate",
        # Its witness probes ran before its own refusal: now nothing runs.
        "log sequence",
        "privacy close-epoch",
        "privacy erase",
        "privacy export",  # records subject.exported: a POST over HTTP, refused there too
        "privacy retention run",
        "rules register",
        "score show",  # assembles and stores a missing bundle (the worker's step waits too)
        "service-token issue",
        "service-token register",
        "service-token rotate",
        "vault init-hsm",
        "vault rewrap",
        "vault rotate",
        "verify policy create",
        "verify policy floor",
        "verify policy version",
        "verify trust add",
        "verify trust bundle",  # signs and stores a new bundle version when the list changed
        "verify trust key",  # makes the bundle's signing key on its first use
        "verify trust pin",
        "verify trust refresh",
        "verify trust remove",
        "verify trust unpin",
        "zk statements register",
    }
)
"""The commands refused while held, on purpose: each writes (or signs, or sends)."""

_WALLET = (
    "accept-offer",
    "capabilities",
    "history",
    "init",
    "join",
    "leave",
    "list",
    "present",
    "proofs",
    "prove",
    "register",
    "report",
    "rotate-key",
    "serve",
    "vouch",
)
_WALLET_GROUPS = (
    "consent approve",
    "consent list",
    "consent pause",
    "consent reject",
    "consent resume",
    "consent revoke",
    "consent revoke-all",
    "privacy erase",
    "privacy export",
    "receipts list",
    "receipts refresh",
    "receipts show",
)
_LENDER = (
    "consent request",
    "consent wait",
    "key create",
    "log-key",
    "registration",
    "retrieve",
    "tiers",
    "token",
    "verify",
    "webhook verify",
)

WITHOUT_RUNTIME = frozenset(
    {
        "version",
        "serve",  # the HTTP guard refuses writes (503); it starts held and serves reads
        "demo",  # its own new database
        "routes build",
        "routes show",
        "did resolve",
        "anchor deploy",
        "committee deal",
        "committee verify",
        "consent templates",
        "keys init-master",
        "log verify-receipt",
        "score verify",
        "verify decision",  # a verifier's client of a platform, over HTTP
        "verify request",
        "verify status",
        "node serve",  # the node's own database
        "node repair",
        "node service-key rotate",
        "node service-key show",
        "witness serve",  # the witness's own database
        *(f"wallet {name}" for name in (*_WALLET, *_WALLET_GROUPS)),  # the holder's files
        *(f"lender {name}" for name in _LENDER),  # a lender's client of a platform
    }
)
"""The commands that never open this instance's database through ``runtime()``."""


def command_name(ctx: typer.Context) -> str:
    """The command ``ctx`` runs, without the program's name: ``identity create``."""
    return ctx.command_path.partition(" ")[2]
