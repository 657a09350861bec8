"""Split a document's body into retrievable paragraphs with exact offsets and a heading path.

Pipeline: content spans → blocks (lines, flattened paragraphs, heading starts) → oversize blocks cut
by langchain's RecursiveCharacterTextSplitter at Chinese boundaries → heading-aware packing into
chunks of about `target_chars` → small chunks merged → a small overlap inside split paragraphs.
Offsets are carried as integers the whole way, so `doc.text[c.start:c.end] == c.text` by construction.
"""
from __future__ import annotations

import bisect
import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from langchain_text_splitters import RecursiveCharacterTextSplitter

from rag.patterns import NUMBER_TAIL_ALT
from rag.types import Chunk, Document

Range = tuple[int, int]

# Default sizes; index.py stores this with the index so a change here triggers re-chunking.
CHUNK_CONFIG = {"target_chars": 300, "max_chars": 400, "min_chars": 60, "overlap": 40, "version": 1}

_CN_NUM = "[一二三四五六七八九十百零〇]+"
# (level, marker regex); the marker must begin a line, follow whitespace, or follow a sentence end.
_HEADING_MARKERS: list[tuple[int, str]] = [
    (1, rf"{_CN_NUM}、"),
    (2, rf"[(（]{_CN_NUM}[)）]"),
    (3, r"\d{1,2}[.、．](?!\d)"),
    (4, r"[(（]\d{1,2}[)）]"),
    (5, rf"{_CN_NUM}是(?![否的])"),
]
_MARKER_RE = re.compile("|".join(f"(?P<l{level}>{rx})" for level, rx in _HEADING_MARKERS))
_ANY_MARKER = "(?:" + "|".join(rx for _, rx in _HEADING_MARKERS) + ")"
_SENTENCE_END = "。！？!?；;"
_LABEL_MAX = 40
_LINE_HEADING_MAX = 40

# Separators from strongest to weakest; each match is kept at the end of the piece before it.
SEPARATORS: list[str] = [
    r"\n[ \t\r\u3000\xa0]*\n",
    r"\n",
    rf"(?<=[{_SENTENCE_END}])\s+",  # paragraph break of flattened (single-line) text
    rf"\s+(?={_ANY_MARKER})",  # space before numbering: 一、 （一） 1. （1） 一是
    r"[。！？!?]+[”’」』)）]*",
    r"[；;]",
    r"(?:(?<!\d)[：:]|[：:](?!\d))",  # colon, but not inside a time 10:30
    r"(?:，|(?<!\d),|,(?!\d))",  # clause comma, never the comma of 1,000
    r"\s+",
    r"、",
    "",
]
_SEPARATOR_RES = [re.compile(s) for s in SEPARATORS if s]

_UNITS = NUMBER_TAIL_ALT
# Spans a cut must never fall inside: numbers, dates, phone and document numbers, Latin words.
PROTECTED_RE = re.compile(
    r"[\u4e00-\u9fff]{0,8}[〔\[［【(（]\d{4}[〕\]］】)）]\s*第?\d+号"
    r"|\d{2,4}年\d{1,2}月(?:\d{1,2}日)?"
    r"|\d{1,2}月\d{1,2}日"
    r"|\d{4}[-/.．]\d{1,2}[-/.．]\d{1,2}"
    r"|\d{3,4}[-－]\d{7,8}"
    r"|第?\d+(?:[,，]\d{3})*(?:[.．]\d+)?(?:" + _UNITS + r")?"
    r"|https?://[^\s，。；]+|[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+"
    r"|[A-Za-z][A-Za-z0-9]*(?:[&'._\-][A-Za-z0-9]+)*"
)
_PROTECT_MAX = 60


@dataclass(frozen=True)
class Heading:
    """A numbered heading or `一是` item found in the text."""

    pos: int
    level: int
    label: str
    breaks: bool  # starts a line or follows whitespace: a chunk should start here


@dataclass(frozen=True)
class Piece:
    """A stretch of body text that packing treats as one unit."""

    start: int
    end: int
    heading: bool  # begins with a heading that should start a chunk
    block_start: bool  # begins a line / paragraph (not the tail of a split paragraph)


