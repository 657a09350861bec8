"""The check of a written answer: each sentence must cite passages that were given, and every figure, date,
phone number, document number and quoted phrase in it must stand in the passages it cites.

Compared after normalisation (full/half width, Chinese numerals, 万/亿 scaling, brackets of document numbers), so a
correct figure rewritten as 0.325亿元 for 3250万元 passes and a figure copied from the wrong line does not.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from rag.numbers import Value, read_values, same_figure, same_value
from rag.patterns import DATE_FIELDS_RE, DOC_NUMBER_RE, EN_DATE_FIELDS_RE, PHONE_RE, date_fields
from rag.text import CJK_RE, normalize
from rag.types import Statement

# [1], [1][2], [1, 2], [1-3], 【1】, ［1］ (full-width forms are folded by normalize before matching)
CITATION_RE = re.compile(r"[\[【]\s*(\d{1,3}(?:\s*[,，、;；\-–~]\s*\d{1,3})*)\s*[\]】]")
_SENTENCE_END_RE = re.compile(r"[。！？!?；;]+|\n+|(?<![\d.])\.(?=\s|$)|(?<=\d)\.(?=\s+[A-Z])")
_LIST_MARK_RE = re.compile(r"^\s*(?:[-*•·]\s+|\d{1,2}[.、)）](?!\d)\s*|[(（]\d{1,2}[)）]\s*|[一二三四五六七八九十]+[、.]\s*)")
_QUOTE_RE = re.compile(r"「([^「」\n]{2,200})」|“([^“”\n]{2,200})”|\"([^\"\n]{2,200})\"|《([^《》\n]{1,100})》|『([^『』\n]{2,200})』")
_DATE_PATTERNS = (DATE_FIELDS_RE, EN_DATE_FIELDS_RE)
_SPACE_RE = re.compile(r"\s+")
_DIGIT_RUN_RE = re.compile(r"(?<![\d.])\d[\d\-－—–() ]*\d(?![\d.])")  # a phone number as printed, separators and all


@dataclass(frozen=True)
class Passage:
    """A numbered passage as the model saw it: its text (offsets of support point here) and its header line."""

    number: int
    text: str
    header: str = ""  # title, issuer, date: what the prompt showed above the text


@dataclass(frozen=True)
class Claim:
    """One checkable thing in a sentence."""

    kind: str  # quote, document, phone, date, year, figure
    text: str
    start: int
    end: int
    value: Value | None = None  # figures and years


def _is_year(value: Value) -> bool:
    """A number written as a year: 2023 (or 2023年), not 2000万元 or 2023.5."""
    return not value.unit and bool(re.fullmatch(r"(?:19|20)\d{2}", value.text))


def _squash(text: str) -> str:
    """Text compared as a quote is: normalised width and case, no spaces, one kind of bracket."""
    text = _SPACE_RE.sub("", normalize(text))
    return text.translate(str.maketrans("〔〕［］【】（）", "[][][]()"))


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _overlaps(span: tuple[int, int], taken: list[tuple[int, int]]) -> bool:
    return any(span[0] < e and s < span[1] for s, e in taken)


def find_claims(text: str) -> list[Claim]:
    """The quotes, document numbers, phone numbers, dates and figures of a sentence, each span once."""
    folded = normalize(text)  # same length: spans hold in `text`
    claims: list[Claim] = []
    taken: list[tuple[int, int]] = []

    def add(kind: str, start: int, end: int, value: Value | None = None) -> None:
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start and not _overlaps((start, end), taken):
            claims.append(Claim(kind, text[start:end], start, end, value))
            taken.append((start, end))

    for m in _QUOTE_RE.finditer(text):
        group = next(i for i in range(1, 6) if m.group(i) is not None)
        add("quote", m.start(group), m.end(group))
    for pattern, kind in ((DOC_NUMBER_RE, "document"), (PHONE_RE, "phone")):
        for m in pattern.finditer(folded):
            add(kind, m.start(), m.end())
    for pattern in _DATE_PATTERNS:
        for m in pattern.finditer(folded):
            add("date", m.start(), m.end())
    for value in read_values(text):
        add("year" if _is_year(value) else "figure", value.start, value.end, value)
    return sorted(claims, key=lambda c: c.start)


class _Source:
    """What a cited passage offers the check, read once: its values, dates, years and squashed text."""

    def __init__(self, passage: Passage):
        self.passage = passage
        text = passage.text
        self.values: list[Value] = read_values(text)
        self.header_values: list[Value] = read_values(passage.header)
        self.folded, self.folded_header = normalize(text), normalize(passage.header)  # same length as the text
        self.dates = [(m.start(), m.end(), date_fields(m)) for p in _DATE_PATTERNS for m in p.finditer(self.folded)]
        self.header_dates = [date_fields(m) for p in _DATE_PATTERNS for m in p.finditer(self.folded_header)]
        self.years = {int(v.value) for v in self.values + self.header_values if _is_year(v)}
        self.years |= {d[0] for d in self.header_dates + [d for _, _, d in self.dates] if d[0]}
        self.squashed = _squash(text)
        self.squashed_header = _squash(passage.header)

    def find(self, claim: Claim) -> tuple[bool, list[tuple[int, int]]]:
        """Whether the passage backs the claim, and the spans of its text that do (none when the header does)."""
        text = self.passage.text
        if claim.kind == "quote":
            needle = _squash(claim.text)
            spans = _squashed_spans(text, needle)
            return bool(spans) or needle in self.squashed_header, spans
        if claim.kind == "document":  # the issuer's part may be cut differently: 文件为冀政办字〔2024〕12号
            needle = _squash(claim.text)
            spans = [(m.start(), m.end()) for m in DOC_NUMBER_RE.finditer(self.folded)
                     if _same_document_number(needle, _squash(m.group(0)))]
            in_header = any(_same_document_number(needle, _squash(m.group(0)))
                            for m in DOC_NUMBER_RE.finditer(self.folded_header))
            return bool(spans) or in_header, spans
        if claim.kind == "phone":  # 12315 is backed by 0731-12315, 0311-86901234 by (0311)86901234
            needle = _digits(claim.text)
            spans = [span for m in _DIGIT_RUN_RE.finditer(self.folded) for span in _digit_groups(m, needle)]
            return bool(spans), spans
        if claim.kind == "date":
            folded = normalize(claim.text)
            m = DATE_FIELDS_RE.fullmatch(folded) or EN_DATE_FIELDS_RE.fullmatch(folded)
            wanted = date_fields(m) if m else (None, None, None)
            spans = [(s, e) for s, e, parts in self.dates if self._same_date(wanted, parts)]
            return bool(spans) or any(self._same_date(wanted, parts) for parts in self.header_dates), spans
        value = claim.value
        if claim.kind == "year":
            spans = [(v.start, v.end) for v in self.values if _is_year(v) and int(v.value) == int(value.value)]
            spans += [(s, e) for s, e, parts in self.dates if parts[0] == int(value.value)]
            return int(value.value) in self.years, spans
        spans = [(v.start, v.end) for v in self.values if _backs(value, v)]
        return bool(spans) or any(_backs(value, v) for v in self.header_values), spans

    def _same_date(self, wanted, parts) -> bool:
        """Each field the answer gives is the passage's; a year the passage's date leaves out may stand elsewhere in it."""
        for asked, given, field in zip(wanted, parts, "ymd"):
            if asked is None:
                continue
            if given is None and field == "y" and asked in self.years:
                continue
            if asked != given:
                return False
        return True


def _digit_groups(run: re.Match, needle: str) -> list[tuple[int, int]]:
    """Spans of whole digit groups of a run (0731-12315: 0731, 12315, 0731-12315) whose digits are `needle`."""
    groups = [(m.start() + run.start(), m.end() + run.start()) for m in re.finditer(r"\d+", run.group(0))]
    text = run.string
    spans = []
    for i in range(len(groups)):
        for j in range(i, len(groups)):
            if _digits(text[groups[i][0]:groups[j][1]]) == needle:
                spans.append((groups[i][0], groups[j][1]))
    return spans


def _same_document_number(claimed: str, source: str) -> bool:
    """One document number, whichever of the two starts its issuer's abbreviation earlier."""
    return claimed.endswith(source) or source.endswith(claimed)


