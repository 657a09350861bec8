"""The shared patterns of the genre, one place each: numbers and figures with units, dates, years, phone numbers,
document numbers (〔〕/[]/【】) and 《titles》. Used by chunking, tokenizing, question analysis and answers alike.

The units come from rag/data/units.json (general knowledge of Chinese measure words and units, with its source).
"""
from __future__ import annotations

import calendar
import json
import re
from functools import lru_cache
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"


def load_data(name: str) -> dict:
    """A data file of general knowledge from rag/data (JSON, read once per process)."""
    return _load_data(name)


@lru_cache(maxsize=None)
def _load_data(name: str) -> dict:
    return json.loads((DATA_DIR / name).read_text(encoding="utf-8"))


_UNITS = load_data("units.json")
UNIT_CLASSES = ("count", "money", "percent", "duration", "length", "area", "weight", "volume", "other")
# 年/月/日 are units only for small numbers not followed by more of a date (3年, 6个月, 15日内), see _FIGURE
_DATE_UNITS = ("年", "月", "日")
UNITS: tuple[str, ...] = tuple(dict.fromkeys(u for c in UNIT_CLASSES for u in _UNITS[c] if u not in _DATE_UNITS))
UNIT_CLASS: dict[str, str] = {u: c for c in reversed(UNIT_CLASSES) for u in _UNITS[c]}
MAGNITUDES: tuple[str, ...] = tuple(_UNITS["magnitudes"])
_INTERCHANGEABLE = [frozenset(group) for group in _UNITS["interchangeable"]]
_GENERIC_COUNT = frozenset(_UNITS["generic_count"])
QUESTION_UNIT_WORDS: dict[str, str] = dict(_UNITS["question_words"])

UNIT_ALT = "|".join(map(re.escape, sorted(UNITS, key=len, reverse=True)))  # 人次 before 人, 个百分点 before 个
# what may follow a number in running text, longest first: every unit, 年度/年/月/日/号 and the magnitudes 万/亿
# (chunking never cuts inside such a figure; BM25 keeps it as one token)
NUMBER_TAIL_ALT = "|".join(map(re.escape, sorted({*UNITS, *MAGNITUDES, "年度", "年", "月", "日", "号", "%", "％"},
                                                   key=len, reverse=True)))
NUMBER = r"\d+(?:,\d{3})*(?:\.\d+)?"
_MAGNITUDE_ALT = "|".join(map(re.escape, sorted(MAGNITUDES, key=len, reverse=True)))
_APPROX = r"(?:余|多|左右)?"
DURATION_TAIL = r"(?:年(?![\d度底初])|日(?=内|以内|之内)|月(?![\d份]))"  # 3年, 15日内, 6月: a span of time, not a date
_SMALL_DATE_UNIT = rf"(?<![\d.])\d{{1,2}}\s*{DURATION_TAIL}"
# a figure with its unit: 14万余人次, 3250万元, 2.52%, 0.52个百分点; "68个276人" (68 teams of 276 people) is one figure
FIGURE = (rf"(?:{NUMBER}\s*(?:(?:{_MAGNITUDE_ALT})(?=\s*{_APPROX}\s*(?:{UNIT_ALT})))?\s*{_APPROX}\s*(?:{UNIT_ALT})"
          rf"|{_SMALL_DATE_UNIT})")
QUANTITY_RE = re.compile(rf"(?<![A-Za-z0-9.\-]){FIGURE}(?:{FIGURE})*")
# small counts written in Chinese numerals (两批次, 三家, 十二个); 一 alone is left out (一批新产品 is "some")
_CN_COUNT_UNITS = "|".join(map(re.escape, sorted((u for u in _UNITS["count"] if len(u) <= 2), key=len, reverse=True)))
CN_QUANTITY_RE = re.compile(r"(?<![一二两三四五六七八九十百千万第])(?:[二三四五六七八九]?十[一二三四五六七八九]?|[两三四五六七八九])"
                            rf"(?:{_CN_COUNT_UNITS})")
_CLOCK = (r"(?:\s*(?:上午|下午|中午|晚上|凌晨|早上)?\s*(?:\d{1,2}(?:时|点)(?:\d{1,2}分|半)?|\d{1,2}[:：]\d{2}时?))?")
DATE_RE = re.compile(r"(?<!\d)(?:\d{4}年\d{1,2}月\d{1,2}[日号]" + _CLOCK + r"|\d{4}-\d{1,2}-\d{1,2}|\d{4}年\d{1,2}月(?:[上中下]旬|底|初)?"
                     r"|\d{4}年(?:度|底|初|年底)?|\d{1,2}月\d{1,2}[日号]" + _CLOCK +
                     r"|\d{1,2}月(?:[上中下]旬|底|初)|\d{1,2}[日号](?=[前起后至到—\-~～])|\d{1,2}[:：]\d{2})")