def _strip(text: str, start: int, end: int) -> Range:
    """Shrink a range so it neither starts nor ends with whitespace."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def content_ranges(doc: Document) -> list[Range]:
    """The body ranges to chunk: the content spans, or the whole text when none are given."""
    text = doc.text
    spans = list(doc.content_spans) or [(0, len(text))]
    out: list[Range] = []
    for s, e in sorted((max(0, int(s)), min(len(text), int(e))) for s, e in spans):
        s, e = _strip(text, s, e)
        if e <= s:
            continue
        if out and (s <= out[-1][1] or not text[out[-1][1] : s].strip()):
            # overlapping spans, or spans parted only by blank lines: one range
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def protected_spans(text: str) -> list[Range]:
    """Ranges (numbers, dates, document numbers, Latin words) that no chunk boundary may cut."""
    return [m.span() for m in PROTECTED_RE.finditer(text) if 1 < m.end() - m.start() <= _PROTECT_MAX]


# ---------------------------------------------------------------- headings


def _line_bounds(text: str, pos: int) -> Range:
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    return start, len(text) if end < 0 else end


def _heading_label(text: str, pos: int, line_start: bool) -> str:
    """The heading's own words: a short whole line, else up to the first sentence end or space."""
    _, line_end = _line_bounds(text, pos)
    line = text[pos:line_end].strip()
    if line_start and len(line) <= _LINE_HEADING_MAX:
        return line
    m = _MARKER_RE.match(text, pos)
    body_from = (m.end() - pos) if m else 0
    cut = len(line)
    for i in range(body_from, len(line)):
        ch = line[i]
        if ch in "。！？!?；;":
            cut = i + 1 if ch == "。" else i
            break
        if ch.isspace() and i > body_from + 1:
            cut = i
            break
    label = line[:cut].strip()
    if len(label) > _LABEL_MAX:  # a long first sentence: its first clause, else its beginning
        comma = re.compile(r"[，,：:]").search(label, body_from + 2, _LABEL_MAX)
        label = label[: comma.start()] if comma else label[:_LABEL_MAX]
    return label


def _context(text: str, start: int, pos: int) -> tuple[bool, bool, bool]:
    """(starts a line, follows whitespace, follows a sentence end) for a marker at `pos`."""
    i = pos
    while i > start and text[i - 1] in " \t\u3000\xa0":
        i -= 1
    at_line = i == start or text[i - 1] == "\n"
    after_space = pos > start and text[pos - 1].isspace()
    after_end = pos > start and text[pos - 1] in _SENTENCE_END + "：:"
    return at_line, after_space, after_end


def find_headings(text: str, ranges: list[Range]) -> list[Heading]:
    """Numbered headings (一、 （一） 1. （1） 一是) at line starts, after spaces or after a sentence end."""
    out: list[Heading] = []
    for s, e in ranges:
        for m in _MARKER_RE.finditer(text, s, e):
            pos = m.start()
            at_line, after_space, after_end = _context(text, s, pos)
            if not (at_line or after_space or after_end):
                continue
            level = int(m.lastgroup[1:])
            if level == 5 and not re.match(r"[\u4e00-\u9fff]", text[m.end() : m.end() + 1]):
                continue
            label = _heading_label(text, pos, at_line)
            if len(label) <= len(m.group()):  # bare marker with nothing after it
                continue
            out.append(Heading(pos, level, label, at_line or after_space))
    return out


def _section_events(text: str, ranges: list[Range], headings: list[Heading]) -> tuple[list[int], list[str]]:
    """Positions where the heading path changes and the path from there on."""
    line_starts = [i + 1 for s, e in ranges for i in range(s, e) if text[i] == "\n"]
    heading_pos = {h.pos for h in headings}
    events: list[tuple[int, int, Heading | None]] = [(h.pos, 1, h) for h in headings]
    events += [(p, 0, None) for p in line_starts]
    events.sort(key=lambda ev: (ev[0], ev[1]))
    stack: list[Heading] = []
    positions: list[int] = []
    paths: list[str] = []
    for pos, _, h in events:
        if h is None:
            # a new line that is not itself an item ends the current 一是 item list
            if stack and stack[-1].level == 5 and _strip(text, pos, len(text))[0] not in heading_pos:
                stack = stack[:-1]
            else:
                continue
        else:
            stack = [x for x in stack if x.level < h.level] + [h]
        positions.append(pos)
        paths.append(" > ".join(x.label for x in stack))
    return positions, paths


def _section_at(positions: list[int], paths: list[str], pos: int) -> str:
    i = bisect.bisect_right(positions, pos) - 1
    return paths[i] if i >= 0 else ""


