"""Typed answer extraction: figures, dates, names, documents, lists and fixed-form values inside a clause."""
from __future__ import annotations

import re
from dataclasses import dataclass

from rag.patterns import CN_QUANTITY_RE, DATE_RE, DATELINE_TAIL_RE, DOC_NUMBER_RE, PHONE_RE, QUANTITY_RE, TITLE_RE, unit_of
from rag.types import Span
from rag.qa.candidates import _trim


ATTRIBUTE_RES = {
    "doc_number": DOC_NUMBER_RE,  # values of a fixed form (see rag.question.ATTRIBUTE_CUES)
    "phone": PHONE_RE,
    "address": re.compile(r"[\u4e00-\u9fff]{2,24}?(?:路|街|大道|大街|巷|胡同)[\u4e00-\u9fff\d\-]{0,12}?\d+号"),
    "url": re.compile(r"https?://[^\s，。；、）)]+|www\.[^\s，。；、）)]+"),
    "email": re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),
    "postcode": re.compile(r"(?<!\d)\d{6}(?!\d)"),
    "rank": re.compile(r"第[一二三四五六七八九十百\d]+(?:名|位)?"),
}
PERSON_RES = [
    re.compile(r"(?:签发|签发人|联系人及电话|联系人|提案人|负责人|审核人|拟稿人|经办人)\s*[:：]\s*"
               r"(?P<name>[\u4e00-\u9fff]{2,4}?)(?=[,，;；\s(（]|\d|$)"),
    re.compile(r"(?P<name>[\u4e00-\u9fff]{2,3})(?:委员|代表|院士|同志|局长|主任|书记|市长|厅长)(?!会)\s*[:：]"),
]
ORG_SUFFIXES = ("股份有限公司", "有限责任公司", "有限公司", "集团", "科学技术局", "委员会", "办公室", "组织部", "研究院",
                "研究所", "大学", "学院", "实验室", "政府", "公司", "局", "厅", "中心", "协会", "医院", "银行")
PROPER_ORG_SUFFIXES = ("股份有限公司", "有限责任公司", "有限公司", "集团", "科学技术局", "委员会", "办公室", "大学",
                       "学院", "医院", "银行")
_ORG_BODY = r"[\u4e00-\u9fffA-Za-z0-9]{2,30}?"
ORG_RE = re.compile(_ORG_BODY + r"(?:" + "|".join(ORG_SUFFIXES) + r")+(?![长门属])")
PROPER_ORG_RE = re.compile(_ORG_BODY + r"(?:" + "|".join(PROPER_ORG_SUFFIXES) + r")+(?![长门属])")
ORG_LEADING_NOISE = re.compile(r"(?:今年|去年|目前|已经|已|并|对|由|为|被|经|和|与|及|向|给|在|将|把|认定|支持|依托|推动|"
                               r"组织|积极|主动|联合|全市|我市|现|请|抄送|主送|其中|包括|等|以|按照|根据|制定|出台|印发)+")
ENUM_START_CUES = re.compile(r"布局|包括|包含|涵盖|涉及|覆盖|面向|支持|聚焦|围绕|推动|培育|发展|举办|开展|实施|"
                             r"组织|建设|打造|设立|新建|引进|比如|例如|如|有|是|为|在|对|[:：(（]")
# a quoted chain of three or more items: “科技型中小企业-高新技术企业-科技领军企业”, “科技—产业—金融”
CHAIN_RE = re.compile(r"[“\"]([^“”\"\n\-—]{1,20}(?:\s*[-—]+\s*[^“”\"\n\-—]{1,20}){2,})[”\"]")
REASON_CUES = re.compile(r"得益于|由于|因为|原因|归功于|源于|缘于|为了|目的|必然|要求|需要|意义|because|due to|thanks to")
ACTION_CUES = re.compile(r"开展|实施|设立|加强|推动|推进|建设|组织|举办|发布|制定|出台|印发|启动|构建|培育|强化|加大|"
                         r"完善|优化|引进|选派|认定|布局|谋划|争取|打造|建立|落实|召开|给予|支持|提供|聚焦|鼓励")


@dataclass
class Entity:
    """A candidate answer inside a clause (offsets relative to the hit's text)."""

    kind: str  # quantity date person organisation document phone list sentence clause field
    start: int
    end: int
    unit: str = ""



# ---- entities ------------------------------------------------------------------------------------------------
def _title_spans(text: str, a: int, b: int) -> list[Span]:
    return [(m.start(), m.end()) for m in TITLE_RE.finditer(text, max(0, a - 80), min(len(text), b + 80))]


def _inside(spans: list[Span], a: int, b: int) -> bool:
    return any(s <= a and b <= e and (s, e) != (a, b) for s, e in spans)


def _org_spans(text: str, a: int, b: int, pattern: re.Pattern) -> list[Span]:
    out = []
    for m in pattern.finditer(text, a, b):
        s, e = m.start(), m.end()
        noise = ORG_LEADING_NOISE.match(text, s, e)
        if noise:
            s = noise.end()
        if e - s >= 3:
            out.append((s, e))
    return out


