"""Building the image and running its processes in working containers, with buildah."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ..helpers import TEMPLATE, run

BASE_IMAGE_TOOL = TEMPLATE / "tools" / "base_image.py"
INSTALL_HINT = "install them with `apt-get install podman buildah debootstrap` (bash .ci/run does)"


def require_tools(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"the image tests need {', '.join(missing)}, not found on PATH: {INSTALL_HINT}",
            pytrace=False,
        )


def check(args: list[str], timeout: float = 120) -> str:
    done = run(args, cwd=TEMPLATE, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(args)}:\n{done.stdout}{done.stderr}"
    return done.stdout


def tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


@dataclass(frozen=True)
class Image:
    ref: str
    project: Path
    package: str
    config: dict[str, Any]


def make_base_image() -> str:
    """The local Debian base (made by tools/base_image.py, slow only on a new machine)."""
    require_tools("podman", "buildah")
    done = run([sys.executable, str(BASE_IMAGE_TOOL)], cwd=TEMPLATE, timeout=900)
    if done.returncode != 0:
        pytest.fail(f"tools/base_image.py could not make the base image:\n{done.stderr}")
    return done.stdout.strip().splitlines()[-1]


def build(project: Path, base_image: str, ref: str) -> None:
    """`buildah build` of the project's Dockerfile, tagged `ref`."""
    done = run(
        [
            "buildah",
            "build",
            "--isolation=chroot",
            "--network=host",
            "--pull=never",
            "--build-arg",
            f"BASE_IMAGE={base_image}",
            "--tag",
            ref,
            ".",
        ],
        cwd=project,
        timeout=900,
    )
    assert done.returncode == 0, f"buildah build failed:\n{tail(done.stdout + done.stderr, 60)}"


@dataclass
class Container:
    """One working container of the image; each `start` or `run` is a process in it."""

    name: str
    processes: list["Process"] = field(default_factory=list)

    def _run_args(self, command: list[str], env: dict[str, str]) -> list[str]:
        env_args = [arg for key, value in env.items() for arg in ("--env", f"{key}={value}")]
        return [
            "buildah",
            "run",
            "--isolation=chroot",
            "--network=host",
            *env_args,
            self.name,
            "--",
            *command,
        ]

    def run(
        self, command: list[str], env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return run(self._run_args(command, env or {}), cwd=TEMPLATE, timeout=timeout)

    def start(self, command: list[str], env: dict[str, str], log: Path) -> "Process":
        with log.open("wb") as out:
            proc = subprocess.Popen(
                self._run_args(command, env),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.processes.append(Process(proc, log))
        return self.processes[-1]


@dataclass
class Process:
    """`buildah run` of a long-running command, and the command's own process."""

    buildah: "subprocess.Popen[bytes]"
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def assert_running(self) -> None:
        if self.buildah.poll() is not None:
            raise AssertionError(
                f"exited early ({self.buildah.returncode}):\n{tail(self.output())}"
            )

    def main_pid(self) -> int:
        """The command's process, as a container runtime would signal it (PID 1).

        Below `buildah run` sit buildah's own chroot helpers (run from memfds); the
        first process under them that runs a program of the image is the command.
        """
        queue = [self.buildah.pid]
        while queue:
            pid = queue.pop(0)
            try:
                exe = os.readlink(f"/proc/{pid}/exe")
                root = os.readlink(f"/proc/{pid}/root")
                tasks = list(Path(f"/proc/{pid}/task").iterdir())
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue
            if root != "/" and not exe.startswith("/memfd:"):
                return pid
            for task in tasks:
                try:
                    queue.extend(int(c) for c in (task / "children").read_text().split())
                except FileNotFoundError:
                    continue
        raise AssertionError(f"no process of the image under buildah run {self.buildah.pid}")

    def uids(self) -> list[int]:
        """Real, effective, saved and filesystem uid of the command's process."""
        status = Path(f"/proc/{self.main_pid()}/status").read_text()
        [line] = [line for line in status.splitlines() if line.startswith("Uid:")]
        return [int(uid) for uid in line.split()[1:]]

    def stop(self, sig: signal.Signals, timeout: float) -> float:
        """Send sig to the command's process, as `docker stop` does; seconds to exit."""
        pid = self.main_pid()
        started = time.monotonic()
        os.kill(pid, sig)
        try:
            self.buildah.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"still running {timeout:.0f} s after {sig.name}:\n{tail(self.output())}"
            ) from None
        return time.monotonic() - started

    def exit(self) -> str:
        """How the command itself ended: "status N" or "signal NAME" (buildah's words).

        buildah exits 0 when the command did; otherwise it prints the command's end
        first ("subprocess exited with status 3", "... exited on terminated"), then its own.
        """
        assert self.buildah.returncode is not None
        if self.buildah.returncode == 0:
            return "status 0"
        found = re.search(r"subprocess exited (?:with status (\d+)|on (\w+))", self.output())
        assert found, f"buildah run failed ({self.buildah.returncode}):\n{tail(self.output())}"
        return f"status {found[1]}" if found[1] else f"signal {found[2]}"
