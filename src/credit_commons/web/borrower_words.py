"""Plain words for the borrower's pages: what the platform's codes mean to a person who is
not technical — consent statuses, purposes, how often and how long, the facts a credential
or a consent covers, and what happened in an access to their data.

Every text is an ``N_``-marked English msgid, translated where it is shown
(``{{ _(text) }}``); a code this module does not know is shown as it is (:func:`word`), so
a new code is never hidden, only less friendly.
"""

from __future__ import annotations

from collections.abc import Mapping

from credit_commons.web.i18n import N_

__all__ = [
    "ACTIONS",
    "CREDENTIAL_STATUSES",
    "CREDENTIAL_TYPES",
    "FACTS",
    "OPERATIONS",
    "PURPOSES",
    "REASONS",
    "STATUSES",
    "UNITS",
    "fact",
    "word",
]

STATUSES: Mapping[str, str] = {
    "PENDING": N_("Waiting for your answer"),
    "ACTIVE": N_("Active"),
    "PAUSED": N_("Paused"),
    "REJECTED": N_("Refused by you"),
    "REVOKED": N_("Withdrawn"),
    "EXPIRED": N_("Ended"),
}
"""A consent's status, as the borrower reads it."""

PURPOSES: Mapping[str, str] = {
    "101": N_("Managing your savings and investments"),
    "102": N_("Studying how you spend"),
    "103": N_("Making one combined statement of your accounts"),
    "104": N_("Keeping watch on your accounts"),
    "105": N_("Looking at your accounts once"),
    "loan.underwriting": N_("Deciding on your loan application"),
    "loan.monitoring": N_("Keeping track of a loan you have"),
}
"""Purpose codes (consent/model.py ``PURPOSES``) in plain words."""

UNITS: Mapping[str, tuple[str, str]] = {
    "HOUR": (N_("an hour"), N_("%(count)s hours")),
    "DAY": (N_("a day"), N_("%(count)s days")),
    "MONTH": (N_("a month"), N_("%(count)s months")),
    "YEAR": (N_("a year"), N_("%(count)s years")),
}
"""Duration units: (one of them, several of them)."""

FACTS: Mapping[str, str] = {
    "/enterprise": N_("Your business"),
    "/enterprise/identity_token": N_("Your account number on this platform"),
    "/enterprise/gstin_pseudonym": N_("Your GST registration (as a code)"),
    "/enterprise/udyam_pseudonym": N_("Your Udyam registration (as a code)"),
    "/credit_tier": N_("Your credit tier"),
    "/income_bracket": N_("Your income range"),
    "/debt_ratio_bracket": N_("How much you owe compared with your income"),
    "/score_commitment": N_("A sealed copy of your credit score"),
    "/score_opening": N_("Your exact credit score"),
    "/verification_sources": N_("Where your details were checked"),
    "/person": N_("You"),
    "/person/identity_token": N_("Your account number on this platform"),
    "/person/aadhaar_pseudonym": N_("Your Aadhaar (as a code)"),
    "/person/pan_pseudonym": N_("Your PAN (as a code)"),
    "/verification_level": N_("How your identity was checked"),
    "/birth_date": N_("Your date of birth"),
    "/verified_on": N_("When your identity was checked"),
    "/shg_id": N_("Your self-help group"),
    "/role": N_("Your role in the group"),
    "/since": N_("Since when you are a member"),
    "/community_tier": N_("Your standing in your community"),
}
"""Claim paths of the catalogue's credentials in plain words."""

CREDENTIAL_TYPES: Mapping[str, str] = {
    "CreditReadinessCredential": N_("Credit readiness"),
    "KycCredential": N_("Identity check (KYC)"),
    "ShgMembershipCredential": N_("Self-help group membership"),
    "CommunityTierCredential": N_("Community standing"),
}
"""Credential type names in plain words."""

CREDENTIAL_STATUSES: Mapping[str, str] = {
    "valid": N_("Valid"),
    "suspended": N_("Suspended for now"),
    "revoked": N_("Cancelled"),
}
"""A credential's status in its issuer's status list."""

OPERATIONS: Mapping[str, str] = {
    "credentials.read": N_("Read your credential"),
    "consent.request": N_("Asked for your consent"),
    "consent.read": N_("Looked at a consent"),
    "consent.approve": N_("Tried to approve a consent"),
    "consent.reject": N_("Tried to refuse a consent"),
    "consent.pause": N_("Tried to pause a consent"),
    "consent.resume": N_("Tried to resume a consent"),
    "consent.revoke": N_("Tried to withdraw a consent"),
    "consent.revoke_all": N_("Tried to withdraw consents"),
    "consent.assist": N_("Tried to prepare a consent for you"),
    "consent.assist_confirm": N_("Entered a one-time code for a consent"),
    "web.signin": N_("Tried to sign in as you"),
    "holder.request": N_("Sent a request signed with your key"),
    "discovery.read": N_("Looked for borrowers"),
}
"""Operations of access events."""

REASONS: Mapping[str, str] = {
    "consent.revoked": N_("the consent was withdrawn"),
    "consent.paused": N_("the consent is paused"),
    "consent.expired": N_("the consent has ended"),
    "consent.not_active": N_("the consent is not active"),
    "consent.not_yet_valid": N_("the consent has not started yet"),
    "consent.scope_not_granted": N_("you did not agree to share that"),
    "consent.use_exceeded": N_("it was used as often as you allowed"),
    "consent.artefact_invalid": N_("the consent document did not check out"),
    "consent.not_authorised": N_("they may not act for you"),
    "consent.signature_invalid": N_("the signature was wrong"),
    "consent.otp_invalid": N_("the one-time code was wrong"),
    "consent.otp_expired": N_("the one-time code had run out"),
    "consent.otp_exhausted": N_("too many wrong codes"),
    "credential.unavailable": N_("there was no credential to share"),
    "credential.not_issued": N_("there was no credential to share"),
    "credential.revoked": N_("the credential was cancelled"),
    "credential.suspended": N_("the credential is suspended"),
    "credential.expired": N_("the credential has ended"),
    "auth.scope_missing": N_("they were not allowed to do that"),
    "auth.scope_not_allowed": N_("they were not allowed to do that"),
    "auth.token_invalid": N_("the sign-in details were wrong"),
    "auth.role_mismatch": N_("the sign-in details were for another kind of account"),
    "auth.code_invalid": N_("the sign-in code was wrong"),
    "auth.code_expired": N_("the sign-in code had run out"),
    "auth.code_exhausted": N_("too many wrong sign-in codes"),
    "auth.code_limited": N_("too many sign-in codes were asked for"),
}
"""Reasons of refusals (error codes) in plain words."""

ACTIONS: Mapping[str, str] = {
    "approve": N_("You approved the consent."),
    "reject": N_("You refused the consent."),
    "pause": N_("You paused the consent."),
    "resume": N_("You resumed the consent."),
    "revoke": N_("You withdrew the consent."),
}
"""The message after a decision."""


def word(table: Mapping[str, str], code: str | None) -> str:
    """The plain words for ``code`` in ``table`` (an ``N_`` msgid), or ``code`` itself (or
    an empty string) when the table does not know it."""
    if code is None:
        return ""
    return table.get(code, code)


def fact(path: str) -> str:
    """The plain words for a claim path (``/income_bracket``), or the path's last part with
    its underscores as spaces."""
    known = FACTS.get(path)
    if known is not None:
        return known
    return path.rstrip("/").rsplit("/", 1)[-1].replace("_", " ")
