"""Text as Tributary republishes it: free of what XML 1.0 cannot carry, and plain text of HTML.

Shared by the renderers and the feeds' keyword filters (service/feed_filter.py), so a filter
reads exactly the text a reader sees.
"""

from __future__ import annotations

import html
import re

# XML 1.0 `Char` leaves out C0 controls other than tab/LF/CR, U+FFFE/U+FFFF and every surrogate
# (a str surrogate is always "lone": a well-formed pair would be one astral code point).
_NOT_XML_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_C0_BYTES = bytes(c for c in range(0x20) if c not in (0x09, 0x0A, 0x0D))
_SURROGATE = re.compile("[\ud800-\udfff]")

_INVISIBLE = re.compile(r"<(script|style)\b.*?</\1\s*>|<!--.*?-->", re.IGNORECASE | re.DOTALL)
_BLOCK_TAG = re.compile(
    r"</?(?:p|br|div|li|ul|ol|h[1-6]|tr|td|th|blockquote|pre|figure|figcaption|hr|table|section|article)\b[^>]*>",
    re.IGNORECASE,
)
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


def xml_safe(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot carry (also what UTF-8 cannot encode)."""
    if text.isascii():
        # Only C0 controls can be wrong here; deleting bytes is ~10x faster than the regex scan.
        ascii_bytes = text.encode("ascii")
        if len(ascii_bytes.translate(None, _C0_BYTES)) == len(ascii_bytes):
            return text
    elif _NOT_XML_CHAR.search(text) is None:
        return text
    if _SURROGATE.search(text) is not None:
        # Rejoin surrogate pairs split by a bad decode (emoji survive), drop the lone ones.
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "ignore")
    return _NOT_XML_CHAR.sub("", text)


def plain_text(markup: str) -> str:
    """Readable text of an HTML fragment: tags dropped, entities decoded, whitespace collapsed."""
    text = _TAG.sub("", _BLOCK_TAG.sub(" ", _INVISIBLE.sub(" ", markup)))
    return xml_safe(_SPACE.sub(" ", html.unescape(text)).strip())
