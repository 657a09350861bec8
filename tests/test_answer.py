"""Answer engine: extractive answers with highlighted figures, abstention, faithfulness, formatting.

The questions live in tests/answer_cases.jsonl: {"q", "expect": [substrings]} for answerable ones (each
expected string must be in the answer text and inside a highlighted span of a citation), {"q", "found":
false} for questions the reference reply does not answer; "scope": "document" marks questions about the
reply itself (signer, phone, date…), "known_gap" a case the engine still gets wrong (strict xfail).
"""
from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from rag.patterns import DATE_RE
from rag.present import answer_to_json, format_answer
from rag.qa import (
    CANDIDATE_HITS,

    NOT_FOUND_TEXT,
    answer_question,
    extract_claims,
    find_entities,
    is_faithful,
    split_clauses,
    split_sentences,
    unsupported_claims,
)
from rag.qa.question import analyze, merge_compounds
from rag.types import Answer, Hit

from conftest import SEED_NAME, SEED_PATH

CASES_PATH = Path(__file__).with_name("answer_cases.jsonl")
CASES = [json.loads(line) for line in CASES_PATH.read_text(encoding="utf-8").splitlines() if line.strip()]


def _case_id(case: dict) -> str:
    return case["q"][:40]


def _highlighted(answer: Answer) -> list[str]:
    return [hit.text[s:e] for hit in answer.citations for s, e in hit.highlights]


class AnswerCache:
    """Answers of one index, computed once per question for the whole session."""

    def __init__(self, index):
        self.index = index
        self.answers: dict[str, Answer] = {}

    def __call__(self, question: str) -> Answer:
        if question not in self.answers:
            self.answers[question] = self.index.answer(question, k=5)
        return self.answers[question]


@pytest.fixture(scope="session")
def ask(reference_index) -> AnswerCache:
    return AnswerCache(reference_index)


def check_case(answer: Answer, case: dict) -> None:
    """The assertions every case makes about its answer."""
    if case.get("found", True):
        assert answer.found, f"no answer; expected {case['expect']}"
        highlighted = _highlighted(answer)
        for expected in case["expect"]:
            assert expected in answer.text, f"{expected!r} not in answer {answer.text!r}"
            assert any(expected in h for h in highlighted), f"{expected!r} not highlighted; highlights {highlighted}"
        if "kind" in case:
            assert answer.kind == case["kind"]
    else:
        assert not answer.found, f"answered {answer.text!r} though the documents do not say"
        language = "zh" if re.search(r"[\u4e00-\u9fff]", case["q"]) else "en"
        assert answer.text == NOT_FOUND_TEXT[language]
        assert answer.citations and all(not hit.highlights for hit in answer.citations)


# ---- the reference reply, question by question ------------------------------------------------------
@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=_case_id(c), marks=[pytest.mark.xfail(reason=c["known_gap"], strict=True)])
     if c.get("known_gap") else pytest.param(c, id=_case_id(c)) for c in CASES],
)
def test_reference_question(ask, case):
    check_case(ask(case["q"]), case)


def test_case_file_covers_the_required_kinds():
    answerable = [c for c in CASES if c.get("found", True)]
    unanswerable = [c for c in CASES if not c.get("found", True)]
    english = [c for c in answerable if not re.search(r"[\u4e00-\u9fff]", c["q"])]
    kinds = {c.get("kind") for c in answerable}
    assert len(answerable) >= 46 and len(unanswerable) >= 6 and len(english) >= 8
    assert {"person", "organisation", "date", "document", "list", "reason", "method", "yesno"} <= kinds


def test_new_vs_total_figures_in_one_sentence(ask):
    new = ask("2023年石家庄新增了多少家高新技术企业？")
    assert new.found and "全年新增高新技术企业360家" in new.text
    top = new.citations[0]
    assert "全年新增高新技术企业360家，总数达到3431家" in top.text.replace(",", "，")
    assert [top.text[s:e] for s, e in top.highlights] == ["360家"]
    start = top.highlights[0][0]
    assert top.text[start - len("全年新增高新技术企业"):start] == "全年新增高新技术企业"
    total = ask("2023年高新技术企业总数达到多少家？")  # the total, or an honest not-found; never the new ones
    assert not total.found or "3431家" in total.text
    assert not any("360" in h for h in _highlighted(total))
    field = ask("电子信息领域高新技术企业有多少家？")
    assert "165家" in _highlighted(field) and not any("3431" in h or "360" in h for h in _highlighted(field))