# ---------------------------------------------------------------- measuring and cutting


class _Text:
    """The document text plus what every stage asks of it: sizes, stripping, safe cut positions."""

    def __init__(self, text: str):
        self.text = text
        spans = protected_spans(text)
        self._starts = [s for s, _ in spans]
        self._ends = [e for _, e in spans]
        # size counts a run of whitespace once, so layout padding never makes a chunk look long
        self._prefix = [0]
        prev_space = False
        for ch in text:
            space = ch.isspace()
            self._prefix.append(self._prefix[-1] + (0 if space and prev_space else 1))
            prev_space = space

    def size(self, start: int, end: int) -> int:
        return self._prefix[end] - self._prefix[start]

    def strip(self, start: int, end: int) -> Range:
        return _strip(self.text, start, end)

    def inside(self, pos: int) -> Range | None:
        """The protected span strictly containing `pos`, if any."""
        i = bisect.bisect_right(self._starts, pos - 1) - 1
        if i >= 0 and self._starts[i] < pos < self._ends[i]:
            return self._starts[i], self._ends[i]
        return None

    def safe(self, pos: int) -> bool:
        return self.inside(pos) is None

    def cuts(self, start: int, end: int, levels: slice = slice(None)) -> list[list[int]]:
        """Safe boundary positions inside (start, end), grouped by separator strength."""
        groups = []
        for rx in _SEPARATOR_RES[levels]:
            found = sorted(
                {m.end() for m in rx.finditer(self.text, start, end) if m.end() > m.start() and start < m.end() < end}
            )
            groups.append([p for p in found if self.safe(p)])
        return groups

    def best_cut(self, start: int, end: int, ok: Callable[[int, int], bool]) -> int | None:
        """The strongest safe boundary whose two stripped sides satisfy `ok`, nearest the middle."""
        ideal = (start + end) / 2
        any_char = (p for p in range(start + 1, end) if self.safe(p))  # last resort, only if needed
        for group in itertools.chain(self.cuts(start, end), [list(any_char)]):
            for p in sorted(group, key=lambda q: abs(q - ideal)):
                left, right = self.strip(start, p), self.strip(p, end)
                if left[1] > left[0] and right[1] > right[0] and ok(self.size(*left), self.size(*right)):
                    return p
        return None


@dataclass(frozen=True)
class _Limits:
    target: int
    max: int
    min: int
    overlap: int


# ---------------------------------------------------------------- blocks and pieces


def _blocks(tx: _Text, start: int, end: int, heading_starts: set[int]) -> list[Piece]:
    """Lines, flattened paragraphs (sentence end + space) and heading starts of one content range."""
    text = tx.text
    cuts = {start, end}
    cuts |= {i + 1 for i in range(start, end) if text[i] == "\n"}
    cuts |= {m.end() for m in _SEPARATOR_RES[2].finditer(text, start, end)}  # sentence end + space
    cuts |= {p for p in heading_starts if start < p < end}
    pieces = []
    bounds = sorted(cuts)
    for a, b in zip(bounds, bounds[1:]):
        a, b = tx.strip(a, b)
        if b > a:
            pieces.append(Piece(a, b, a in heading_starts, True))
    return pieces


_WS_RUN = re.compile(r"\s{2,}")


def _collapsed_len(s: str) -> int:
    """The splitter's measure, equal to `_Text.size`: a whitespace run counts once."""
    return len(_WS_RUN.sub(" ", s))


def _split_block(tx: _Text, block: Piece, lim: _Limits) -> list[Piece]:
    """Cut a block longer than the maximum into balanced pieces at the strongest boundaries."""
    size_now = tx.size(block.start, block.end)
    if size_now <= lim.max:
        return [block]
    n = math.ceil(size_now / lim.target)
    chunk_size = min(lim.max, int(math.ceil(size_now / n) * 1.15) + 1)
    splitter = RecursiveCharacterTextSplitter(
        separators=SEPARATORS,
        is_separator_regex=True,
        keep_separator="end",
        chunk_size=chunk_size,
        chunk_overlap=0,
        strip_whitespace=False,
        length_function=_collapsed_len,
    )
    bounds = [block.start]
    for part in splitter.split_text(tx.text[block.start : block.end]):
        if not tx.text.startswith(part, bounds[-1]):  # the splitter's parts are consecutive slices
            raise AssertionError("text splitter returned non-contiguous parts")
        bounds.append(bounds[-1] + len(part))
    if bounds[-1] != block.end:
        raise AssertionError("text splitter lost text")
    bounds = [block.start, *_repair_cuts(tx, bounds[1:-1]), block.end]
    out = []
    for a, b in zip(bounds, bounds[1:]):
        a, b = tx.strip(a, b)
        if b > a:
            out.append(Piece(a, b, block.heading and a == block.start, a == block.start))
    return out


