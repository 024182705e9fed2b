"""Authentication through the real app: tokens signed by test keys, JWKS served over HTTP."""

import asyncio
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import httpx
import jwt
import pytest
from fastapi import Depends

from {{ cookiecutter.package_name }}.app import create_app
from {{ cookiecutter.package_name }}.features.users.dependencies import Caller, require
from {{ cookiecutter.package_name }}.features.users.permissions import Permission
from {{ cookiecutter.package_name }}.lib.config import AuthConfigError, Settings

from . import factories
from .conftest import run_module
from .factories import Db
from .tokens import (
    JwksServer,
    SigningKey,
    claims_for,
    hs256_with_public_key,
    unsigned_token,
    with_payload,
)

SUB = "auth0|ana"


def signed_in_user(
    db: Db,
    *,
    sub: str = SUB,
    role: str = "employee",
    active: bool = True,
    company_active: bool = True,
    email: str = "ana@acme.example",
) -> tuple[UUID, UUID]:
    """(user id, company id) of a user linked to `sub`."""
    company_id = factories.company(db, "Acme", active=company_active)
    user_id = factories.user(db, company_id, email, active=active)
    db.execute("UPDATE users SET auth_sub = %s, role = %s WHERE id = %s", (sub, role, user_id))
    return user_id, company_id


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_refused(response: httpx.Response, code: str, message_part: str) -> None:
    """401 in the common envelope (code, message, request id) and a Bearer challenge."""
    assert response.status_code == 401, response.text
    body = response.json()
    assert list(body) == ["error"]
    assert sorted(body["error"]) == ["code", "message", "request_id"]
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    assert body["error"]["code"] == code
    assert message_part in body["error"]["message"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_valid_token_reaches_a_protected_endpoint(
    api: httpx.AsyncClient, db: Db, bearer: Callable[[str], dict[str, str]]
) -> None:
    user_id, company_id = signed_in_user(db)
    response = await api.get("/me", headers=bearer(SUB))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "id": str(user_id),
        "email": "ana@acme.example",
        "name": "Ana",
        "role": "employee",
        "company_id": str(company_id),
        "company_name": "Acme",
    }


async def test_exp_and_nbf_allow_a_little_clock_skew(
    api: httpx.AsyncClient, db: Db, signing_key: SigningKey
) -> None:
    signed_in_user(db)
    now = int(time.time())
    expired_just_now = signing_key.sign(claims_for(SUB, exp=now - 5))
    valid_in_a_moment = signing_key.sign(claims_for(SUB, nbf=now + 5, iat=now + 5))
    assert (await api.get("/me", headers=auth(expired_just_now))).status_code == 200
    assert (await api.get("/me", headers=auth(valid_in_a_moment))).status_code == 200


def _refusals(key: SigningKey) -> dict[str, tuple[dict[str, str], str, str]]:
    """case -> (headers, error code, part of the message), for each token to refuse."""
    now = int(time.time())
    valid = key.sign(claims_for(SUB))
    impostor = SigningKey.generate(kid=key.kid)  # the published kid, another private key
    return {
        "no token": ({}, "not_authenticated", "missing bearer token"),
        "not bearer": ({"Authorization": "Basic YW5hOnNlY3JldA=="}, "not_authenticated", "Bearer"),
        "empty bearer": ({"Authorization": "Bearer "}, "not_authenticated", "Bearer"),
        "malformed": (auth("not-a-jwt"), "invalid_token", "malformed"),
        "malformed parts": (auth("a.b.c"), "invalid_token", "malformed"),
        "expired": (
            auth(key.sign(claims_for(SUB, exp=now - 120))),
            "token_expired",
            "expired",
        ),
        "not yet valid": (
            auth(key.sign(claims_for(SUB, nbf=now + 600))),
            "invalid_token",
            "not valid yet",
        ),
        "wrong issuer": (
            auth(key.sign(claims_for(SUB, iss="https://evil.example/"))),
            "invalid_token",
            "issuer",
        ),
        "wrong audience": (
            auth(key.sign(claims_for(SUB, aud="https://other-api.example/"))),
            "invalid_token",
            "'aud'",
        ),
        "unknown kid": (
            auth(key.sign(claims_for(SUB), kid="unknown-kid")),
            "invalid_token",
            "unknown key",
        ),
        "no kid": (
            auth(jwt.encode(claims_for(SUB), key.private, algorithm="RS256")),
            "invalid_token",
            "'kid'",
        ),
        "alg none": (auth(unsigned_token(claims_for(SUB), key.kid)), "invalid_token", "'none'"),
        "HS256 signed with the public key": (
            auth(hs256_with_public_key(claims_for(SUB), key)),
            "invalid_token",
            "'HS256'",
        ),
        "tampered payload": (
            auth(with_payload(valid, claims_for("auth0|someone-else"))),
            "invalid_token",
            "signature",
        ),
        "signed by another key": (
            auth(impostor.sign(claims_for(SUB))),
            "invalid_token",
            "signature",
        ),
        "no exp": (auth(key.sign(claims_for(SUB, exp=None))), "invalid_token", "'exp'"),
        "no sub": (auth(key.sign(claims_for(SUB, sub=None))), "invalid_token", "'sub'"),
    }


