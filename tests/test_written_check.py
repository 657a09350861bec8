"""The check of written answers, alone: every invented figure, wrong citation and uncited sentence is flagged, and
no correct figure is, however the model rewrites it (widths, Chinese numerals, 万/亿, English, separators)."""
from __future__ import annotations

import re

import pytest

from rag.generation.check import Passage, check_written, cited_numbers, find_claims, split_statements
from rag.numbers import read_values, same_figure

P1 = Passage(1, "2023年，全市共处置网络安全事件1234起，新增网络安全企业56家。项目总投资3250万元，覆盖14万余人次。"
                "联系电话：0311-86901234。", header="《关于网络安全工作的答复》 · 某市网信办 · 2024-05-06")
P2 = Passage(2, "全市高新技术企业达到3000家，比上年增长12.5%，研发投入强度提高0.52个百分点。依据《关于加快科技创新的"
                "意见》（政办字〔2024〕12号）。3月15日召开推进会，确定“一企一策”帮扶机制。新增三家孵化器。")
PASSAGES = [P1, P2]

# (written sentence, True when every figure in it stands in the passages it cites)
CORRECT = [
    "2023年处置网络安全事件1234起[1]。",
    "处置网络安全事件1,234起[1]。",
    "处置网络安全事件１２３４起【1】。",
    "新增网络安全企业56家[1]。",
    "项目总投资0.325亿元[1]。",
    "项目总投资3250万元。[1]",
    "The project invested RMB 32.5 million [1].",
    "It covered 140,000 person-times [1].",
    "覆盖十四万余人次[1]。",
    "联系电话为0311—86901234[1]。",
    "联系电话：(0311)86901234[1]。",
    "高新技术企业达到3000家，增长12.5%[2]。",
    "增长12.5％[2]。",
    "研发投入强度提高0.52个百分点[2]。",
    "研发投入强度提高0.52百分点[2]。",
    "文号为政办字[2024]12号[2]。",
    "依据《关于加快科技创新的意见》[2]。",
    "推进会于3月15日召开[2]。",
    "确定了“一企一策”帮扶机制[2]。",
    "新增3家孵化器[2]。",
    "答复时间为2024年5月6日[1]。",
    "The reply is dated May 6, 2024 [1].",
    "高新技术企业达到3000家[2]，网络安全企业新增56家[1]。",
    "1. 新增网络安全企业56家[1]",
    "全市高新技术企业规模继续扩大，确定了帮扶机制[1][2]。",
]
# (written sentence, the figures or problems that must be flagged)
INVENTED = [
    ("新增网络安全企业1234家[1]。", ["1234家"]),  # the figure of the neighbouring clause, with another unit
    ("处置网络安全事件1243起[1]。", ["1243起"]),
    ("项目总投资3.25亿元[1]。", ["3.25亿元"]),
    ("项目总投资325万元[1]。", ["325万元"]),
    ("覆盖15万人次[1]。", ["15万人次"]),
    ("联系电话0311-86901235[1]。", ["0311-86901235"]),
    ("高新技术企业达到3000家[1]。", ["3000家"]),  # true, but in passage 2, not the cited one
    ("增长13%[2]。", ["13%"]),
    ("提高0.52%[2]。", ["0.52%"]),  # percentage points are not per cent
    ("文号为政办字〔2024〕13号[2]。", ["文号为政办字〔2024〕13号"]),  # the pattern takes the words before it too
    ("依据《关于加快科技发展的意见》[2]。", ["关于加快科技发展的意见"]),
    ("推进会于3月16日召开[2]。", ["3月16日"]),
    ("确定了“一企两策”帮扶机制[2]。", ["一企两策"]),
    ("新增五家孵化器[2]。", ["五家"]),
    ("2022年处置网络安全事件1234起[1]。", ["2022"]),
    ("The project invested RMB 3.25 billion [1].", ["3.25 billion"]),
    ("It rose by 15 percent [2].", ["15 percent"]),
]
UNCITED = ["新增网络安全企业56家。", "各项工作稳步推进。", "The project invested RMB 32.5 million."]
# sentences with nothing to look up that repeat no phrase of what they cite: a placeholder, an invented statement
UNFOUNDED = ["第一句内容[1]。", "各项工作稳步推进[1][2]。", "市民对此普遍表示满意[2]。"]
BAD_CITATION = [("新增网络安全企业56家[3]。", "[3]"), ("新增网络安全企业56家[0]。", "[0]"),
                ("高新技术企业达到3000家[2][9]。", "[9]")]


@pytest.mark.parametrize("sentence", CORRECT)
def test_correct_figures_are_never_flagged(sentence):
    (statement,) = check_written(sentence, PASSAGES)
    assert statement.supported, statement.problems
    assert statement.citations


@pytest.mark.parametrize("sentence, flagged", INVENTED)
def test_invented_figures_are_flagged(sentence, flagged):
    (statement,) = check_written(sentence, PASSAGES)
    assert not statement.supported
    assert statement.failed == flagged


@pytest.mark.parametrize("sentence", UNCITED)
def test_uncited_sentences_are_flagged(sentence):
    (statement,) = check_written(sentence, PASSAGES)
    assert not statement.supported and statement.problems == ["no citation"]


@pytest.mark.parametrize("sentence", UNFOUNDED)
def test_sentences_without_figures_must_repeat_a_phrase_of_what_they_cite(sentence):
    (statement,) = check_written(sentence, PASSAGES)
    assert not statement.supported and "shares no phrase" in statement.problems[0]


@pytest.mark.parametrize("sentence, marker", BAD_CITATION)
def test_citations_to_passages_not_given_are_flagged(sentence, marker):
    (statement,) = check_written(sentence, PASSAGES)
    assert not statement.supported
    assert any(p.startswith(marker) and "no passage" in p for p in statement.problems)


