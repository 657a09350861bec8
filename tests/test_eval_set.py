"""Validates the evaluation question sets in eval/ against the real source texts they cite."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EVAL = REPO / "eval"
CORPUS = REPO / "corpus"
REFERENCE_SET = EVAL / "reference.jsonl"
TIPDM_SET = EVAL / "tipdm.jsonl"
TIPDM_FILE = "messages_and_replies.xlsx"

KINDS = frozenset({
    "figure", "entity", "date", "document", "list", "reason", "method",
    "yesno", "paraphrase", "english", "negative", "title",
})
FIELDS = {"id": str, "question": str, "answers": list, "doc_id": (str, type(None)),
          "evidence": (str, type(None)), "kind": str, "corpus": str}
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
ID_PREFIX = {"reference": "ref-", "tipdm": "tipdm-"}


def load_set(path: Path) -> list[dict]:
    """Parse a JSON Lines eval file; a broken line fails loudly with its line number."""
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:  # pragma: no cover - reported as a failure
            raise AssertionError(f"{path.name}:{number}: not JSON: {exc}") from exc
    return records


def shape_problems(rec: dict, corpus: str) -> list[str]:
    """Field presence/type, kind, corpus and id-prefix problems of one record."""
    problems = []
    for name, kind in FIELDS.items():
        if name not in rec:
            problems.append(f"missing field {name}")
        elif not isinstance(rec[name], kind):
            problems.append(f"{name} has type {type(rec[name]).__name__}")
    if problems:
        return problems
    if set(rec) - set(FIELDS):
        problems.append(f"unknown fields {sorted(set(rec) - set(FIELDS))}")
    if rec["kind"] not in KINDS:
        problems.append(f"kind {rec['kind']!r} not allowed")
    if rec["corpus"] != corpus:
        problems.append(f"corpus {rec['corpus']!r} != {corpus!r}")
    if not rec["id"].startswith(ID_PREFIX[corpus]):
        problems.append(f"id {rec['id']!r} lacks prefix {ID_PREFIX[corpus]!r}")
    if not rec["question"].strip():
        problems.append("empty question")
    if not all(isinstance(a, str) and a.strip() for a in rec["answers"]):
        problems.append("answers must be non-empty strings")
    return problems


def gold_problems(rec: dict, gold_text: str | None) -> list[str]:
    """Negatives carry no gold; others need evidence inside one line of the gold text and findable answers."""
    if rec["kind"] == "negative":
        bad = []
        if rec["answers"] != []:
            bad.append("negative with answers")
        if rec["doc_id"] is not None or rec["evidence"] is not None:
            bad.append("negative with doc_id/evidence")
        return bad
    if rec["doc_id"] is None or rec["evidence"] is None:
        return ["non-negative without doc_id/evidence"]
    if gold_text is None:
        return [f"gold document {rec['doc_id']!r} not found"]
    evidence = rec["evidence"]
    bad = []
    if "\n" in evidence or not evidence.strip():
        bad.append("evidence empty or spans lines")
    elif evidence not in gold_text:
        bad.append(f"evidence not in gold text: {evidence!r}")
    for answer in rec["answers"]:
        if answer not in evidence and answer not in gold_text:
            bad.append(f"answer not in evidence/gold: {answer!r}")
    if rec["kind"] != "title" and not rec["answers"]:
        bad.append("fact question without answers")
    return bad


def collect(records: list[dict], corpus: str, gold) -> dict[str, list[str]]:
    """All problems per id (duplicate ids included); `gold(doc_id)` returns the document text or None."""
    found: dict[str, list[str]] = {}
    counts = Counter(r.get("id") for r in records)
    for rec in records:
        problems = shape_problems(rec, corpus)
        if not problems:
            text = gold(rec["doc_id"]) if rec["doc_id"] is not None else None
            problems = gold_problems(rec, text)
        if counts[rec.get("id")] > 1:
            problems.append("duplicate id")
        if problems:
            found[str(rec.get("id"))] = problems
    return found


def reference_gold(doc_id: str) -> str | None:
    """Reference documents are files under corpus/, read as stored."""
    path = CORPUS / doc_id
    return path.read_text(encoding="utf-8") if path.is_file() else None


@pytest.fixture(scope="session")
def reference_records() -> list[dict]:
    return load_set(REFERENCE_SET)


@pytest.fixture(scope="session")
def tipdm_records() -> list[dict]:
    return load_set(TIPDM_SET)


@pytest.fixture(scope="session")
def tipdm_replies(tipdm_xlsx: Path) -> dict[str, str]:
    """留言编号 (as text) → 答复意见 with surrounding whitespace stripped; the workbook is read once."""
    import openpyxl

    workbook = openpyxl.load_workbook(tipdm_xlsx, read_only=True)
    try:
        rows = workbook.active.iter_rows(values_only=True)
        header = list(next(rows))
        id_col, reply_col = header.index("留言编号"), header.index("答复意见")
        return {str(row[id_col]).strip(): str(row[reply_col]).strip() for row in rows if row[id_col] is not None}
    finally:
        workbook.close()


def tipdm_gold(replies: dict[str, str]):
    """Resolve `messages_and_replies.xlsx#<id>` to its reply text."""
    def gold(doc_id: str) -> str | None:
        name, _, row_id = doc_id.partition("#")
        return replies.get(row_id) if name == TIPDM_FILE and row_id else None
    return gold


# --- the validator itself must reject bad records ---------------------------------------------

GOOD = {"id": "ref-900", "question": "新增多少家？", "answers": ["360家", "360"], "doc_id": "d.txt",
        "evidence": "全年新增高新技术企业360家", "kind": "figure", "corpus": "reference"}
TEXT = "2023年,全年新增高新技术企业360家,总数达到3431家。"


@pytest.mark.parametrize("change, expected", [
    ({"kind": "trivia"}, "kind 'trivia' not allowed"),
    ({"corpus": "tipdm"}, "corpus 'tipdm' != 'reference'"),
    ({"id": "x-1"}, "lacks prefix"),
    ({"answers": "360"}, "answers has type str"),
    ({"evidence": "新增高企360家"}, "evidence not in gold text"),
    ({"evidence": "新增高新技术企业360家,总数\n达到"}, "spans lines"),
    ({"answers": ["361家"]}, "answer not in evidence/gold"),
    ({"answers": []}, "fact question without answers"),
    ({"kind": "negative"}, "negative with answers"),
    ({"kind": "negative", "answers": []}, "negative with doc_id/evidence"),
    ({"doc_id": None}, "non-negative without doc_id/evidence"),
])
def test_validator_rejects_bad_records(change, expected):
    rec = {**GOOD, **change}
    problems = collect([rec], "reference", lambda _doc: TEXT).get(rec["id"], [])
    assert any(expected in p for p in problems), problems


def test_validator_accepts_good_and_flags_duplicates():
    assert collect([GOOD], "reference", lambda _doc: TEXT) == {}
    negative = {**GOOD, "id": "ref-901", "kind": "negative", "answers": [], "doc_id": None, "evidence": None}
    assert collect([negative], "reference", lambda _doc: None) == {}
    assert collect([GOOD, GOOD], "reference", lambda _doc: TEXT) == {"ref-900": ["duplicate id"]}
    assert "missing field evidence" in collect([{k: v for k, v in GOOD.items() if k != "evidence"}],
                                               "reference", lambda _doc: TEXT)["ref-900"]


# --- the real sets -------------------------------------------------------------------------------

def test_reference_set_records_are_valid(reference_records):
    assert collect(reference_records, "reference", reference_gold) == {}


def test_reference_set_counts(reference_records):
    kinds = Counter(r["kind"] for r in reference_records)
    assert len(reference_records) >= 80, len(reference_records)
    assert kinds["english"] >= 10 and kinds["paraphrase"] >= 10 and kinds["negative"] >= 8, kinds
    assert kinds["title"] == 0, "title questions belong to the tipdm set"


def test_reference_questions_are_distinct_and_english_is_english(reference_records):
    questions = [r["question"].strip() for r in reference_records]
    assert len(set(questions)) == len(questions)
    assert [r["id"] for r in reference_records if r["kind"] == "english" and CJK.search(r["question"])] == []


def test_tipdm_set_counts(tipdm_records):
    kinds = Counter(r["kind"] for r in tipdm_records)
    assert len(tipdm_records) >= 150, len(tipdm_records)
    assert kinds["title"] >= 80 and len(tipdm_records) - kinds["title"] >= 80, kinds
    assert kinds["negative"] == 0
    questions = [r["question"].strip() for r in tipdm_records]
    assert len(set(questions)) == len(questions)


def test_tipdm_set_records_are_valid(tipdm_records, tipdm_replies):
    assert len(tipdm_replies) == 2816
    assert collect(tipdm_records, "tipdm", tipdm_gold(tipdm_replies)) == {}


def test_tipdm_evidence_singles_out_the_gold_reply(tipdm_records, tipdm_replies):
    """Evidence found in another reply too would make the retrieval target ambiguous."""
    texts = list(tipdm_replies.values())
    ambiguous = {r["id"]: r["evidence"] for r in tipdm_records if sum(r["evidence"] in t for t in texts) != 1}
    assert ambiguous == {}


def test_tipdm_rows_are_spread_over_the_file(tipdm_records, tipdm_replies):
    order = {row_id: i for i, row_id in enumerate(tipdm_replies)}
    positions = sorted(order[r["doc_id"].partition("#")[2]] for r in tipdm_records)
    deciles = Counter(p * 10 // len(order) for p in positions)
    assert len(deciles) == 10 and min(deciles.values()) >= 8, deciles
    assert all(len(tipdm_replies[r["doc_id"].partition("#")[2]]) >= 40 for r in tipdm_records)
