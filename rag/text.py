"""Text normalisation shared by indexing and querying, so both sides match the same way."""
from __future__ import annotations

import re
import unicodedata

_WIDTH_MAP: dict[int, str] = {}


def _fold_char(ch: str) -> str:
    """Map one character to its matching form; always returns exactly one character."""
    code = ord(ch)
    if code in _WIDTH_MAP:
        return _WIDTH_MAP[code]
    if ch.isspace() or ch in "\u200b\u200c\u200d\ufeff":
        out = " "
    elif 0xFF01 <= code <= 0xFF5E:  # full-width ASCII block
        out = chr(code - 0xFEE0)
    else:
        folded = unicodedata.normalize("NFKC", ch)
        out = folded if len(folded) == 1 else ch
    if out in "，":
        out = ","
    out = out.lower()
    if len(out) != 1:
        out = ch
    _WIDTH_MAP[code] = out
    return out


def normalize(text: str) -> str:
    """Full-width → half-width, every whitespace → one space, lower case; keeps the length unchanged.

    Because the length is unchanged, an offset found in the normalised text is the same offset in
    the stored text: highlights and chunk offsets never need a mapping table.
    """
    return "".join(_fold_char(ch) for ch in text)


def squeeze(text: str) -> str:
    """Normalise and collapse runs of spaces, for text that is compared or embedded but never sliced."""
    return re.sub(r" +", " ", normalize(text)).strip()


_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def replace_surrogates(text: str) -> str:
    """Lone surrogates (from a broken JSON escape or a script) → U+FFFD, one for one, so offsets hold and the
    text can be written as UTF-8; done once where text enters (questions, documents)."""
    return _SURROGATE_RE.sub("\ufffd", text)


CJK_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def has_cjk(text: str) -> bool:
    """True when the text contains Chinese characters (decides how a question is treated)."""
    return bool(CJK_RE.search(text))
