"""The generated project's Docker image, built and run for real.

There is no Docker engine on the test machines: buildah builds the rendered Dockerfile
(BuildKit's cache and bind mounts included) and `buildah run --isolation=chroot
--network=host` runs the image's processes against the machine's Postgres and Redis.
No container registry is reachable either, so the image is built on a local Debian
base that tools/base_image.py makes once per machine; the Dockerfile's own default base,
`python:<version>-slim`, is checked statically.

Each process is started as Railway starts it: its start command and variables (and the
api's pre-deploy migrations) come from the project's .railway/railway.py, evaluated with
railway-sdk, pointed at the local Postgres and Redis. A test checks that compose.yaml and
the Dockerfile's CMD name the same commands, so renaming one without the others fails.
The tests fail, never skip, when a tool they need is missing.

The image is built once per run and shared by the modules here: `test_api`, `test_worker`
and `test_cron` run the three start commands, `test_contents` looks inside the image, and
`test_dockerfile` reads the Dockerfile itself; `containers` and `deploy` are their helpers.
"""
