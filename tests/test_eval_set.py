"""Validates the evaluation question sets in eval/ against the real source texts they cite."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EVAL = REPO / "eval"
CORPUS = REPO / "corpus"
REFERENCE_SET = EVAL / "reference.jsonl"
TIPDM_SET = EVAL / "tipdm.jsonl"
TIPDM_FILE = "messages_and_replies.xlsx"
NCP_SET = EVAL / "ncp.jsonl"
NCP_FILE = "documents.jsonl"
SPLIT_SCRIPT = REPO / "scripts" / "split_eval.py"

KINDS = frozenset({
    "figure", "entity", "date", "document", "list", "reason", "method",
    "yesno", "paraphrase", "english", "negative", "title",
})
FIELDS = {"id": str, "question": str, "answers": list, "doc_id": (str, type(None)),
          "evidence": (str, type(None)), "kind": str, "corpus": str, "split": str}
SPLITS = ("dev", "test")
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
ID_PREFIX = {"reference": "ref-", "tipdm": "tipdm-", "ncp": "ncp-"}
FIRST_TIPDM_ENGLISH = 234  # tipdm-234 … are the English questions over tipdm


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
    if rec["split"] not in SPLITS:
        problems.append(f"split {rec['split']!r} not allowed")
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


def split_problems(records: list[dict]) -> list[str]:
    """Every (corpus, kind) group of two or more records must have both a dev and a test part."""
    groups: dict[tuple, Counter] = defaultdict(Counter)
    for rec in records:
        groups[(rec.get("corpus"), rec.get("kind"))][rec.get("split")] += 1
    return [f"{corpus}/{kind}: {dict(splits)}" for (corpus, kind), splits in sorted(groups.items(), key=str)
            if sum(splits.values()) >= 2 and not all(splits[s] for s in SPLITS)]


def unique_evidence_problems(records: list[dict], texts: list[str]) -> dict[str, str]:
    """Evidence found in another document too would make the retrieval target ambiguous."""
    return {r["id"]: r["evidence"] for r in records
            if r["evidence"] is not None and sum(r["evidence"] in t for t in texts) != 1}


def load_split_script():
    spec = importlib.util.spec_from_file_location("split_eval", SPLIT_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


@pytest.fixture(scope="session")
def ncp_records() -> list[dict]:
    if not NCP_SET.exists():
        pytest.skip(f"{NCP_SET.name} is not there yet")
    return load_set(NCP_SET)


@pytest.fixture(scope="session")
def ncp_texts(ncp_jsonl: Path) -> dict[str, str]:
    """docid → text of ../shared/data/ncp_policies/documents.jsonl, as stored."""
    texts = {}
    for line in ncp_jsonl.read_text(encoding="utf-8").splitlines():
        if line.strip():
            doc = json.loads(line)
            texts[doc["docid"]] = doc["text"]
    return texts


def ncp_gold(texts: dict[str, str]):
    """Resolve `documents.jsonl#<docid>` to that document's text."""
    def gold(doc_id: str) -> str | None:
        name, _, docid = doc_id.partition("#")
        return texts.get(docid) if name == NCP_FILE and docid else None
    return gold


def tipdm_gold(replies: dict[str, str]):
    """Resolve `messages_and_replies.xlsx#<id>` to its reply text."""
    def gold(doc_id: str) -> str | None:
        name, _, row_id = doc_id.partition("#")
        return replies.get(row_id) if name == TIPDM_FILE and row_id else None
    return gold


# --- the validator itself must reject bad records ---------------------------------------------

GOOD = {"id": "ref-900", "question": "新增多少家？", "answers": ["360家", "360"], "doc_id": "d.txt",
        "evidence": "全年新增高新技术企业360家", "kind": "figure", "corpus": "reference", "split": "dev"}
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
    ({"split": "train"}, "split 'train' not allowed"),
    ({"split": None}, "split has type NoneType"),
    ({"extra": 1}, "unknown fields ['extra']"),
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
    assert "missing field split" in collect([{k: v for k, v in GOOD.items() if k != "split"}],
                                            "reference", lambda _doc: TEXT)["ref-900"]


def test_split_checks_and_the_split_script():
    """A group of ≥ 2 needs both splits; the script alternates by sha1 of the id and is idempotent."""
    one_sided = [{**GOOD, "id": f"ref-90{i}"} for i in range(3)]
    assert split_problems(one_sided) == ["reference/figure: {'dev': 3}"]
    assert split_problems([GOOD]) == []
    script = load_split_script()
    records = [{"id": f"ncp-{i:03d}", "kind": "figure" if i % 3 else "negative", "corpus": "ncp", "question": "q",
                "answers": [], "doc_id": None, "evidence": None} for i in range(1, 12)]
    text = "\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n"
    once = script.split_text(text)
    assert script.split_text(once) == once
    out = [json.loads(line) for line in once.splitlines()]
    assert [r["id"] for r in out] == [r["id"] for r in records]
    assert list(out[0]) == ["id", "question", "answers", "doc_id", "evidence", "kind", "corpus", "split"]
    for kind in ("figure", "negative"):
        group = sorted((r for r in out if r["kind"] == kind), key=lambda r: hashlib.sha1(r["id"].encode()).hexdigest())
        assert [r["split"] for r in group] == [SPLITS[i % 2] for i in range(len(group))]


