"""Commands: `create-company` (the first admin), `dev-token` (a local sign-in), `dev`.

`create-company` adds a company and its first admin, in one transaction: how a new
deployment (or a new tenant) gets its first user. The admin has no identity provider
subject yet; their first token with a verified email links them (README, "First
sign-in"). It prints one line of JSON with the new ids.

`dev-token` signs in locally without an identity provider. It creates an RSA key pair
once in `.dev-keys/` (git-ignored; `--keys-dir` to change), writes its public half as
`.dev-keys/jwks.json`, makes sure the user exists (creating the user in the company that
owns the email's domain, and that company when no company owns it; `--role` also changes
an existing user's role), links the user to a local subject (`dev|<user id>`) when it
has none, and prints an RS256 token for that user with the configured AUTH_ISSUER and
AUTH_AUDIENCE. The api accepts it when started with
`AUTH_JWKS_URL=file:.dev-keys/jwks.json` (see `.env.example`).

`dev-token` runs only with ENVIRONMENT=development or test (unset means production).

`dev` runs the development stack: it checks that Postgres and Redis answer (naming the
one that does not and how to get it), creates the database when it is missing, applies
the migrations, makes the local signing key, then runs the processes of `Procfile.dev`
(the api with reload and the worker) with honcho, every line prefixed with its process,
until Ctrl-C (or one of them exiting) stops them all.
"""

import argparse
import asyncio
import base64
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from pydantic import ValidationError
from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col, select

from .features.companies.domains import domain_of
from .features.companies.models import Company
from .features.companies.service import company_owning, create_company
from .features.users import rules
from .features.users.models import Role, User
from .features.users.service import InvalidUserError, create_user
from .lib.auth import ALGORITHM
from .lib.config import AuthConfigError, Settings, get_settings
from .lib.database import create_session_factory, engine_scope
from .lib.errors import AppError

DEFAULT_KEYS_DIR = Path(".dev-keys")
PROCFILE = Path("Procfile.dev")
# How to get a server that does not answer, in one line.
INSTALL_HINTS = {
    "Postgres": "sudo apt install postgresql (Debian/Ubuntu), "
    "brew install postgresql@17 && brew services start postgresql@17 (macOS)",
    "Redis": "sudo apt install redis-server (Debian/Ubuntu), "
    "brew install redis && brew services start redis (macOS)",
}
PRIVATE_KEY_FILE = "private.pem"
JWKS_FILE = "jwks.json"


class CommandError(Exception):
    """A reason to stop, printed on stderr."""


