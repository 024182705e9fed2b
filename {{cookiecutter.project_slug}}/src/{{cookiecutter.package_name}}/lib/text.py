"""Plain text: no control characters. One rule for every input path (names, file names,
search terms, CSV cells)."""

import re

# Text without control characters (Unicode category Cc: U+0000-U+001F, U+007F-U+009F),
# as a pattern for schemas and query parameters. Postgres refuses NUL in text; the
# others break CSV exports, logs and e-mail headers.
PLAIN_TEXT_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def has_control_characters(text: str) -> bool:
    """Whether `text` holds a control character (tab, newline and NUL included)."""
    return _CONTROL.search(text) is not None