def test_gdp_is_not_in_the_reply(ask):
    answer = ask("石家庄2023年GDP是多少？")
    assert not answer.found
    assert answer.text == NOT_FOUND_TEXT["zh"] and answer.kind == "quantity"
    assert not any("2.52" in h for h in _highlighted(answer))


def test_answer_carries_citation_fields_and_timing(ask):
    answer = ask("这份答复由谁签发？")
    assert answer.found and "王金生" in answer.text and answer.kind == "person"
    assert _highlighted(answer)[0] == "王金生"
    assert 0 < len(answer.citations) <= 5 and answer.elapsed_ms > 0
    top = answer.citations[0]
    assert top.doc_id == SEED_NAME and top.highlights
    document = SEED_PATH.read_text(encoding="utf-8")
    assert document[top.start:top.end] == top.text
    assert "领导签发:王金生" in top.text


def test_every_found_answer_is_faithful(ask):
    for case in CASES:
        answer = ask(case["q"])
        assert is_faithful(answer), (case["q"], answer.text, _highlighted(answer))


def test_answer_question_directly_on_hits(reference_index):
    question = "2023年共选派科技特派员多少人？"
    hits = reference_index.search(question, k=CANDIDATE_HITS)
    answer = answer_question(question, hits, embedder=reference_index.embedder)
    assert answer.found and any("687人" in h for h in _highlighted(answer))
    without_model = answer_question(question, hits)  # without the embedding model (no semantic feature)
    assert not without_model.found or any("687人" in h for h in _highlighted(without_model))
    assert not answer_question(question, []).found


def test_not_found_keeps_the_closest_paragraphs(ask):
    answer = ask("How many universities are there in Shijiazhuang?")
    assert not answer.found and answer.text == NOT_FOUND_TEXT["en"]
    assert answer.citations and all(h.doc_id == SEED_NAME and not h.highlights for h in answer.citations)


# ---- faithfulness check ---------------------------------------------------------------------------------
def _hit(text: str, highlights: list[tuple[int, int]]) -> Hit:
    return Hit(doc_id="d.txt", title="t", section="", text=text, start=0, end=len(text), score=1.0,
               highlights=highlights)


def test_faithfulness_rejects_a_fabricated_figure():
    text = "2023年，全年新增高新技术企业360家，总数达到3431家。"
    span = (text.index("360家"), text.index("360家") + 4)
    cited = [_hit(text, [span])]
    assert unsupported_claims("全年新增高新技术企业360家", cited) == []
    assert unsupported_claims("全年新增高新技术企业361家", cited) == ["361"]
    assert unsupported_claims("全年新增高新技术企业36家", cited) == ["36"]  # a prefix of 360 is not 360
    assert unsupported_claims("总数达到3431家", cited) == ["3431"]  # in the paragraph, but not highlighted
    good = Answer("q", "全年新增高新技术企业360家", True, cited, "quantity")
    assert is_faithful(good)
    assert not is_faithful(replace(good, text="全年新增高新技术企业3600家"))
    assert not is_faithful(replace(good, citations=[_hit(text, [])]))
    assert is_faithful(Answer("q", NOT_FOUND_TEXT["zh"], False, cited, "quantity"))


def test_faithfulness_checks_names_and_documents():
    text = "领导签发:王金生\n制定出台了《石家庄市关于提高全社会研发投入的若干措施》(石科创领办函〔2022〕1号)"
    name = (text.index("王金生"), text.index("王金生") + 3)
    cited = [_hit(text, [name])]
    assert unsupported_claims("领导签发:王金生", cited) == []
    assert "张三" in unsupported_claims("领导签发:张三", cited)
    claims = extract_claims("《石家庄市关于提高全社会研发投入的若干措施》(石科创领办函〔2022〕1号)")
    assert "《石家庄市关于提高全社会研发投入的若干措施》" in claims and "石科创领办函〔2022〕1号" in claims


# ---- splitting and question analysis ------------------------------------------------------------------------
def test_clauses_keep_offsets_and_numbers_whole():
    text = "共投入资金1,000万元,惠及3.2万户，其中新建错车道95个。下一句"
    sentences = split_sentences(text)
    assert [text[a:b] for a, b in sentences] == ["共投入资金1,000万元,惠及3.2万户，其中新建错车道95个。", "下一句"]
    clauses = [text[a:b] for a, b in split_clauses(text, *sentences[0])]
    assert clauses == ["共投入资金1,000万元", "惠及3.2万户", "其中新建错车道95个"]
    bracketed = "经费(含1,2期,共3项)合计,另计"
    assert [bracketed[a:b] for a, b in split_clauses(bracketed, 0, len(bracketed))] == ["经费(含1,2期,共3项)合计", "另计"]


