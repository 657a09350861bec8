"""Eval runner: metric arithmetic on known rankings, and a tiny eval file run against the real reference index."""
from __future__ import annotations

import argparse
import json

import pytest

from conftest import CORPUS, REPO, SEED_NAME
from rag import evaluation as ev
from rag.types import Hit, RagError


# ---- metric functions on synthetic rankings -----------------------------------------------------
def test_first_hit_rank_is_one_based_and_none_without_a_hit():
    assert ev.first_hit_rank([False, False, True, True]) == 3
    assert ev.first_hit_rank([True]) == 1
    assert ev.first_hit_rank([False, False]) is None
    assert ev.first_hit_rank([]) is None


def test_hit_at_k_and_mrr_on_known_ranks():
    ranks = [1, 2, None, 4, 11]
    assert ev.hit_at(ranks, 1) == pytest.approx(1 / 5)
    assert ev.hit_at(ranks, 3) == pytest.approx(2 / 5)
    assert ev.hit_at(ranks, 5) == pytest.approx(3 / 5)
    assert ev.hit_at(ranks, 20) == pytest.approx(4 / 5)
    # rank 11 is beyond the MRR cut-off and counts 0, like a miss
    assert ev.mrr_at(ranks, 10) == pytest.approx((1 + 1 / 2 + 1 / 4) / 5)
    assert ev.mrr_at(ranks, 20) == pytest.approx((1 + 1 / 2 + 1 / 4 + 1 / 11) / 5)
    assert ev.hit_at([], 3) is None and ev.mrr_at([]) is None


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(100, 0, -1)]  # unsorted on purpose
    assert ev.percentile(values, 50) == 50.0
    assert ev.percentile(values, 95) == 95.0
    assert ev.percentile([7.0], 95) == 7.0
    assert ev.percentile([1.0, 2.0, 3.0], 50) == 2.0
    assert ev.percentile([], 50) is None


def test_containment_ignores_width_case_and_line_breaks():
    assert ev.contains("全年新增高新技术企业３６０家，总数达到3431家", "新增高新技术企业360家")
    assert ev.contains("R&D经费\n投入168.37亿元", "r&d经费投入168.37亿元")
    assert not ev.contains("全年新增高新技术企业360家", "新增高新技术企业361家")
    assert not ev.contains(None, "360家")
    assert not ev.contains("anything", "   ")


def test_evidence_spans_index_into_the_stored_text():
    text = "第一段。\n全年新增高新\n技术企业３６０家。其后。全年新增高新技术企业360家。"
    spans = ev.evidence_spans(text, "新增高新技术企业360家")
    assert len(spans) == 2
    for start, end in spans:
        assert ev.contains(text[start:end], "新增高新技术企业360家")


def _hit(doc_id: str, text: str, start: int) -> Hit:
    return Hit(doc_id=doc_id, title="", section="", text=text, start=start, end=start + len(text), score=1.0)


def test_relevance_needs_the_gold_document_and_the_evidence():
    hit = _hit("a.txt", "2023年，全年新增高新技术企业360家。", 100)
    assert ev.is_relevant(hit, "a.txt", "新增高新技术企业360家")
    assert not ev.is_relevant(hit, "b.txt", "新增高新技术企业360家")  # right text, wrong document
    assert not ev.is_relevant(hit, "a.txt", "科技特派员687人")
    assert not ev.is_relevant(hit, None, "新增高新技术企业360家")
    # evidence straddling two chunks: a gold passage overlapping its offsets counts, one beside it does not
    assert ev.is_relevant(hit, "a.txt", "科技特派员687人", straddle_spans=[(120, 160)])
    assert not ev.is_relevant(hit, "a.txt", "科技特派员687人", straddle_spans=[(200, 240)])


def test_answer_correct_uses_any_accepted_answer():
    assert ev.answer_correct("2023年全年新增高新技术企业３６０家", ["360家", "三百六十家"])
    assert not ev.answer_correct("总数达到3431家", ["360家"])
    assert not ev.answer_correct(None, ["360家"])
    assert not ev.answer_correct("360家", [])


def _row(**kw) -> ev.Row:
    base = dict(id="x", corpus="reference", kind="number", question="q", answers=[], doc_id=None)
    base.update(kw)
    return ev.Row(**base)


