"""Leave out what the other `examples` answer's project has, then say what comes next.

The paths are hooks/examples_paths.txt's (the kudos domain, gone with examples=none) or
hooks/starter_paths.txt's (the starter's own files, gone with examples=kudos): the lists
copier.yml's _exclude reads too. The message is copier.yml's _message_after_copy
(hooks/next_steps.jinja).
"""

import os
import shutil
import sys

EXAMPLES = "{{ cookiecutter.examples }}"
if EXAMPLES == "none":
    LEFT_OUT = r"""{% include 'hooks/examples_paths.txt' %}"""
else:
    LEFT_OUT = r"""{% include 'hooks/starter_paths.txt' %}"""


def leave_out(listing: str) -> None:
    for line in listing.splitlines():
        path = line.strip()
        if not path or path.startswith("#"):
            continue
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.remove(path)


def main() -> int:
    leave_out(LEFT_OUT)
    folder = os.path.basename(os.getcwd())
    message = r"""{% set folder = '@FOLDER@' %}{% include 'hooks/next_steps.jinja' %}"""
    print("\n" + message.replace("@FOLDER@", folder), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
