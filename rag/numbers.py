"""Figures read as values: 3250万元, 0.325亿元 and "32.5 million yuan" are one amount, 十四万余人次 is 140000 人次,
so two ways of writing a figure compare equal (the check of written answers; figures across replies).

Units and magnitudes come from rag/data/units.json; Chinese numerals are read by cn2an (MIT).
"""
from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

import cn2an

from rag.patterns import DURATION_TAIL, MAGNITUDES, UNIT_ALT, UNITS, load_data, unit_class, units_compatible

_UNITS = load_data("units.json")
MAGNITUDE_VALUE: dict[str, float] = {m: float(v) for m, v in _UNITS["magnitude_values"].items()}
EN_MAGNITUDE: dict[str, float] = {m: float(v) for m, v in _UNITS["english_magnitudes"].items()}
EN_UNITS: dict[str, str] = dict(_UNITS["english_units"])

# after an Arabic number 千 and 百 begin units (千米, 百分点) more often than they scale it
_MAGNITUDE_ALT = "|".join(map(re.escape, sorted((m for m in MAGNITUDES if m not in ("千", "百")), key=len, reverse=True)))
_EN_MAGNITUDE_ALT = "|".join(map(re.escape, sorted(EN_MAGNITUDE, key=len, reverse=True)))
_EN_UNIT_ALT = "|".join(map(re.escape, sorted(EN_UNITS, key=len, reverse=True)))
_APPROX = r"(?:余|多|左右|以上|以下)?"
# an Arabic number, an optional magnitude (万, 亿 … or million, billion …), an optional unit
_ARABIC_RE = re.compile(
    rf"(?<![A-Za-z\d.])(?P<number>\d+(?:,\d{{3}})*(?:\.\d+)?)"
    rf"(?:\s*(?P<magnitude>{_MAGNITUDE_ALT}))?"
    rf"(?:\s*(?P<en_magnitude>{_EN_MAGNITUDE_ALT})\b)?"
    rf"\s*{_APPROX}\s*(?:(?P<unit>{UNIT_ALT})|(?P<en_unit>(?i:{_EN_UNIT_ALT}))\b"
    rf"|(?<![\d.]\d{{3}})(?<![\d.]\d{{4}})(?P<duration>{DURATION_TAIL}))?")
_CN_DIGITS = "零〇一二两三四五六七八九"
_CN_NUMERAL = f"[{_CN_DIGITS}十百千万亿]"
# a Chinese numeral with a unit: 三家, 十二个, 一百二十人, 两千万元 (a bare 一 is "some", 一批新产品, not a count)
_CHINESE_RE = re.compile(rf"(?<![{_CN_DIGITS}十百千万亿第])(?P<number>{_CN_NUMERAL}+?)\s*{_APPROX}\s*"
                         rf"(?P<unit>{UNIT_ALT})")
_PERCENT_WORD_RE = re.compile(rf"百分之(?P<number>[\d.]+|{_CN_NUMERAL}+)")


@dataclass(frozen=True)
class Value:
    """A number found in a text, in base units (3250万元 → 32500000.0 元), with the span that wrote it."""

    value: float
    unit: str  # 元, 家, %, 个百分点 …; "" when the number has none
    start: int
    end: int
    text: str
    printed: float = 0.0  # the number before 万/亿 scaled it (3250 of 3250万元); the value where nothing did


def base_unit(unit: str) -> tuple[float, str]:
    """A unit with a magnitude inside split into the factor and the unit: 亿元 → (1e8, 元), 万吨 → (1e4, 吨)."""
    unit = unicodedata.normalize("NFKC", unit)
    for magnitude in sorted(MAGNITUDE_VALUE, key=len, reverse=True):
        rest = unit[len(magnitude):]
        if not unit.startswith(magnitude) or rest not in UNITS:
            continue
        # 千 and 百 begin units of their own (千米, 千克, 百分点) except in money (千元)
        if magnitude in ("千", "百") and unit_class(unit) != "money":
            continue
        return MAGNITUDE_VALUE[magnitude], rest
    return 1.0, unit


def chinese_number(text: str) -> float | None:
    """一百二十 → 120, 两千万 → 2e7, 二〇二三 → 2023; None when it is not a numeral."""
    try:
        return float(cn2an.cn2an(text, "smart"))
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def read_values(text: str) -> list[Value]:
    """Every number of a text with its magnitude and unit, Arabic or Chinese numerals, in order of position."""
    found: list[Value] = []
    for m in _ARABIC_RE.finditer(text):
        number = float(m.group("number").replace(",", ""))
        factor = MAGNITUDE_VALUE.get(m.group("magnitude") or "", 1.0) * EN_MAGNITUDE.get(
            (m.group("en_magnitude") or "").lower(), 1.0)
        unit_factor, unit = base_unit(m.group("unit") or EN_UNITS.get((m.group("en_unit") or "").lower(), "")
                                      or m.group("duration") or "")
        end = m.end("unit") if m.group("unit") else m.end("en_unit") if m.group("en_unit") else (
            m.end("duration") if m.group("duration") else
            m.end("en_magnitude") if m.group("en_magnitude") else m.end("magnitude") if m.group("magnitude")
            else m.end("number"))
        printed = number * EN_MAGNITUDE.get((m.group("en_magnitude") or "").lower(), 1.0)
        found.append(Value(number * factor * unit_factor, unit, m.start(), end, text[m.start():end], printed))
    for m in _PERCENT_WORD_RE.finditer(text):
        number = m.group("number")
        value = float(number) if number[0].isdigit() else chinese_number(number)
        if value is not None:
            found.append(Value(value, "%", m.start(), m.end(), m.group(0), value))
    taken = [(v.start, v.end) for v in found]
    for m in _CHINESE_RE.finditer(text):
        number = m.group("number")
        if number == "一" or any(s < m.end() and m.start() < e for s, e in taken):
            continue
        value = chinese_number(number)
        if value is not None:
            unit_factor, unit = base_unit(m.group("unit"))
            found.append(Value(value * unit_factor, unit, m.start(), m.end(), m.group(0), value * unit_factor))
    return sorted(found, key=lambda v: v.start)


def same_value(a: float, b: float) -> bool:
    """Equal as written figures are: 0.325亿 == 3250万 despite floating point."""
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def same_figure(claimed: Value, source: Value) -> bool:
    """Whether a figure in an answer is the figure of a source: the same value and a unit that counts the same
    things (360家 vs 360户 yes, 1234家 vs 1234起 no); a number written without a unit matches on its value."""
    if not same_value(claimed.value, source.value):
        return False
    if not claimed.unit or claimed.unit == source.unit:
        return True
    if not source.unit:  # 15% is not backed by the 15 of 3月15日
        return False
    return units_compatible(claimed.unit, source.unit) or units_compatible(source.unit, claimed.unit)