def _repair_cuts(tx: _Text, cuts: list[int]) -> list[int]:
    """Move any cut that falls inside a protected span to that span's end."""
    out: list[int] = []
    for c in cuts:
        span = tx.inside(c)
        c = span[1] if span else c
        if not out or c > out[-1]:
            out.append(c)
    return out


# ---------------------------------------------------------------- packing


def _short_run(tx: _Text, pieces: list[Piece], k: int, lim: _Limits) -> int:
    """Size of the run of short whole lines starting at piece k (signature block, short list)."""
    j = k
    while j < len(pieces) and pieces[j].block_start and tx.size(pieces[j].start, pieces[j].end) < lim.min:
        if j > k and pieces[j].heading:
            break
        j += 1
    return tx.size(pieces[k].start, pieces[j - 1].end) if j > k else 0


def _pack(tx: _Text, pieces: list[Piece], lim: _Limits) -> list[tuple[int, int, bool]]:
    """Greedy packing: headings start chunks, short pieces join neighbours, chunks stay ≤ max."""
    out: list[list] = []  # [start, end, starts_block]
    after_heading = False  # the current chunk ends with a bare heading line
    for k, p in enumerate(pieces):
        p_size = tx.size(p.start, p.end)
        if not out:
            out.append([p.start, p.end, p.block_start])
        else:
            cur = out[-1]
            cur_size, combined = tx.size(cur[0], cur[1]), tx.size(cur[0], p.end)
            if combined > lim.max and cur_size >= lim.min:
                join = False
            elif cur_size < lim.min or after_heading:
                join = True  # too short to stand alone, or a heading waiting for its text
            elif p.heading:
                join = False
            elif p_size < lim.min and p.block_start and _short_run(tx, pieces, k, lim) >= lim.min:
                join = False  # a group of short lines (e.g. the signature block) makes its own chunk
            else:
                join = combined <= lim.target or p_size < lim.min
            if join:
                cur[1] = p.end
            else:
                out.append([p.start, p.end, p.block_start])
        after_heading = p.heading and p_size <= _LINE_HEADING_MAX
    return [tuple(c) for c in out]


def _fix_sizes(tx: _Text, chunks: list[tuple[int, int, bool]], lim: _Limits) -> list[tuple[int, int, bool]]:
    """Split chunks over the maximum; merge chunks under the minimum into a neighbour (re-cut if long)."""
    chunks = list(chunks)
    fits = lambda a, b: lim.min <= a <= lim.max and lim.min <= b <= lim.max  # noqa: E731
    stuck: set[tuple[int, int]] = set()
    for _ in range(4 * len(chunks) + 10):
        bad = [
            i
            for i, (s, e, _) in enumerate(chunks)
            if (s, e) not in stuck and not (lim.min <= tx.size(s, e) <= lim.max) and (len(chunks) > 1 or tx.size(s, e) > lim.max)
        ]
        if not bad:
            break
        i = bad[0]
        s, e, blk = chunks[i]
        if tx.size(s, e) > lim.max:
            cut = tx.best_cut(s, e, fits) or tx.best_cut(s, e, lambda a, b: a <= lim.max and b <= lim.max)
            if cut is None:
                stuck.add((s, e))
                continue
            chunks[i : i + 1] = [(*tx.strip(s, cut), blk), (*tx.strip(cut, e), False)]
            continue
        order = [i + 1, i - 1] if i == 0 or _starts_heading(tx.text, s) else [i - 1, i + 1]
        order = [j for j in order if 0 <= j < len(chunks)]
        merged = [(min(i, j), max(i, j)) for j in order]
        fitting = [(a, b) for a, b in merged if tx.size(chunks[a][0], chunks[b][1]) <= lim.max]
        a, b = fitting[0] if fitting else merged[0]
        ms, me, mblk = chunks[a][0], chunks[b][1], chunks[a][2]
        if fitting:
            chunks[a : b + 1] = [(ms, me, mblk)]
            continue
        cut = tx.best_cut(ms, me, fits)
        new = [(*tx.strip(ms, cut), mblk), (*tx.strip(cut, me), False)] if cut is not None else None
        if new is None or [c[:2] for c in new] == [c[:2] for c in chunks[a : b + 1]]:
            stuck.add((s, e))
            continue
        chunks[a : b + 1] = new
    return chunks


