"""Follow-up questions completed from the conversation (rag/qa/conversation.py) and through Index.answer."""
from __future__ import annotations

import pytest

from rag.qa.conversation import MAX_TURNS, complete_question
from rag.types import RagError

HIGH_TECH = [{"question": "2023年新增了多少家高新技术企业？", "answer": "360家"}]
SPENDING = [{"question": "2022年研发经费投入是多少？", "answer": "168.37亿元"}]
HIGH_TECH_EN = [{"question": "How many high-tech enterprises were added in 2023?", "answer": "360"}]


@pytest.mark.parametrize("history,question,completed,form", [
    (HIGH_TECH, "2022年呢？", "2022年新增了多少家高新技术企业？", "year"),
    (HIGH_TECH, "那去年呢？", "2022年新增了多少家高新技术企业？", "year"),
    (HIGH_TECH, "那总数呢？", "2023年高新技术企业，总数是多少？", "qualifier"),
    (HIGH_TECH, "其中电子信息领域有多少家？", "2023年新增高新技术企业，其中电子信息领域有多少家？", "subset"),
    (HIGH_TECH, "它的总数是多少？", "2023年高新技术企业，总数是多少？", "pronoun"),
    (HIGH_TECH, "科技型中小企业呢？", "2023年新增了多少家科技型中小企业？", "subject"),
    (SPENDING, "增长了多少？", "2022年研发经费投入，增长了多少？", "pronoun"),
    (SPENDING, "那2021年呢？", "2021年研发经费投入是多少？", "year"),
    (HIGH_TECH_EN, "What about 2022?", "How many high-tech enterprises were added in 2022?", "year"),
    (HIGH_TECH_EN, "And the total?", "What is the total of high-tech enterprises in 2023?", "qualifier"),
    (HIGH_TECH_EN, "How much funding did they get?", "How much funding did high-tech enterprises get in 2023?",
     "pronoun"),
    (HIGH_TECH_EN, "What about science-based SMEs?", "How many science-based SMEs were added in 2023?", "subject"),
])
def test_follow_ups_are_completed_from_the_previous_turn(history, question, completed, form):
    result = complete_question(question, history)
    assert (result.completed, result.follow_up) == (completed, form)
    assert result.question == question


@pytest.mark.parametrize("question", ["R&D经费投入强度是多少？", "全市科技型中小企业总数达到多少家？",
                                      "How many talents were introduced in total?"])
def test_a_question_of_its_own_stands_alone(question):
    assert complete_question(question, HIGH_TECH).completed == question
    assert complete_question(question, []).completed == question


def test_chains_carry_through_earlier_follow_ups():
    history = HIGH_TECH + [{"question": "2022年呢？"}]
    assert complete_question("那总数呢？", history).completed == "2022年高新技术企业，总数是多少？"
    history = SPENDING + [{"question": "增长了多少？"}]
    assert complete_question("增速呢？", history).completed == "2022年研发经费投入，增速是多少？"


def test_a_question_naming_the_document_keeps_to_the_cited_one():
    history = [{"question": "2023年新增了多少家高新技术企业？", "answer": "360家", "doc_id": "reply.txt"}]
    result = complete_question("这份答复是谁签发的？", history)
    assert result.doc_id == "reply.txt" and result.completed == "这份答复是谁签发的？"
    assert complete_question("Who signed this reply?", history).doc_id == "reply.txt"


@pytest.mark.parametrize("history", ["text", {"question": "q"}, [1], [{"answer": "a"}], [{"question": 5}],
                                     [{"question": "q", "answer": ["a"]}], [{"question": "字" * 20_001}]])
def test_bad_history_is_a_clear_error(history):
    with pytest.raises(RagError, match="history"):
        complete_question("那总数呢？", history)


def test_only_the_last_turns_are_read():
    history = [{"question": f"{2000 + n}年新增了多少家高新技术企业？"} for n in range(MAX_TURNS + 30)]
    assert complete_question("那总数呢？", history).completed.startswith(str(2000 + MAX_TURNS + 29))


def test_index_answer_completes_the_follow_up(reference_index):
    first = reference_index.answer("2023年新增了多少家高新技术企业？")
    history = [{"question": first.question, "answer": first.text, "doc_id": first.citations[0].doc_id}]
    follow = reference_index.answer("其中电子信息领域有多少家？", history=history)
    assert follow.completed_question == "2023年新增高新技术企业，其中电子信息领域有多少家？"
    assert follow.found and "165家" in follow.text and follow.question == "其中电子信息领域有多少家？"
    alone = reference_index.answer("其中电子信息领域有多少家？")
    assert alone.completed_question == alone.question
    signer = reference_index.answer("这份答复是谁签发的？", history=history)
    assert signer.found and "王金生" in signer.text
    assert all(c.doc_id == history[0]["doc_id"] for c in signer.citations)


def test_the_chat_shows_what_was_searched():
    from rag.types import Answer
    from ui.render import answer_markdown

    completed = Answer(question="那总数呢？", text="总数达到3431家", found=True, completed_question="2023年高新技术企业，总数是多少？")
    assert answer_markdown(completed).startswith("*已理解为 Understood as：2023年高新技术企业，总数是多少？*")
    alone = Answer(question="2023年新增多少家？", text="360家", found=True, completed_question="2023年新增多少家？")
    assert "已理解为" not in answer_markdown(alone)
