"""Identity: identities and their identifiers (keyed pseudonyms), delegations, onboarding
authorities, and ``auth`` — principals, authentication and authorisation for every domain
above it.  Imports nothing above the ledger: no consent, no privacy."""