REFUSAL_CASES = [
    "no token",
    "not bearer",
    "empty bearer",
    "malformed",
    "malformed parts",
    "expired",
    "not yet valid",
    "wrong issuer",
    "wrong audience",
    "unknown kid",
    "no kid",
    "alg none",
    "HS256 signed with the public key",
    "tampered payload",
    "signed by another key",
    "no exp",
    "no sub",
]


@pytest.mark.parametrize("case", REFUSAL_CASES)
async def test_bad_tokens_are_refused_with_401(
    api: httpx.AsyncClient, db: Db, signing_key: SigningKey, case: str
) -> None:
    signed_in_user(db)
    cases = _refusals(signing_key)
    assert sorted(cases) == sorted(REFUSAL_CASES)
    headers, code, message = cases[case]
    assert_refused(await api.get("/me", headers=headers), code, message)


@pytest.mark.parametrize(
    ("user_active", "company_active", "code"),
    [(False, True, "inactive_user"), (True, False, "inactive_company")],
)
async def test_inactive_user_or_company_is_refused(
    api: httpx.AsyncClient,
    db: Db,
    signing_key: SigningKey,
    user_active: bool,
    company_active: bool,
    code: str,
) -> None:
    signed_in_user(db, active=user_active, company_active=company_active)
    response = await api.get("/me", headers=auth(signing_key.sign(claims_for(SUB))))
    assert_refused(response, code, "deactivated")


async def test_unknown_subject_is_refused(
    api: httpx.AsyncClient, db: Db, signing_key: SigningKey
) -> None:
    signed_in_user(db)
    # Valid token, but no user carries this subject (e.g. never invited).
    token = signing_key.sign(claims_for("auth0|stranger"))
    assert_refused(await api.get("/me", headers=auth(token)), "unknown_user", "no user")