@pytest.mark.parametrize("question, kind", [
    ("2023年新增多少家高新技术企业？", "quantity"),
    ("这份答复由谁签发？", "person"),
    ("哪个部门答复了这份提案？", "organisation"),
    ("答复的落款日期是什么时候？", "date"),
    ("石科创领办函〔2022〕1号是什么文件？", "document"),
    ("石家庄建议布局哪些未来产业？", "list"),
    ("研发投入大幅提升得益于什么？", "reason"),
    ("如何加强基础研究工作？", "method"),
    ("科技型中小企业数量是否位居全省第一？", "yesno"),
    ("How many high-tech enterprises were added in 2023?", "quantity"),
    ("Who signed the reply?", "person"),
    ("What future industries does Shijiazhuang plan to develop?", "list"),
    ("Why did R&D spending rise?", "reason"),
])
def test_question_kinds(question, kind):
    assert analyze(question).kind == kind


def test_question_constraints():
    info = analyze("2022年度电子信息领域新增了多少家省级科技领军企业？")
    assert info.years == ["2022"] and info.fields == ["电子信息"]
    assert "new" in info.qualifiers and info.unit == "家"
    text = "2023年，我市5家企业被认定为河北省科技领军企业，电子信息领域新增2家。"
    merged = merge_compounds(info, [Hit(doc_id="d.txt", title="", section="", text=text, start=0, end=len(text),
                                        score=1.0)])  # jieba cuts the rare compound; the passage writes it whole
    assert merged.terms[merged.head] == ("科技领军企业",)
    total = analyze("石家庄高新技术企业总数达到多少家？")
    assert "total" in total.qualifiers and "new" not in total.qualifiers
    titled = analyze("《2024年度驻冀高校基础研究项目申报指南》是什么时候发布的？")
    assert titled.years == [] and titled.references == ["《2024年度驻冀高校基础研究项目申报指南》"]
    english = analyze("How many new high-tech enterprises were added in 2023?")
    assert english.language == "en" and ("高新技术企业",) in english.terms and english.years == ["2023"]
    assert "new" in english.qualifiers
    assert analyze("How many giraffes are there?").head == -2  # the asked noun has no translation
    assert analyze("How many universities are there?").unit == "所"  # the counted noun gives the measure word


@pytest.mark.parametrize("text, figure, unit", [
    ("每年接待14万余人次参加考试", "14万余人次", "人次"),
    ("至今还背负3250万元债务", "3250万元", "万元"),
    ("村主道装了140余盏路灯", "140余盏", "盏"),
    ("公路全长10.5公里", "10.5公里", "公里"),
    ("规划建设9805平方米人防工程", "9805平方米", "平方米"),
    ("开展了两批次市级科技特派员选派工作", "两批次", "批次"),
    ("其中团队科技特派员68个276人", "68个276人", "人"),
])
def test_figures_keep_magnitude_and_unit(text, figure, unit):
    found = [(text[e.start:e.end], e.unit) for e in find_entities(text, 0, len(text), "quantity")]
    assert found == [(figure, unit)]


def test_dates_without_a_year_and_with_hao():
    text = "塘坑于2019年7月9号被冲垮，项目于1月29日签约，预计2019年底投入使用，11月底前退还"
    assert [m.group(0) for m in DATE_RE.finditer(text)] == ["2019年7月9号", "1月29日", "2019年底", "11月底"]
    assert find_entities("开发一批新产品", 0, 7, "quantity") == []  # 一批 is "some", not a count


@pytest.mark.parametrize("question, kind, unit", [
    ("F市32路公交线路全程多长？", "quantity", "length"),
    ("机动车号牌制作需要多长时间？", "quantity", "duration"),
    ("金融中心规划面积有多大？", "quantity", "area"),
    ("装了多少盏路灯？", "quantity", "盏"),
    ("答复提出要推进哪三者深度融合？", "other", ""),  # 深度 here is "deep", not a length
    ("D市哪两名私宰商已书面承诺？", "person", ""),
])
def test_measured_amounts_are_quantities(question, kind, unit):
    info = analyze(question)
    assert (info.kind, info.unit) == (kind, unit)