def thumbprint(public_jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint: a stable `kid` derived from the key itself."""
    members = {name: public_jwk[name] for name in ("e", "kty", "n")}
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode())
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


def load_or_create_key(keys_dir: Path) -> tuple[rsa.RSAPrivateKey, str]:
    """The local signing key and its `kid`; created once, then reused."""
    private_path = keys_dir / PRIVATE_KEY_FILE
    if private_path.exists():
        key = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise CommandError(f"{private_path} is not an RSA private key")
    else:
        keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(pem)
        print(f"dev-token: created a signing key in {keys_dir}/", file=sys.stderr)
    public_jwk: dict[str, Any] = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    kid = thumbprint(public_jwk)
    public_jwk.update(kid=kid, use="sig", alg=ALGORITHM)
    (keys_dir / JWKS_FILE).write_text(json.dumps({"keys": [public_jwk]}, indent=2) + "\n")
    return key, kid


def jwks_path(url: str) -> Path | None:
    parts = urlsplit(url)
    return Path(unquote(parts.path)).resolve() if parts.scheme == "file" else None


async def ensure_user(settings: Settings, email: str, role: Role | None, name: str | None) -> User:
    """The user with this email, created (with its company) when missing, linked to a subject.
{%- if cookiecutter.examples == "kudos" %}

    Made by the services the api uses: a new company and user are exactly what
    `create-company` and `POST /admin/users` make (a wallet holding the allowance and its
    first ledger row). What it creates or changes is said on stderr.
{%- else %}

    Made by the services the api uses: a new company and user are exactly what
    `create-company` and `POST /admin/users` make. What it creates or changes is said on
    stderr.
{%- endif %}
    """
    domain = domain_of(email)
    async with engine_scope(settings) as engine, create_session_factory(engine)() as session:
        user = (await session.exec(select(User).where(col(User.email) == email))).first()
        if user is None:
            # The company that owns the domain (its primary one or an added one).
            owner = await company_owning(session, domain)
            company = None if owner is None else await session.get(Company, owner)
            if company is None:
                company = await create_company(
                    session, name=company_name(domain), email_domain=domain
                )
{%- if cookiecutter.examples == "kudos" %}
                print(
                    f"dev-token: created company {company.name} ({domain}, id {company.id}, "
                    f"weekly allowance {company.weekly_renewal_amount})",
                    file=sys.stderr,
                )
            created = await create_user(
{%- else %}
                print(
                    f"dev-token: created company {company.name} ({domain}, id {company.id})",
                    file=sys.stderr,
                )
            user = await create_user(
{%- endif %}
                session,
                company,
                name=name or email.split("@")[0].replace(".", " ").title(),
                email=email,
                role=role or Role.employee,
            )
{%- if cookiecutter.examples == "kudos" %}
            user = created.user
            print(
                f"dev-token: created user {user.email} ({user.role}, id {user.id}) in "
                f"{company.name}, with a wallet of {company.weekly_renewal_amount} coins "
                "and its first ledger row",
                file=sys.stderr,
            )
{%- else %}
            print(
                f"dev-token: created user {user.email} ({user.role}, id {user.id}) in "
                f"{company.name}",
                file=sys.stderr,
            )
{%- endif %}
        elif role is not None and user.role != role:
            user.role = role
            print(f"dev-token: {email} is now {role}", file=sys.stderr)
        if user.auth_sub is None:
            user.auth_sub = f"dev|{user.id}"
        await session.commit()
        company = await session.get(Company, user.company_id)
        if not user.is_active or (company is not None and not company.is_active):
            print(
                f"dev-token: warning: {email} or its company is inactive; the api will refuse it",
                file=sys.stderr,
            )
        return user


def company_name(domain: str) -> str:
    """`acme.example` -> `Acme`; padded to the 2 characters a company name needs."""
    return domain.split(".")[0].replace("-", " ").title().ljust(2, ".")


def mint(
    key: rsa.RSAPrivateKey, kid: str, *, issuer: str, audience: str, user: User, ttl: int
) -> str:
    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": user.auth_sub,
        "email": user.email,
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
    }
    return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": kid})


def dev_token(args: argparse.Namespace) -> int:
    settings = load_settings()
    if not settings.is_development:
        raise CommandError(
            "refusing to mint development tokens: set ENVIRONMENT=development (or test); "
            "unset means production"
        )
    try:
        auth = settings.auth_settings()
    except AuthConfigError as exc:
        raise CommandError(
            f"{exc}. For local development set, e.g. in .env: "
            "AUTH_ISSUER=http://localhost/dev/ AUTH_AUDIENCE=http://localhost:8000 "
            "AUTH_JWKS_URL=file:.dev-keys/jwks.json"
        ) from exc
    keys_dir: Path = args.keys_dir
    key, kid = load_or_create_key(keys_dir)
    if jwks_path(auth.jwks_url) != (keys_dir / JWKS_FILE).resolve():
        print(
            f"dev-token: warning: the api reads keys from AUTH_JWKS_URL={auth.jwks_url}; "
            f"it accepts this token only with AUTH_JWKS_URL=file:{keys_dir / JWKS_FILE}",
            file=sys.stderr,
        )
    email = rules.normalize_email(args.email)
    if (problem := rules.email_problem(email)) is not None:
        # The users feature's rule, {% if cookiecutter.examples == "kudos" %}as the api and the import answer it{% else %}as the api answers it{% endif %}.
        raise CommandError(f"email {problem}: {args.email!r}")
    role = Role(args.role) if args.role else None
    try:
        user = asyncio.run(ensure_user(settings, email, role, args.name))
    except AppError as exc:
        raise refusal(exc) from exc
    except (SQLAlchemyError, OSError) as exc:
        raise database_error(exc) from exc
    print(mint(key, kid, issuer=auth.issuer, audience=auth.audience, user=user, ttl=args.ttl))
    print(
        f"dev-token: token for {user.email} ({user.role}), valid {args.ttl} s: "
        'curl -H "Authorization: Bearer $TOKEN" localhost:8000/me',
        file=sys.stderr,
    )
    return 0


def refusal(exc: AppError) -> CommandError:
    """One line: what the services refused and, for an invalid user, each field's reason
    (the api's details), which the message alone does not say."""
    if not isinstance(exc, InvalidUserError):
        return CommandError(str(exc))
    reasons = [f"{d['field']} {d['message']}" for d in exc.details or ()]
    return CommandError("; ".join([str(exc), *reasons]))


def database_error(exc: Exception) -> CommandError:
    """One line: the driver's first line, without SQLAlchemy's statement and link."""
    cause = getattr(exc, "orig", None) or exc
    first = (str(cause).strip().splitlines() or [""])[0]
    return CommandError(f"database: {type(cause).__name__}: {first}")


def load_settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        raise CommandError(f"bad configuration: {exc}") from exc


async def add_company(settings: Settings, args: argparse.Namespace) -> dict[str, str]:
    """The company and its admin, both or neither."""
    async with engine_scope(settings) as engine, create_session_factory(engine)() as session:
        async with session.begin():
{%- if cookiecutter.examples == "kudos" %}
            company = await create_company(
                session,
                name=args.name,
                email_domain=args.domain,
                weekly_allowance=args.allowance,
            )
{%- else %}
            company = await create_company(session, name=args.name, email_domain=args.domain)
{%- endif %}
            admin = await create_user(
                session, company, name=args.admin_name, email=args.admin_email, role=Role.admin
            )
        return {
            "company_id": str(company.id),
            "company": company.name,
            "email_domain": company.email_domain,
{%- if cookiecutter.examples == "kudos" %}
            "admin_id": str(admin.user.id),
            "admin_email": admin.user.email,
{%- else %}
            "admin_id": str(admin.id),
            "admin_email": admin.email,
{%- endif %}
        }


def create_company_command(args: argparse.Namespace) -> int:
    settings = load_settings()
    try:
        created = asyncio.run(add_company(settings, args))
    except AppError as exc:
        raise refusal(exc) from exc
    except (SQLAlchemyError, OSError) as exc:
        raise database_error(exc) from exc
    print(json.dumps(created))
    print(
        f"create-company: {created['admin_email']} is admin of {created['company']}; "
        "their first token with that verified email signs them in",
        file=sys.stderr,
    )
    return 0


def unreachable(server: str, where: str, exc: Exception) -> CommandError:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return CommandError(
        f"{server} does not answer at {where} ({first}). Start it: "
        f"{INSTALL_HINTS[server]}, or `docker compose up -d postgres redis`"
    )


def prepare_database(database_url: str) -> None:
    """Create the database when the server has none of that name, then migrate it."""
    import psycopg
    from psycopg import sql

    url = make_url(database_url)
    name = url.database or "postgres"
    server = url.set(drivername="postgresql", database="postgres")
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    try:
        with psycopg.connect(
            server.render_as_string(hide_password=False), autocommit=True, connect_timeout=3
        ) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if found is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                print(f"dev: created the database {name}", file=sys.stderr)
    except psycopg.OperationalError as exc:
        raise unreachable("Postgres", where, exc) from exc
    except psycopg.Error as exc:
        raise CommandError(f"database: {type(exc).__name__}: {exc}") from exc
    migrated = subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], check=False)
    if migrated.returncode != 0:
        raise CommandError("`alembic upgrade head` failed (its output is above)")