def test_the_goal_counts():
    """The issue's goal in one number each: all scripted faults flagged, no correct figure flagged."""
    flagged_correct = sum(not s.supported for text in CORRECT for s in check_written(text, PASSAGES))
    caught = sum(not s.supported for text, _ in INVENTED + BAD_CITATION for s in check_written(text, PASSAGES))
    caught += sum(not s.supported for text in UNCITED + UNFOUNDED for s in check_written(text, PASSAGES))
    assert flagged_correct == 0
    assert caught == len(INVENTED) + len(BAD_CITATION) + len(UNCITED) + len(UNFOUNDED)


def test_support_points_at_the_figure_in_the_cited_passage():
    (statement,) = check_written("处置网络安全事件1,234起，新增企业56家[1]。", PASSAGES)
    backed = sorted(P1.text[s:e] for n, s, e in statement.support)
    assert backed == ["1234起", "56家"]
    (statement,) = check_written("依据《关于加快科技创新的意见》[2]。", PASSAGES)
    assert [P2.text[s:e] for _, s, e in statement.support] == ["关于加快科技创新的意见"]


def test_a_sentence_without_figures_is_backed_by_its_closest_passage_sentence():
    (statement,) = check_written("会议确定了帮扶机制[2]。", PASSAGES)
    assert statement.supported
    (n, s, e), = statement.support
    assert n == 2 and "帮扶机制" in P2.text[s:e]


def test_sentences_split_with_their_markers():
    text = "新增56家。[1] 达到3000家[2]；\n1. 增长12.5%[2]\n答复如下："
    pieces = [text[s:e].strip() for s, e in split_statements(text)]
    assert pieces == ["新增56家。[1]", "达到3000家[2]；", "1. 增长12.5%[2]", "答复如下："]
    statements = check_written(text, PASSAGES)
    assert [s.supported for s in statements] == [True, True, True, True]  # a lead-in ending in ： states nothing


def test_citation_forms():
    assert cited_numbers("见[1][2]。") == [1, 2]
    assert cited_numbers("见[1, 3]。") == [1, 3]
    assert cited_numbers("见[2-4]。") == [2, 3, 4]
    assert cited_numbers("见【2】和［5］。") == [2, 5]
    assert cited_numbers("见政办字[2024]12号") == []  # a document number's year is no citation


def test_list_numbers_are_no_claims():
    assert [c.text for c in find_claims("第1批新增56家")] == ["1批", "56家"]
    (statement,) = check_written("1. 新增网络安全企业56家[1]", PASSAGES)
    assert statement.claims == ["56家"]


@pytest.mark.parametrize("a, b, same", [
    ("3250万元", "0.325亿元", True), ("14万余人次", "140000人次", True), ("三家", "3家", True),
    ("360家", "360户", True), ("1234起", "1234家", False), ("0.52个百分点", "0.52%", False),
    ("16.837 billion yuan", "168.37亿元", True), ("两千万元", "2000万元", True), ("百分之五", "5%", True),
    ("3天", "3日内", True), ("3年", "3个月", False), ("15日内", "15天", True),
])
def test_figures_compare_as_values(a, b, same):
    (x,), (y,) = read_values(a), read_values(b)
    assert same_figure(x, y) is same


def _perturbed(figure: str) -> str:
    """The figure with its last digit changed (360家 → 361家, 3250万元 → 3251万元)."""
    digits = [i for i, ch in enumerate(figure) if ch.isdigit()]
    i = digits[-1]
    return figure[:i] + str((int(figure[i]) + 1) % 10) + figure[i + 1:]


def _printed(value) -> float | None:
    """The number as printed before its magnitude (3250 of 3250万元): what a bare number may be backed by."""
    match = re.match(r"[\d,]+(?:\.\d+)?", value.text)
    return float(match.group(0).replace(",", "")) if match else None


def _present(claimed: str, values) -> bool:
    (wanted,) = read_values(claimed)
    return any(same_figure(wanted, v) or (not wanted.unit and _printed(v) == wanted.value) for v in values)


def _figure_trials(chunks) -> tuple[int, int, int]:
    """(figures checked, correct ones flagged, altered or miscited ones passed) over the paragraphs given: each
    figure cited to its own paragraph must pass, with a digit changed or cited to another paragraph must fail."""
    checked = flagged_correct = missed = 0
    for position, chunk in enumerate(chunks):
        other = chunks[(position + 7) % len(chunks)]
        passages = [Passage(1, chunk.text), Passage(2, other.text)]
        own, others = read_values(chunk.text), read_values(other.text)
        for value in own:
            if not any(ch.isdigit() for ch in value.text) or value.unit == "月":
                continue  # 5月 is May as often as five months: the check reads it as a date, these trials cannot
            checked += 1
            (right,) = check_written(f"数据为{value.text}[1]。", passages)
            flagged_correct += not right.supported
            altered = _perturbed(value.text)
            (changed,) = check_written(f"数据为{altered}[1]。", passages)
            missed += changed.supported and not _present(altered, own)
            (miscited,) = check_written(f"数据为{value.text}[2]。", passages)
            missed += miscited.supported and not _present(value.text, others)
    return checked, flagged_correct, missed


def test_every_figure_of_the_corpus_passes_cited_and_fails_altered_or_miscited(reference_index):
    checked, flagged_correct, missed = _figure_trials(reference_index.chunks)
    assert checked > 60
    assert (flagged_correct, missed) == (0, 0)


@pytest.mark.shared
def test_the_figures_of_the_tipdm_replies_too(tipdm_index):
    checked, flagged_correct, missed = _figure_trials(tipdm_index.chunks[:1500])
    assert checked > 500
    assert (flagged_correct, missed) == (0, 0)
