"""Text hygiene for input that did not come through PostgreSQL.

JSON lets a string hold what PostgreSQL ``text`` and UTF-8 cannot: a NUL
(``\\u0000``) and a lone UTF-16 surrogate (``\\udc00``, what a tweet cut in the
middle of an emoji leaves). Python reads both into a ``str``; the database
then refuses the row, the tokenizer raises ``TypeError`` and stdout cannot
encode the output. Rows read from the database never hold them.
"""

from __future__ import annotations


def clean_text(text: str) -> str:
    """``text`` without NULs, every lone surrogate replaced by U+FFFD (a
    surrogate pair written as two code points becomes the one it encodes).
    Text that is already valid is returned as it is."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    if not is_valid_unicode(text):
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def is_valid_unicode(text: str) -> bool:
    """Whether ``text`` can be written as UTF-8 (it holds no lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def is_utf8(data: bytes) -> bool:
    """Whether ``data`` reads as UTF-8."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