@pytest.fixture
async def admin_api(settings: Settings, jwks: JwksServer) -> Any:
    """The real app plus one route that needs an admin-only permission."""
    app = create_app(settings)

    @app.get("/test/admin-only")
    async def admin_only(
        caller: Annotated[Caller, Depends(require(Permission.manage_users))],
    ) -> dict[str, str]:
        return {"company_id": str(caller.company_id)}

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def test_missing_permission_is_403(
    admin_api: httpx.AsyncClient, db: Db, signing_key: SigningKey
) -> None:
    signed_in_user(db, role="employee")
    response = await admin_api.get(
        "/test/admin-only", headers=auth(signing_key.sign(claims_for(SUB)))
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert "'employee' role" in response.json()["error"]["message"]


async def test_permission_granted_to_the_role(
    admin_api: httpx.AsyncClient, db: Db, signing_key: SigningKey
) -> None:
    _, company_id = signed_in_user(db, role="admin")
    response = await admin_api.get(
        "/test/admin-only", headers=auth(signing_key.sign(claims_for(SUB)))
    )
    assert response.status_code == 200
    assert response.json() == {"company_id": str(company_id)}
    # Without a token the permission check is never reached: 401, not 403.
    assert (await admin_api.get("/test/admin-only")).status_code == 401


async def test_keys_are_fetched_once_and_cached(
    api: httpx.AsyncClient, db: Db, jwks: JwksServer, signing_key: SigningKey
) -> None:
    signed_in_user(db)
    token = signing_key.sign(claims_for(SUB))
    for _ in range(5):
        assert (await api.get("/me", headers=auth(token))).status_code == 200
    assert jwks.requests == 1


async def test_unknown_kid_refreshes_the_keys_exactly_once(
    api: httpx.AsyncClient, db: Db, jwks: JwksServer, signing_key: SigningKey
) -> None:
    signed_in_user(db)
    assert (
        await api.get("/me", headers=auth(signing_key.sign(claims_for(SUB))))
    ).status_code == 200
    assert jwks.requests == 1
    # A flood of tokens naming keys the provider never published, all at once...
    forged = [signing_key.sign(claims_for(SUB), kid=f"made-up-{n}") for n in range(30)]
    responses = await asyncio.gather(*(api.get("/me", headers=auth(t)) for t in forged))
    assert {r.status_code for r in responses} == {401}
    # ...costs the provider one request, and later ones none (rate-limited).
    assert jwks.requests == 2
    again = await api.get("/me", headers=auth(signing_key.sign(claims_for(SUB), kid="more")))
    assert again.status_code == 401
    assert jwks.requests == 2


async def test_a_rotated_key_is_picked_up_without_restart(
    api: httpx.AsyncClient, db: Db, jwks: JwksServer, signing_key: SigningKey
) -> None:
    signed_in_user(db)
    assert (
        await api.get("/me", headers=auth(signing_key.sign(claims_for(SUB))))
    ).status_code == 200
    new_key = SigningKey.generate()
    jwks.document = {"keys": [signing_key.jwk(), new_key.jwk()]}
    response = await api.get("/me", headers=auth(new_key.sign(claims_for(SUB))))
    assert response.status_code == 200, response.text
    assert jwks.requests == 2


async def test_provider_down_is_503_and_not_hammered(
    api: httpx.AsyncClient, db: Db, jwks: JwksServer, signing_key: SigningKey
) -> None:
    signed_in_user(db)
    jwks.status = 500
    token = signing_key.sign(claims_for(SUB))
    for _ in range(3):
        response = await api.get("/me", headers=auth(token))
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "auth_unavailable"
    assert jwks.requests == 1


async def test_openapi_documents_the_bearer_scheme(api: httpx.AsyncClient) -> None:
    schema = (await api.get("/openapi.json")).json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert schema["paths"]["/me"]["get"]["security"] == [{"HTTPBearer": []}]


def test_the_api_refuses_to_start_without_auth_settings(settings: Settings) -> None:
    unconfigured = settings.model_copy(
        update={"auth_issuer": None, "auth_jwks_url": None, "auth_audience": None}
    )
    with pytest.raises(AuthConfigError, match="AUTH_AUDIENCE"):
        create_app(unconfigured)


def test_auth0_domain_gives_issuer_and_jwks_url() -> None:
    settings = Settings(
        auth0_domain="{% if cookiecutter.examples == "kudos" %}kudos{% else %}acme{% endif %}.eu.auth0.com",
        auth_issuer=None,
        auth_jwks_url=None,
        auth_audience="https://api.{% if cookiecutter.examples == "kudos" %}kudos{% else %}acme{% endif %}.example",
    )
    auth = settings.auth_settings()
    assert auth.issuer == "https://{% if cookiecutter.examples == "kudos" %}kudos{% else %}acme{% endif %}.eu.auth0.com/"
    assert auth.jwks_url == "https://{% if cookiecutter.examples == "kudos" %}kudos{% else %}acme{% endif %}.eu.auth0.com/.well-known/jwks.json"
    assert auth.audience == "https://api.{% if cookiecutter.examples == "kudos" %}kudos{% else %}acme{% endif %}.example"


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ({"auth0_domain": "x.auth0.com", "auth_issuer": "https://x/"}, "not both"),
        ({"auth_issuer": "https://id.example/"}, "AUTH_JWKS_URL"),
        ({"auth_jwks_url": "https://id.example/jwks"}, "AUTH_ISSUER"),
        ({"auth0_domain": "x.auth0.com", "auth_audience": None}, "AUTH_AUDIENCE"),
        (
            {
                "environment": "production",
                "auth_issuer": "https://id.example/",
                "auth_jwks_url": "file:.dev-keys/jwks.json",
            },
            "https",
        ),
    ],
)
def test_incomplete_auth_settings_are_refused(given: dict[str, Any], problem: str) -> None:
    values: dict[str, Any] = {
        "auth0_domain": None,
        "auth_issuer": None,
        "auth_jwks_url": None,
        "auth_audience": "https://api.{% if cookiecutter.examples == "kudos" %}kudos{% else %}acme{% endif %}.example",
        **given,
    }
    with pytest.raises(AuthConfigError, match=problem):
        Settings(**values).auth_settings()


