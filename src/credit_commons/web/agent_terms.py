"""A consent's terms in plain words, for the field agent's pages and the borrower's assisted
confirmation (``web/agent.py``): who asks, for what purpose, which facts, until when, how
often and how long they may keep a copy — as ``N_``-marked English msgids with their
values, translated where the template shows them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from credit_commons.consent.schemas import ConsentView
from credit_commons.lenders import client_names
from credit_commons.web.i18n import N_

__all__ = ["Phrase", "Terms", "terms_of", "terms_of_all"]

_PURPOSES = {
    "101": N_("Managing your savings and investments"),
    "102": N_("Looking at how you spend money, for a budget or a report"),
    "103": N_("A summary of your accounts"),
    "104": N_("Keeping watch on your accounts over time"),
    "105": N_("A one-time look at your accounts"),
    "loan.underwriting": N_("Deciding on a loan you asked for"),
    "loan.monitoring": N_("Following a loan you already have"),
}
_FACTS = {
    "/income_bracket": N_("Your income range"),
    "/debt_ratio_bracket": N_("How much of your income goes to repaying debts"),
    "/score_opening": N_("Your credit score"),
    "/enterprise/gstin_pseudonym": N_("That your business is registered for GST (not the number)"),
    "/enterprise/udyam_pseudonym": N_(
        "That your business is registered with Udyam (not the number)"
    ),
    "/verification_sources": N_("Who checked your facts"),
    "/community_tier": N_("Your standing in your community (the tier, not the score)"),
}
_CREDENTIALS = {
    "CreditReadinessCredential": N_("Credit readiness certificate"),
    "KycCredential": N_("Identity check certificate (KYC)"),
    "ShgMembershipCredential": N_("Self-help group membership certificate"),
    "CommunityTierCredential": N_("Community standing certificate"),
}
_TIMES = {
    "HOUR": (N_("Once an hour at most"), N_("At most %(count)s times an hour")),
    "DAY": (N_("Once a day at most"), N_("At most %(count)s times a day")),
    "MONTH": (N_("Once a month at most"), N_("At most %(count)s times a month")),
    "YEAR": (N_("Once a year at most"), N_("At most %(count)s times a year")),
}
_DURATIONS = {
    "HOUR": (N_("1 hour"), N_("%(count)s hours")),
    "DAY": (N_("1 day"), N_("%(count)s days")),
    "MONTH": (N_("1 month"), N_("%(count)s months")),
    "YEAR": (N_("1 year"), N_("%(count)s years")),
}


@dataclass(frozen=True)
class Phrase:
    """A msgid and its ``count`` (for ``%(count)s``), or ``text`` shown as it is (a name
    or a value the platform has no words for)."""

    msgid: str = ""
    count: int = 0
    text: str = ""


@dataclass(frozen=True)
class Terms:
    """What a consent lets a lender do, ready for the ``agent/_terms.html`` macro."""

    consent_id: str
    lender: str
    purpose: Phrase
    facts: list[tuple[Phrase, list[Phrase]]]
    until: datetime
    how_often: Phrase
    keep: Phrase | None
    status: str


def _counted(choices: tuple[str, str], count: int) -> Phrase:
    return Phrase(choices[0] if count == 1 else choices[1], count=count)


def terms_of(session: Session, consent: ConsentView) -> Terms:
    """The plain-words terms of ``consent``; the lender by the name it registered."""
    return terms_of_all(session, [consent])[0]


def terms_of_all(session: Session, consents: Sequence[ConsentView]) -> list[Terms]:
    """The plain-words terms of each of ``consents``, their lenders' names read at once."""
    names = client_names(session, {c.lender for c in consents})
    return [_terms(c, names[c.lender]) for c in consents]


def _terms(consent: ConsentView, lender: str) -> Terms:
    purpose = _PURPOSES.get(consent.purpose.code)
    facts = [
        (
            Phrase(_CREDENTIALS[s.type]) if s.type in _CREDENTIALS else Phrase(text=s.type),
            [Phrase(_FACTS[c]) if c in _FACTS else Phrase(text=c) for c in s.claims],
        )
        for s in consent.scopes
    ]
    if consent.fetch_type == "ONETIME":
        how_often = Phrase(N_("Only once"))
    else:
        unit = _TIMES.get(consent.frequency.unit)
        how_often = (
            _counted(unit, consent.frequency.value)
            if unit
            else Phrase(text=f"{consent.frequency.value} / {consent.frequency.unit}")
        )
    keep = None
    if consent.mode == "STORE":
        life = _DURATIONS.get(consent.data_life.unit)
        keep = (
            _counted(life, consent.data_life.value)
            if life
            else Phrase(text=f"{consent.data_life.value} {consent.data_life.unit}")
        )
    return Terms(
        consent_id=consent.consent_id,
        lender=lender,
        purpose=Phrase(purpose) if purpose else Phrase(text=consent.purpose.text),
        facts=facts,
        until=datetime.fromisoformat(consent.consent_expiry),
        how_often=how_often,
        keep=keep,
        status=consent.status,
    )
