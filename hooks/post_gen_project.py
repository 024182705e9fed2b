"""Say what comes next, as copier.yml's _message_after_copy does (hooks/next_steps.jinja)."""

import os
import sys


def main() -> int:
    folder = os.path.basename(os.getcwd())
    message = r"""{% set folder = '@FOLDER@' %}{% include 'hooks/next_steps.jinja' %}"""
    print("\n" + message.replace("@FOLDER@", folder), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
