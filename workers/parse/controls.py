"""Whether a text holds a C1 control character (U+0080–U+009F), without a regex scan. Pure.

Those are what Windows-1252 punctuation becomes when read as Latin-1: the fast reader maps them
as feedparser does, and normalising drops what is left. Most non-ASCII text holds none, and a
look at its UTF-8 bytes says so several times sooner than a regex or ``str.translate`` pass.
"""

from __future__ import annotations

__all__ = ["has_c1"]


def has_c1(text: str) -> bool:
    """Whether ``text`` holds a character in U+0080–U+009F: in UTF-8 each is 0xC2 then a byte
    below 0xA0 (0xC2 is only ever a lead byte)."""
    if text.isascii():
        return False
    data = text.encode("utf-8", "surrogatepass")
    at = data.find(b"\xc2")
    while at != -1:
        if data[at + 1] < 0xA0:
            return True
        at = data.find(b"\xc2", at + 2)
    return False
