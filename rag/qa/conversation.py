"""Follow-up questions: a question that leans on the previous turn is completed from it, without a language model.

「2021年新建了多少座城市公园？」 then 「那一共有多少呢？」 is searched as 「2021年城市公园，一共有多少？」, 「2020年呢？」 as
「2020年新建了多少座城市公园？」, 「其中口袋公园有几座？」 as 「2021年新建城市公园，其中口袋公园有几座？」.
The year, the subject and the constraints of the previous turn carry over unless the new question replaces them;
a question that names the document (这份答复, "this reply") keeps to the document of the turn it follows. The server
is stateless: the client sends the earlier turns (`history`), oldest first, and the chat shows the completed question.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from rag.patterns import UNIT_ALT, YEAR_RE, load_data
from rag.qa.question import (
    GENERIC_TERMS, MEASURE_NOUNS, OPPOSED, QUALIFIER_GROUPS, ZH_QUESTION_WORD, ZH_VERBS, analyze, qualifiers_of,
)
from rag.text import has_cjk
from rag.types import RagError

_CUES = load_data("followup_cues.json")
MAX_TURNS = 20  # earlier turns than these are not read (a follow-up leans on the last one or two)
MAX_TURN_CHARS = 20_000  # a turn's question or answer; longer ones are a pasted document, not a conversation
RELATIVE_YEARS = {"去年": -1, "上一年": -1, "上年": -1, "前年": -2, "次年": 1, "第二年": 1, "后一年": 1, "明年": 1,
                  "last year": -1, "the year before": -1, "the previous year": -1, "the next year": 1}
_END_PUNCT = "？?。.!！ \t\n"
_ZH_ANY_QWORD = re.compile(_CUES["zh"]["question_words"])
_MEASURE_END = re.compile("(?:" + "|".join(map(re.escape, _CUES["zh"]["measure_suffixes"])) + ")$")
ZH_QUESTION_PHRASE = re.compile(rf"了?(?:是|有|为|达到)?(?:{ZH_QUESTION_WORD.pattern})\s*(?:{UNIT_ALT})?|吗|呢")
_EN_QWORD = re.compile(r"\b(how many|how much|what|which|who|when|where|why|how)\b", re.I)
_EN_SUBJECTS = (  # the noun phrase an English question asks about: how many X were…, how much was X in 2022
    re.compile(r"\b(?:how many|how much|what|which)\s+(?!(?:were|was|are|is|did|do|does)\b)(.+?)\s+"
               r"(?:were|was|are|is|did|do|does|has|have|had)\b", re.I),
    re.compile(r"\b(?:how much|how many|what)\s+(?:were|was|are|is)\s+(?:the\s+)?(.+?)(?:\s+(?:in|for|of)\s+\d{4})?\s*[?.!]*$",
               re.I),
)


@dataclass
class Turn:
    """One earlier turn as the client sends it: the question asked, the answer shown, the document it cited."""

    question: str
    answer: str = ""
    doc_id: str = ""


@dataclass
class Completion:
    """A question as asked and as searched; `follow_up` says how it leaned on the turn before ("" = it stands alone)."""

    question: str
    completed: str
    follow_up: str = ""  # year, qualifier, subset, pronoun, subject, ellipsis, document
    doc_id: str = ""  # the document a question naming "this reply" keeps to
    context: str = ""  # the subject and constraints a next turn leans on (2021年新建城市公园)
    previous_doc: str = ""  # the document the previous turn's answer cited: the conversation's document so far


def check_history(history) -> list[Turn]:
    """The earlier turns, checked: a list of {"question", "answer"?, "doc_id"?} objects (or Turns), oldest first."""
    if history is None:
        return []
    if isinstance(history, (str, bytes, Mapping)) or not isinstance(history, (list, tuple)):
        raise RagError("history must be a list of {\"question\": …, \"answer\": …} objects, oldest first; "
                       f"got {type(history).__name__}")
    turns = []
    for n, item in enumerate(history[-MAX_TURNS:], 1):
        if isinstance(item, Turn):
            item = {"question": item.question, "answer": item.answer, "doc_id": item.doc_id}
        if not isinstance(item, Mapping) or not isinstance(item.get("question"), str):
            raise RagError(f"history turn {n} must be an object with a \"question\" text")
        values = {key: item.get(key) or "" for key in ("question", "answer", "doc_id")}
        if not all(isinstance(v, str) for v in values.values()):
            raise RagError(f"history turn {n}: question, answer and doc_id must be text")
        if any(len(v) > MAX_TURN_CHARS for v in values.values()):
            raise RagError(f"history turn {n} is longer than {MAX_TURN_CHARS:,} characters")
        turns.append(Turn(**values))
    return turns


def complete_question(question: str, history=None) -> Completion:
    """The question completed from the conversation (each earlier turn completed in turn, so chains carry)."""
    previous: Completion | None = None
    for turn in check_history(history):
        done = _complete(turn.question, previous)
        done.doc_id = turn.doc_id or done.doc_id
        previous = done
    result = _complete(question, previous)
    result.previous_doc = previous.doc_id if previous else ""
    return result


def _complete(question: str, previous: Completion | None) -> Completion:
    done = _lean(question.strip(), previous)
    if not done.context:
        done.context = _question_core(done.completed, has_cjk(done.completed))
    return done


def _lean(question: str, previous: Completion | None) -> Completion:
    """How the question leans on the previous turn, and the question completed from it."""
    if previous is None or not question:
        return Completion(question, question)
    zh = has_cjk(question) or (not re.search(r"[A-Za-z]", question) and has_cjk(previous.completed))
    cues = _CUES["zh" if zh else "en"]
    if _names_document(question, cues):
        return Completion(question, question, "document", previous.doc_id)
    body, leaned = _strip_lead_and_tail(question, cues, zh)
    partitive = next((c for c in cues["partitive"] if _has(body, c, zh)), "")
    unpartitioned = body.replace(partitive, " ") if partitive else body  # 其 of 其中 is no pronoun
    pronoun = next((c for c in cues["pronouns"] + cues["determiners"] if _has(unpartitioned, c, zh)), "")
    own = analyze(body)
    has_qword = bool(_ZH_ANY_QWORD.search(body) if zh else _EN_QWORD.search(body))
    standalone = has_qword and not (partitive or pronoun or _subjectless(own))
    if standalone:  # a question of its own (「这项工作由谁负责？」, "And how much do drivers pay?"): as asked
        return Completion(question, _end(body, zh) if leaned else question)
    before = analyze(previous.completed)
    if has_qword:
        return _with_context(question, body, previous, before, own, partitive, pronoun, zh)
    return _substitute(question, body, previous, before, own, zh)


_CUE_WORDS = frozenset(c.strip() for g in QUALIFIER_GROUPS.values() for c in g["question"])


def _subjectless(own) -> bool:
    """No subject of its own: only verbs, measures and qualifier words (「下降了多少？」「累计有多少？」, "how many in total?")."""
    return all(t[0] in ZH_VERBS or t[0] in MEASURE_NOUNS or t[0] in GENERIC_TERMS or t[0] in _CUE_WORDS
               or any(t[0] in c for c in _CUE_WORDS) for t in own.terms) and not own.unmatched


def _names_document(question: str, cues: dict) -> bool:
    low = question.lower()
    return any(c in low for c in cues["document"])


def _has(text: str, cue: str, zh: bool) -> bool:
    """A cue in the text: anywhere in Chinese, as a whole word in English."""
    if zh:
        return cue in text
    return re.search(rf"(?<![a-z]){re.escape(cue)}(?![a-z])", text.lower()) is not None


def _strip_lead_and_tail(question: str, cues: dict, zh: bool) -> tuple[str, bool]:
    """The question without 那/那么…呢 ("and", "what about"); the flag says whether any such marker was there."""
    body, leaned = question.strip(_END_PUNCT), False
    for cue in sorted(cues["lead"], key=len, reverse=True):
        starts = body.startswith(cue) if zh else body.lower().startswith(cue + " ")
        if starts and not (zh and cue == "那" and body[1:2] in "些个里边时样"):
            body, leaned = body[len(cue):].strip(" ，,"), True
            break
    for cue in cues.get("tail", []):
        if body.endswith(cue):
            body, leaned = body[: -len(cue)].strip(" ，,"), True
    return body, leaned


def _replace_years(text: str, years: list[str], zh: bool) -> str:
    """The text with its first year replaced (or, when it has none, the year put in front)."""
    if not years:
        return text
    match = YEAR_RE.search(text)
    if match:
        return text[:match.start(1)] + years[0] + text[match.end(1):]
    return f"{years[0]}年{text}" if zh else f"{text.rstrip(_END_PUNCT)} in {years[0]}?"


def _relative_years(body: str, before_years: list[str]) -> tuple[str, list[str]]:
    """去年/前年/"last year" counted from the year of the previous turn, and the body without them."""
    for word, offset in sorted(RELATIVE_YEARS.items(), key=lambda kv: -len(kv[0])):
        if word in body.lower() and before_years:
            return re.sub(re.escape(word), "", body, flags=re.I).strip(" ，,"), [str(int(before_years[0]) + offset)]
    return body, []


def _drop_cues(text: str, groups: list[str]) -> str:
    """The text without the question cues of these qualifier groups (新增 when the new turn asks for the total);
    a cue that is itself a question word (有多少) stays."""
    for group in groups:
        for cue in sorted(QUALIFIER_GROUPS[group]["question"], key=len, reverse=True):
            if cue.strip() and not ZH_QUESTION_WORD.search(cue) and not _EN_QWORD.search(cue):
                pattern = re.escape(cue.strip()) if has_cjk(cue) else rf"(?<![a-z]){re.escape(cue.strip())}(?![a-z])"
                text = re.sub(pattern + (r"了?" if has_cjk(cue) else r"\s*"), "", text, flags=re.I)
    return re.sub(r"\s{2,}", " ", text)


def _replaced_groups(body: str, before_qualifiers: list[str], zh: bool) -> list[str]:
    """The previous turn's qualifier groups this turn replaces (its 总数 replaces 新增, its 增速 replaces 增长); the
    generic total cue of a question word (有多少) replaces nothing."""
    words = ZH_QUESTION_PHRASE.sub(" ", body) if zh else _EN_QWORD.sub(" ", body)
    return [o for g in qualifiers_of(words.lower()) for o in (g, *OPPOSED.get(g, ())) if o in before_qualifiers]


def _remainder(body: str, own, zh: bool) -> str:
    """What a leaning turn adds beyond its years: its own words (总量, 绿化领域, 社区公园)."""
    rest = YEAR_RE.sub("", body) if own.years else body
    return rest.strip(" ，,的")


def _substitute(question: str, body: str, previous: Completion, before, own, zh: bool) -> Completion:
    """An elliptic turn (「2020年呢？」「累计呢？」「社区公园呢？」, "And in 2020?"): the previous question with the
    parts this turn names put in place of the ones they replace."""
    body, relative = _relative_years(body, before.years)
    years = own.years or relative
    completed = _replace_years(previous.completed, years, zh)
    rest = _remainder(body, own, zh)
    if not zh:
        rest = re.sub(r"^(?:the|in|for|on)\s+", "", rest, flags=re.I).strip()
    if not rest:
        return Completion(question, _end(completed, zh), "year" if years else "ellipsis")
    context = _replace_years(previous.context, years, zh) if years and zh else previous.context
    context = _drop_cues(context, _replaced_groups(body, before.qualifiers, zh))
    head = before.head_word
    core = completed.rstrip(_END_PUNCT)
    asks = "多少" in core if zh else bool(re.match(r"how (many|much)", core, re.I))
    if own.qualifiers or _subjectless(own) or (zh and _MEASURE_END.search(rest)):  # 总量, 增幅, 覆盖率: a new measure
        if zh and not own.qualifiers:  # another measure of the same topic: the old measure does not carry
            context = _replace_years(_topic(previous, before), years, zh) if years else _topic(previous, before)
        text = f"{context}，{rest}" + ("是多少" if asks else "") if zh else f"What is the {rest} of {context}"
        return Completion(question, _end(text, zh), "qualifier", context=context)
    if zh and re.search(r"(领域|产业|行业|方面)$", rest) and head and head in core:
        return Completion(question, _end(core.replace(head, rest + head, 1), zh), "subset")
    if zh and head and head in core and len(own.terms) <= 2:
        return Completion(question, _end(core.replace(head, rest, 1), zh), "subject")
    match = None if zh else _en_subject(core)
    if match and own.terms:
        return Completion(question, _end(core[:match.start(1)] + rest + core[match.end(1):], zh), "subject")
    return Completion(question, _end(f"{context}，{rest}" if zh else f"{core}, {rest}", zh), "ellipsis",
                      context=context)


def _en_subject(question: str) -> re.Match | None:
    return next((m for pattern in _EN_SUBJECTS for m in [pattern.search(question)] if m), None)


def _question_core(previous: str, zh: bool) -> str:
    """The previous question without its question words, as context for the next one (2021年新建城市公园)."""
    core = previous.rstrip(_END_PUNCT)
    if zh:
        return ZH_QUESTION_PHRASE.sub("", core).strip(" ，,")
    match = _en_subject(core)
    tail = YEAR_RE.search(core)
    subject = match.group(1) if match else core
    return subject + (f" in {tail.group(1)}" if tail and tail.group(1) not in subject else "")


def _topic(previous: Completion, before) -> str:
    """What the previous question was about, without the attribute it asked for: the words before an attribute that
    stands before the question word (某市环城绿道 of 「某市环城绿道全长多少公里？」); a counted noun after the question
    word (多少座城市公园) is the topic itself, so the whole context is kept."""
    core = previous.completed.rstrip(_END_PUNCT)
    asked = ZH_QUESTION_WORD.search(core)
    at = core.find(before.head_word) if before.head_word else -1
    if asked and 0 <= at < asked.start():
        topic = core[:at].rstrip("的之，, ")
        if len(re.findall(r"[\u4e00-\u9fff]", topic)) >= 2:
            return topic
    return previous.context


def _with_context(question: str, body: str, previous: Completion, before, own, partitive: str, pronoun: str,
                  zh: bool) -> Completion:
    """A turn with its own question word that points back (「它的面积是多少？」「其中口袋公园有几座？」, "How much
    funding did they get?"): the previous question's subject and constraints put before it."""
    base = previous.context if partitive or own.qualifiers or not zh else _topic(previous, before)
    context = _drop_cues(base, _replaced_groups(body, before.qualifiers, zh))
    if own.years:
        context = YEAR_RE.sub("", context).strip(" ，,")
    if zh:
        rest = body
        if pronoun:
            rest = rest.replace(pronoun, "", 1).strip(" ，,的")
        return Completion(question, _end(f"{context}，{rest}", zh), "subset" if partitive else "pronoun",
                          context=previous.context)
    match = _en_subject(previous.completed)
    subject = YEAR_RE.sub("", match.group(1)).replace(" in ", " ").strip() if match else context
    text = re.sub(rf"(?<![a-z]){re.escape(pronoun)}(?![a-z])", subject, body, count=1, flags=re.I) if pronoun else \
        f"{body}, {context}"
    years = [y for y in before.years if y not in text] if not own.years else []
    text = text.rstrip(_END_PUNCT) + (f" in {years[0]}" if years else "")
    return Completion(question, _end(text, zh), "subset" if partitive else "pronoun", context=previous.context)


def _end(text: str, zh: bool) -> str:
    text = text.strip().rstrip(_END_PUNCT)
    return text + ("？" if zh else "?")
