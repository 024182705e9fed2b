"""Make, once, the local base image the template's image tests build the Dockerfile on.

    uv run python tools/base_image.py    # prints the image's name when it is there

The generated Dockerfile starts from `python:<version>-slim`, which test machines with
no container registry cannot pull. This makes a stand-in from Debian's packages alone:
a minimal Debian bookworm (its Python 3.11, pip, `python` on the PATH) made with
debootstrap, imported into the local container storage with `podman import`.

Cached twice, so only the first run on a machine is slow:
- the image in local container storage: when it exists, nothing is done;
- the root filesystem as a tarball in ~/.cache/kudos-template/ (or $XDG_CACHE_HOME):
  when only the image is gone, it comes back from the tarball in seconds.
Both are named by a hash of the recipe below (and of the machine's extra CA
certificates), so changing the recipe makes a new image. A file lock keeps parallel
test processes from making it twice. Needs root, debootstrap and podman.

The Debian mirror is the one the machine's apt uses (/etc/apt/sources.list*), or
$DEBIAN_MIRROR. The machine's own extra CA certificates (/usr/local/share/ca-certificates)
go into the image, and SSL_CERT_FILE points at the bundle, so pip and uv inside the build
reach PyPI wherever the host does (for example behind a TLS-inspecting proxy).
"""

import argparse
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUITE = "bookworm"
# `python` as the Dockerfile calls it, and pip for its `python -m pip install uv`.
PACKAGES = ("python3", "python3-pip", "python-is-python3")
REPOSITORY = "localhost/kudos-template/debian-python"
# Bump to rebuild when something below changes that the hash does not see.
RECIPE_VERSION = "1"
EXTRA_CA_DIR = Path("/usr/local/share/ca-certificates")
ENV = (
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG=C.UTF-8",
    "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
)
# Left out of the tarball: package lists and downloads, documentation.
PRUNE = (
    "var/cache/apt/archives",
    "var/lib/apt/lists",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
)


class BaseImageError(Exception):
    pass


def log(message: str) -> None:
    print(f"base-image: {message}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "kudos-template"


def extra_ca_certificates() -> list[Path]:
    if not EXTRA_CA_DIR.is_dir():
        return []
    return sorted(p for p in EXTRA_CA_DIR.rglob("*.crt") if p.is_file())


def recipe_hash() -> str:
    digest = hashlib.sha256()
    for part in (RECIPE_VERSION, SUITE, *PACKAGES, *ENV, *PRUNE):
        digest.update(part.encode() + b"\0")
    for cert in extra_ca_certificates():
        digest.update(str(cert.relative_to(EXTRA_CA_DIR)).encode() + b"\0" + cert.read_bytes())
    return digest.hexdigest()[:12]


def image_ref(digest: str) -> str:
    return f"{REPOSITORY}:{SUITE}-{digest}"


def run(args: list[str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip().splitlines()
        raise BaseImageError(
            f"`{' '.join(args[:3])} ...` failed ({done.returncode}):\n" + "\n".join(output[-30:])
        )
    return done


def image_exists(ref: str) -> bool:
    return subprocess.run(["podman", "image", "exists", ref], check=False).returncode == 0


def debian_mirror() -> str:
    """The mirror serving SUITE to this machine's apt (deb822 or one-line sources)."""
    if os.environ.get("DEBIAN_MIRROR"):
        return os.environ["DEBIAN_MIRROR"]
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields = dict(
                    (key.strip().lower(), value.strip())
                    for key, _, value in (
                        line.partition(":")
                        for line in stanza.splitlines()
                        if ":" in line and not line.lstrip().startswith("#")
                    )
                )
                if (
                    SUITE in fields.get("suites", "").split()
                    and "main" in fields.get("components", "").split()
                ):
                    uris = fields.get("uris", "").split()
                    if uris:
                        return str(uris[0])
        elif path.suffix == ".list" or path.name == "sources.list":
            for line in text.splitlines():
                words = line.split("#", 1)[0].split()
                if words[:1] == ["deb"]:
                    words = [w for w in words[1:] if not w.startswith("[")]
                    if len(words) >= 3 and words[1] == SUITE and "main" in words[2:]:
                        return words[0]
    raise BaseImageError(
        f"no Debian mirror for '{SUITE} main' in /etc/apt/sources.list*; set DEBIAN_MIRROR"
    )


def make_rootfs_tarball(tarball: Path) -> None:
    """debootstrap a minimal SUITE with PACKAGES into a tarball, written atomically."""
    missing = [tool for tool in ("debootstrap", "tar") if shutil.which(tool) is None]
    if missing:
        raise BaseImageError(
            f"{', '.join(missing)} not found: install it (apt-get install debootstrap)"
        )
    if os.geteuid() != 0:
        raise BaseImageError("debootstrap needs root")
    mirror = debian_mirror()
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rootfs-", dir=tarball.parent) as work:
        rootfs = Path(work) / "rootfs"
        log(f"debootstrap {SUITE} from {mirror} (a few minutes, once per machine)")
        run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(PACKAGES)}",
                SUITE,
                str(rootfs),
                mirror,
            ]
        )
        certs = extra_ca_certificates()
        if certs:
            for cert in certs:
                target = rootfs / EXTRA_CA_DIR.relative_to("/") / cert.relative_to(EXTRA_CA_DIR)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(cert, target)
            run(["chroot", str(rootfs), "update-ca-certificates"])
        for relative in PRUNE:
            folder = rootfs / relative
            if folder.is_dir():
                for child in folder.iterdir():
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child)
                    elif child.name != "lock":
                        child.unlink()
        partial = Path(work) / "rootfs.tar"
        run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."])
        partial.replace(tarball)


def remove_stale(digest: str, tarball: Path) -> None:
    """Tarballs and images of earlier recipes, so the cache does not grow."""
    for old in tarball.parent.glob(f"debian-python-{SUITE}-*.tar"):
        if old != tarball:
            old.unlink()
    listed = subprocess.run(
        ["podman", "images", "--format", "{{.Repository}}:{{.Tag}}", REPOSITORY],
        capture_output=True,
        text=True,
        check=False,
    )
    for ref in listed.stdout.split():
        if ref != image_ref(digest):
            subprocess.run(["podman", "rmi", ref], capture_output=True, check=False)


def ensure_base_image() -> str:
    if shutil.which("podman") is None:
        raise BaseImageError("podman not found: install it (apt-get install podman buildah)")
    digest = recipe_hash()
    ref = image_ref(digest)
    if image_exists(ref):
        return ref
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    tarball = folder / f"debian-python-{SUITE}-{digest}.tar"
    with (folder / "base-image.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be making it right now
        if image_exists(ref):
            return ref
        started = time.monotonic()
        if not tarball.exists():
            make_rootfs_tarball(tarball)
        changes = [arg for env in ENV for arg in ("--change", f"ENV {env}")]
        run(["podman", "import", *changes, "--change", 'CMD ["python3"]', str(tarball), ref])
        remove_stale(digest, tarball)
        log(f"made {ref} in {time.monotonic() - started:.0f} s")
    return ref


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    try:
        print(ensure_base_image())
    except BaseImageError as exc:
        log(str(exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