def _backs(claimed: Value, source: Value) -> bool:
    """A figure backs a claim when it is the same figure; a bare number may also be the number as printed
    (3250 for 3250万元)."""
    if same_figure(claimed, source):
        return True
    return not claimed.unit and same_value(claimed.value, source.printed)


def _squashed_spans(text: str, needle: str) -> list[tuple[int, int]]:
    """Spans of `text` whose squashed form is `needle` (spaces and widths ignored)."""
    if not needle:
        return []
    keep = [i for i, ch in enumerate(text) if not ch.isspace()]
    squashed = _squash(text)
    if len(squashed) != len(keep):  # a character changed length when folded: match without spans
        return []
    spans, at = [], squashed.find(needle)
    while at >= 0:
        spans.append((keep[at], keep[at + len(needle) - 1] + 1))
        at = squashed.find(needle, at + 1)
    return spans


def split_statements(text: str) -> list[tuple[int, int]]:
    """Sentence spans of a written answer; citation markers after the full stop stay with their sentence."""
    folded = "".join("\n" if ch == "\n" else f for ch, f in zip(text, normalize(text)))  # lines still end sentences
    spans, start = [], 0
    for m in _SENTENCE_END_RE.finditer(folded):
        end = m.end()
        while True:  # 「…360家。[1][2]」: the markers belong to the sentence they follow
            cite = CITATION_RE.match(folded, _skip_spaces(folded, end))
            if not cite:
                break
            end = cite.end()
        if end > start:
            spans.append((start, end))
        start = end
    if start < len(text):
        spans.append((start, len(text)))
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if merged and not _has_content(folded[s:e]):
            merged[-1] = (merged[-1][0], e)
        elif _has_content(folded[s:e]):
            merged.append((s, e))
    return merged


