"""What every part of the story shares: the narrator, the error, a log's last lines."""

from collections.abc import Callable

Say = Callable[[str], None]


def quiet(_: str) -> None:
    """A narrator that says nothing."""


class StoryError(AssertionError):
    """The story went differently from what the domain rules say (or could not run)."""


def tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])