def test_compute_metrics_counts_answers_and_negatives_separately():
    rows = [
        _row(id="p1", answers=["1"], doc_id="d", ranks={"hybrid": 1}, found=True, correct=True,
             answer_ms=10.0, search_ms={"hybrid": 5.0}),
        _row(id="p2", answers=["2"], doc_id="d", ranks={"hybrid": 4}, found=True, correct=False,
             answer_ms=30.0, search_ms={"hybrid": 7.0}),
        _row(id="p3", answers=[], doc_id="d", ranks={"hybrid": None}, search_ms={"hybrid": 6.0}),  # retrieval only
        _row(id="n1", found=False, correct=True, answer_ms=20.0, search_ms={"hybrid": 9.0}),
        _row(id="n2", found=True, correct=False, answer_ms=40.0, search_ms={"hybrid": 8.0}),
    ]
    m = ev.compute_metrics(rows, "hybrid", "hybrid")
    assert (m.questions, m.positives, m.answerable, m.negatives) == (5, 3, 2, 2)
    assert m.hit1 == pytest.approx(1 / 3) and m.hit3 == pytest.approx(1 / 3) and m.hit5 == pytest.approx(2 / 3)
    assert m.mrr10 == pytest.approx((1 + 1 / 4) / 3)
    assert m.answer_accuracy == pytest.approx(0.5)
    assert m.abstention == pytest.approx(0.5) and m.false_answers == 1
    assert m.search_p50_ms == 7.0 and m.answer_p95_ms == 40.0
    # another retrieval mode carries no answer numbers (answers were asked in hybrid only)
    other = ev.compute_metrics(rows, "bm25", "hybrid")
    assert other.answer_accuracy is None and other.false_answers == 0 and other.hit1 == 0.0


def test_row_failures_name_the_reason():
    assert ev.row_failures(_row(doc_id="d", answers=["1"], ranks={"hybrid": 1}, found=True, correct=True), "hybrid") == []
    assert ev.row_failures(_row(doc_id="d", ranks={"hybrid": 4}), "hybrid") == ["gold passage at rank 4"]
    assert ev.row_failures(_row(doc_id="d", ranks={"hybrid": None}), "hybrid") == ["gold passage not in top 10"]
    assert ev.row_failures(_row(doc_id="d", answers=["1"], ranks={"hybrid": 2}, found=False, correct=False),
                           "hybrid") == ["no answer"]
    assert ev.row_failures(_row(found=True, correct=False), "hybrid") == ["answered a question the corpus cannot answer"]


def test_load_eval_set_rejects_bad_lines_with_file_and_line(tmp_path):
    good = {"id": "a", "question": "q", "answers": ["x"], "doc_id": "d", "evidence": "e", "kind": "k", "corpus": "reference"}
    path = tmp_path / "set.jsonl"
    path.write_text(json.dumps(good) + "\n\n" + json.dumps({**good, "id": "b", "doc_id": None, "answers": []}) + "\n",
                    encoding="utf-8")
    items = ev.load_eval_set(path)
    assert [i.id for i in items] == ["a", "b"] and items[1].negative and not items[0].negative
    path.write_text(json.dumps(good) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(RagError, match=r"set\.jsonl:2"):
        ev.load_eval_set(path)
    path.write_text(json.dumps(good) + "\n" + json.dumps(good) + "\n", encoding="utf-8")
    with pytest.raises(RagError, match="duplicate id 'a'"):
        ev.load_eval_set(path)


def test_display_width_aligns_chinese_columns():
    table = ev.format_table(["组", "n"], [["高新技术企业", "1"], ["ab", "22"]])
    lines = table.splitlines()
    assert len({ev.display_width(line) for line in lines}) == 1
    assert ev.display_width("高新ab") == 6


# ---- against the real reference index ----------------------------------------------------------
@pytest.fixture(scope="module")
def reference_index(tmp_path_factory):
    import rag

    return rag.build_index(CORPUS, tmp_path_factory.mktemp("ref-index"), progress=False)


TINY = [
    {"id": "found", "question": "2023年全年新增高新技术企业多少家？", "answers": ["360家"], "doc_id": SEED_NAME,
     "evidence": "全年新增高新技术企业360家", "kind": "number", "corpus": "reference"},
    {"id": "negative", "question": "石家庄市2023年新建了多少座地铁站？", "answers": [], "doc_id": None,
     "evidence": "", "kind": "negative", "corpus": "reference"},
    {"id": "wrong-doc", "question": "2023年全年新增高新技术企业多少家？", "answers": [], "doc_id": "not-in-corpus.txt",
     "evidence": "全年新增高新技术企业360家", "kind": "number", "corpus": "reference"},
]


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    path = tmp_path_factory.mktemp("eval") / "tiny.jsonl"
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in TINY), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tiny_result(reference_index, tiny_set):
    return ev.evaluate(tiny_set, index=reference_index, mode="all", progress=False)