def _skip_spaces(text: str, at: int) -> int:
    while at < len(text) and text[at] in " \t":
        at += 1
    return at


def _has_content(text: str) -> bool:
    """Whether a piece says anything: letters, digits or characters besides citation markers and punctuation."""
    return bool(re.search(r"[^\W_]", CITATION_RE.sub("", text)))


def cited_numbers(text: str) -> list[int]:
    """The passage numbers a sentence's markers name, in order, each once ([1-3] names 1, 2 and 3)."""
    numbers: list[int] = []
    for m in CITATION_RE.finditer(normalize(text)):
        for part in re.split(r"\s*[,，、;；]\s*", m.group(1)):
            bounds = [int(x) for x in re.split(r"\s*[\-–~]\s*", part) if x]
            low, high = bounds[0], bounds[-1]
            for n in range(low, high + 1) if high - low < 20 else (low, high):
                if n not in numbers:
                    numbers.append(n)
    return numbers


def check_statement(text: str, start: int, end: int, sources: dict[int, _Source]) -> Statement:
    """One sentence against the passages it cites."""
    sentence = text[start:end]
    citations = cited_numbers(sentence)
    chars = list(sentence)
    for m in CITATION_RE.finditer(normalize(sentence)):  # markers out, offsets kept
        chars[m.start():m.end()] = " " * (m.end() - m.start())
    body = "".join(chars)
    lead = _LIST_MARK_RE.match(body)
    if lead:  # 「1. 」 numbering a list is no claim
        body = " " * lead.end() + body[lead.end():]
    claims = find_claims(body)
    statement = Statement(text=sentence.strip(), start=start, end=end, citations=citations,
                          claims=[c.text for c in claims])
    given = [n for n in citations if n in sources]
    for n in citations:
        if n not in sources:
            statement.problems.append(f"[{n}] names no passage that was given")
    if not citations and not (not claims and body.rstrip().endswith((":", "："))):  # a lead-in 「答复如下：」 states nothing
        statement.problems.append("no citation")
    year_support: list[tuple[int, int, int]] = []
    for claim in claims:
        backed = False
        for n in given:
            ok, spans = sources[n].find(claim)
            if ok:
                backed = True
                (year_support if claim.kind == "year" else statement.support).extend((n, s, e) for s, e in spans)
        if not backed and given:
            statement.failed.append(claim.text)
            statement.problems.append(f"{claim.text} is not in {''.join(f'[{n}]' for n in given)}")
    if not statement.support:  # a year recurs everywhere: shown only when nothing more telling backs the sentence
        statement.support = year_support
    if given and not claims:  # a sentence with nothing to look up: show the passage sentence closest to it
        for n in given:
            best = _closest_sentence(body, sources[n].passage.text)
            if best:
                statement.support.append((n, *best))
        if _is_chinese(body) and not any(_shares_phrase(body, sources[n]) for n in given):
            statement.problems.append(f"shares no phrase of {QUOTED_RUN} characters with "
                                      f"{''.join(f'[{n}]' for n in given)}")
    statement.supported = not statement.problems
    return statement


QUOTED_RUN = 4  # a Chinese sentence with no figure must repeat a word group this long of what it cites


def _is_chinese(text: str) -> bool:
    return len(CJK_RE.findall(text)) >= QUOTED_RUN


def _shares_phrase(sentence: str, source: "_Source") -> bool:
    """Whether the sentence repeats some run of QUOTED_RUN Chinese characters of the passage or its header: a
    paraphrase keeps its nouns (口袋公园), a placeholder or an invented statement does not."""
    runs = re.findall(rf"[\u3400-\u9fff]{{{QUOTED_RUN},}}", normalize(sentence))
    haystack = source.squashed + source.squashed_header
    return any(run[i:i + QUOTED_RUN] in haystack for run in runs for i in range(len(run) - QUOTED_RUN + 1))


def _bigrams(text: str) -> set[str]:
    text = _squash(text)
    return {text[i:i + 2] for i in range(len(text) - 1)}


def _closest_sentence(sentence: str, passage: str) -> tuple[int, int] | None:
    """The passage sentence sharing most character pairs with the statement (None when none share any)."""
    wanted = _bigrams(sentence)
    best, best_overlap = None, 0
    for s, e in split_statements(passage):
        overlap = len(wanted & _bigrams(passage[s:e]))
        if overlap > best_overlap:
            best, best_overlap = (s, e), overlap
    if best is None:
        return None
    s, e = best
    while s < e and passage[s].isspace():
        s += 1
    return (s, e) if e > s else None


def check_written(text: str, passages: list[Passage]) -> list[Statement]:
    """Every sentence of a written answer with its check (supported, problems, supporting spans)."""
    sources = {p.number: _Source(p) for p in passages}
    return [check_statement(text, s, e, sources) for s, e in split_statements(text)]
