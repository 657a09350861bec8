"""The eval of written answers: accuracy of what the model wrote, the share its check passes, and whether the
flags were right: each flagged answer is listed for a hand check, and a file of verdicts turns that into a number.

    rag eval --generate [--split dev] [--limit N] [--flagged flagged.jsonl] [--hand-checked verdicts.jsonl]
"""
from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from rag.evaluation import EvalItem, answer_correct
from rag.types import RagError

ANSWER_K = 5
# a hand check of a flag: "wrong" when the flagged part is indeed not backed by the passage it cites (the flag was
# right), "right" when it is (a false alarm); eval/written-dev-handcheck.jsonl also says whether the content was right
VERDICTS = ("wrong", "right")


@dataclass
class WrittenRow:
    """One question: what the model wrote, its check, and the extracted answer beside it."""

    id: str
    corpus: str
    question: str
    expected: list[str]
    negative: bool
    generated: bool
    note: str = ""
    written: str = ""
    verified: bool | None = None
    unsupported: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    written_correct: bool | None = None  # the written answer holds a gold answer (negatives: none is expected)
    extracted: str = ""
    extracted_correct: bool | None = None
    seconds: float = 0.0


def evaluate_written(index_for: Callable[[EvalItem], Any], items: list[EvalItem], llm, progress: bool = False,
                     k: int = ANSWER_K) -> list[WrittenRow]:
    """Ask every question with the model; the extracted answer comes with it (one retrieval for both)."""
    from tqdm import tqdm

    rows = []
    for item in tqdm(items, desc="written", unit="q", disable=not progress, file=sys.stderr):
        answer = index_for(item).answer(item.question, k=k, generate=True, llm=llm)
        extracted = answer.extractive if answer.generated else answer
        row = WrittenRow(id=item.id, corpus=item.corpus, question=item.question, expected=list(item.answers),
                         negative=item.negative, generated=answer.generated, note=answer.note,
                         seconds=round(answer.elapsed_ms / 1000, 2))
        if extracted is not None:
            row.extracted = extracted.text or "" if extracted.found else ""
            row.extracted_correct = (not extracted.found if item.negative
                                     else extracted.found and answer_correct(extracted.text, item.answers))
        if answer.generated:
            row.written, row.verified = answer.text or "", answer.verified
            row.unsupported = list(answer.unsupported)
            row.problems = [p for st in answer.statements for p in st.problems]
            row.written_correct = False if item.negative else answer_correct(answer.text, item.answers)
        rows.append(row)
    return rows


def load_verdicts(path: str | Path) -> dict[str, str]:
    """Hand verdicts on flagged answers: JSONL lines {"id": …, "verdict": "wrong"|"right"}."""
    verdicts = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            verdict = str(data["verdict"])
            if verdict not in VERDICTS:
                raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}")
            verdicts[str(data["id"])] = verdict
        except (ValueError, KeyError, TypeError) as exc:
            raise RagError(f"{path}:{number}: {exc}") from None
    return verdicts


def summary(rows: list[WrittenRow], verdicts: dict[str, str] | None = None) -> dict[str, Any]:
    """Accuracy, the check's pass share and the flags, on the questions with a gold answer; negatives apart."""
    positives = [r for r in rows if r.expected]  # open questions (a document but no short answer) are not scored
    written = [r for r in positives if r.generated]
    verified = [r for r in written if r.verified]
    flagged = [r for r in written if not r.verified]
    shown_correct = sum((r.written_correct if r.generated and r.verified else r.extracted_correct) or False
                        for r in positives)
    result: dict[str, Any] = {
        "questions": len(rows), "with_answer": len(positives), "negatives": sum(r.negative for r in rows),
        "open": sum(not r.expected and not r.negative for r in rows),
        "written": len(written),
        "fell_back": dict(Counter(_reason(r.note) for r in positives if not r.generated)),
        "written_accuracy": _share(sum(bool(r.written_correct) for r in written), len(written)),
        "extracted_accuracy": _share(sum(bool(r.extracted_correct) for r in positives), len(positives)),
        "shown_accuracy": _share(shown_correct, len(positives)),  # verified written answer, else the extracted one
        "verified_share": _share(len(verified), len(written)),
        "verified_but_wrong": sum(not r.written_correct for r in verified),
        "flagged": len(flagged),
        "flagged_without_gold": sum(not r.written_correct for r in flagged),
        "negatives_written": sum(r.generated for r in rows if r.negative),
    }
    if verdicts is not None:
        checked = [r for r in flagged if r.id in verdicts]
        result["flagged_hand_checked"] = len(checked)
        result["flagged_confirmed_wrong"] = sum(verdicts[r.id] == "wrong" for r in checked)
        result["flagged_confirmed_share"] = _share(result["flagged_confirmed_wrong"], len(checked))
    return result


def _reason(note: str) -> str:
    return note.split(" (")[0].split(":")[0][:80] or "(none)"


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def flagged_for_hand_check(rows: list[WrittenRow]) -> list[dict[str, Any]]:
    """The flagged answers as JSONL records to fill in: set "verdict" to wrong (the flag was right) or right."""
    return [{**asdict(r), "verdict": ""} for r in rows if r.generated and not r.verified]


def format_summary(data: dict[str, Any]) -> str:
    lines = [f"questions {data['questions']} ({data['with_answer']} with an answer, {data['negatives']} negatives, "
             f"{data['open']} open, not scored)",
             f"written by the model     {data['written']}",
             f"fell back (reason: n)    {data['fell_back'] or '-'}",
             f"written accuracy         {data['written_accuracy']}",
             f"extracted accuracy       {data['extracted_accuracy']}",
             f"shown accuracy           {data['shown_accuracy']}  (verified written answer, else extracted)",
             f"verified share           {data['verified_share']}",
             f"verified but wrong       {data['verified_but_wrong']}",
             f"flagged                  {data['flagged']} ({data['flagged_without_gold']} without a gold answer)",
             f"negatives written        {data['negatives_written']}"]
    if "flagged_hand_checked" in data:
        lines.append(f"flags hand-checked       {data['flagged_hand_checked']}: {data['flagged_confirmed_wrong']} "
                     f"confirmed wrong ({data['flagged_confirmed_share']})")
    return "\n".join(lines) + "\n"
