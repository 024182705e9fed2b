"""Bearer tokens: RS256 JWTs from the identity provider, checked against its JWKS.

Only RS256 is accepted, with the key named by the token's `kid` taken from the
provider's JWKS (never from the token), and the issuer, audience, `exp` and `nbf`
checked. The JWKS is fetched over HTTP (or read from a `file:` URL, for local
development), cached for AUTH_JWKS_CACHE_SECONDS, and fetched again when a token
names a key the cache does not hold (a rotated key), at most once per
AUTH_JWKS_MIN_REFRESH_SECONDS however many such tokens arrive.

Who the caller is (their user row and company) is resolved from the verified `sub`
in `features/users/dependencies.py`.
"""

import asyncio
import json
import logging
import math
import time
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit

import httpx
import jwt
from fastapi import FastAPI, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .config import AuthSettings, Settings
from .errors import AppError

logger = logging.getLogger(__name__)

ALGORITHM = "RS256"
# Claims a token must carry; `nbf` and `iat` are checked when present.
REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub"]

Claims = dict[str, Any]


class AuthError(AppError):
    """A request refused for who (or what) is calling, in the common error envelope."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(message, code=code, headers=_challenge(status_code, code))
        self.status_code = status_code


def _challenge(status_code: int, code: str) -> dict[str, str]:
    if status_code == 401:
        if code == "not_authenticated":
            return {"WWW-Authenticate": "Bearer"}
        return {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    if status_code == 403:
        return {"WWW-Authenticate": 'Bearer error="insufficient_scope"'}
    return {}


def unauthorized(code: str, message: str) -> AuthError:
    return AuthError(401, code, message)


def forbidden(code: str, message: str) -> AuthError:
    return AuthError(403, code, message)


def invalid_token(message: str) -> AuthError:
    return unauthorized("invalid_token", message)


class JwksUnavailableError(Exception):
    """The signing keys could not be fetched (and none are cached)."""


def parse_jwks(document: Any) -> dict[str, jwt.PyJWK]:
    """The RS256 signing keys of a JWKS document, by `kid`; other keys are ignored."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksUnavailableError("the JWKS document has no 'keys' list")
    keys: dict[str, jwt.PyJWK] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict):
            continue
        kid = entry.get("kid")
        if (
            not isinstance(kid, str)
            or not kid
            or entry.get("kty") != "RSA"
            or entry.get("use", "sig") != "sig"
            or entry.get("alg", ALGORITHM) != ALGORITHM
        ):
            continue
        try:
            keys[kid] = jwt.PyJWK(entry, algorithm=ALGORITHM)
        except jwt.PyJWTError as exc:
            logger.warning("JWKS key %r ignored: %s", kid, exc)
    return keys