def check_redis(redis_url: str) -> None:
    import redis

    parts = urlsplit(redis_url)
    where = f"{parts.hostname or 'localhost'}:{parts.port or 6379}"
    client = redis.Redis.from_url(redis_url, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise unreachable("Redis", where, exc) from exc
    finally:
        client.close()


def dev_stack(args: argparse.Namespace) -> int:
    from honcho.environ import parse_procfile
    from honcho.manager import Manager

    settings = load_settings()
    if not settings.is_development:
        raise CommandError("the development stack needs ENVIRONMENT=development (see .env.example)")
    if not PROCFILE.is_file():
        raise CommandError(f"no {PROCFILE} here: run it from the project folder")
    check_redis(settings.redis_url)
    prepare_database(settings.database_url)
    try:
        jwks_url = settings.auth_settings().jwks_url
    except AuthConfigError as exc:
        raise CommandError(f"{exc} (see .env.example)") from exc
    if jwks_path(jwks_url) == (DEFAULT_KEYS_DIR / JWKS_FILE).resolve():
        # The api reads the key set on its first request: make it exist before then.
        load_or_create_key(DEFAULT_KEYS_DIR)
    manager = Manager()
    # The processes' commands come from this environment's bin (`uv run` or not).
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {**os.environ, "PATH": path, "PORT": str(args.port), "PYTHONUNBUFFERED": "1"}
    for name, command in parse_procfile(PROCFILE.read_text()).processes.items():
        manager.add_process(name, command, env=env)
    print(
        f"dev: api on http://127.0.0.1:{args.port} (/docs), worker on {settings.queue_name}; "
        "Ctrl-C stops both",
        file=sys.stderr,
    )
    manager.loop()
    code: int = manager.returncode or 0
    # Ctrl-C (or SIGTERM) is how the stack is meant to stop.
    return 0 if code in {130, 143} else code


# The module's docstring, by paragraph: the commands' descriptions.
HELP = (__doc__ or "").split("\n\n") + [""] * 5


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m {{ cookiecutter.package_name }}.cli")
    commands = root.add_subparsers(dest="command", required=True)
    company = commands.add_parser(
        "create-company",
        help="add a company and its first admin",
        description=HELP[1],
    )
    company.add_argument("--name", required=True, help="the company's name")
    company.add_argument("--domain", required=True, help="its email domain, e.g. acme.example")
    company.add_argument("--admin-email", required=True)
    company.add_argument("--admin-name", required=True)
{%- if cookiecutter.examples == "kudos" %}
    company.add_argument(
        "--allowance", type=int, default=100, help="weekly allowance, 50..500 (default 100)"
    )
{%- endif %}
    company.set_defaults(handler=create_company_command)
    token = commands.add_parser(
        "dev-token",
        help="print a locally signed token for a user (created if missing)",
        description="\n\n".join(HELP[2:4]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    token.add_argument("--email", required=True)
    token.add_argument("--role", choices=[role.value for role in Role])
    token.add_argument("--name", help="the name of a new user (default: from the email)")
    token.add_argument("--ttl", type=int, default=3600, help="seconds the token is valid")
    token.add_argument("--keys-dir", type=Path, default=DEFAULT_KEYS_DIR)
    token.set_defaults(handler=dev_token)
    stack = commands.add_parser(
        "dev",
        help="run the api (with reload) and the worker locally, after migrating",
        description=HELP[4],
    )
    stack.add_argument("--port", type=int, default=8000, help="the api's port (default 8000)")
    stack.set_defaults(handler=dev_stack)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except CommandError as exc:
        print(f"{args.command}: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
