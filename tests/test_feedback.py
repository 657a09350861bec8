"""The feedback store (rag/feedback.py): checked fields, concurrent writers (threads and processes), reads that
never create the file, and `rag feedback export|stats` (export read back by the eval loader)."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import REPO
from rag.feedback import FILE_NAME, MAX_CITATIONS, MAX_NOTE_CHARS, FeedbackStore
from rag.search.index import MAX_QUESTION_INPUT
from rag.types import RagError

QUESTION = "2023年石家庄新增了多少家高新技术企业？"
CITE = {"doc_id": "sjz-kjj-2024-proposal-0520-reply.txt", "start": 1515, "end": 1819}
WRITER = """
import sys, time
from pathlib import Path
from rag.feedback import FeedbackStore
folder, name, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
while not (folder / "go").exists():
    time.sleep(0.005)
store = FeedbackStore(folder)
for n in range(count):
    store.record(f"{name} {n}", "360家", "up" if n % 2 else "down", citations=[{"doc_id": name, "start": n, "end": n + 1}])
"""


def test_a_rating_is_stored_with_everything_in_wal_mode(tmp_path):
    store = FeedbackStore(tmp_path)
    row_id = store.record(QUESTION, "360家", "up", comment="对", completed_question=QUESTION + "（石家庄）",
                          citations=[CITE], generation="20240101-000000-1-abcdef12")
    (row,) = store.rows()
    assert row["id"] == row_id and row["rating"] == "up" and row["comment"] == "对" and row["correction"] is None
    assert row["question"] == QUESTION and row["completed_question"].endswith("（石家庄）")
    assert row["citations"] == [CITE] and row["generation"] == "20240101-000000-1-abcdef12" and row["time"]
    with sqlite3.connect(tmp_path / FILE_NAME) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_reads_never_create_the_file(tmp_path):
    store = FeedbackStore(tmp_path)
    assert store.rows() == [] and store.eval_cases() == [] and store.stats()["ratings"] == 0
    store.withdraw(1)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fields, message", [
    ({"rating": "meh"}, "rating must be 'up' or 'down'"),
    ({"rating": None}, "rating must be"),
    ({"question": "  "}, "question is empty"),
    ({"question": None}, "question is required"),
    ({"question": 5}, "question must be text"),
    ({"question": "问" * (MAX_QUESTION_INPUT + 1)}, "question is 20,001 characters long"),
    ({"comment": "x" * (MAX_NOTE_CHARS + 1)}, "comment is 5,001 characters long"),
    ({"correction": "x" * (MAX_NOTE_CHARS + 1)}, "correction is 5,001 characters long"),
    ({"answer": ["360家"]}, "answer must be text"),
    ({"citations": "doc.txt"}, "citations must be a list"),
    ({"citations": [CITE] * (MAX_CITATIONS + 1)}, "citations must be a list of at most"),
    ({"citations": [{"doc_id": "a.txt", "start": "0", "end": 3}]}, "a citation needs"),
    ({"citations": [{"doc_id": "a.txt", "start": True, "end": 3}]}, "a citation needs"),
    ({"citations": ["a.txt"]}, "a citation is a"),
])
def test_bad_fields_are_refused_before_anything_is_written(tmp_path, fields, message):
    values = {"question": QUESTION, "answer": "360家", "rating": "up", **fields}
    with pytest.raises(RagError, match=message):
        FeedbackStore(tmp_path).record(**values)
    assert not (tmp_path / FILE_NAME).exists()


def test_replace_and_withdraw(tmp_path):
    store = FeedbackStore(tmp_path)
    first = store.record(QUESTION, "360家", "up")
    second = store.record(QUESTION, "360家", "down", replaces=first)
    assert [(r["id"], r["rating"]) for r in store.rows()] == [(second, "down")]
    store.withdraw(second)
    assert store.rows() == []


def test_concurrent_writer_threads_lose_nothing(tmp_path):
    store = FeedbackStore(tmp_path)  # one store shared by every thread, as the web server shares it
    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(lambda n: store.record(f"{QUESTION} {n}", "360家", "up"), range(200)))
    rows = store.rows()
    assert len(set(ids)) == len(rows) == 200
    assert {r["question"] for r in rows} == {f"{QUESTION} {n}" for n in range(200)}


def test_concurrent_writer_processes_and_threads_lose_nothing(tmp_path):
    """Two processes and this one write at once into a file none of them has created yet."""
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), name, "60"], cwd=REPO)
               for name in ("proc-a", "proc-b")]
    time.sleep(3)  # both are importing rag by now; they start on the same signal
    (tmp_path / "go").touch()
    store = FeedbackStore(tmp_path)
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda n: store.record(f"thread {n}", None, "down"), range(40)))
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    rows = store.rows()
    assert len(rows) == 160
    for name in ("proc-a", "proc-b"):
        assert sorted(r["citations"][0]["start"] for r in rows if r["question"].startswith(name)) == list(range(60))


def test_a_damaged_file_is_named(tmp_path):
    (tmp_path / FILE_NAME).write_bytes(b"not a database" * 100)
    with pytest.raises(RagError, match=FILE_NAME):
        FeedbackStore(tmp_path).record(QUESTION, "360家", "up")
    with pytest.raises(RagError, match="not damaged"):
        FeedbackStore(tmp_path).rows()


def rated(tmp_path) -> FeedbackStore:
    """One rating of each kind the export distinguishes."""
    from rag.qa.pipeline import NOT_FOUND_TEXT

    store = FeedbackStore(tmp_path)
    store.record(QUESTION, "360家", "up", citations=[CITE], generation="g1")
    store.record("那2022年呢？", "18753家", "down", correction="298家", completed_question="2022年新增多少家高新技术企业？")
    store.record("2021年研发经费投入是多少？", "75.2亿元", "down", comment="数字不对")
    store.record("今天天气怎么样？", NOT_FOUND_TEXT["zh"], "up")
    store.record("第0520号提案是谁提的？", None, "down")  # not found, no correction: nothing to check
    store.record("控制\x1b[2J字符\u2028与\u202e换行？", "有\x85", "up")
    store.record("2021年研发经费投入是多少？", "80亿元", "down", correction="80亿元")  # the latest rating wins
    return store


def test_export_is_an_eval_set_the_loader_reads(tmp_path, capsys):
    from rag.cli import main
    from rag.evaluation import load_eval_set

    rated(tmp_path)
    out = tmp_path / "feedback.jsonl"
    assert main(["feedback", "export", "--index", str(tmp_path), "--output", str(out), "--split", "test"]) == 0
    assert "wrote 5 eval cases" in capsys.readouterr().out
    items = {item.question: item for item in load_eval_set(out)}
    assert set(items) == {QUESTION, "2022年新增多少家高新技术企业？", "2021年研发经费投入是多少？", "今天天气怎么样？",
                          "控制\x1b[2J字符\u2028与\u202e换行？"}
    assert items[QUESTION].answers == ["360家"] and not items[QUESTION].negative
    assert items["2022年新增多少家高新技术企业？"].answers == ["298家"]  # the completed question, the correction
    assert items["2021年研发经费投入是多少？"].answers == ["80亿元"]
    assert items["今天天气怎么样？"].negative  # a 👍 on "not found": the right reply is not found
    assert all(i.split == "test" and i.corpus == "reference" and i.kind == "feedback" for i in items.values())
    text = out.read_text(encoding="utf-8")
    assert not any(c in text for c in "\x1b\u2028\u202e\x85")  # written as JSON escapes: one case a line
    assert "研发经费" in text  # Chinese stays readable


def test_a_rejected_answer_without_correction_expects_not_found(tmp_path):
    from rag.evaluation import load_eval_set

    store = FeedbackStore(tmp_path)
    store.record("2021年研发经费投入是多少？", "75.2亿元", "down", comment="数字不对")
    (case,) = store.eval_cases()
    assert case["rejected"] == ["75.2亿元"] and case["answers"] == [] and case["feedback"]["comment"] == "数字不对"
    out = tmp_path / "cases.jsonl"
    out.write_text(json.dumps(case, ensure_ascii=False) + "\n", encoding="utf-8")
    (item,) = load_eval_set(out)
    assert item.negative  # scored like a negative until someone writes the right answer into "answers"


def test_stats(tmp_path, capsys):
    from rag.cli import main

    assert main(["feedback", "stats", "--index", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("0 ratings")
    rated(tmp_path)
    assert main(["feedback", "stats", "--index", str(tmp_path), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["ratings"], stats["up"], stats["down"]) == (7, 3, 4)
    assert (stats["with_correction"], stats["without_correction"]) == (2, 5)
    assert stats["last"] == FeedbackStore(tmp_path).rows()[-1]["time"]
    assert main(["feedback", "stats", "--index", str(tmp_path)]) == 0
    assert "7 ratings" in capsys.readouterr().out


def test_a_build_keeps_the_feedback_file(tmp_path):
    """The file lies beside generations/, which a build never touches outside its own generations."""
    import rag
    from conftest import SEED_PATH

    index = rag.build_index(SEED_PATH, tmp_path / "index", progress=False)
    assert not (tmp_path / "index" / FILE_NAME).exists()  # building and loading create no feedback file
    FeedbackStore(index.index_dir).record(QUESTION, "360家", "up", generation=index.generation.name)
    rebuilt = rag.build_index(SEED_PATH, tmp_path / "index", rebuild=True, progress=False)
    assert rebuilt.generation != index.generation
    assert [r["generation"] for r in FeedbackStore(rebuilt.index_dir).rows()] == [index.generation.name]
