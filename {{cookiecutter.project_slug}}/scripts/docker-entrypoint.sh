#!/bin/sh
# The image's default command (the api process).
#
#   sh ./scripts/docker-entrypoint.sh            migrations, then the api (uvicorn)
#   sh ./scripts/docker-entrypoint.sh CMD ARG..  migrations, then CMD ARG.. instead
#
# `alembic upgrade head` is safe to run from several processes at once (api replicas,
# Railway's pre-deploy command): migrations/env.py serialises it with a Postgres
# advisory lock, and whoever comes second finds nothing left to do.
# RUN_MIGRATIONS=0 skips it, for a process that must not touch the schema.
set -eu

if [ "${RUN_MIGRATIONS:-1}" != "0" ]; then
    echo "docker-entrypoint: alembic upgrade head" >&2
    alembic upgrade head
fi

if [ "$#" -gt 0 ]; then
    exec "$@"
fi

# exec: uvicorn replaces the shell, so it receives SIGTERM and shuts down gracefully.
# WEB_CONCURRENCY (default 1): uvicorn worker processes, each with its own pool of
# DATABASE_POOL_SIZE connections (no overflow by default); one uses about one core.
exec uvicorn {{ cookiecutter.package_name }}.app:create_app --factory \
    --host 0.0.0.0 --port "${PORT:-8000}" --workers "${WEB_CONCURRENCY:-1}"
