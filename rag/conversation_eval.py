"""The follow-up eval: conversations of two or three turns (eval/conversations.jsonl), asked turn by turn with the
earlier turns as history, scored on the turns that lean on the one before.

    rag eval --conversations [--split test|dev|all]
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from rag.evaluation import REPO, answer_correct
from rag.types import RagError

CONVERSATIONS = REPO / "eval" / "conversations.jsonl"
ANSWER_K = 5


@dataclass
class ConversationTurn:
    """One turn: the question as asked, and what counts as its right answer (nothing, for a negative)."""

    question: str
    answers: list[str] = field(default_factory=list)
    doc_id: str = ""
    follow_up: str = ""  # "" for the first turn; year, qualifier, subset, pronoun, subject, document, english
    negative: bool = False
    completed: str = ""  # how a careful reader writes the follow-up alone (for reading the report, never fed in)


@dataclass
class Conversation:
    id: str
    corpus: str
    split: str
    turns: list[ConversationTurn]


@dataclass
class TurnResult:
    """How one follow-up turn went: right, wrong (an answer that is not the gold one) or abstained."""

    conversation: str
    corpus: str
    form: str
    negative: bool
    question: str
    completed: str
    expected: list[str]
    answer: str
    found: bool
    correct: bool

    @property
    def wrong(self) -> bool:
        return self.found and not self.correct


def load_conversations(path: str | os.PathLike = CONVERSATIONS) -> list[Conversation]:
    """Read the conversation set; a malformed line is an error naming the file and line."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise RagError(f"cannot read conversation set {path}: {exc}") from None
    conversations, seen = [], set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            turns = [ConversationTurn(question=str(t["question"]), answers=[str(a) for a in t.get("answers") or []],
                                      doc_id=str(t.get("doc_id") or ""),
                                      follow_up=str(t.get("follow_up") or ""), negative=bool(t.get("negative")),
                                      completed=str(t.get("completed") or "")) for t in data["turns"]]
            conversation = Conversation(str(data["id"]), str(data.get("corpus") or "reference"),
                                        str(data.get("split") or ""), turns)
        except (ValueError, KeyError, TypeError) as exc:
            raise RagError(f"{path}:{number}: not a valid conversation ({type(exc).__name__}: {exc})") from None
        if conversation.id in seen or len(turns) < 2:
            raise RagError(f"{path}:{number}: duplicate id or fewer than two turns in {conversation.id!r}")
        seen.add(conversation.id)
        conversations.append(conversation)
    return conversations


def run_conversation(index, conversation: Conversation) -> list[TurnResult]:
    """Ask the turns in order, each with the earlier turns (and the engine's own answers) as history."""
    history: list[dict] = []
    results = []
    for position, turn in enumerate(conversation.turns):
        answer = index.answer(turn.question, k=ANSWER_K, history=history)
        text = answer.text or ""
        if position:
            correct = (not answer.found) if turn.negative else (answer.found and answer_correct(text, turn.answers))
            results.append(TurnResult(conversation.id, conversation.corpus, turn.follow_up or "other", turn.negative,
                                      turn.question, answer.completed_question, turn.answers, text,
                                      bool(answer.found), bool(correct)))
        history.append({"question": turn.question, "answer": text,
                        "doc_id": answer.citations[0].doc_id if answer.found and answer.citations else ""})
    return results


def evaluate_conversations(index_for: Callable[[str], object], split: str = "test",
                           path: str | os.PathLike = CONVERSATIONS) -> list[TurnResult]:
    """Every follow-up turn of the chosen part; `index_for(corpus)` gives the index a conversation is asked of."""
    results = []
    for conversation in load_conversations(path):
        if split == "all" or conversation.split == split:
            results.extend(run_conversation(index_for(conversation.corpus), conversation))
    return results


def summary(results: list[TurnResult]) -> dict[str, dict[str, float]]:
    """Per form and overall: turns, right, wrong, accuracy, wrong rate of the answers given, negatives answered."""
    groups: dict[str, list[TurnResult]] = {"all": results}
    for result in results:
        groups.setdefault(result.form, []).append(result)
    table = {}
    for name, rows in sorted(groups.items(), key=lambda kv: (kv[0] != "all", kv[0])):
        positives = [r for r in rows if not r.negative]
        given = [r for r in positives if r.found]
        table[name] = {
            "turns": len(rows), "right": sum(r.correct for r in rows),
            "accuracy": round(sum(r.correct for r in rows) / len(rows), 3) if rows else 0.0,
            "given": len(given), "wrong": sum(r.wrong for r in positives),
            "wrong_rate": round(sum(r.wrong for r in positives) / len(given), 3) if given else 0.0,
            "negatives": sum(r.negative for r in rows), "negatives_answered": sum(r.negative and r.found for r in rows),
        }
    return table


def format_summary(table: dict[str, dict[str, float]]) -> str:
    """A Markdown table of `summary`, one row per follow-up form."""
    header = "| form | turns | right | accuracy | answers given | wrong | wrong rate | negatives answered |"
    lines = [header, "|" + "---|" * 8]
    for name, row in table.items():
        lines.append(f"| {name} | {row['turns']} | {row['right']} | {row['accuracy']:.3f} | {row['given']} | "
                     f"{row['wrong']} | {row['wrong_rate']:.3f} | {row['negatives_answered']}/{row['negatives']} |")
    return "\n".join(lines)
