"""Header/footer metadata of government replies, page-chrome detection and date normalisation.

Every rule matches on `rag.text.normalize`d text (length-preserving), so a value is always sliced
from the original text "as written" while full-width/half-width colons, parentheses, NBSP and
full-width spaces are all treated alike.
"""
from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from rag.text import normalize

Span = tuple[int, int]

TITLE_MAX_CHARS = 60
TITLE_SEARCH_LINES = 30  # a title stands near the top: only this many short lines are looked at
_ZERO_WIDTH = "\u200b\u200c\u200d\ufeff"


def _is_space(ch: str) -> bool:
    """Whitespace for trimming lines: Unicode spaces (NBSP, full-width) and zero-width marks."""
    return ch.isspace() or ch in _ZERO_WIDTH

# ---------------------------------------------------------------- dates

_CN_DIGITS = {"〇": 0, "○": 0, "零": 0, "o": 0, "0": 0, "一": 1, "二": 2, "三": 3, "四": 4,
              "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_TIME = r"(?:[ t]*\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
_DATE_PATTERNS = [
    re.compile(r"(?P<y>\d{4}) *年 *(?P<m>\d{1,2}) *月 *(?P<d>\d{1,2}) *[日号]?" + _TIME),
    re.compile(r"(?P<y>\d{4})(?P<s>[-/.])(?P<m>\d{1,2})(?P=s)(?P<d>\d{1,2})" + _TIME),
    re.compile(r"(?P<y>\d{4}) *年 *(?P<m>\d{1,2}) *月份?"),
    re.compile(r"(?P<y>\d{4})-(?P<m>\d{1,2})"),
    re.compile(r"(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})"),
    re.compile(r"(?P<cy>[〇○零o0一二三四五六七八九]{4}) *年 *(?P<cm>[一二三四五六七八九十]{1,2}) *月"
               r"(?: *(?P<cd>[一二三四五六七八九十]{1,3}) *[日号])?"),
]


def _cn_number(text: str) -> int:
    """'二〇二四' → 2024, '十二' → 12, '二十六' → 26 (numerals used in formal dates)."""
    if "十" in text:
        tens, _, units = text.partition("十")
        return (_CN_DIGITS[tens] if tens else 1) * 10 + (_CN_DIGITS[units] if units else 0)
    return int("".join(str(_CN_DIGITS[ch]) for ch in text))


def _date_from_match(match: re.Match) -> str | None:
    """Build the ISO date of one pattern match; None when the numbers are no real date."""
    parts = match.groupdict()
    try:
        if parts.get("cy"):
            year, month = _cn_number(parts["cy"]), _cn_number(parts["cm"])
            day = _cn_number(parts["cd"]) if parts.get("cd") else 1
        else:
            year, month = int(parts["y"]), int(parts["m"])
            day = int(parts["d"]) if parts.get("d") else 1
        if not 1900 <= year <= 2100:
            return None
        return _dt.date(year, month, day).isoformat()
    except (KeyError, ValueError):
        return None


def normalize_date(value: Any) -> str | None:
    """A date in any common Chinese/Excel form → 'YYYY-MM-DD' (None when it is not a date).

    Month-only dates ('2024年06月') map to the first day of the month.
    """
    if isinstance(value, _dt.datetime):
        return value.date().isoformat()
    if isinstance(value, _dt.date):
        return value.isoformat()
    if not isinstance(value, str):
        return None
    text = normalize(value).strip()
    for pattern in _DATE_PATTERNS:
        match = pattern.fullmatch(text)
        if match:
            return _date_from_match(match)
    return None


def date_prefix(value: Any) -> str | None:
    """A date as written down to its precision: '2024', '2024-01' or '2024-01-05' (None when it is no date);
    filters compare it with a document's ISO date as a prefix, so 2024年6月 means all of June."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    text = normalize(value).strip()
    year = re.fullmatch(r"(\d{4}) *年?", text)
    if year:
        return year.group(1) if 1900 <= int(year.group(1)) <= 2100 else None
    iso = normalize_date(text)
    if iso is None:
        return None
    has_day = any((m := p.fullmatch(text)) and (m.groupdict().get("d") or m.groupdict().get("cd"))
                  for p in _DATE_PATTERNS)
    return iso if has_day else iso[:7]


def find_date(text: str) -> str | None:
    """The first date written anywhere inside `text`, as ISO (None when there is none)."""
    norm = normalize(text)
    found: list[tuple[int, str]] = []
    for pattern in _DATE_PATTERNS[:2] + _DATE_PATTERNS[5:]:
        for match in pattern.finditer(norm):
            iso = _date_from_match(match)
            if iso:
                found.append((match.start(), iso))
                break
    return min(found)[1] if found else None


# ---------------------------------------------------------------- lines and page chrome


@dataclass
class Line:
    """One line of a text with its trimmed content; `start:end` index the original text."""

    start: int
    end: int
    text: str  # original text[start:end], surrounding whitespace removed

    @cached_property
    def norm(self) -> str:
        """normalize(text): same length, for matching; computed only for lines that are looked at."""
        return normalize(self.text)

    @property
    def blank(self) -> bool:
        return not self.text


def split_lines(text: str) -> list[Line]:
    """Split into lines, trimming whitespace (incl. NBSP, full-width and zero-width spaces)."""
    lines: list[Line] = []
    pos = 0
    for raw in text.splitlines(keepends=True):
        body = raw.rstrip("\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
        first, last = 0, len(body)
        while first < last and _is_space(body[first]):
            first += 1
        while last > first and _is_space(body[last - 1]):
            last -= 1
        lines.append(Line(pos + first, pos + last, body[first:last]))
        pos += len(raw)
    return lines


CHROME_MAX_CHARS = 40
_CHROME_KEYS = re.compile(
    r"^(?:(?:浏览|阅读|点击|访问)(?:次数|量|数)"
    r"|上一篇|下一篇|【? *字[体号])"
)
_CHROME_WORDS = re.compile(
    r"打印本页|打印|关闭本页|关闭窗口|关闭|分享到|分享|收藏本页|收藏|返回顶部|返回|政策解读|扫一扫"
    r"|在手机上打开|微信|微博|qq空间|朋友圈|字体|字号|默认|[大中小]|[【】\[\]:|/()\s·•-]"
)


def is_chrome(line: str) -> bool:
    """True for page furniture (print/share/font buttons, disclosure flags, blank lines)."""
    if len(line) > CHROME_MAX_CHARS:
        return False
    norm = normalize(line).strip()
    if not norm:
        return True
    if _CHROME_KEYS.match(norm):
        return True
    return not _CHROME_WORDS.sub("", norm)


def content_spans_of(text: str, lines: list[Line] | None = None) -> list[Span]:
    """Runs of consecutive non-chrome lines as (start, end) offsets into `text`."""
    spans: list[Span] = []
    for line in lines if lines is not None else split_lines(text):
        if is_chrome(line.text):
            spans.append((-1, -1))
        elif spans and spans[-1][0] >= 0:
            spans[-1] = (spans[-1][0], line.end)
        else:
            spans.append((line.start, line.end))
    return [span for span in spans if span[0] >= 0]


# ---------------------------------------------------------------- titles

_TITLE_END = re.compile(
    r"(?:答复|复函|回复|的函|通知|公告|通告|意见|办法|决定|通报|批复|报告|方案|规定|细则|说明|公报"
    r"|纪要|请示|建议|提案|议案|措施|规划|计划|指南|条例|解读|答复意见|答复函)$"
)
_TITLE_OPENERS = ("对", "关于", "致", "转发", "印发")
_TITLE_BAD = re.compile(r"[。;!?,:]")
_SENTENCE_END = re.compile(r"[。!?;！？；]|\s")


def _is_title(norm: str) -> bool:
    """A heading-shaped line naming a document type (…的答复, …的通知)."""
    return 6 <= len(norm) <= 80 and not _TITLE_BAD.search(norm) and bool(_TITLE_END.search(norm))


def first_sentence(text: str, limit: int = TITLE_MAX_CHARS, lines: list[Line] | None = None) -> str:
    """The first non-empty line or sentence, at most `limit` characters (a fallback title)."""
    for line in lines if lines is not None else split_lines(text):
        if is_chrome(line.text):
            continue
        body = line.text.lstrip("#> \t")  # a Markdown heading or quote mark is not part of the title
        cut = _SENTENCE_END.search(body)
        sentence = body[: cut.start()] if cut and cut.start() > 0 else body
        return sentence[:limit].strip()
    return ""


def _is_banner(norm: str) -> bool:
    """An organisation name standing alone (issuer banner), not the first half of a title."""
    return bool(_ORG_RE.match(norm)) and not norm.startswith(_TITLE_OPENERS)


def find_title(text: str) -> str | None:
    """The document-type title line of a text (…的答复, …的通知), None when it has none."""
    found = _find_title(split_lines(text))
    return found[0] if found else None


def _find_title(lines: list[Line]) -> tuple[str, int] | None:
    """The first title line, or two adjacent short lines that only together form a title."""
    looked = 0
    for i, line in enumerate(lines):
        if line.blank or is_chrome(line.text) or len(line.text) > 80:
            continue
        looked += 1
        if looked > TITLE_SEARCH_LINES:
            break
        if _is_title(line.norm):
            return line.text, i
        nxt = lines[i + 1] if i + 1 < len(lines) else None
        if (nxt and not nxt.blank and len(line.text) <= 40 and len(nxt.text) <= 40
                and not _is_banner(line.norm) and _is_title(line.norm + nxt.norm)):
            return line.text + nxt.text, i
    return None


# ---------------------------------------------------------------- header and footer fields

FIELD_LABELS = {  # header labels whose values become metadata (rag/qa/ finds the value after its label)
    "publish_date": r"发布时间|发布日期|发文日期|成文日期|印发日期",
    "source": r"信息来源|文章来源|来源",
    "doc_number": r"发文字号|文号",
    "issuer": r"发布机构|发文机关|发布机关",
    "proposal_number": r"提案编号|建议编号|议案编号|提案号|建议号",
    "result": r"办理结果|办理类别|答复类别",
    "disclosure": r"是否同意公开|是否公开",
}
_KEY_RE = re.compile("(?:" + "|".join(f"(?P<{k}>{v})" for k, v in FIELD_LABELS.items()) + r") *: *")
_DOC_NUMBER_RE = re.compile(r"[\u4e00-\u9fffa-z]{1,20}[〔\[(【] *\d{4} *[〕\])】] *第? *\d+ *号")
_PROPOSAL_RE = re.compile(r"第 *([0-9a-z][0-9a-z\-]*) *号(?:提案|建议|议案)")
# 您提出的关于“加快形成新质生产力 助力石家庄高质量发展的建议”提案收悉 → the proposal's own title
_PROPOSAL_TITLE_RE = re.compile(r"(?:提出|所提|提交)的?(?:关于)?[“\"]([^“”\"\n]{4,80})[”\"](?:的)?(?:提案|建议|议案)")
PROPOSAL_TITLE_SEARCH = 2000  # characters from the start where the salutation stands
_ADDRESSEE_RE = re.compile(r"^([^:\s。,;!?]{2,30}) *:$")
_ORG_RE = re.compile(
    r"^[\u4e00-\u9fff()]{2,40}(?:局|委|办|厅|院|会|部|府|室|中心|公司|处|所|署|站|队|馆|社|组|司"
    r"|委员会|政府|办公室|管委会|街道|集团)(?: *\(盖章\))?$"
)
_PHONE_RE = re.compile(r"(?:\(?0\d{2,3}\)?[- ]?)?\d{7,8}(?:-\d{1,5})?|1[3-9]\d{9}")
_SIGNER_RE = re.compile(r"^(?:领导签发|签发人|签发领导|签发) *: *(.+)$")
_CONTACT_RE = re.compile(r"^联系(?:人|人员)(?:及|和)?(?:联系)?(?:电话|方式)? *: *(.+)$")
_PHONE_KEY_RE = re.compile(r"^(?:联系电话|电话|联系方式) *: *(.+)$")
_CC_RE = re.compile(r"^抄 *送 *: *(.+)$")
_VALUE_END = re.compile(r" {2,}|\t")
_TRIM = " \t\u00a0\u3000。.;;,,、"
HEADER_BODY_CHARS = 60


def _clean(value: str) -> str:
    """Strip surrounding whitespace and trailing list punctuation from a field value."""
    return value.strip(_TRIM)


def _slice(line: Line, start: int, end: int) -> str:
    """The original text behind a span of `line.norm`."""
    return line.text[start:end]


def _key_values(line: Line) -> dict[str, str]:
    """All `key: value` pairs of one header line ('发布时间:… 来源:…')."""
    found: dict[str, str] = {}
    matches = list(_KEY_RE.finditer(line.norm))
    for i, match in enumerate(matches):
        stop = matches[i + 1].start() if i + 1 < len(matches) else len(line.norm)
        cut = _VALUE_END.search(line.norm, match.end(), stop)
        value = _clean(_slice(line, match.end(), cut.start() if cut else stop))
        if value:
            found.setdefault(match.lastgroup or "", value)
    return found


def _header_fields(lines: list[Line]) -> dict[str, str]:
    """Fields written in the page header: dates, source, doc number, addressee, result."""
    meta: dict[str, str] = {}
    for line in lines:
        if line.blank:
            continue
        if len(line.text) > HEADER_BODY_CHARS:
            break
        for key, value in _key_values(line).items():
            meta.setdefault(key, value)
        number = _DOC_NUMBER_RE.fullmatch(line.norm)
        if number:
            meta.setdefault("doc_number", line.text)
        addressee = _ADDRESSEE_RE.match(line.norm)
        if addressee and "如下" not in line.norm and not _KEY_RE.match(line.norm + " "):
            meta.setdefault("addressee", _clean(_slice(line, 0, addressee.end(1))))
            break
    return meta


_CONTACT_KEY_TAIL = re.compile(r"[\s,;、:]*(?:联系)?(?:电话|手机|方式)? *:? *$")


def _contact(value: str) -> dict[str, str]:
    """'张三,0311-12345678' or '李四 联系电话:0311-…' → contact_person and contact_phone."""
    out: dict[str, str] = {}
    norm = normalize(value)
    phone = _PHONE_RE.search(norm)
    if phone:
        out["contact_phone"] = value[phone.start():phone.end()]
        tail = _CONTACT_KEY_TAIL.search(norm, 0, phone.start())
        value = value[: tail.start() if tail else phone.start()]
    person = _clean(value)
    if person and not _PHONE_RE.fullmatch(normalize(person)):
        out["contact_person"] = person
    return out


def _footer_lines(lines: list[Line]) -> list[Line]:
    """The short non-chrome lines at the end of the text, after the last body paragraph."""
    footer: list[Line] = []
    for line in reversed(lines):
        if line.blank or is_chrome(line.text):
            continue
        if len(line.text) > HEADER_BODY_CHARS and not _CC_RE.match(normalize(line.text[:8])):
            break
        footer.append(line)
    return footer[::-1]


def _footer_fields(lines: list[Line]) -> dict[str, str]:
    """Fields of the signature block: issuer, date, signer, contact, copies."""
    meta: dict[str, str] = {}
    footer = _footer_lines(lines)
    for i, line in enumerate(footer):
        text, norm = line.text, line.norm
        if norm.startswith("(") and norm.endswith(")"):  # "(联系人:李四 联系电话:…)"
            text, norm = text[1:-1], norm[1:-1]
        for regex, key in ((_SIGNER_RE, "signer"), (_CC_RE, "cc")):
            match = regex.match(norm)
            if match:
                meta.setdefault(key, _clean(text[match.start(1):match.end(1)]))
        contact = _CONTACT_RE.match(norm) or _PHONE_KEY_RE.match(norm)
        if contact:
            for key, value in _contact(text[contact.start(1):contact.end(1)]).items():
                meta.setdefault(key, value)
        date = normalize_date(line.text)
        if date and "sign_date" not in meta:
            meta["sign_date"] = date
            if i > 0 and _ORG_RE.match(footer[i - 1].norm):
                meta["issuer"] = footer[i - 1].text
    return meta


def _first_org(lines: list[Line]) -> str | None:
    """The first non-empty line when it is an organisation name (the site/issuer banner)."""
    for line in lines:
        if not line.blank and not is_chrome(line.text):
            return line.text if len(line.text) <= 40 and _ORG_RE.match(line.norm) else None
    return None


def parse_reply(text: str) -> tuple[str, dict[str, Any], list[Span]]:
    """(title, meta, content_spans) of a government reply or any other free text.

    meta keys, when found: issuer, publish_date, source, doc_number, proposal_number, addressee,
    sign_date, signer, contact_person, contact_phone, cc, result, disclosure, proposal_title, and `date` (publish date, else
    signing date) so that every document can be filtered by one key.
    """
    lines = split_lines(text)
    found = _find_title(lines)
    title = found[0] if found else first_sentence(text, lines=lines)
    meta: dict[str, Any] = {}
    footer = _footer_fields(lines)
    header = _header_fields(lines)
    meta.update(header)
    for key, value in footer.items():
        if key == "issuer" or key not in meta:
            meta[key] = value
    if "issuer" not in meta:
        org = _first_org(lines)
        if org:
            meta["issuer"] = org
    if "proposal_number" not in meta:
        number = _PROPOSAL_RE.search(normalize(title))
        if number:
            meta["proposal_number"] = title[number.start(1):number.end(1)]
    if "publish_date" in meta:
        meta["publish_date"] = normalize_date(meta["publish_date"]) or find_date(meta["publish_date"])
        if not meta["publish_date"]:
            del meta["publish_date"]
    for key in ("result", "disclosure"):  # 办理结果:(A), 是否同意公开:(是)
        if key in meta:
            meta[key] = meta[key].strip("()（） \u00a0\u3000").upper()
    if "proposal_title" not in meta:
        proposal = _PROPOSAL_TITLE_RE.search(text[:PROPOSAL_TITLE_SEARCH])
        if proposal:
            meta["proposal_title"] = proposal.group(1).strip()
    date = meta.get("publish_date") or meta.get("sign_date")
    if date:
        meta["date"] = date
    return title, meta, content_spans_of(text, lines)


# Name given in docs/ARCHITECTURE.md.
parse_header = parse_reply