class JwksCache:
    """The provider's signing keys, fetched once and then only when needed.

    - The first request fetches the JWKS; later requests use the cached keys until they
      are `max_age` seconds old, then the next request fetches them again.
    - A `kid` the cache does not hold (the provider rotated its key) triggers one fetch,
      but at most one every `min_refresh_interval` seconds: tokens with made-up key ids
      cannot make the api hammer the provider. Concurrent requests share one fetch.
    - When a fetch fails the cached keys stay in use, and the next attempt waits
      `min_refresh_interval` too; with no keys at all, requests get 503.
    """

    def __init__(
        self,
        url: str,
        *,
        max_age: float = 3600,
        min_refresh_interval: float = 30,
        timeout: float = 5,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = url
        self.max_age = max_age
        self.min_refresh_interval = min_refresh_interval
        self.timeout = timeout
        self._client = client
        self._keys: dict[str, jwt.PyJWK] | None = None
        self._fetched_at = -math.inf
        self._forced_at = -math.inf
        self._failed_at = -math.inf
        self._last_error = ""
        # Bumped on every fetch attempt: a request that waited for the lock while
        # another one fetched does not fetch again.
        self._generation = 0
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def get_key(self, kid: str) -> jwt.PyJWK | None:
        generation = self._generation
        now = time.monotonic()
        if self._keys is None or now - self._fetched_at >= self.max_age:
            await self._refresh(generation, forced=False)
        elif kid not in self._keys:
            await self._refresh(generation, forced=True)
        if self._keys is None:
            raise JwksUnavailableError(self._last_error)
        return self._keys.get(kid)

    async def _refresh(self, generation: int, *, forced: bool) -> None:
        async with self._lock:
            if self._generation != generation:
                return
            now = time.monotonic()
            if now - self._failed_at < self.min_refresh_interval:
                return
            if forced and now - self._forced_at < self.min_refresh_interval:
                return
            self._generation += 1
            if forced:
                self._forced_at = now
            try:
                keys = await self._fetch()
            except JwksUnavailableError as exc:
                self._failed_at = now
                self._last_error = str(exc)
                logger.warning("JWKS fetch from %s failed: %s", self.url, exc)
                return
            self._keys = keys
            self._fetched_at = now
            logger.info("JWKS fetched from %s: %d signing key(s)", self.url, len(keys))

    async def _fetch(self) -> dict[str, jwt.PyJWK]:
        self.fetches += 1
        parts = urlsplit(self.url)
        try:
            if parts.scheme == "file":
                if parts.netloc not in {"", "localhost"}:
                    raise JwksUnavailableError("file: JWKS URLs must name a local path")
                body = await asyncio.to_thread(Path(unquote(parts.path)).read_bytes)
            else:
                if self._client is None:
                    self._client = httpx.AsyncClient(timeout=self.timeout)
                response = await self._client.get(self.url)
                if response.status_code != 200:
                    raise JwksUnavailableError(f"HTTP {response.status_code}")
                body = response.content
            return parse_jwks(json.loads(body))
        except (OSError, httpx.HTTPError, ValueError) as exc:
            raise JwksUnavailableError(f"{type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class TokenVerifier:
    """Checks a bearer token and returns its claims, or raises AuthError (401/503)."""

    def __init__(self, auth: AuthSettings, jwks: JwksCache, *, leeway: float = 30) -> None:
        self.auth = auth
        self.jwks = jwks
        self.leeway = leeway

    async def verify(self, token: str) -> Claims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise invalid_token("malformed token: not a signed JWT") from None
        algorithm = header.get("alg")
        if algorithm != ALGORITHM:
            raise invalid_token(f"token algorithm {algorithm!r} is not accepted (only RS256)")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise invalid_token("token header names no signing key ('kid')")
        try:
            key = await self.jwks.get_key(kid)
        except JwksUnavailableError:
            raise AuthError(
                503,
                "auth_unavailable",
                "the identity provider's signing keys cannot be fetched; try again later",
            ) from None
        if key is None:
            raise invalid_token("token is signed with an unknown key ('kid')")
        try:
            claims: Claims = jwt.decode(
                token,
                key.key,
                algorithms=[ALGORITHM],
                audience=self.auth.audience,
                issuer=self.auth.issuer,
                leeway=self.leeway,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise unauthorized("token_expired", "token has expired") from None
        except jwt.ImmatureSignatureError:
            raise invalid_token("token is not valid yet ('nbf' or 'iat' in the future)") from None
        except jwt.InvalidAudienceError:
            raise invalid_token("token is not meant for this API (wrong 'aud')") from None
        except jwt.InvalidIssuerError:
            raise invalid_token("token comes from an untrusted issuer (wrong 'iss')") from None
        except jwt.MissingRequiredClaimError as exc:
            raise invalid_token(f"token has no '{exc.claim}' claim") from None
        except jwt.InvalidSignatureError:
            raise invalid_token("token signature does not match its content") from None
        except jwt.PyJWTError:
            raise invalid_token("malformed token") from None
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise invalid_token("token has no subject ('sub')")
        return claims


def create_verifier(settings: Settings) -> TokenVerifier:
    """Raises AuthConfigError when the settings do not say where tokens come from."""
    auth = settings.auth_settings()
    jwks = JwksCache(
        auth.jwks_url,
        max_age=settings.auth_jwks_cache_seconds,
        min_refresh_interval=settings.auth_jwks_min_refresh_seconds,
    )
    return TokenVerifier(auth, jwks, leeway=settings.auth_leeway_seconds)


def install_auth(app: FastAPI, verifier: TokenVerifier) -> None:
    """Verify tokens in this app with `verifier` (AuthError renders as an AppError)."""
    app.state.token_verifier = verifier


bearer_scheme = HTTPBearer(
    auto_error=False,
    description="An RS256 access token from the identity provider: `Authorization: Bearer <jwt>`.",
)


async def token_claims(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
) -> Claims:
    """The verified claims of the request's bearer token (401 without a valid one)."""
    if credentials is None or not credentials.credentials:
        raise unauthorized(
            "not_authenticated", "missing bearer token: send 'Authorization: Bearer <token>'"
        )
    verifier: TokenVerifier = request.app.state.token_verifier
    return await verifier.verify(credentials.credentials)
