"""Sign and verify rates through the project's key API against raw ``cryptography``.

Prints one JSON line per figure.  For each key type the project path and the raw baseline
run in alternating rounds in the same process (so machine noise hits both alike), and the
figure is the median round.  Target (issue 2): project / raw >= 0.8 for sign and verify.

The project path is the real one: a signer taken from the embedded key store (private key
decrypted under the master key, cached) and ``PublicKey.verify`` with the JOSE ``alg``
check.  A further figure measures signing with a key-store lookup (one indexed SELECT) per
signature, which is what a request that signs once pays; it has no target.

Usage: python bench/keys.py [--rounds 7] [--ops 3000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from credit_commons.core.db import transaction
from credit_commons.core.migrate import upgrade
from credit_commons.core.settings import Settings
from credit_commons.keys import service
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.runtime import Runtime
from own_state import forget_configured_instance

MESSAGE = b"eyJhbGciOiJFZERTQSJ9." + b"x" * 200  # a typical JWS signing input


def rate(fn: Callable[[], object], ops: int) -> float:
    start = time.perf_counter()
    for _ in range(ops):
        fn()
    return ops / (time.perf_counter() - start)


def compare(
    name: str, project: Callable[[], object], raw: Callable[[], object], ops: int, rounds: int
) -> None:
    project_rates, raw_rates = [], []
    rate(project, ops // 10)  # warm up
    rate(raw, ops // 10)
    for _ in range(rounds):
        project_rates.append(rate(project, ops))
        raw_rates.append(rate(raw, ops))
    p, r = statistics.median(project_rates), statistics.median(raw_rates)
    print(
        json.dumps(
            {
                "figure": name,
                "project_ops_per_s": round(p),
                "baseline": "raw cryptography",
                "baseline_ops_per_s": round(r),
                "ratio": round(p / r, 3),
                "target_ratio": 0.8,
                "meets_target": p / r >= 0.8,
            }
        ),
        flush=True,
    )


def bench_key_type(runtime: Runtime, key_type: KeyType, args: argparse.Namespace) -> None:
    """Print the figures for one key type."""
    actor = runtime.operator_actor()
    name = f"bench-{key_type.value.lower()}"
    with transaction(runtime.sessions) as session:
        service.create_key(
            session,
            runtime.key_store,
            runtime.clock,
            name=name,
            key_type=key_type,
            actor=actor,
            objects=runtime.objects,
        )
        signer = runtime.key_store.signer(session, name)
    public = signer.public_key
    signature = signer.sign(MESSAGE)

    # The same key material, used raw.
    raw_private = PrivateKey.from_raw(key_type, signer._key.raw()).cryptography_key
    raw_public = raw_private.public_key()
    if isinstance(raw_private, ed25519.Ed25519PrivateKey):
        assert isinstance(raw_public, ed25519.Ed25519PublicKey)
        raw_sig = raw_private.sign(MESSAGE)
        raw_sign: Callable[[], object] = lambda: raw_private.sign(MESSAGE)  # noqa: E731
        raw_verify: Callable[[], object] = lambda: raw_public.verify(raw_sig, MESSAGE)  # noqa: E731
    else:
        assert isinstance(raw_public, ec.EllipticCurvePublicKey)
        algorithm = ec.ECDSA(hashes.SHA256())
        der = raw_private.sign(MESSAGE, algorithm)
        raw_sign = lambda: raw_private.sign(MESSAGE, algorithm)  # noqa: E731
        raw_verify = lambda: raw_public.verify(der, MESSAGE, algorithm)  # noqa: E731

    ops = args.ops if key_type is KeyType.ED25519 else args.ops // 2
    alg = signer.alg
    compare(f"sign_{key_type.value}", lambda: signer.sign(MESSAGE), raw_sign, ops, args.rounds)
    compare(
        f"verify_{key_type.value}",
        lambda: public.verify(alg, MESSAGE, signature),
        raw_verify,
        ops,
        args.rounds,
    )

    def sign_with_lookup() -> object:
        with transaction(runtime.sessions) as session:
            return runtime.key_store.signer(session, name).sign(MESSAGE)

    lookup_rate = statistics.median(rate(sign_with_lookup, ops // 5) for _ in range(3))
    print(
        json.dumps(
            {
                "figure": f"sign_with_store_lookup_{key_type.value}",
                "project_ops_per_s": round(lookup_rate),
                "note": "one transaction + indexed SELECT of the newest version per signature",
            }
        ),
        flush=True,
    )


def main() -> int:
    forget_configured_instance()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--ops", type=int, default=3000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        runtime = Runtime.build(settings)
        upgrade(runtime.engine)
        for key_type in KeyType:
            bench_key_type(runtime, key_type, args)
        runtime.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
