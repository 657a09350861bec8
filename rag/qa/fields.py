"""Questions about the reply itself (signer, phone, number, date…), answered from its parsed header fields."""
from __future__ import annotations

import re

from rag.qa.candidates import Piece, split_clauses, split_sentences
from rag.qa.extract import Entity
from rag.qa.question import QuestionInfo
from rag.qa.features import Candidate
from rag.ingest.metadata import FIELD_LABELS
from rag.patterns import DATE_RE
from rag.text import normalize
from rag.types import Hit, Span

# Questions about the reply itself (its signer, date, number…) are answered from the header/footer fields
# that rag/ingest/metadata.py parsed into Hit.meta, highlighted where the value stands in the text. Only the
# document of the best-ranked hit is asked: "这份答复" is the one retrieval found first.
# (meta key, answer kinds, cue in the question, cue is about the document by itself)
DOC_FIELDS: list[tuple[str, tuple[str, ...], re.Pattern, bool]] = [
    ("signer", ("person",), re.compile(r"签发|签批|\bsign"), True),
    ("contact_person", ("person",), re.compile(r"联系人|\bcontact"), True),
    ("contact_phone", ("other", "quantity"), re.compile(r"电话|号码|热线|打哪|phone|call"), False),
    ("addressee", ("person",), re.compile(r"委员|提案人|提出|propos"), False),
    ("cc", ("organisation", "list"), re.compile(r"抄送|\bcc\b|copied"), True),
    ("publish_date", ("date",), re.compile(r"发布|公开|publish|post"), False),
    ("sign_date", ("date",), re.compile(r"落款|签发|成文|答复|回复|repl|sign"), False),
    ("doc_number", ("document",), re.compile(r"文号|字号|编号|\bnumber"), False),
    ("issuer", ("organisation",), re.compile(r"答复|回复|办理|承办|作出|发文|repl|respond|answer|issue"), False),
    ("source", ("other", "organisation"), re.compile(r"网站|来源|出处|\bsource\b|website"), False),
    ("result", ("other", "list"), re.compile(r"办理结果|办理类别|答复类别|哪一类|什么类|\bresult\b|categor"), False),
    ("disclosure", ("yesno", "other"), re.compile(r"公开|disclos|\bpublic\b"), False),
    ("proposal_title", ("other", "document"), re.compile(r"题目|标题|名称|叫什么|\btitle\b"), False),
]
SHORT_FIELD_VALUE = 3
_ABOUT_DOCUMENT = re.compile(r"(这份|本|该|此)?(答复|回复|提案|复函|来文)|\b(reply|response|proposal)\b")


def asked_fields(info: QuestionInfo) -> list[str]:
    """Metadata keys of the reply that the question asks about (its signer, phone, source…), in DOC_FIELDS order."""
    q = normalize(info.question)
    keys = []
    for key, kinds, cue, standalone in DOC_FIELDS:
        if (info.kind not in kinds and not (key == "contact_phone" and info.attribute == "phone")) or not cue.search(q):
            continue
        if standalone or _ABOUT_DOCUMENT.search(q) or _bare(info, cue):
            keys.append(key)
    return keys


def _bare(info: QuestionInfo, cue: re.Pattern) -> bool:
    """The question names nothing but the field (电话是多少？): it asks about the document found."""
    return bool(info.terms) and all(cue.search(group[0]) for group in info.terms)


def field_candidates(info: QuestionInfo, hits: list[Hit]) -> list[Candidate]:
    """Candidates from the reply's own parsed fields (signer, date, number…), located verbatim in a hit."""
    out = []
    for key in asked_fields(info):
        for h, hit in enumerate(hits):
            if hit.doc_id != hits[0].doc_id:
                continue
            value = hit.meta.get(key)
            if not isinstance(value, str) or not value.strip():
                continue
            spans = locate_field(hit.text, value, key)
            if not spans:
                continue
            s_start, s_end = _sentence_around(hit.text, spans[0][0])
            c_start, c_end = _clause_around(hit.text, s_start, s_end, spans[0][0])
            ents = [Entity("field", s, e) for s, e in spans]
            piece = Piece(h, c_start, c_end, s_start, s_end)
            out.append(Candidate(piece, "field", ents, {}, False, 1.0))
            break
        if out:
            break
    return out


def locate_field(text: str, value: str, key: str) -> list[Span]:
    """Where a metadata value stands in the text (dates matched by their ISO form, lists item by item)."""
    norm = normalize(text)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        for m in DATE_RE.finditer(text):
            digits = [int(x) for x in re.findall(r"\d+", m.group(0))]
            if len(digits) == 3 and "%04d-%02d-%02d" % tuple(digits) == value:
                return [(m.start(), m.end())]
        return []
    if key == "addressee":
        value = re.sub(r"(委员|代表|同志)$", "", value)
    if key in FIELD_LABELS and len(value) <= SHORT_FIELD_VALUE:  # A, 是: found right after the label, not anywhere
        label = re.search(rf"(?:{FIELD_LABELS[key]})\s*[:：]?\s*[(（]?\s*", norm)
        if label is None or not norm.startswith(normalize(value), label.end()):
            return []
        return [(label.end(), label.end() + len(value))]
    items = [v for v in re.split(r"[,，、;；]", value) if v.strip()] if key == "cc" else [value]
    spans = []
    for item in items:
        pos = norm.find(normalize(item.strip()))
        if pos < 0:
            return []
        spans.append((pos, pos + len(item.strip())))
    return spans


def _sentence_around(text: str, pos: int) -> tuple[int, int]:
    for a, b in split_sentences(text):
        if a <= pos < b:
            return a, b
    return pos, pos


def _clause_around(text: str, a: int, b: int, pos: int) -> tuple[int, int]:
    for s, e in split_clauses(text, a, b):
        if s <= pos < e:
            return s, e
    return a, b


