"""The commands a rendered project's deploy files name, and what each needs to exist.

`SOURCES` reads the commands from each file; `Requirements` turns them into what must
exist for them to run: files and programs (checked here), and Python modules and objects
(checked by `venv_probe.py`, run by the project's own virtualenv).
"""

import ast
import functools
import json
import os
import re
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .helpers import run
from .railway_config import evaluate, services

# shlex groups adjacent operator characters: ";\n" is one token, and so is "\n\n".
SEPARATOR_CHARACTERS = set("\n;&|()")
REDIRECTIONS = {">", ">>", "<", ">&", "<&", "&>"}
# Words that start a command without being one: the command follows them.
PREFIXES = {"if", "then", "else", "elif", "while", "until", "do", "!", "exec"}
# Shell built-ins, and the keywords that end a compound command: they name nothing.
BUILTINS = {"[", "test", "echo", "printf", "set", "export", "exit", "cd", "true", "false", ":"}
BUILTINS |= {"fi", "done"}
ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


def split(script: str) -> Iterator[list[str]]:
    """The simple commands of a POSIX shell script (no functions or here-documents)."""
    lines = script.replace("\\\n", " ").splitlines()
    code = "\n".join("" if line.lstrip().startswith("#") else line for line in lines)
    lexer = shlex.shlex(code, posix=True, punctuation_chars="();<>|&\n")
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    lexer.commenters = ""
    command: list[str] = []
    tokens = iter(lexer)
    for token in tokens:
        if set(token) <= SEPARATOR_CHARACTERS:
            if command:
                yield command
            command = []
        elif token in REDIRECTIONS:
            next(tokens, None)  # and its target
        else:
            command.append(token)
    if command:
        yield command


def _after_options(args: list[str]) -> list[str]:
    while args and args[0].startswith("-"):
        args = args[1:]
    return args


def _exec_form(command: list[str] | str) -> str:
    return shlex.join(command) if isinstance(command, list) else command


def _healthcheck(test: list[str] | str) -> str:
    """A compose healthcheck's command: ["CMD", argv...], ["CMD-SHELL", script] or a script."""
    if isinstance(test, str):
        return test
    kind, *rest = test
    return shlex.join(rest) if kind == "CMD" else " ".join(rest)


def railway(project: Path) -> list[str]:
    commands = []
    for service in services(evaluate(project / ".railway" / "railway.py")).values():
        deploy = service.get("deploy", {})
        commands += [deploy["startCommand"], *deploy.get("preDeployCommand", [])]
    return commands


def compose(project: Path) -> list[str]:
    commands = []
    spec = yaml.safe_load((project / "compose.yaml").read_text())
    # The services built from the project's image; postgres and redis run others' images.
    for service in spec["services"].values():
        if "build" not in service:
            continue
        if "command" in service:
            commands.append(_exec_form(service["command"]))
        if "test" in service.get("healthcheck", {}):
            commands.append(_healthcheck(service["healthcheck"]["test"]))
    return commands


def dockerfile(project: Path) -> list[str]:
    commands = []
    for line in (project / "Dockerfile").read_text().replace("\\\n", " ").splitlines():
        instruction, _, value = line.strip().partition(" ")
        if instruction.upper() in {"CMD", "ENTRYPOINT"}:  # exec form (JSON) or shell form
            commands.append(_exec_form(json.loads(value) if value.startswith("[") else value))
    return commands


def entrypoint(project: Path) -> list[str]:
    return [(project / "scripts" / "docker-entrypoint.sh").read_text()]


def workflows(project: Path) -> list[str]:
    commands = []
    for path in sorted((project / ".github" / "workflows").glob("*.y*ml")):
        jobs: dict[str, dict[str, Any]] = yaml.safe_load(path.read_text())["jobs"]
        commands += [step["run"] for job in jobs.values() for step in job["steps"] if "run" in step]
    return commands


SOURCES: dict[str, Callable[[Path], list[str]]] = {
    ".railway/railway.py": railway,
    "compose.yaml": compose,
    "Dockerfile": dockerfile,
    "scripts/docker-entrypoint.sh": entrypoint,
    ".github/workflows": workflows,
}


@dataclass
class Requirements:
    """What the commands need: problems found so far, and probes for venv_probe.py."""

    project: Path
    problems: list[str] = field(default_factory=list)
    probes: set[str] = field(default_factory=set)

    def of_script(self, script: str) -> None:
        for argv in split(script):
            self.of_command(argv)

    def of_command(self, argv: list[str]) -> None:
        while argv and (argv[0] in PREFIXES or ASSIGNMENT.match(argv[0])):
            argv = argv[1:]
        if not argv or argv[0].startswith("$") or argv[0] in BUILTINS:
            return  # nothing to find, or chosen at run time ("$@")
        program, args = argv[0], argv[1:]
        if program == "uv":  # uv's own commands need nothing; `uv run` runs one that might
            if args[:1] == ["run"]:
                self.of_command(_after_options(args[1:]))
        elif program == "docker":  # `docker run [--options] IMAGE COMMAND...`
            if args[:1] == ["run"]:
                self.of_command(_after_options(args[1:])[1:])
        elif program in {"sh", "bash"}:
            self.of_shell(args)
        elif program == "python":
            self.of_python(args)
        elif not (self.project / ".venv" / "bin" / program).is_file():
            self.problems.append(f"{shlex.join(argv)}: {program} is not installed by the project")
        elif program == "arq":  # arq [--check] SETTINGS (or `arq --help`)
            self.probes |= {f"object={settings}" for settings in _after_options(args)[:1]}
        elif program == "uvicorn":  # uvicorn [options] MODULE:APP [options]
            kind = "factory" if "--factory" in args else "object"
            apps = [arg for arg in args if re.fullmatch(r"[\w.]+:[\w.]+", arg)]
            self.probes |= {f"{kind}={app}" for app in apps[:1]}
        elif program == "alembic":
            self.problems += alembic_problems(self.project)

    def of_shell(self, args: list[str]) -> None:
        if args[:1] == ["-c"]:
            self.of_script(args[1])
            return
        script = self.project / args[0]
        if not script.is_file():
            self.problems.append(f"sh {args[0]}: no such file in the project")
        elif not os.access(script, os.X_OK):
            self.problems.append(f"sh {args[0]}: not executable")

    def of_python(self, args: list[str]) -> None:
        if args[:1] == ["-m"]:
            self.probes |= {f"main={args[1]}"}
        elif args[:1] == ["-c"]:
            for node in ast.walk(ast.parse(args[1])):
                if isinstance(node, ast.Import):
                    self.probes |= {f"module={alias.name}" for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    self.probes |= {f"module={node.module}"}
        elif args and not (self.project / args[0]).is_file():
            self.problems.append(f"python {args[0]}: no such file in the project")


@functools.cache
def alembic_problems(project: Path) -> tuple[str, ...]:
    """alembic finds its configuration and migrations, with one head to upgrade to."""
    done = run([str(project / ".venv" / "bin" / "alembic"), "heads"], cwd=project)
    if done.returncode != 0 or done.stdout.count("(head)") != 1:
        return (f"alembic heads: {done.stdout}{done.stderr}".strip(),)
    return ()
