"""A schemathesis pass over every operation of the API, against a real local server.

Starts ``commons serve`` on a fresh SQLite data directory (a temporary one, removed
afterwards; nothing configured is touched: every ``COMMONS_*`` variable of the caller is
dropped), makes an administrator token and a lender client with an access token, then
sends schema-generated requests to every operation of the server's OpenAPI document —
lender routes with the lender's token, the others with the administrator's, so that
authenticated routes are reached too — and validates every response with schemathesis'
conformance checks: ``not_a_server_error`` (5xx), ``status_code_conformance`` (a status the
OpenAPI document does not list for the operation), ``content_type_conformance`` (a media
type it does not list) and ``response_schema_conformance`` (a body its schema refuses).

    .venv/bin/python bench/fuzz_api.py                 # >= 3,000 requests (60 per operation)
    .venv/bin/python bench/fuzz_api.py --per-operation 100 --seed 7

Prints one JSON line per failure (the check, the operation, the status, a curl command)
and a summary line with the failures counted per check; exits 1 when any check failed or
the server logged an unhandled error.  Not part of the test suite (minutes, and random by
design): each finding gets its own regression test.  The rate limits are raised for the run
(the fuzzer is one address sending thousands of requests); everything else is the default
configuration.
Generated URLs may make the server try outbound fetches (did:web, status lists): its SSRF
guard refuses private addresses, and this machine reaches no other.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from credit_commons.formats.jws import sign_compact
from credit_commons.gateway.oauth import CLIENT_ASSERTION_TYPE
from credit_commons.gateway.route_groups import GROUPS, classify
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.jwk import public_key_to_jwk

COMMONS = [sys.executable, "-m", "credit_commons.cli"]
LENDER_GROUPS = {"lender-api", "onboarding"}
CHECKS = (
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def environment(data_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMONS_")}
    generous = {f"{group.name}.ip": "1000000/minute" for group in GROUPS}
    generous.update({f"{g.name}.client": "1000000/minute" for g in GROUPS if g.client is not None})
    env.update(
        COMMONS_DATA_DIR=str(data_dir),
        COMMONS_DATABASE_URL=f"sqlite:///{data_dir / 'commons.db'}",
        COMMONS_PSEUDONYM_PEPPER=secrets.token_urlsafe(32),
        COMMONS_PUBLIC_URL=f"http://127.0.0.1:{port}",
        COMMONS_RATE_LIMITS=json.dumps(generous),
        COMMONS_RATE_LIMIT_IP="1000000/minute",
        COMMONS_RATE_LIMIT_CLIENT="1000000/minute",
    )
    return env


def start_server(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    subprocess.run([*COMMONS, "db", "upgrade"], env=env, check=True, capture_output=True)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*COMMONS, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the server did not start:\n{log.read_text()}")
        time.sleep(0.2)


def admin_token(env: dict[str, str]) -> str:
    out = subprocess.run(
        [*COMMONS, "admin", "token", "fuzz", "--json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return str(json.loads(out)["token"])


def lender_token(base: str, admin: str) -> str:
    key = PrivateKey.generate(KeyType.ED25519)
    registered = httpx.post(
        f"{base}/v1/admin/lenders",
        json={
            "name": "Fuzz Bank",
            "jwks": {"keys": [public_key_to_jwk(key.public_key, kid="k1")]},
            "allowed_purposes": ["101", "loan.underwriting"],
        },
        headers={"Authorization": f"Bearer {admin}"},
        timeout=10,
    )
    registered.raise_for_status()
    client_id = registered.json()["client_id"]
    now = int(time.time())
    assertion = sign_compact(
        {"kid": "k1", "typ": "JWT"},
        {
            "iss": client_id,
            "sub": client_id,
            "aud": f"{base}/oauth/token",
            "iat": now,
            "exp": now + 60,
            "jti": secrets.token_urlsafe(16),
        },
        key,
    )
    token = httpx.post(
        f"{base}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": assertion,
        },
        timeout=10,
    )
    token.raise_for_status()
    return str(token.json()["access_token"])


def _runner(
    operation: Any,
    base: str,
    token: str,
    per_operation: int,
    run_seed: int,
    statuses: Counter[int],
    failures: list[dict[str, Any]],
) -> Any:
    name = f"{operation.method.upper()} {operation.path}"
    calls = [0]

    @seed(run_seed)
    @settings(
        max_examples=per_operation,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        # Where the operation declares an Authorization header, every other request keeps
        # the generated (bad) one, and the rest carry the good token, so that both the
        # refusals and what lies behind authentication are reached.
        calls[0] += 1
        generated = {k: v for k, v in (case.headers or {}).items() if isinstance(v, str)}
        own = {k: v for k, v in generated.items() if k.lower() != "authorization"}
        headers = {**own, "Authorization": f"Bearer {token}"}
        if calls[0] % 2 and len(own) < len(generated):
            headers = generated
        response = case.call(base_url=base, headers=headers, timeout=30)
        statuses[response.status_code] += 1
        for check in CHECKS:
            # One check at a time, so that each failure is counted under its own check.
            try:
                case.validate_response(response, checks=[check], headers=headers)
            except FailureGroup as group:
                failures.append(
                    {
                        "check": check.__name__,
                        "operation": name,
                        "status": response.status_code,
                        "content_type": response.headers.get("content-type"),
                        "failure": "; ".join(f.title for f in group.exceptions),
                        "body": response.text[:300],
                        "curl": case.as_curl_command(headers=headers),
                    }
                )

    return run


def fuzz(base: str, admin: str, lender: str, per_operation: int, run_seed: int) -> dict[str, Any]:
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    statuses: Counter[int] = Counter()
    failures: list[dict[str, Any]] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        group = classify(operation.method.upper(), operation.path)
        token = lender if group in LENDER_GROUPS else admin
        run = _runner(operation, base, token, per_operation, run_seed, statuses, failures)
        run()
    return {
        "operations": operations,
        "requests": sum(statuses.values()),
        "by_status": dict(sorted(statuses.items())),
        "failures": failures,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-operation", type=int, default=60)
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="commons-fuzz-") as tmp:
        data = Path(tmp) / "var"
        env = environment(data, port)
        log = Path(tmp) / "server.log"
        process = start_server(env, port, log)
        try:
            base = f"http://127.0.0.1:{port}"
            admin = admin_token(env)
            found = fuzz(base, admin, lender_token(base, admin), args.per_operation, args.seed)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        unhandled = log.read_text().count('"unhandled error"')
    failures = found["failures"]
    for failure in failures:
        print(json.dumps(failure))
    by_check = Counter(failure["check"] for failure in failures)
    summary = {
        "figure": "fuzz_api",
        "operations": found["operations"],
        "requests": found["requests"],
        "server_errors": sum(1 for f in failures if f["check"] == "not_a_server_error"),
        "failures_by_check": {check.__name__: by_check[check.__name__] for check in CHECKS},
        "unhandled_in_log": unhandled,
        "by_status": found["by_status"],
        "seed": args.seed,
    }
    print(json.dumps(summary))
    return 1 if failures or unhandled else 0


if __name__ == "__main__":
    sys.exit(main())
