"""Stages of the answer engine tested alone: grounding English words, label words, topic chains, datelines,
and the fitted model file's provenance."""
from __future__ import annotations

import json

from rag.patterns import DATE_RE
from rag.qa.extract import find_entities
from rag.qa.grounding import english_forms, glosses, ground_english, transliterations
from rag.qa.question import analyze
from rag.qa.features import FEATURES, extra_words, previous_clause, subjectless
from rag.qa.score import CONFIDENCE_FEATURES
from rag.types import Hit

from conftest import REPO


def _hit(text: str) -> Hit:
    return Hit(doc_id="d.txt", title="", section="", text=text, start=0, end=len(text), score=1.0)


def test_english_word_forms():
    assert english_forms("owners")[:2] == ["owners", "owner"]
    assert "agree" in english_forms("agreed") and "storey" in english_forms("storeys")
    assert english_forms("bus") == ["bus"]  # too short to lose a suffix


def test_cedict_glosses_an_english_word():
    assert "业主" in glosses("owners")
    assert glosses("zzqx") == set()


def test_romanised_names_read_as_the_passage_characters():
    text = "针对来信所反映的小区停车收费问题，景蓉华苑业委会于2019年4月10日召开会议。"
    assert transliterations("jingronghuayuan", [text]) == ["景蓉华苑"]
    assert transliterations("jingronghuayuan", ["小区停车收费问题"]) == []


def test_grounding_keeps_only_words_the_passages_use():
    info = analyze("What share of the owners at the Jingronghuayuan estate agreed to pay the fee?")
    assert "owners" in info.unmatched and "jingronghuayuan" in info.unmatched
    text = "景蓉华苑业委会征求业主意见，超过三分之二的业主同意缴纳停车管理费。"
    grounded = ground_english(info, [_hit(text)])
    flat = [t for group in grounded.terms for t in group]
    assert "景蓉华苑" in flat and "业主" in flat
    assert "jingronghuayuan" not in grounded.unmatched and "owners" not in grounded.unmatched
    untouched = ground_english(info, [_hit("公交线路调整的通知。")])
    assert "jingronghuayuan" in untouched.unmatched  # nothing in this passage reads as the name
    chinese = analyze("2023年新增了多少家企业？")
    assert ground_english(chinese, [_hit(text)]) is chinese


def test_label_words_the_question_does_not_name():
    info = analyze("2023年企业总数达到多少家？")
    assert extra_words(info, "其中网络安全企业") == ["网络安全"]
    assert extra_words(info, "全市企业总数达到") == []


def test_a_clause_without_its_own_subject_takes_the_one_before():
    assert subjectless("总数达到80家")
    assert not subjectless("其中网络安全企业56家")
    assert previous_clause("2023年,全年新增企业12家,") == "全年新增企业12家"


def test_a_news_dateline_is_not_a_date_of_the_text():
    text = "新华社呼和浩特2月12日电 自治区决定，免收通行费至2月29日。"
    dates = [text[e.start:e.end] for e in find_entities(text, 0, len(text), "date")]
    assert dates == ["2月29日"]
    assert [m.group(0) for m in DATE_RE.finditer("已于2016年7月6日上午9：00时进行了公开招标")] == [
        "2016年7月6日上午9：00时"]


def test_the_answer_model_was_fitted_on_dev_parts_by_the_script():
    data = json.loads((REPO / "rag" / "data" / "answer_model.json").read_text(encoding="utf-8"))
    assert data["features"] == list(FEATURES) and data["confidence_features"] == list(CONFIDENCE_FEATURES)
    assert data["fitted"]["command"].startswith("python scripts/fit_answer_model.py")
    fitted_on = {name.split(" ")[0] for name in data["fitted"]["sets"]}
    assert fitted_on <= {"reference", "tipdm", "ncp", "cmrc"} and "reference" in fitted_on
    for family in ("exact", "passage"):
        assert 0.0 < data["families"][family]["threshold"] < 1.0



def test_a_figure_in_another_unit_is_never_the_answer():
    from rag.qa import answer_question

    text = "2023年，全市共处置网络安全事件1234起，新增网络安全企业56家。"
    # the exact value, or the sentence shown as a passage (exact=False), never the neighbouring figure as exact
    events = answer_question("2023年处置了多少起网络安全事件？", [_hit(text)])
    assert not events.found or "1234起" in events.text
    assert not (events.exact and events.found and "56家" in events.text)
    firms = answer_question("2023年新增了多少家网络安全企业？", [_hit(text)])
    assert not firms.found or "56家" in firms.text
    assert not (firms.exact and firms.found and "1234" in firms.text)
    other = answer_question("2023年处置了多少宗网络安全事件？", [_hit(text)])  # 宗 counts cases, as 起 does
    assert not (other.found and other.exact and "56家" in other.text)
