"""BM25 tokens for Chinese government text; documents and questions go through the same function.

Figures, dates, phone and document numbers are kept whole (with a few canonical variants, so
"2024-08-02" meets "2024年8月2日"); the remaining Chinese is cut by jieba and, by default, also
into character bigrams, which measured better on this genre than jieba words alone.
"""
from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator

import jieba

from rag.patterns import NUMBER_TAIL_ALT, load_data
from rag.text import normalize

# Stored with the index by index.py: bump when the tokens produced for the same text change.
TOKENIZER_VERSION = "2"

_CJK = r"\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_RUN = re.compile(f"[{_CJK}]+")
_LETTER = rf"[^\W\d_{_CJK}]"  # a letter of an alphabetic script (Latin, Cyrillic, Greek, ...)
_ALNUM = rf"[^\W_{_CJK}]"

_UNITS = NUMBER_TAIL_ALT
# Order matters: the most specific pattern wins at each position.
_PROTECTED = re.compile(
    r"(?P<docno>[〔\[【(]\s*(?P<dy>\d{4})\s*[〕\]】)]\s*第?\s*(?P<dn>\d+)\s*号)"
    r"|(?P<date>(?<!\d)(?P<y>\d{4})\s*年\s*(?P<m>\d{1,2})\s*月(?:\s*(?P<d>\d{1,2})\s*[日号])?)"
    r"|(?P<iso>(?<![\d.])(?P<iy>\d{4})[-/.](?P<im>\d{1,2})[-/.](?P<id>\d{1,2})(?![\d.]))"
    r"|(?P<phone>(?<!\d)(?:\d{3,4}-(?P<local>\d{7,8})|1[3-9]\d{9})(?!\d))"
    r"|(?P<pct>\d+(?:\.\d+)?%)"
    r"|(?P<latin>" + _ALNUM + "*" + _LETTER + _ALNUM + "*(?:[&'._+-]" + _ALNUM + "+)*)"
    r"|(?P<num>第?(?P<n>\d+(?:,\d{3})*(?:\.\d+)?)(?:余|多)?(?P<unit>" + _UNITS + r")?)"
)
_DOCNO_PREFIX = re.compile(f"[{_CJK}]{{1,6}}$")  # issuer abbreviation before 〔year〕: 石传, 冀政办字

STOP_WORDS_ZH = frozenset(
    """的 地 得 了 着 过 和 与 及 或 及其 以及 并 而 且 是 在 有 对 为 把 被 也 都 就 等 之 其 于 以 从 到 由 向 给
    吗 呢 吧 啊 呀 么 嘛 哦 请问 请 一下 我 你 您 他 她 它 我们 你们 他们 这 那 这个 那个 这些 那些 该
    什么 哪些 哪个 哪 哪里 哪儿 多少 几 几个 怎么 怎样 怎么样 如何 为什么 为何 是否 是不是 有没有 谁 何时
    什么时候 啥 多久 多大 一个""".split()
)
STOP_WORDS_EN = frozenset(
    """a an the of and or to in on for is are was were be been by with at from as that this these those it its
    what which who whom whose how when where why do does did can could will would should may might i you he she
    we they me my our your his her their not no""".split()
)
# Added to jieba because its default dictionary splits them differently depending on the neighbouring words,
# so a query and a passage disagreed (rag/data/vocabulary_zh.json "tokenizer_words", general terms only).
USER_WORDS: tuple[str, ...] = tuple(load_data("vocabulary_zh.json")["tokenizer_words"].split())

_lock = threading.Lock()
_segmenters: dict[tuple[tuple[str, ...], int | None], jieba.Tokenizer] = {}