def test_tiny_set_ranks_and_metrics_add_up(tiny_result):
    rows = {r.id: r for r in tiny_result.rows}
    assert set(rows) == {"found", "negative", "wrong-doc"}
    found = rows["found"]
    assert found.ranks["hybrid"] is not None and found.ranks["hybrid"] <= 3
    assert rows["wrong-doc"].ranks == {"hybrid": None, "bm25": None, "dense": None}
    assert "not in the index" in rows["wrong-doc"].note
    assert rows["negative"].ranks == {}
    for mode in ("hybrid", "bm25", "dense"):
        m = tiny_result.overall[mode]
        rank = found.ranks[mode]
        assert m.positives == 2  # the negative has no gold passage
        assert m.hit1 == (0.5 if rank == 1 else 0.0)
        assert m.hit3 == (0.5 if rank is not None and rank <= 3 else 0.0)
        assert m.mrr10 == pytest.approx(0.5 / rank if rank is not None else 0.0)


def test_tiny_set_answers_and_negative(tiny_result):
    rows = {r.id: r for r in tiny_result.rows}
    assert rows["found"].found and rows["found"].correct and "360" in rows["found"].answer_text
    negative = rows["negative"]
    assert negative.correct is (not negative.found)
    m = tiny_result.overall["hybrid"]
    assert m.answerable == 1 and m.answer_accuracy == 1.0
    assert m.negatives == 1 and m.abstention == (0.0 if negative.found else 1.0)
    assert m.false_answers == int(negative.found)
    assert [r.id for r in tiny_result.failures if r.id == "wrong-doc"] == ["wrong-doc"]
    assert m.answer_p50_ms is not None and m.search_p95_ms is not None


def test_text_and_markdown_reports(tiny_result):
    text = ev.format_text(tiny_result)
    assert "hit@3" in text and "hybrid" in text and "bm25" in text and "dense" in text
    assert "Failed questions" in text and "wrong-doc" in text
    md = ev.format_markdown(tiny_result, "rag eval tiny.jsonl --mode all --report R.md")
    assert "`rag eval tiny.jsonl --mode all --report R.md`" in md and "regenerate" in md
    assert "## Modes side by side" in md and "## Failed questions" in md and "| wrong-doc |" in md


def test_cli_json_and_report(reference_index, tiny_set, tmp_path, monkeypatch, capsys):
    # the runner's own index location is pointed at the fixture's index (already built, so reused)
    monkeypatch.setattr(ev, "eval_index_dir", lambda name, model=None: reference_index.index_dir)
    report = tmp_path / "REPORT.md"
    args = argparse.Namespace(files=[str(tiny_set)], mode="bm25", json=True, report=str(report), model=None, limit=2)
    assert ev.run_cli(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["modes"] == ["bm25"] and data["answer_mode"] == "bm25" and len(data["rows"]) == 2
    assert data["overall"]["bm25"]["positives"] == 1 and data["overall"]["bm25"]["negatives"] == 1
    assert f"`rag eval {tiny_set} --mode bm25 --limit 2 --report {report}`" in report.read_text(encoding="utf-8")


def test_missing_shared_folder_skips_its_questions(tmp_path, monkeypatch, reference_index, capsys):
    monkeypatch.setenv("RAG_SHARED_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setattr(ev, "eval_index_dir", lambda name, model=None: reference_index.index_dir)
    path = tmp_path / "mixed.jsonl"
    lines = [TINY[0], {**TINY[0], "id": "t1", "corpus": "tipdm", "doc_id": "messages_and_replies.xlsx#1"}]
    path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
    result = ev.evaluate(path, progress=False)
    assert [r.id for r in result.rows] == ["found"]
    assert result.skipped and result.skipped[0][0] == "t1" and "nowhere" in result.skipped[0][1]
    assert "skipping the 'tipdm' questions" in capsys.readouterr().err


def test_shared_collections_are_indexed_from_the_file_itself(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_SHARED_DIR", str(tmp_path))
    source = tmp_path / "data" / "ncp_policies" / "documents.jsonl"
    source.parent.mkdir(parents=True)
    source.write_text('{"docid": "d1", "text": "关于延长春节假期的通知。"}\n', encoding="utf-8")
    assert ev.corpus_path("ncp") == source  # read in place: nothing is linked or written beside it
    assert ev.corpus_path("reference") == CORPUS and ev.collection_mapping("reference") is None
    assert ev.collection_mapping("tipdm") == json.loads((REPO / "corpora" / "tipdm.rag.json").read_text(encoding="utf-8"))
    assert ev.collection_mapping("ncp")["id"] == "docid"
    with pytest.raises(ev.CorpusUnavailable, match="messages_and_replies.xlsx"):
        ev.corpus_path("tipdm")
    with pytest.raises(ev.CorpusUnavailable, match="unknown corpus"):
        ev.corpus_path("nope")