def _dev_token(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_module("{{ cookiecutter.package_name }}.cli", env, "dev-token", *args)


async def test_dev_token_signs_in_locally_without_a_provider(
    settings: Settings, process_env: dict[str, str], tmp_path: Path, db: Db
) -> None:
    keys = tmp_path / "keys"
    jwks_url = f"file:{keys}/jwks.json"
    env = {**process_env, "AUTH_JWKS_URL": jwks_url}
    first = _dev_token(
        env, "--email", "Bia@Acme.example", "--role", "admin", "--keys-dir", str(keys)
    )
    assert first.returncode == 0, first.stderr
    assert "created user bia@acme.example (admin" in first.stderr
    assert "created company Acme (acme.example" in first.stderr
{%- if cookiecutter.examples == "kudos" %}
    assert "with a wallet of 100 coins and its first ledger row" in first.stderr
{%- endif %}
    assert (keys / "private.pem").stat().st_mode & 0o777 == 0o600
    key_before = (keys / "private.pem").read_bytes()

    app = create_app(settings.model_copy(update={"auth_jwks_url": jwks_url}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
{%- if cookiecutter.examples == "kudos" %}
            response = await client.get("/me", headers=auth(first.stdout.strip()))
            wallet = await client.get("/me/wallet", headers=auth(first.stdout.strip()))
{%- else %}
            response = await client.get("/me", headers=auth(first.stdout.strip()))
{%- endif %}
    assert response.status_code == 200, response.text
    assert response.json()["email"] == "bia@acme.example"
    assert response.json()["role"] == "admin"
    row = db.execute("SELECT email_domain FROM companies").fetchall()
    assert row == [("acme.example",)]
{%- if cookiecutter.examples == "kudos" %}
    # What a user added by an admin has: a wallet holding the allowance, its ledger row.
    assert wallet.json()["compliment_balance"] == 100, wallet.text
    ledger = db.execute("SELECT kind, amount, new_balance FROM wallet_transactions").fetchall()
    assert [(str(kind), amount, new) for kind, amount, new in ledger] == [("RESET", 100, 100)]
{%- endif %}

    # Second run: same key, same user, no new rows.
    again = _dev_token(env, "--email", "bia@acme.example", "--keys-dir", str(keys))
    assert again.returncode == 0, again.stderr
    assert "created" not in again.stderr
    assert (keys / "private.pem").read_bytes() == key_before
    assert db.execute("SELECT count(*) FROM users").fetchone() == (1,)


def test_dev_token_refuses_production(process_env: dict[str, str], tmp_path: Path) -> None:
    env = {**process_env, "ENVIRONMENT": "production"}
    done = _dev_token(env, "--email", "bia@acme.example", "--keys-dir", str(tmp_path / "k"))
    assert done.returncode == 1
    assert "production" in done.stderr
    assert done.stdout == ""
    assert not (tmp_path / "k").exists()