# --- the real sets -------------------------------------------------------------------------------

def test_reference_set_records_are_valid(reference_records):
    assert collect(reference_records, "reference", reference_gold) == {}


@pytest.mark.parametrize("name", ["reference", "tipdm", "ncp"])
def test_every_kind_has_dev_and_test(name, request):
    records = request.getfixturevalue(f"{name}_records")
    assert split_problems(records) == []


@pytest.mark.parametrize("name", ["reference", "tipdm", "ncp"])
def test_splits_are_the_ones_the_split_script_makes(name, request):
    """The split is made by scripts/split_eval.py, never by hand: re-run it after editing a set."""
    records = request.getfixturevalue(f"{name}_records")
    expected = load_split_script().assign_splits(records)
    moved = [r.get("id") for r, split in zip(records, expected) if r.get("split") != split]
    assert moved == [], f"run `python scripts/split_eval.py eval/{name}.jsonl`; wrong split: {moved[:20]}"


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
    assert len(tipdm_records) >= 280, len(tipdm_records)
    assert kinds["title"] >= 80 and len(tipdm_records) - kinds["title"] >= 80, kinds
    assert kinds["english"] >= 45, kinds
    assert kinds["negative"] == 0
    questions = [r["question"].strip() for r in tipdm_records]
    assert len(set(questions)) == len(questions)


def test_tipdm_set_records_are_valid(tipdm_records, tipdm_replies):
    assert len(tipdm_replies) == 2816
    assert collect(tipdm_records, "tipdm", tipdm_gold(tipdm_replies)) == {}


def test_tipdm_evidence_singles_out_the_gold_reply(tipdm_records, tipdm_replies):
    """Evidence found in another reply too would make the retrieval target ambiguous."""
    assert unique_evidence_problems(tipdm_records, list(tipdm_replies.values())) == {}


def test_tipdm_english_questions(tipdm_records):
    """tipdm-234 …: English questions about one fact each, answered by a Chinese string inside the evidence."""
    english = [r for r in tipdm_records if r["kind"] == "english"]
    assert [r["id"] for r in english if int(r["id"].partition("-")[2]) < FIRST_TIPDM_ENGLISH] == []
    assert [r["id"] for r in english if CJK.search(r["question"])] == []
    assert [r["id"] for r in english if not 10 <= len(r["evidence"]) <= 60] == []
    assert [r["id"] for r in english if not r["answers"] or len(r["answers"]) > 3
            or not all(a in r["evidence"] for a in r["answers"])] == []
    first_rows = {r["doc_id"] for r in tipdm_records if int(r["id"].partition("-")[2]) < FIRST_TIPDM_ENGLISH}
    assert [r["id"] for r in english if r["doc_id"] in first_rows] == [], "English questions use fresh rows"


def test_tipdm_rows_are_spread_over_the_file(tipdm_records, tipdm_replies):
    order = {row_id: i for i, row_id in enumerate(tipdm_replies)}
    positions = sorted(order[r["doc_id"].partition("#")[2]] for r in tipdm_records)
    deciles = Counter(p * 10 // len(order) for p in positions)
    assert len(deciles) == 10 and min(deciles.values()) >= 8, deciles
    assert all(len(tipdm_replies[r["doc_id"].partition("#")[2]]) >= 40 for r in tipdm_records)


def test_ncp_set_counts(ncp_records):
    kinds = Counter(r["kind"] for r in ncp_records)
    assert len(ncp_records) >= 150, len(ncp_records)
    assert kinds["negative"] >= 20, kinds
    assert kinds["title"] == 0, "title questions belong to the tipdm set"
    questions = [r["question"].strip() for r in ncp_records]
    assert len(set(questions)) == len(questions)
    assert [r["id"] for r in ncp_records if r["kind"] == "english" and CJK.search(r["question"])] == []


def test_ncp_set_records_are_valid(ncp_records, ncp_texts):
    assert len(ncp_texts) == 599
    assert collect(ncp_records, "ncp", ncp_gold(ncp_texts)) == {}


def test_ncp_evidence_singles_out_the_gold_document(ncp_records, ncp_texts):
    assert unique_evidence_problems(ncp_records, list(ncp_texts.values())) == {}
