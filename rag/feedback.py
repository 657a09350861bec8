"""Ratings of answers (👍/👎, a comment, a corrected answer) in SQLite beside the index, exported as eval cases.

    store = FeedbackStore("index")
    store.record("2023年新增多少家高新技术企业？", "360家", "up", generation=index.generation.name)
    store.eval_cases()      # lines of an eval JSONL file (rag.evaluation.load_eval_set reads them)

The file is `<index_dir>/feedback.sqlite3` in WAL mode, opened once per call, so threads and processes may write
at the same time (SQLite serialises them; a writer waits up to BUSY_TIMEOUT_S). A build removes only the
generations and temporary files it wrote, so the file outlives every build; only `record` creates it.
"""
from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, get_args

from rag.search.index import MAX_QUESTION_INPUT
from rag.types import RagError, shown

FILE_NAME = "feedback.sqlite3"
Rating = Literal["up", "down"]
RATINGS = get_args(Rating)
MAX_NOTE_CHARS = 5_000  # a comment or a corrected answer
MAX_ANSWER_CHARS = MAX_QUESTION_INPUT  # answers are quoted sentences or lists, far shorter in practice
MAX_CITATIONS = 100
BUSY_TIMEOUT_S = 30.0
SCHEMA = """CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    question TEXT NOT NULL,
    completed_question TEXT NOT NULL,
    answer TEXT,
    rating TEXT NOT NULL CHECK (rating IN ('up', 'down')),
    comment TEXT,
    correction TEXT,
    citations TEXT NOT NULL,
    generation TEXT NOT NULL
)"""
COLUMNS = ("id", "time", "question", "completed_question", "answer", "rating", "comment", "correction", "citations",
           "generation")


def check_text(value: Any, name: str, limit: int, optional: bool = True) -> str | None:
    """A text field of a rating: None or "" (when optional) means none; too long or not text is a RagError."""
    if value is None or (optional and value == ""):
        if optional:
            return None
        raise RagError(f"{name} is required")
    if not isinstance(value, str):
        raise RagError(f"{name} must be text, got {type(value).__name__}")
    if len(value) > limit:
        raise RagError(f"{name} is {len(value):,} characters long; the limit is {limit:,}")
    if not optional and not value.strip():
        raise RagError(f"{name} is empty")
    return value


