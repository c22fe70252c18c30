"""The holder's wallet: keys and credentials in an encrypted local file, an OID4VCI client,
and SD-JWT presentations with key binding (seed 002 §18, seed 004)."""
