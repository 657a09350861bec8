"""Question analysis: what kind of answer is asked for, about what, and under which constraints.

The answer engine (rag/qa/) uses this to tell competing figures apart: "新增" vs "总数", 2023 vs 2022,
"其中X领域" only when the question names that field, "多少家" vs "多少个".
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from rag.patterns import BATCH_RE, DOC_NUMBER_RE, QUESTION_UNIT_WORDS, TITLE_RE, UNITS, YEAR_RE, load_data, unit_class
from rag.text import has_cjk, normalize
from rag.types import Hit

# ---- answer kinds: question words from rag/data/question_kinds.json ----------------------------------
_KINDS = load_data("question_kinds.json")
_ZH_KINDS: list[tuple[str, re.Pattern]] = [(kind, re.compile(rx)) for kind, rx in _KINDS["zh"]]
_EN_KINDS: list[tuple[str, re.Pattern]] = [(kind, re.compile(rx)) for kind, rx in _KINDS["en"]]
_ZH_QWORD = re.compile(_KINDS["zh_question_word"])
PLURAL_RE = re.compile(_KINDS["plural"])

# ---- vocabulary: general knowledge from rag/data (each file says where it came from) ----------------
_ZH = load_data("vocabulary_zh.json")
_EN = load_data("lexicon_en_zh.json")
ZH_STOPWORDS = frozenset(_ZH["stopwords"].split())
EN_STOPWORDS = frozenset(_EN["stopwords"].split())
SINGLE_CHAR_TERMS = frozenset(_ZH["single_char_terms"].split())
MEASURE_NOUNS = frozenset(_ZH["measure_nouns"].split())
GENERIC_TERMS = frozenset(_ZH["generic_words"].split())
# Predicates of the genre: a verb applies to every figure of its sentence ("共…立项90个,其中面上项目60个"),
# so it counts as found anywhere in the sentence, and it is the head of a question only when nothing else is.
ZH_VERBS = frozenset(_ZH["verbs"].split())
USER_WORDS = tuple(_ZH["user_words"].split())  # jieba's default dictionary cuts these apart
USER_WORD_FREQ = int(_ZH["user_word_freq"])
# Abbreviations and synonyms: a question word → the words a document may use for it.
ZH_SYNONYMS: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in _ZH["abbreviations"].items()}
EN_ZH_LEXICON: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in _EN["terms"].items()}
# Qualifier groups: a figure labelled with one group does not answer a question asking for another.
QUALIFIER_GROUPS: dict[str, dict[str, tuple[str, ...]]] = {
    group: {"question": tuple(cues["question"]) + tuple(_EN["qualifiers"].get(group, ())), "text": tuple(cues["text"])}
    for group, cues in _ZH["qualifiers"].items()}
OPPOSED = {"new": ("total",), "total": ("new",)}
STRONG_TOTAL_CUES = tuple(_ZH["strong_total"]) + tuple(_EN["strong_total"])
# A gap between two figures is asked (高出多少): the bracketed baseline beside it is not the answer.
DIFFERENCE_CUES = re.compile(_ZH["difference_cues"] + "|" + _EN["difference_cues"])
# The adverb 共 before a figure (共引进63名, 共对…立项90个) labels it a total; not 公共, 共同, 共享…
TOTAL_ADVERB_RE = re.compile(r"(?<![公一总])共(?![同享性建用识商])(?=[\u4e00-\u9fff（）()“”]{0,16}?\d)")
# Scope words: a figure scoped to the whole country/province does not answer a question about the city.
PLACE_SCOPES: dict[str, tuple[str, ...]] = {
    scope: tuple(words) + tuple(_EN["scope_words"].get(scope, ())) for scope, words in _ZH["scope_words"].items()}
# A named place before a scope noun: 河北省, 北京市, 朝阳区 (any name, no list of places)
NAMED_SCOPE_RE = re.compile(r"([\u4e00-\u9fff]{2,6}?)(省|自治区|市|区|县|州)(?![长委政级内外民场])")
LATIN_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[&'.\-][A-Za-z0-9]+)*|\d+[A-Za-z]+")
_QUESTION_PUNCT = re.compile(r"[\s？?。！!，,、：:；;“”\"'（）()《》【】\[\]〔〕]+")
FIELD_WORDS = tuple(_ZH["field_words"])
FIELD_SKIP = frozenset(_ZH["field_skip"])
HEAD_SKIP = frozenset(w for words in PLACE_SCOPES.values() for w in words) | frozenset(
    c for g in QUALIFIER_GROUPS.values() for c in g["question"])

# Values of a fixed form: the question names the attribute, rag/qa/ knows the value's pattern.
ATTRIBUTE_CUES: list[tuple[str, re.Pattern]] = [
    ("doc_number", re.compile(r"文号|字号|发文号|\b(document|file|reference) (number|no)\b")),
    ("phone", re.compile(r"电话|号码|手机|传真|\bphone|telephone|\bfax\b")),
    ("address", re.compile(r"地址|住址|在哪里|在哪儿|位于哪|\baddress\b|\bwhere is\b|located")),
    ("url", re.compile(r"网址|网站|链接|website|\burl\b")),
    ("email", re.compile(r"邮箱|电子邮件|e-?mail")),
    ("postcode", re.compile(r"邮编|邮政编码|postcode|zip code")),
    ("rank", re.compile(r"第几|排名|名次|排第|\brank")),
]

# ---- units: the measure word a question asks for, and the one its counted noun implies ----------------
_ZH_UNIT_RE = re.compile(r"(?:多少|几)\s*(" + "|".join(map(re.escape, sorted(
    set(UNITS) | set(QUESTION_UNIT_WORDS) | {"年", "月", "日"}, key=len, reverse=True))) + ")")
_ZH_DIMENSIONS = [(re.compile(rx), name) for rx, name in _ZH["dimensions"]]
_NOUN_UNIT_HINTS = [(re.compile(rx), name) for rx, name in _ZH["noun_units"] + _EN["noun_units"]]
_EN_PHRASE_END = re.compile(r"\b(is|are|was|were|do|does|did|has|have|had|will|can|could|been|be|for|of|in|on|at|by|"
                            r"with|from|to|about|that|which)\b")
_EN_QWORD = re.compile(r"\b(how many|how much|who|whom|what|which|when|why|how)\b")


@dataclass
class QuestionInfo:
    """What a question asks for: answer kind, subject terms and the constraints that pick one figure."""

    question: str
    language: str  # "zh" or "en"
    kind: str  # quantity person organisation date document list reason method yesno other
    terms: list[tuple[str, ...]] = field(default_factory=list)  # subject terms; each a group of alternatives
    parts: list[tuple[str, ...]] = field(default_factory=list)  # per term: shorter words it contains (partial credit)
    head: int = -1  # index into terms of the word the question asks about (next to the question word), or -1
    years: list[str] = field(default_factory=list)  # "2023" for 2023年 / 2023年度 (not years inside 《titles》)
    places: list[str] = field(default_factory=list)  # scopes named: national / provincial / city
    fields: list[str] = field(default_factory=list)  # e.g. "电子信息" for 电子信息领域
    qualifiers: list[str] = field(default_factory=list)  # groups of QUALIFIER_GROUPS: new total sub provincial ...
    unit: str = ""  # measure asked for: a key of UNIT_ACCEPT, or ""
    unit_hint: str = ""  # measure implied by the thing counted (soft)
    attribute: str = ""  # a value of a fixed form is asked for: phone address url email postcode rank

    @property
    def wants_phone(self) -> bool:
        return self.attribute == "phone"
    strong_total: bool = False  # 一共/累计/so far: only a figure labelled as a total answers
    plural: bool = False  # several entities are asked for (哪些, 哪两家, which companies)
    list_noun: tuple[str, ...] = ()  # what a list is of (未来产业 for 哪些未来产业)
    references: list[str] = field(default_factory=list)  # 《titles》 and document numbers quoted in the question
    unmatched: list[str] = field(default_factory=list)  # English content words the lexicon could not translate
    sequence: list[str] = field(default_factory=list)  # zh content words in question order, repeats kept
    head_word: str = ""  # the word the head term came from (before any merging)
    head_pos: int = -1  # its position in `sequence`
    compounds: list[str] = field(default_factory=list)  # terms joined from adjacent words (rag.qa.merge_compounds)
    batches: list[str] = field(default_factory=list)  # ordinal identifiers named: 第八批, 第四次
    difference: bool = False  # the gap between two figures is asked (高出多少)


def _segmenter():
    """jieba with USER_WORDS forced whole (a private tokenizer: BM25's own word list is different)."""
    from rag.search.tokenize import segmenter

    return segmenter(USER_WORDS, freq=USER_WORD_FREQ)


def segment(text: str) -> list[str]:
    """Words of a Chinese text, cut as the questions are."""
    return _segmenter().lcut(text)


def detect_kind(question: str, language: str) -> str:
    """The expected answer kind, from question words only."""
    text = normalize(question).strip()
    table = _ZH_KINDS if language == "zh" else _EN_KINDS
    for kind, pattern in table:
        if pattern.search(text):
            return kind
    return "other"


def _protect(text: str) -> tuple[str, list[tuple[int, str]]]:
    """Pull out 《titles》, document numbers and Latin words (R&D, GDP) so jieba cannot cut them."""
    found: list[tuple[int, str]] = []
    chars = list(text)
    for pattern in (TITLE_RE, DOC_NUMBER_RE, LATIN_RE):
        for m in pattern.finditer("".join(chars)):
            found.append((m.start(), m.group(0)))
            chars[m.start():m.end()] = [" "] * (m.end() - m.start())
    return "".join(chars), found


def _zh_tokens(text: str) -> list[tuple[int, str, bool]]:
    """(position, word, is_content) for a Chinese question, protected tokens kept whole."""
    rest, protected = _protect(text)
    rest = YEAR_RE.sub(lambda m: " " * len(m.group(0)), rest)
    tokens: list[tuple[int, str, bool]] = []
    pos = 0
    for word in _segmenter().lcut(rest):
        start = pos
        pos += len(word)
        if not word.strip():
            continue
        content = not (_QUESTION_PUNCT.fullmatch(word) or word in ZH_STOPWORDS
                       or re.fullmatch(r"[\d.%]+|[\d一两二三四五六七八九十几]+[家个项人名场次位所批]", word)
                       or (len(word) == 1 and has_cjk(word) and word not in SINGLE_CHAR_TERMS))
        tokens.append((start, word, content))
    for start, word in protected:
        if word.startswith("《"):
            tokens.append((start, word.strip("《》"), True))
        elif LATIN_RE.fullmatch(word) and word.lower() in EN_STOPWORDS:
            continue
        else:
            tokens.append((start, word, True))
    tokens.sort()
    return tokens


def _zh_head(tokens: list[tuple[int, str, bool]], text: str, terms: list[str]) -> int:
    """The term the question asks about: the nearest noun to the question word (after it first, then before).

    Verbs, scope words and qualifiers are passed over unless nothing else is there. A measure noun (比例,
    增速…) may be the head: rag/qa/ then accepts a figure of the fitting unit for it.
    """
    m = _ZH_QWORD.search(text)
    if not m:
        return -1
    after = [w for p, w, c in tokens if c and p >= m.end() and not _QUESTION_PUNCT.search(text[m.end():p])]
    before = [w for p, w, c in tokens if c and p < m.start()][::-1]
    ordered = [w for w in after + before if w in terms]
    for word in ordered:
        if word not in ZH_VERBS and word not in HEAD_SKIP:
            return terms.index(word)
    return terms.index(ordered[0]) if ordered else -1


def _zh_head_position(tokens: list[tuple[int, str, bool]], text: str, word: str) -> int:
    """Index, among the content words, of the occurrence of the head word nearest the question word."""
    m = _ZH_QWORD.search(text)
    content = [(p, w) for p, w, c in tokens if c]
    places = [i for i, (p, w) in enumerate(content) if w == word]
    if not places or not m:
        return places[0] if places else -1
    return min(places, key=lambda i: (content[i][0] < m.start(), abs(content[i][0] - m.start())))


ACRONYM_RE = re.compile(r"(?<![A-Za-z0-9])(?:[A-Z][A-Z0-9]*&[A-Z0-9]+|[A-Z]{2,}[A-Z0-9]*|\d+[A-Z]+)(?![A-Za-z0-9])")


def _en_terms(text: str) -> tuple[list[tuple[str, ...]], list[str], int]:
    """Chinese terms for an English question through the lexicon, the untranslated words, and the head."""
    low = normalize(text).lower().replace("-", " ")  # technology-based = technology based (offsets kept)
    covered = [False] * len(low)
    hits: list[tuple[int, tuple[str, ...] | str]] = []
    for phrase in sorted(EN_ZH_LEXICON, key=len, reverse=True):
        for match in re.finditer(r"(?<![a-z])" + re.escape(phrase.replace("-", " ")), low):
            end = match.end()
            while end < len(low) and low[end].isalpha():
                end += 1
            if any(covered[match.start():end]):
                continue
            covered[match.start():end] = [True] * (end - match.start())
            hits.append((match.start(), EN_ZH_LEXICON[phrase]))
    for m in ACRONYM_RE.finditer(text):  # R&D, GDP, 5G stand as they are in Chinese text (normalize keeps offsets)
        if not any(covered[m.start():m.end()]):
            covered[m.start():m.end()] = [True] * (m.end() - m.start())
            hits.append((m.start(), (m.group(0).lower(),)))
    rest = "".join(ch if not covered[i] else " " for i, ch in enumerate(low))
    for m in re.finditer(r"[a-z][a-z&\-]+", rest):
        if m.group(0) not in EN_STOPWORDS and len(m.group(0)) > 2:
            hits.append((m.start(), m.group(0)))
    hits.sort(key=lambda h: h[0])
    terms: list[tuple[str, ...]] = []
    unmatched: list[str] = []
    for _, value in hits:
        if isinstance(value, tuple):
            if value not in terms:
                terms.append(value)
        elif value not in unmatched:
            unmatched.append(value)
    head = -1
    q = _EN_QWORD.search(low)
    if q:
        after = [(p, v) for p, v in hits if p >= q.end()]
        if after:  # the head noun ends the first noun phrase: before the next verb or preposition
            stop = _EN_PHRASE_END.search(low, after[0][0])
            phrase = [v for p, v in after if stop is None or p < stop.start()]
            if phrase:  # ("how many people were sent as …": no noun before the verb, no head)
                value = phrase[-1]
                head = terms.index(value) if isinstance(value, tuple) else -2  # -2: the head is untranslated
    return terms, unmatched, head


def _fields(text: str, language: str, tokens: list[tuple[int, str, bool]]) -> list[str]:
    """Fields a question restricts to: the content word right before 领域/产业/行业 (网络安全领域)."""
    if language == "en":
        return []
    words = [w for _, w, _ in tokens]
    found = []
    for i, word in enumerate(words):
        if word in FIELD_WORDS and i > 0:
            prev = words[i - 1]
            if len(prev) >= 2 and has_cjk(prev) and prev not in ZH_STOPWORDS and prev not in FIELD_WORDS \
                    and prev not in FIELD_SKIP:
                found.append(prev)
    return found


def _cue_in(cue: str, text: str) -> bool:
    """A Chinese cue anywhere; an English cue only at a word start ("rise" is not in "enterprise")."""
    if has_cjk(cue):
        return cue in text
    return re.search(r"(?<![a-z])" + re.escape(cue), text) is not None


def _qualifiers(text: str) -> list[str]:
    return [group for group, cues in QUALIFIER_GROUPS.items() if any(_cue_in(cue, text) for cue in cues["question"])]


qualifiers_of = _qualifiers  # for rag.qa.conversation: which qualifier groups a phrase names
ZH_QUESTION_WORD = _ZH_QWORD


def _places(text: str) -> list[str]:
    return [scope for scope, words in PLACE_SCOPES.items() if any(w in text for w in words)]


def _unit(text: str, language: str, kind_hint: str = "") -> tuple[str, str]:
    """The measure a question asks for (hard) and the one its counted noun implies (soft)."""
    unit = ""
    if language == "zh":
        match = _ZH_UNIT_RE.search(text)
        if match:
            word = match.group(1)
            unit = QUESTION_UNIT_WORDS.get(word) or ("money" if unit_class(word) == "money" else word)
            if word in ("年", "月", "日"):
                unit = "duration" if re.search(r"几\s*[年月日]|多少\s*[年月日](?!份)", text) and kind_hint != "date" else ""
        elif re.search(r"百分之|百分比|%", text):
            unit = "percent"
        else:
            unit = next((name for pattern, name in _ZH_DIMENSIONS if pattern.search(text)), "")
    elif re.search(r"\bwhat (percentage|proportion|share)\b|\bpercent", text):
        unit = "percent"
    elif re.search(r"\bpercentage points?\b", text):
        unit = "个百分点"
    tail, counted = text, False
    if language == "en":
        match = re.search(r"how (many|much)\s+(.*)", text)
        tail, counted = (match.group(2), True) if match else (text, False)
    # Chinese puts the measured noun last (研发经费投入的增速), English first (growth rate of R&D spending)
    matches = [(m.start(), name) for pattern, name in _NOUN_UNIT_HINTS for m in [pattern.search(tail)] if m]
    if not matches:
        return unit, ""
    matches.sort()
    if counted and not unit:
        # "how many universities": English has no measure word; the noun that ends the counted phrase gives it
        stop = _EN_PHRASE_END.search(tail)
        phrase = [name for position, name in matches if stop is None or position < stop.start()]
        if phrase:
            return phrase[-1], phrase[-1]
    return unit, (matches[-1][1] if language == "zh" else matches[0][1])


def _list_noun(text: str, language: str, terms: list[tuple[str, ...]]) -> tuple[str, ...]:
    """What a list question asks for: the term right after 哪些/哪几 (zh) or after what/which (en)."""
    if language == "zh":
        m = re.search(r"(?:哪些|哪几[个家项类种]?|什么)([\u4e00-\u9fff]{2,8})", text)
        if not m:
            return ()
        word = _segmenter().lcut(m.group(1))[0]  # the noun right after the question word (哪些方面 → 方面)
        for group in terms:
            if group[0] == word:
                return group
        return (word,) if len(word) >= 2 and has_cjk(word) else ()
    m = re.search(r"\b(what|which)\s+", text)
    return terms[0] if m and terms else ()


def analyze(question: str) -> QuestionInfo:
    """Analyse a question once; every scoring rule in rag/qa/ reads this."""
    language = "zh" if has_cjk(question) else "en"
    norm = normalize(question)
    kind = detect_kind(question, language)
    references = [m.group(0) for m in TITLE_RE.finditer(norm)] + [m.group(0) for m in DOC_NUMBER_RE.finditer(norm)]
    bare = norm
    for ref in references:
        bare = bare.replace(ref, " " * len(ref))
    years = list(dict.fromkeys(m.group(1) for m in YEAR_RE.finditer(bare)))
    tokens: list[tuple[int, str, bool]] = []
    if language == "zh":
        tokens = _zh_tokens(norm)
        words = list(dict.fromkeys(w for _, w, c in tokens if c))
        terms = [(w, *ZH_SYNONYMS.get(w, ())) for w in words]
        head = _zh_head(tokens, norm, words)
        sequence = [w for _, w, c in tokens if c]
        unmatched: list[str] = []
    else:
        terms, unmatched, head = _en_terms(question)
        sequence = []
    parts = [tuple(p for p in _subwords(group[0]) if p not in ZH_STOPWORDS) for group in terms]
    unit, hint = _unit(norm, language, kind)
    if kind == "other" and unit in ("duration", "length", "area", "weight"):
        kind = "quantity"  # 全程多长, 多长时间: a measured amount
    attribute = next((name for name, cue in ATTRIBUTE_CUES if cue.search(norm)), "")
    if attribute and kind in ("quantity", "other", "list"):
        kind = "other"
    plural = kind == "list" or bool(PLURAL_RE.search(norm))
    return QuestionInfo(
        question=question, language=language, kind=kind, terms=terms, parts=parts, head=head, years=years,
        places=_places(norm + " " + " ".join(t for g in terms for t in g)), fields=_fields(norm, language, tokens), qualifiers=_qualifiers(norm), unit=unit,
        unit_hint=hint, attribute=attribute, plural=plural, list_noun=_list_noun(norm, language, terms),
        references=references, unmatched=unmatched, sequence=sequence,
        strong_total=any(_cue_in(c, norm) for c in STRONG_TOTAL_CUES),
        head_word=terms[head][0] if head >= 0 else "",
        head_pos=_zh_head_position(tokens, norm, terms[head][0]) if head >= 0 and language == "zh" else -1,
        batches=list(dict.fromkeys(m.group(0) for m in BATCH_RE.finditer(bare))),
        difference=bool(DIFFERENCE_CUES.search(norm)),
    )


def _subwords(term: str) -> list[str]:
    """Shorter dictionary words inside a long Chinese term (联系电话 → 联系, 电话), for partial credit."""
    if len(term) < 4 or not has_cjk(term):
        return []
    return [w for w in _segmenter().lcut_for_search(term) if len(w) >= 2 and w != term and has_cjk(w)]


_CJK_ONLY = re.compile(r"[\u4e00-\u9fff]+")


def merge_compounds(info: QuestionInfo, hits: list[Hit]) -> QuestionInfo:
    """Adjacent question words that a retrieved paragraph writes together become one term (安全+生产 → 安全生产).

    jieba cuts rare compounds into common words; matched apart, 安全…生产 apart would pass for 安全生产.
    The pieces stay as sub-words (all of them must be found for partial credit).
    """
    if info.language != "zh" or len(info.sequence) < 2:
        return info
    question = normalize(info.question)
    texts = [normalize(h.title + " " + h.text) for h in hits]
    merged: list[tuple[str, tuple[str, ...]]] = [(info.sequence[0], (info.sequence[0],))]
    head_group = 0 if info.head_pos == 0 else -1
    for position, word in enumerate(info.sequence[1:], 1):
        joined = merged[-1][0] + word
        if _CJK_ONLY.fullmatch(joined) and joined in question and any(joined in t for t in texts):
            merged[-1] = (joined, merged[-1][1] + (word,))
        else:
            merged.append((word, (word,)))
        if position == info.head_pos:
            head_group = len(merged) - 1
    if len(merged) == len(info.sequence):
        return info
    synonyms = {g[0]: g for g in info.terms}
    terms, parts = [], []
    for word, pieces in merged:
        group = synonyms.get(word, (word,)) if len(pieces) == 1 else (word,)
        if group in terms:
            continue
        terms.append(group)
        old = info.terms.index(synonyms[word]) if word in synonyms and len(pieces) == 1 else -1
        parts.append(info.parts[old] if old >= 0 and old < len(info.parts) else
                     tuple(p for p in pieces if len(pieces) > 1))
    head = info.head
    if head_group >= 0:
        word, pieces = merged[head_group]
        head = terms.index((word,) if len(pieces) > 1 else synonyms.get(word, (word,)))
    compounds = [word for word, pieces in merged if len(pieces) > 1]
    return replace(info, terms=terms, parts=parts, head=head, compounds=compounds)