def check_citations(citations: Any) -> list[dict[str, Any]]:
    """The cited ranges of the rated answer: [{"doc_id", "start", "end"}, ...], at most MAX_CITATIONS."""
    if citations is None:
        return []
    if not isinstance(citations, (list, tuple)) or len(citations) > MAX_CITATIONS:
        raise RagError(f"citations must be a list of at most {MAX_CITATIONS} {{doc_id, start, end}} objects")
    out = []
    for cite in citations:
        if not isinstance(cite, dict):
            raise RagError(f"a citation is a {{doc_id, start, end}} object, got {shown(cite)}")
        doc_id, start, end = cite.get("doc_id"), cite.get("start"), cite.get("end")
        offsets_ok = all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (start, end))
        if not isinstance(doc_id, str) or not doc_id or len(doc_id) > MAX_NOTE_CHARS or not offsets_ok:
            raise RagError(f"a citation needs a doc_id (text) and start, end offsets (whole numbers), got {shown(cite)}")
        out.append({"doc_id": doc_id, "start": start, "end": end})
    return out


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class FeedbackStore:
    """The ratings of one index folder; every method opens its own connection (safe from any thread)."""

    def __init__(self, index_dir: str | Path):
        self.path = Path(index_dir) / FILE_NAME

    def _connect(self, write: bool) -> sqlite3.Connection:
        """A write connection creates the file and table; a read one opens an existing file read-only."""
        target = str(self.path) if write else self.path.resolve().as_uri() + "?mode=ro"
        try:
            db = sqlite3.connect(target, timeout=BUSY_TIMEOUT_S, isolation_level=None, uri=not write)
            if write:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute(SCHEMA)
            return db
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def _error(self, exc: sqlite3.Error) -> RagError:
        return RagError(f"cannot use the feedback file {self.path} ({exc}); check that the index folder is writable "
                        "and the file is not damaged (move it away to start a new one)")

    def record(self, question: Any, answer: Any, rating: Any, comment: Any = None, correction: Any = None,
               completed_question: Any = None, citations: Any = None, generation: str = "",
               replaces: int | None = None) -> int:
        """Store one rating (after checking every field) and return its id; `replaces` withdraws an earlier one
        in the same transaction (a user who changes their mind)."""
        if rating not in RATINGS:
            raise RagError(f"rating must be 'up' or 'down', got {shown(rating)}")
        question = check_text(question, "question", MAX_QUESTION_INPUT, optional=False)
        row = (now(), question, check_text(completed_question, "completed_question", MAX_QUESTION_INPUT) or question,
               check_text(answer, "answer", MAX_ANSWER_CHARS), rating,
               check_text(comment, "comment", MAX_NOTE_CHARS), check_text(correction, "correction", MAX_NOTE_CHARS),
               json.dumps(check_citations(citations), ensure_ascii=False), str(generation))
        db = self._connect(write=True)
        try:
            db.execute("BEGIN IMMEDIATE")
            if replaces is not None:
                db.execute("DELETE FROM feedback WHERE id = ?", (replaces,))
            cursor = db.execute(f"INSERT INTO feedback ({', '.join(COLUMNS[1:])}) VALUES ({', '.join('?' * 9)})",
                                row)
            db.execute("COMMIT")
            return int(cursor.lastrowid)
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        finally:
            db.close()

    def withdraw(self, row_id: int) -> None:
        """Remove a rating (the thumb clicked again)."""
        if not self.path.exists():
            return
        db = self._connect(write=True)
        try:
            db.execute("DELETE FROM feedback WHERE id = ?", (int(row_id),))
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        finally:
            db.close()

    def rows(self) -> list[dict[str, Any]]:
        """Every rating, oldest first, citations decoded; none when nothing was ever recorded (no file is made)."""
        if not self.path.exists():
            return []
        db = self._connect(write=False)
        try:
            rows = db.execute(f"SELECT {', '.join(COLUMNS)} FROM feedback ORDER BY id").fetchall()
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        finally:
            db.close()
        return [{**dict(zip(COLUMNS, row)), "citations": json.loads(row[COLUMNS.index("citations")])} for row in rows]

    def stats(self) -> dict[str, Any]:
        """Counts of the ratings (up, down, with and without a correction) and the time of the last one."""
        rows = self.rows()
        corrected = sum(1 for r in rows if r["correction"])
        return {"file": str(self.path), "ratings": len(rows), "up": sum(r["rating"] == "up" for r in rows),
                "down": sum(r["rating"] == "down" for r in rows), "with_correction": corrected,
                "without_correction": len(rows) - corrected, "last": rows[-1]["time"] if rows else None}

    def eval_cases(self, corpus: str = "reference", split: str = "dev") -> list[dict[str, Any]]:
        """The rated questions as eval lines (see rag.evaluation), the latest rating of a question winning:
        a correction is the expected answer; a 👍 expects the answer given (or "not found" when it found none);
        a 👎 without correction expects "not found", with the rejected answer kept in `rejected`; a 👎 on a
        not-found answer without correction says nothing to check and is left out. Answers only: no gold passage."""
        latest = {case_question(r): r for r in self.rows()}
        cases = []
        for question, row in latest.items():
            answer = row["answer"] if answer_found(row["answer"]) else None
            if row["correction"]:
                answers = [row["correction"]]
            elif row["rating"] == "up":
                answers = [answer] if answer else []
            elif answer:
                answers = []
            else:
                continue
            case = {"id": f"feedback-{row['id']}", "question": question, "answers": answers, "doc_id": None,
                    "evidence": "", "kind": "feedback", "corpus": corpus, "split": split}
            if row["rating"] == "down" and answer:
                case["rejected"] = [answer]
            case["feedback"] = {k: row[k] for k in ("rating", "question", "answer", "comment", "citations",
                                                    "generation", "time")}
            cases.append(case)
        return cases


def eval_line(case: dict[str, Any]) -> str:
    """One JSONL line that stays one line for str.splitlines (the eval loader's), Chinese kept readable: controls,
    bidi marks and the Unicode line separators written as JSON escapes."""
    from rag.present import json_for_terminal

    return json_for_terminal(case, indent=None).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def case_question(row: dict[str, Any]) -> str:
    """An eval question stands alone, so a case asks what was searched (the completed question)."""
    return row["completed_question"] or row["question"]


def answer_found(answer: str | None) -> bool:
    """False for no answer and for the engine's own not-found message (what a client echoes back)."""
    from rag.qa.pipeline import NOT_FOUND_TEXT

    return bool(answer and answer.strip()) and answer not in NOT_FOUND_TEXT.values()
