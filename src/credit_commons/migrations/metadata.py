"""Every table of the platform, for Alembic's environment (``env.py``).

The one module outside a domain that imports every domain's ``models``: migrations describe
all tables at once.  The "only D reads D's tables" contracts in pyproject.toml allow
``credit_commons.migrations`` for that reason; nothing here reads or writes a row.  A new
domain adds its ``models`` import here.
"""

from __future__ import annotations

from sqlalchemy import MetaData

import credit_commons.consent.models
import credit_commons.core.facts
import credit_commons.events.models
import credit_commons.federation.models
import credit_commons.identity.models
import credit_commons.issuer.models
import credit_commons.keys.models
import credit_commons.ledger.models
import credit_commons.lenders.models
import credit_commons.node.models
import credit_commons.privacy.models
import credit_commons.reputation.models
import credit_commons.reputation.rules_store
import credit_commons.reputation.scores_store
import credit_commons.vault.models
import credit_commons.verifier.models
import credit_commons.web.borrower_models
import credit_commons.web.models
import credit_commons.zk.registry_models  # noqa: F401 - each import registers its tables
from credit_commons.core.db import Base

__all__ = ["target_metadata"]


def target_metadata() -> MetaData:
    """The metadata of every table (each domain's ``models`` is imported above)."""
    return Base.metadata