def segmenter(words: tuple[str, ...] = USER_WORDS, freq: int | None = None) -> jieba.Tokenizer:
    """A quiet private jieba tokenizer with extra `words` (one per word list, shared by all threads).

    The default dictionary of jieba stays untouched; `freq=None` lets jieba pick a frequency that keeps
    each word whole, a large `freq` makes the word win over any split.
    """
    key = (tuple(words), freq)
    with _lock:
        tk = _segmenters.get(key)
        if tk is None:
            jieba.setLogLevel(logging.WARNING)
            tk = jieba.Tokenizer()
            tk.initialize()
            for word in words:
                tk.add_word(word, freq=freq)
            _segmenters[key] = tk
    return tk


def _protected_tokens(m: re.Match, text: str) -> list[str]:
    """The whole token of one protected match plus its canonical variants."""
    kind = m.lastgroup
    whole = re.sub(r"\s+", "", m.group())
    if kind == "docno":
        core = f"〔{m.group('dy')}〕{int(m.group('dn'))}号"
        out = [core, m.group("dy")]
        prefix = _DOCNO_PREFIX.search(text, 0, m.start())
        if prefix:
            out.insert(0, prefix.group() + core)
        return out
    if kind == "date":
        y, mo = m.group("y"), int(m.group("m"))
        out = [f"{y}年{mo}月", f"{y}年", y]
        if m.group("d"):
            d = int(m.group("d"))
            out = [f"{y}年{mo}月{d}日", f"{y}-{mo:02d}-{d:02d}", *out]
        return out
    if kind == "iso":
        y, mo, d = m.group("iy"), int(m.group("im")), int(m.group("id"))
        if not (1 <= mo <= 12 and 1 <= d <= 31):
            return [whole]
        return [f"{y}-{mo:02d}-{d:02d}", f"{y}年{mo}月{d}日", f"{y}年{mo}月", f"{y}年", y]
    if kind == "phone":
        return [whole, m.group("local")] if m.group("local") else [whole]
    if kind == "pct":
        return [whole]
    if kind == "latin":
        if whole in STOP_WORDS_EN:
            return []
        parts = [p for p in re.split(r"[&'._+-]", whole) if len(p) > 1 and p not in STOP_WORDS_EN]
        joined = re.sub(r"[&'._+-]", "", whole)
        return list(dict.fromkeys([whole, joined, *parts]))
    number = m.group("n").replace(",", "")
    unit = m.group("unit") or ""
    out = [number + unit, number] if unit else [number]
    if unit == "年度":
        out.insert(1, number + "年")
    return out


def _is_word(token: str) -> bool:
    return bool(re.search(r"[^\W_]", token)) and token not in STOP_WORDS_ZH  # letters, digits, CJK


def _cjk_tokens(segment: str, words: bool, bigrams: bool) -> Iterator[str]:
    """jieba words and/or character bigrams of a stretch of text without protected tokens."""
    pieces = [w.strip() for w in segmenter().cut(segment)]
    if words:
        yield from (w for w in pieces if _is_word(w))
    if bigrams:
        # bigrams inside runs of content words: stop words and punctuation break the runs
        run = ""
        for w in [*pieces, ""]:
            if w and _CJK_RUN.fullmatch(w) and w not in STOP_WORDS_ZH:
                run += w
                continue
            if len(run) == 1:
                yield run
            yield from (run[i : i + 2] for i in range(len(run) - 1))
            run = ""


def tokenize(text: str, bigrams: bool = True, words: bool = True) -> list[str]:
    """BM25 tokens of `text`: protected figures, jieba words (`words`) and CJK bigrams (`bigrams`).

    Both defaults on: on 800 tipdm message titles → replies and on questions about the reference
    reply, jieba words + bigrams ranked the right paragraph first more often than either alone.
    """
    norm = normalize(text)
    out: list[str] = []
    pos = 0
    for m in _PROTECTED.finditer(norm):
        if m.start() > pos:
            out += _cjk_tokens(norm[pos : m.start()], words, bigrams)
        out += _protected_tokens(m, norm)
        pos = m.end()
    if pos < len(norm):
        out += _cjk_tokens(norm[pos:], words, bigrams)
    return out