def find_entities(text: str, start: int, end: int, kind: str) -> list[Entity]:
    """Entities of one kind inside text[start:end] (offsets into text), nested duplicates dropped."""
    out: list[Entity] = []
    if kind == "quantity":
        titles = _title_spans(text, start, end)
        dates = [(m.start(), m.end()) for m in DATE_RE.finditer(text, start, end)]
        for pattern in (QUANTITY_RE, CN_QUANTITY_RE):
            for m in pattern.finditer(text, start, end):
                if not _inside(titles, m.start(), m.end()) and not any(
                        s <= m.start() < e for s, e in dates):
                    out.append(Entity("quantity", m.start(), m.end(), unit_of(m.group(0))))
    elif kind == "date":
        titles = _title_spans(text, start, end)
        for m in DATE_RE.finditer(text, start, end):
            if not _inside(titles, m.start(), m.end()) and not DATELINE_TAIL_RE.match(text, m.end()):
                out.append(Entity("date", m.start(), m.end()))
    elif kind in ATTRIBUTE_RES:
        out = [Entity(kind, m.start(), m.end()) for m in ATTRIBUTE_RES[kind].finditer(text, start, end)]
    elif kind == "document":
        out = [Entity("document", m.start(), m.end()) for m in TITLE_RE.finditer(text, start, end)]
        for m in DOC_NUMBER_RE.finditer(text, start, end):
            noise = ORG_LEADING_NOISE.match(text, m.start(), m.end())
            out.append(Entity("document", noise.end() if noise else m.start(), m.end()))
    elif kind == "person":
        for pattern in PERSON_RES:
            out += [Entity("person", m.start("name"), m.end("name")) for m in pattern.finditer(text, start, end)]
    elif kind == "organisation":
        out = [Entity("organisation", s, e) for s, e in _org_spans(text, start, end, ORG_RE)]
    elif kind == "list":
        out = find_enumerations(text, start, end)
        out += [Entity("list", m.start(1), m.end(1)) for m in CHAIN_RE.finditer(text, start, end)]
    out.sort(key=lambda e: (e.start, -e.end))
    kept: list[Entity] = []
    for e in out:
        if kept and e.start < kept[-1].end:
            continue
        kept.append(e)
    return kept


def find_enumerations(text: str, start: int, end: int) -> list[Entity]:
    """Runs of 、-separated items (two or more) inside a clause, each trimmed to the items themselves.

    A middle part holding a cue verb starts a new run ("…学校、在交通便利的地区设立服务站、驿站和咨询点").
    """
    parts = text[start:end].split("、")
    if len(parts) < 2 or re.fullmatch(r"\s*[一二三四五六七八九十\d]+\s*", parts[0]):
        return []
    positions, pos = [], start
    for part in parts:
        positions.append(pos)
        pos += len(part) + 1
    runs: list[list[int]] = [[0]]
    closed = "等" in parts[0]
    for i in range(1, len(parts)):
        if closed or (i < len(parts) - 1 and "等" not in parts[i] and _last_cue(parts[i], len(parts[i])) is not None):
            runs.append([i])
        else:
            runs[-1].append(i)
        closed = "等" in parts[i]  # …、创新平台建设等方面下真功、出实力: the run ends at 等
    out = [_enumeration(text, [(positions[i], parts[i]) for i in run]) for run in runs]
    return [e for e in out if e is not None]


def _last_cue(part: str, reach: int) -> int | None:
    """End of the rightmost list-introducing cue in `part` (a verb, bracket or colon), or None."""
    best = None
    for m in ENUM_START_CUES.finditer(part):
        if m.end() < len(part) and len(part) - m.end() <= reach and (len(m.group(0)) > 1 or m.group(0) in "(（:："):
            best = m.end()
    return best


def _enumeration(text: str, items: list[tuple[int, str]]) -> Entity | None:
    """The items of one run: the first starts after its cue (or is as long as a typical item)."""
    if len(items) < 2:
        return None
    (first_pos, first), (last_pos, last) = items[0], items[-1]
    last_item = _last_item_cut(last)
    typical = max([len(p) for _, p in items[1:-1]] + [len(last_item), 2])
    first_start = _last_cue(first, typical + 4)
    if first_start is None:
        single = [m.end() for m in ENUM_START_CUES.finditer(first)
                  if m.end() < len(first) and len(first) - m.end() <= typical + 4]
        if single:
            first_start = single[0]
        elif len(first) <= typical + 6:  # a short first part is the first item itself (其中省级重点实验室2家)
            noise = ORG_LEADING_NOISE.match(first)
            first_start = noise.end() if noise else 0
        else:
            first_start = len(first) - typical
    a, b = _trim(text, first_pos + first_start, last_pos + len(last_item))
    return Entity("list", a, b) if b - a >= 3 else None


def _last_item_cut(last: str) -> str:
    """The last item ends before 等 (…等产业) or a closing bracket."""
    m = re.search(r"等|[)）]", last)
    return last[:m.start()] if m else last


