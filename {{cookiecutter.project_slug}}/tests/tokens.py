"""Signing keys, a real JWKS server and token minting, for tests: no identity provider.

The api under test fetches its keys over HTTP from `JwksServer` (a thread serving
`/jwks.json` on a free port of 127.0.0.1), exactly as it would from the provider.
"""

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

# What the `bearer` fixture returns: the Authorization header for a token subject.
Bearer = Callable[[str], dict[str, str]]

ISSUER = "https://issuer.test/"
AUDIENCE = "https://api.test/"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


@dataclass
class SigningKey:
    private: rsa.RSAPrivateKey
    kid: str

    @classmethod
    def generate(cls, kid: str | None = None) -> "SigningKey":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(private=private, kid=kid or f"test-{uuid.uuid4().hex[:8]}")

    def jwk(self) -> dict[str, Any]:
        public: dict[str, Any] = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**public, "kid": self.kid, "use": "sig", "alg": "RS256"}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, claims: dict[str, Any], *, kid: str | None = None) -> str:
        return jwt.encode(claims, self.private, algorithm="RS256", headers={"kid": kid or self.kid})


def claims_for(sub: str, /, **overrides: Any) -> dict[str, Any]:
    """Valid claims for `sub` (an hour left); an override of None drops the claim."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": sub,
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
    }
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


def unsigned_token(claims: dict[str, Any], kid: str) -> str:
    """`alg: none`: no signature at all."""
    return f"{b64json({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{b64json(claims)}."


def hs256_with_public_key(claims: dict[str, Any], key: SigningKey) -> str:
    """The algorithm-confusion attack: HMAC keyed with the (public) RSA key."""
    signing_input = f"{b64json({'alg': 'HS256', 'typ': 'JWT', 'kid': key.kid})}.{b64json(claims)}"
    signature = hmac.new(key.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def with_payload(token: str, claims: dict[str, Any]) -> str:
    """The same header and signature over a different payload."""
    header, _, signature = token.split(".")
    return f"{header}.{b64json(claims)}.{signature}"


@dataclass
class JwksServer:
    """Serves `document` at /jwks.json and counts the requests it gets."""

    document: dict[str, Any] = field(default_factory=lambda: {"keys": []})
    status: int = 200
    requests: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/jwks.json"

    def start(self) -> "JwksServer":
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with owner._lock:
                    owner.requests += 1
                body = json.dumps(owner.document).encode()
                if self.path != "/jwks.json":
                    self.send_response(404)
                    body = b"{}"
                else:
                    self.send_response(owner.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def reset(self, *keys: SigningKey) -> None:
        self.document = {"keys": [key.jwk() for key in keys]}
        self.status = 200
        self.requests = 0

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