# a date read into its fields (2024年3月5日, 3月5日, 2024年3月, 2024-03-05; English: March 5, 2024 / 5 March 2024),
# for comparing two ways of writing one date (DATE_RE finds more forms: 旬, 底, clock times)
DATE_FIELDS_RE = re.compile(r"(?<!\d)(?:(?P<y>\d{4})\s*年\s*)?(?P<m>\d{1,2})\s*月\s*(?:(?P<d>\d{1,2})\s*[日号])?"
                            r"|(?<!\d)(?P<iy>\d{4})-(?P<im>\d{1,2})-(?P<id>\d{1,2})(?!\d)")
_MONTHS = {name.lower(): n for n, name in enumerate(calendar.month_name) if name}
_MONTHS.update({name.lower(): n for n, name in enumerate(calendar.month_abbr) if name})
_MONTH_ALT = "|".join(sorted(_MONTHS, key=len, reverse=True))
EN_DATE_FIELDS_RE = re.compile(rf"\b(?:(?P<d1>\d{{1,2}})\s+)?(?P<mon>{_MONTH_ALT})\.?(?:\s+(?P<d2>\d{{1,2}})"
                               rf"(?:st|nd|rd|th)?)?,?\s+(?P<y>\d{{4}})\b", re.IGNORECASE)


def date_fields(match: re.Match) -> tuple[int | None, int | None, int | None]:
    """(year, month, day) of a DATE_FIELDS_RE or EN_DATE_FIELDS_RE match, None where the text gives none."""
    groups = match.groupdict()
    if groups.get("iy"):
        return int(groups["iy"]), int(groups["im"]), int(groups["id"])
    if groups.get("mon"):
        day = groups.get("d1") or groups.get("d2")
        return int(groups["y"]), _MONTHS[groups["mon"].lower()], int(day) if day else None
    return (int(groups["y"]) if groups.get("y") else None, int(groups["m"]),
            int(groups["d"]) if groups.get("d") else None)


# a news wire's dateline (新华社呼和浩特2月12日电): the day the report was filed, not a date the text is about
DATELINE_TAIL_RE = re.compile(r"\s*[电讯](?!话)")
YEAR_RE = re.compile(r"(?<!\d)((?:19|20)\d{2})\s*(?:年度|年)?(?!\d)")
_HOTLINES = "|".join(sorted(load_data("hotlines.json")["numbers"], key=len, reverse=True))
# 0311-86901234, (010)12345678, 13912345678, and the national short numbers (12345 …) of rag/data/hotlines.json
PHONE_RE = re.compile(r"(?<![\d-])(?:\(?0\d{2,3}\)?[-－ ]?\d{7,8}(?:-\d{1,5})?|1[3-9]\d{9}|\d{3}-\d{3}-\d{4}"
                      rf"|(?<![\d.])(?:{_HOTLINES})(?![\d.%]))(?!\d)")
TITLE_RE = re.compile(r"《[^《》\n]{1,80}》")
# 冀政办字〔2024〕12号, 国办发[2020]5号, 石科【2023】3号 (the issuer's abbreviation, the year, the serial)
DOC_NUMBER_RE = re.compile(r"[\u4e00-\u9fff]{1,12}[〔\[［【(（]\s*\d{4}\s*[〕\]］】)）]\s*第?\s*\d+\s*号")
BATCH_RE = re.compile(r"第[一二三四五六七八九十百\d]+(?:批|届|次|期|轮)")


def unit_of(figure: str) -> str:
    """The unit a figure ends with, the longest that fits (三批次 → 批次, not 次; 15日内 → 日)."""
    figure = re.sub(r"(?:余|多|左右|内|以内|之内)$", "", figure.strip())
    return max((u for u in (*UNITS, *_DATE_UNITS) if figure.endswith(u)), key=len, default="")


def unit_class(unit: str) -> str:
    """count money percent duration length area weight volume other, or '' for an unknown unit."""
    return UNIT_CLASS.get(unit, "")


def units_compatible(asked: str, found: str) -> bool:
    """Does a figure in `found` answer a question asking for `asked` (a unit word or a unit class)?"""
    if not asked:
        return True
    if asked == found:
        return True
    if asked in UNIT_CLASSES:
        return unit_class(found) == asked
    if any(asked in group and found in group for group in _INTERCHANGEABLE):
        return True
    return asked in _GENERIC_COUNT and unit_class(found) == "count" and found not in ("人次", "户次", "车次", "架次")
