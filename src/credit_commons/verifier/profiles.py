"""Compliance profiles: transforms of a verifier's policy that can only tighten it.

A profile never rewrites or removes what the verifier's policy asks: it returns
``AllOf(policy's rule, profile's rules…)`` under the same id and version, so what the
profiled policy accepts is a subset of what the policy accepts (the property test in
``tests/unit/verifier/test_profiles_tighten.py`` checks this for generated policies,
credentials and contexts, and that the same check catches a profile that loosens).
docs/verifier.md ("Policies and profiles") says what each profile asks and why:

* ``default`` — the policy as written;
* ``india-dpdp`` — the Digital Personal Data Protection Act 2023: a declared purpose
  (§5, §6: notice and consent are for a specified purpose), holder binding (the data
  principal presents her own data), a status check and a maximum credential age (§8(3):
  data used for a decision must be complete, accurate and consistent);
* ``eu`` — like the OpenID4VC High Assurance Interoperability Profile (HAIP): holder
  binding, a status check, and issuers identified by an X.509 chain to a trust anchor or a
  DID, or the platform itself (whose keys it holds) — no bare https issuer whose keys come
  only from its web server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from credit_commons.core.errors import NotFoundError
from credit_commons.verifier.policy import (
    AllOf,
    MaxCredentialAge,
    Policy,
    RequireHolderBinding,
    RequireIssuerKind,
    RequirePurpose,
    RequireStatusCheck,
    Rule,
)

__all__ = [
    "INDIA_DPDP_MAX_AGE",
    "PROFILES",
    "Profile",
    "ProfileUnknown",
    "apply_profile",
    "profile",
]

#: The india-dpdp profile's maximum credential age: one year (a year-old income or
#: membership record is the oldest a lending decision should rest on).
INDIA_DPDP_MAX_AGE: Final = 365 * 86_400


class ProfileUnknown(NotFoundError):
    """No compliance profile has this name."""

    code = "verifier.profile_unknown"
    title = "Unknown compliance profile"


@dataclass(frozen=True, slots=True)
class Profile:
    """A named compliance profile: the rules it adds to every policy (none for ``default``)."""

    name: str
    rules: tuple[Rule, ...]

    def apply(self, policy: Policy) -> Policy:
        """``policy`` tightened by the profile's rules (the same id and version)."""
        if not self.rules:
            return policy
        return Policy(policy.id, policy.version, AllOf((policy.rule, *self.rules)))


PROFILES: Final[dict[str, Profile]] = {
    "default": Profile("default", ()),
    "india-dpdp": Profile(
        "india-dpdp",
        (
            RequirePurpose(),
            RequireHolderBinding(),
            RequireStatusCheck(),
            MaxCredentialAge(INDIA_DPDP_MAX_AGE),
        ),
    ),
    "eu": Profile(
        "eu",
        (
            RequireHolderBinding(),
            RequireStatusCheck(),
            RequireIssuerKind(frozenset({"platform", "x509", "did:web", "did:key"})),
        ),
    ),
}
"""The compliance profiles by name."""


def profile(name: str) -> Profile:
    """The profile called ``name``; raises :class:`ProfileUnknown`."""
    found = PROFILES.get(name)
    if found is None:
        raise ProfileUnknown(f"no compliance profile {name!r} (known: {', '.join(PROFILES)})")
    return found


def apply_profile(policy: Policy, name: str) -> Policy:
    """``policy`` under the profile ``name``; raises :class:`ProfileUnknown`."""
    return profile(name).apply(policy)