def _starts_heading(text: str, pos: int) -> bool:
    return _MARKER_RE.match(text, pos) is not None


def _with_overlap(tx: _Text, chunks: list[tuple[int, int, bool]], lim: _Limits) -> list[Range]:
    """Prepend the previous chunk's tail (from a clause boundary) where a paragraph was split."""
    out: list[Range] = []
    for i, (s, e, blk) in enumerate(chunks):
        start = s
        if lim.overlap > 0 and i > 0 and not blk and chunks[i - 1][1] <= s:
            prev_s, prev_e = chunks[i - 1][0], chunks[i - 1][1]
            # sentence end, semicolon, colon, comma, whitespace boundaries inside the previous chunk
            for p in sorted(p for group in tx.cuts(prev_s, prev_e, slice(4, 9)) for p in group):
                begin = tx.strip(p, e)[0]
                if tx.size(begin, prev_e) <= lim.overlap and tx.size(begin, e) <= lim.max:
                    start = begin
                    break
        out.append((start, e))
    return out


# ---------------------------------------------------------------- public


def chunk_document(
    doc: Document,
    target_chars: int = CHUNK_CONFIG["target_chars"],
    max_chars: int = CHUNK_CONFIG["max_chars"],
    min_chars: int = CHUNK_CONFIG["min_chars"],
    overlap: int = CHUNK_CONFIG["overlap"],
) -> list[Chunk]:
    """Chunks of the document body with exact offsets, heading path and page number."""
    if not (0 < min_chars <= target_chars <= max_chars) or overlap < 0:
        raise ValueError("need 0 < min_chars <= target_chars <= max_chars and overlap >= 0")
    lim = _Limits(target_chars, max_chars, min_chars, overlap)
    text = doc.text
    ranges = content_ranges(doc)
    if not ranges:
        return []
    tx = _Text(text)
    headings = find_headings(text, ranges)
    breaking = {h.pos for h in headings if h.breaks}
    positions, paths = _section_events(text, ranges, headings)

    packed: list[tuple[int, int, bool]] = []
    for s, e in ranges:
        pieces = [piece for block in _blocks(tx, s, e, breaking) for piece in _split_block(tx, block, lim)]
        packed += _fix_sizes(tx, _pack(tx, pieces, lim), lim)

    page_starts = sorted(doc.page_starts)
    chunks: list[Chunk] = []
    for i, ((start, end), (core, _, _)) in enumerate(zip(_with_overlap(tx, packed, lim), packed)):
        chunk = Chunk(
            doc_id=doc.doc_id,
            chunk_id=i,
            text=text[start:end],
            start=start,
            end=end,
            section=_section_at(positions, paths, _first_body_pos(text, core, end, breaking)),
        )
        if page_starts:
            chunk.meta["page"] = max(1, bisect.bisect_right(page_starts, start))
        chunks.append(chunk)
    return chunks


def _first_body_pos(text: str, start: int, end: int, heading_starts: set[int]) -> int:
    """Where the chunk's body begins: after the short lines (title, headings) that open it.

    Headings among those opening lines belong to the chunk, so the section is read after them.
    """
    pos = body = start
    while pos < end:
        line_end = text.find("\n", pos, end)
        if line_end < 0 or len(text[pos:line_end].strip()) > _LINE_HEADING_MAX:
            break
        nxt = _strip(text, line_end, end)[0]
        if pos in heading_starts:
            body = nxt if nxt < end else pos
        pos = nxt
    return body


def embedding_text(chunk: Chunk, title: str) -> str:
    """Title, heading path and chunk text: what is embedded and BM25-indexed."""
    body = chunk.text.strip()
    lead = [line.strip() for line in body.splitlines()[:6]]  # the chunk's opening lines
    parts = [p.strip() for p in chunk.section.split(" > ") if p.strip()]
    kept = [p for p in parts if not any(line.startswith(p) for line in lead)]
    out = [t for t in (title.strip(), " > ".join(kept), body) if t]
    return "\n".join(out)