def test_sentence_answer_when_no_exact_value(ask):
    answer = ask("研发投入各项指标大幅提升主要得益于什么？")  # a reason: the sentences that give it
    assert answer.found and not answer.exact
    assert "各类创新政策密集出台" in answer.text and is_faithful(answer)
    assert any("各类创新政策密集出台" in h for h in _highlighted(answer))
    exact = ask("2023年石家庄新增了多少家高新技术企业？")
    assert exact.found and exact.exact and answer_to_json(exact)["exact"] is True


def test_reply_header_fields_answer_questions_about_the_reply(ask):
    result = ask("0520号提案的办理结果被标为哪一类？")
    assert result.found and "A" in _highlighted(result)
    disclosed = ask("0520号提案的答复是否同意公开？")
    assert disclosed.found and "是" in _highlighted(disclosed)
    title = ask("范林委员这件提案的题目是什么？")
    assert title.found and "加快形成新质生产力 助力石家庄高质量发展的建议" in _highlighted(title)
    phone = ask("对科技局这份回复有疑问，该打哪个号码？")  # the footer paragraph is fetched when not retrieved
    assert phone.found and "0311-85057592" in _highlighted(phone)


# ---- output ------------------------------------------------------------------------------------------------
def test_format_answer_marks_the_figure(ask):
    answer = ask("2023年石家庄新增了多少家高新技术企业？")
    plain = format_answer(answer)
    assert plain.splitlines()[0] == "答：全年新增高新技术企业360家"
    top = answer.citations[0]
    assert f"[1] {top.title} · {top.section} · {SEED_NAME}:{top.start}-{top.end}" in plain
    assert "【360家】" in plain and "【3431家】" not in plain
    coloured = format_answer(answer, color=True)
    assert "\x1b[1;33m360家\x1b[0m" in coloured and "【" not in coloured
    missing = format_answer(ask("石家庄2023年GDP是多少？"))
    assert missing.splitlines()[0] == NOT_FOUND_TEXT["zh"] and "【" not in missing


def test_answer_to_json_round_trips(ask):
    data = answer_to_json(ask("联系电话是多少？"))
    again = json.loads(json.dumps(data, ensure_ascii=False))
    assert again["found"] is True and again["answer"] == "0311-85057592"
    first = again["citations"][0]
    assert first["highlighted_text"] == ["0311-85057592"]
    assert first["text"][first["highlights"][0][0]:first["highlights"][0][1]] == "0311-85057592"


# ---- the same questions with 2,816 other replies in the index -------------------------------------------------
@pytest.mark.shared
@pytest.mark.xfail(strict=False, reason="known gap: beside the tipdm replies 3 reference questions gain a wrong "
                   "answer (the confidence reads the ranking, which other documents change; how many depends on "
                   "tie order in the index, so not strict)")
def test_tipdm_replies_beside_add_no_wrong_answer(tipdm_index, ask):
    """With 2,816 other replies in the index a reference question may lose its answer (more competing
    passages lower the confidence) but never gains a wrong one. Questions about "this reply" itself (its
    signer, phone, date…; "scope": "document" in the case file) name no document, so they are asked with the
    reply open, i.e. filtered to it, as the UI does."""
    assert len(tipdm_index.documents()) > 2000
    new_wrong, kept = [], 0
    for case in CASES:
        filters = {"doc_id": SEED_NAME} if case.get("scope") == "document" else None
        mixed = tipdm_index.answer(case["q"], k=5, filters=filters)
        alone = ask(case["q"])
        if mixed.found:
            assert is_faithful(mixed)
        if _case_right(mixed, case):
            kept += _case_right(alone, case)
        elif mixed.found and (_case_right(alone, case) or not alone.found):
            new_wrong.append((case["q"], alone.text, mixed.text))
    assert not new_wrong, "\n".join(f"{q}: {a!r} → {b!r}" for q, a, b in new_wrong)
    right_alone = sum(_case_right(ask(c["q"]), c) for c in CASES)
    assert kept >= 0.9 * right_alone, f"only {kept} of {right_alone} right answers kept beside the tipdm replies"


def _case_right(answer: Answer, case: dict) -> bool:
    if not case.get("found", True):
        return not answer.found
    return answer.found and all(e in answer.text for e in case["expect"])
