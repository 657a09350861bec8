"""Eval sets and their metrics: retrieval hit@k / MRR per mode, answer accuracy, abstention, latency.

An eval file is JSONL, one question a line:
    {"id", "question", "answers": [...], "doc_id", "evidence", "kind", "corpus"}
Negatives (nothing in the corpus answers them) have `answers: []` and `doc_id: null`.
`corpus` names an entry of the registry below ("reference", "tipdm", "ncp"), each built into an index in
the user cache and reused (builds are incremental, so an unchanged corpus costs a load).
"""
from __future__ import annotations

import glob
import json
import os
import re
import shlex
import sys
import time
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from rag.text import normalize
from rag.types import RagError

REPO = Path(__file__).resolve().parents[1]
MODES = ("hybrid", "bm25", "dense")
SEARCH_K = 10  # one search at this depth gives every retrieval metric
ANSWER_K = 5
FAIL_RANK = 3  # a positive whose gold passage is not in the top 3 of the answer mode is listed as a failure
REGENERATE_NOTE = ("This report is generated: regenerate it with the command above whenever chunking, "
                   "retrieval or answering changes.")


# ---- eval items --------------------------------------------------------------------------------
@dataclass
class EvalItem:
    """One eval question with what counts as a correct retrieval and a correct answer."""

    id: str
    question: str
    answers: list[str] = field(default_factory=list)
    doc_id: str | None = None
    evidence: str = ""
    kind: str = ""
    corpus: str = "reference"
    source: str = ""  # the eval file it came from
    split: str = ""  # dev (tune on it) or test (report it; never tune on it)

    @property
    def negative(self) -> bool:
        return self.doc_id is None and not self.answers


def load_eval_set(path: str | os.PathLike) -> list[EvalItem]:
    """Read an eval JSONL file; a malformed line is an error naming the file and line."""
    path = Path(path)
    items: list[EvalItem] = []
    seen: set[str] = set()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise RagError(f"cannot read eval set {path}: {exc}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            item = EvalItem(
                id=str(data["id"]),
                question=str(data["question"]),
                answers=[str(a) for a in (data.get("answers") or [])],
                doc_id=data.get("doc_id") or None,
                evidence=str(data.get("evidence") or ""),
                kind=str(data.get("kind") or "other"),
                corpus=str(data.get("corpus") or "reference"),
                source=str(path),
                split=str(data.get("split") or ""),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise RagError(f"{path}:{number}: not a valid eval line ({type(exc).__name__}: {exc})") from None
        if item.id in seen:
            raise RagError(f"{path}:{number}: duplicate id {item.id!r}")
        if item.doc_id and not item.evidence:
            raise RagError(f"{path}:{number}: item {item.id!r} has a doc_id but no evidence")
        seen.add(item.id)
        items.append(item)
    return items


def default_eval_files() -> list[str]:
    """eval/*.jsonl of the repository, sorted, then the CMRC 2018 trial set when ../shared holds it."""
    files = sorted(f for f in glob.glob(str(REPO / "eval" / "*.jsonl"))
                   if Path(f).name != "conversations.jsonl")  # turns, not questions: `rag eval --conversations`
    if (shared_dir() / CMRC_FILE).is_file():
        files.append(CMRC_SET)
    return files


# ---- the CMRC 2018 trial set (general-domain check; CC BY-SA 4.0, Cui et al., github.com/ymcui/cmrc2018) ------
CMRC_SET = "cmrc"  # the name that stands for it in a list of eval files
CMRC_FILE = "data/cmrc2018_trial/cmrc2018_trial.json"
CMRC_CORPUS_FILE = "cmrc2018_trial_contexts.jsonl"  # its paragraphs as a JSONL collection, derived into the cache


def _cmrc_paragraphs() -> list[dict]:
    source = shared_dir() / CMRC_FILE
    if not source.is_file():
        raise CorpusUnavailable(f"{source} is absent (set RAG_SHARED_DIR or put the shared data at "
                                f"{REPO.parent / 'shared'})")
    data = json.loads(source.read_text(encoding="utf-8"))
    return [p for article in data["data"] for p in article["paragraphs"]]


def cmrc_items() -> list[EvalItem]:
    """The CMRC trial questions as eval items over the 256 paragraphs (one document each); the source's two
    blank questions are left out (1,000 of 1,002)."""
    import hashlib

    paragraphs = _cmrc_paragraphs()
    order = sorted((p["id"] for p in paragraphs), key=lambda i: hashlib.sha1(i.encode("utf-8")).hexdigest())
    split = {pid: ("dev" if n % 2 == 0 else "test") for n, pid in enumerate(order)}
    items = []
    for p in paragraphs:
        for qa in p["qas"]:
            answers = list(dict.fromkeys(a["text"].strip() for a in qa["answers"] if a["text"].strip()))
            if not answers or not qa["question"].strip():
                continue
            items.append(EvalItem(id=qa["id"], question=qa["question"], answers=answers,
                                  doc_id=f"{CMRC_CORPUS_FILE}#{p['id']}", evidence=answers[0], kind="cmrc",
                                  corpus="cmrc", source=CMRC_SET, split=split[p["id"]]))
    return items


def _cmrc_corpus() -> Path:
    """The CMRC paragraphs written as `{"id", "text"}` lines into the cache (rewritten only when they differ)."""
    lines = "".join(json.dumps({"id": p["id"], "text": p["context"]}, ensure_ascii=False) + "\n"
                    for p in _cmrc_paragraphs())
    path = _cache_dir() / "eval-data" / CMRC_CORPUS_FILE
    if not path.is_file() or path.read_text(encoding="utf-8") != lines:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
        tmp.write_text(lines, encoding="utf-8")
        os.replace(tmp, path)
    return path


# ---- corpus registry ---------------------------------------------------------------------------
class CorpusUnavailable(RagError):
    """A registered corpus whose data is not on this machine (e.g. ../shared is absent)."""


SHARED_COLLECTIONS = {  # name -> file below the shared folder; its columns are in corpora/<name>.rag.json
    "tipdm": "data/tipdm2020_gov_messages/messages_and_replies.xlsx",
    "ncp": "data/ncp_policies/documents.jsonl",
}
CORPORA = ("reference",) + tuple(SHARED_COLLECTIONS) + ("cmrc",)


def shared_dir() -> Path:
    """$RAG_SHARED_DIR, else <repo>/../shared."""
    return Path(os.environ.get("RAG_SHARED_DIR") or REPO.parent / "shared")


def _cache_dir() -> Path:
    from rag.search.model import cache_dir

    return Path(cache_dir())


def collection_mapping(name: str) -> dict[str, Any] | None:
    """The column mapping of a registered corpus: the repo's corpora/<name>.rag.json (None for "reference",
    a folder of documents that needs none)."""
    if name in ("reference", "cmrc"):
        return None
    from rag.ingest.formats import load_mapping

    return load_mapping(REPO / "corpora" / f"{name}.rag.json")


def corpus_path(name: str) -> Path:
    """What a registered corpus indexes: the reference folder, or the shared collection file itself
    (read in place; ../shared is read-only). Raises CorpusUnavailable with the reason."""
    if name == "reference":
        return REPO / "corpus"
    if name == "cmrc":
        return _cmrc_corpus()
    if name not in SHARED_COLLECTIONS:
        raise CorpusUnavailable(f"unknown corpus {name!r}; known corpora: {', '.join(CORPORA)}")
    source = shared_dir() / SHARED_COLLECTIONS[name]
    if not source.is_file():
        raise CorpusUnavailable(f"{source} is absent (set RAG_SHARED_DIR or put the shared data at "
                                f"{REPO.parent / 'shared'})")
    return source


def eval_index_dir(name: str, model: str | None = None) -> Path:
    """Where the eval index of a corpus lives in the user cache (one folder per non-default model)."""
    folder = name if not model else f"{name}-{re.sub(r'[^A-Za-z0-9._-]+', '_', model).strip('_')}"
    return _cache_dir() / "eval-index" / folder


def corpus_index(name: str, model: str | None = None, progress: bool = True):
    """Build or update (incrementally) and load the eval index of a registered corpus."""
    import rag

    return rag.build_index(corpus_path(name), eval_index_dir(name, model), model=model,
                           mapping=collection_mapping(name), progress=progress)


# ---- metric functions --------------------------------------------------------------------------
def first_hit_rank(flags: Sequence[bool]) -> int | None:
    """1-based rank of the first relevant result, None when none is relevant."""
    for rank, flag in enumerate(flags, 1):
        if flag:
            return rank
    return None


def hit_at(ranks: Sequence[int | None], k: int) -> float | None:
    """Share of questions whose first relevant result is within the top k."""
    if not ranks:
        return None
    return sum(1 for r in ranks if r is not None and r <= k) / len(ranks)


def mrr_at(ranks: Sequence[int | None], k: int = 10) -> float | None:
    """Mean reciprocal rank, counting a first hit below rank k as 0."""
    if not ranks:
        return None
    return sum(1.0 / r for r in ranks if r is not None and r <= k) / len(ranks)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, int(-(-q * len(ordered) // 100)) - 1))
    return ordered[index]


def _compact(text: str) -> str:
    """Normalised text with whitespace removed, for containment tests that ignore line breaks."""
    return re.sub(r"\s+", "", normalize(text))


def contains(haystack: str | None, needle: str) -> bool:
    """Whether `needle` occurs in `haystack` after normalisation (width, case, whitespace)."""
    if not haystack or not needle.strip():
        return False
    return _compact(needle) in _compact(haystack)


def evidence_spans(document_text: str, evidence: str) -> list[tuple[int, int]]:
    """Every (start, end) where the evidence occurs in the document, ignoring width, case and whitespace."""
    compact = _compact(evidence)
    if not compact:
        return []
    pattern = r"\s*".join(re.escape(ch) for ch in compact)
    return [(m.start(), m.end()) for m in re.finditer(pattern, normalize(document_text))]


def is_relevant(hit, doc_id: str | None, evidence: str, straddle_spans: Sequence[tuple[int, int]] = ()) -> bool:
    """A hit from the gold document that holds the evidence (or overlaps it when it straddles chunks)."""
    if doc_id is None or hit.doc_id != doc_id:
        return False
    if contains(hit.text, evidence):
        return True
    return any(hit.start < end and start < hit.end for start, end in straddle_spans)


def answer_correct(text: str | None, answers: Sequence[str]) -> bool:
    """An answer is right when it contains one of the accepted answers after normalisation."""
    return any(contains(text, a) for a in answers)


# ---- results -----------------------------------------------------------------------------------
@dataclass
class Metrics:
    """The numbers of one group of questions (overall, one corpus or one kind) in one mode."""

    questions: int = 0
    positives: int = 0  # questions with a gold document
    hit1: float | None = None
    hit3: float | None = None
    hit5: float | None = None
    mrr10: float | None = None
    answerable: int = 0  # questions with accepted answers
    answer_accuracy: float | None = None
    negatives: int = 0
    abstention: float | None = None  # share of negatives answered "not found"
    false_answers: int = 0  # negatives answered anyway
    answered: int = 0  # questions given an answer (answerable or not)
    wrong_answers: int = 0  # answers given that are wrong: a wrong value, or any answer to a negative
    wrong_rate: float | None = None  # wrong_answers / answered
    search_p50_ms: float | None = None
    search_p95_ms: float | None = None
    answer_p50_ms: float | None = None
    answer_p95_ms: float | None = None


@dataclass
class Row:
    """What happened to one question."""

    id: str
    corpus: str
    kind: str
    question: str
    answers: list[str]
    doc_id: str | None
    ranks: dict[str, int | None] = field(default_factory=dict)  # mode -> rank of the first relevant hit
    top: dict[str, str] = field(default_factory=dict)  # mode -> "doc_id: passage start" of the best hit
    search_ms: dict[str, float] = field(default_factory=dict)
    answer_text: str | None = None
    found: bool | None = None
    correct: bool | None = None  # answerable: right answer; negative: abstained
    answer_ms: float | None = None
    failures: list[str] = field(default_factory=list)
    note: str = ""


@dataclass
class EvalResult:
    """Everything an eval run measured, per mode and group, with the per-question rows."""

    files: list[str]
    modes: list[str]
    answer_mode: str
    overall: dict[str, Metrics]  # mode -> metrics
    by_corpus: dict[str, dict[str, Metrics]]  # mode -> corpus -> metrics
    by_kind: dict[str, dict[str, Metrics]]  # mode -> kind -> metrics
    rows: list[Row]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (id, reason)
    indexes: dict[str, dict[str, Any]] = field(default_factory=dict)  # corpus -> documents, chunks, model
    seconds: float = 0.0
    split: str = "all"  # which part of the eval sets was run

    @property
    def failures(self) -> list[Row]:
        return [row for row in self.rows if row.failures]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compute_metrics(rows: Sequence[Row], mode: str, answer_mode: str) -> Metrics:
    """Aggregate rows for one retrieval mode; answer numbers only come from the answer mode."""
    positives = [r for r in rows if r.doc_id is not None]
    ranks = [r.ranks.get(mode) for r in positives]
    metrics = Metrics(questions=len(rows), positives=len(positives))
    metrics.hit1, metrics.hit3, metrics.hit5 = hit_at(ranks, 1), hit_at(ranks, 3), hit_at(ranks, 5)
    metrics.mrr10 = mrr_at(ranks, 10)
    searches = [r.search_ms[mode] for r in rows if mode in r.search_ms]
    metrics.search_p50_ms, metrics.search_p95_ms = percentile(searches, 50), percentile(searches, 95)
    if mode != answer_mode:
        return metrics
    answerable = [r for r in rows if r.answers and r.found is not None]
    negatives = [r for r in rows if r.doc_id is None and not r.answers and r.found is not None]
    metrics.answerable = len(answerable)
    metrics.answer_accuracy = (sum(bool(r.correct) for r in answerable) / len(answerable)) if answerable else None
    metrics.negatives = len(negatives)
    metrics.abstention = (sum(not r.found for r in negatives) / len(negatives)) if negatives else None
    metrics.false_answers = sum(bool(r.found) for r in negatives)
    metrics.answered = sum(bool(r.found) for r in answerable) + metrics.false_answers
    metrics.wrong_answers = sum(bool(r.found) and not r.correct for r in answerable) + metrics.false_answers
    metrics.wrong_rate = (metrics.wrong_answers / metrics.answered) if metrics.answered else None
    latencies = [r.answer_ms for r in rows if r.answer_ms is not None]
    metrics.answer_p50_ms, metrics.answer_p95_ms = percentile(latencies, 50), percentile(latencies, 95)
    return metrics


def row_failures(row: Row, answer_mode: str) -> list[str]:
    """Why a question counts as failed: gold passage not in the top 3, wrong answer, false answer."""
    reasons = []
    if row.doc_id is not None and answer_mode in row.ranks:
        rank = row.ranks[answer_mode]
        if rank is None or rank > FAIL_RANK:
            reasons.append(f"gold passage {'not in top ' + str(SEARCH_K) if rank is None else 'at rank ' + str(rank)}")
    if row.answers and row.found is not None and not row.correct:
        reasons.append("no answer" if not row.found else "wrong answer")
    if row.doc_id is None and not row.answers and row.found:
        reasons.append("answered a question the corpus cannot answer")
    return reasons


# ---- running -----------------------------------------------------------------------------------
def chunks_by_doc(index) -> dict[str, list[tuple[str, int, int]]]:
    """(text, start, end) of each document's chunks, to tell whether evidence fits in one chunk."""
    by_doc: dict[str, list[tuple[str, int, int]]] = {}
    for chunk in index.chunks:
        by_doc.setdefault(chunk.doc_id, []).append((chunk.text, chunk.start, chunk.end))
    return by_doc


STRADDLES = "evidence straddles chunks"
OUTSIDE = "evidence lies outside every chunk of the gold document"


def gold_spans(index, item: EvalItem, by_doc: dict[str, list[tuple[str, int, int]]]) -> tuple[list[tuple[int, int]], str]:
    """Evidence offsets when no single chunk of the gold document holds the whole evidence (else none)."""
    try:
        document = index.document(item.doc_id)
    except RagError:
        return [], f"gold document {item.doc_id!r} is not in the index"
    spans = evidence_spans(document.text, item.evidence)
    if not spans:
        return [], f"evidence not found in {item.doc_id}"
    chunks = by_doc.get(item.doc_id, [])
    if any(contains(text, item.evidence) for text, _, _ in chunks):
        return [], ""
    if not any(start < e and s < end for _, start, end in chunks for s, e in spans):
        return [], OUTSIDE
    return spans, STRADDLES


def evaluate_item(index, item: EvalItem, modes: Sequence[str], answer_mode: str | None,
                  by_doc: dict[str, list[tuple[str, int, int]]] | None = None) -> Row:
    """One search per mode (k=10) and, when answer_mode is set, one index.answer call."""
    row = Row(id=item.id, corpus=item.corpus, kind=item.kind, question=item.question,
              answers=list(item.answers), doc_id=item.doc_id)
    spans: list[tuple[int, int]] = []
    if item.doc_id is not None:
        spans, row.note = gold_spans(index, item, by_doc if by_doc is not None else chunks_by_doc(index))
    for mode in modes:
        index.embedder.forget_queries()  # each mode timed on a new question
        started = time.perf_counter()
        hits = index.search(item.question, k=SEARCH_K, mode=mode)
        row.search_ms[mode] = round((time.perf_counter() - started) * 1000, 2)
        if item.doc_id is not None:
            row.ranks[mode] = first_hit_rank([is_relevant(h, item.doc_id, item.evidence, spans) for h in hits])
        if hits:
            row.top[mode] = f"{hits[0].doc_id}: {hits[0].text[:60]}"
    if answer_mode is not None:
        index.embedder.forget_queries()  # time the answer as a new question, not one the retrieval runs just embedded
        started = time.perf_counter()
        result = index.answer(item.question, k=ANSWER_K, mode=answer_mode)
        row.answer_ms = round((time.perf_counter() - started) * 1000, 2)
        row.answer_text, row.found = result.text, bool(result.found)
        if item.answers:
            row.correct = bool(result.found) and answer_correct(result.text, item.answers)
        elif item.doc_id is None:
            row.correct = not result.found
    row.failures = row_failures(row, answer_mode or "")
    return row


SPLITS = ("test", "dev", "all")


def _load_items(paths: Sequence[str], limit: int | None, split: str = "all") -> list[EvalItem]:
    if split not in SPLITS:
        raise RagError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    items: list[EvalItem] = []
    for path in paths:
        loaded = cmrc_items() if path == CMRC_SET else load_eval_set(path)
        if split != "all":
            loaded = [item for item in loaded if item.split == split]
        items.extend(loaded[:limit] if limit else loaded)
    return items


def _modes(mode: str) -> tuple[list[str], str]:
    if mode == "all":
        return list(MODES), "hybrid"
    if mode not in MODES:
        raise RagError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)} or all")
    return [mode], mode


def _group(rows: Iterable[Row], key: Callable[[Row], str]) -> dict[str, list[Row]]:
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(key(row), []).append(row)
    return dict(sorted(groups.items()))


def evaluate(path_or_paths: str | os.PathLike | Sequence[str | os.PathLike] | None = None, index=None,
             mode: str = "hybrid", limit: int | None = None, progress: bool = True,
             model: str | None = None, split: str = "all") -> EvalResult:
    """Run eval sets (the test part, the dev part or all); with `index` every question is asked of it, else of
    its corpus's eval index. "cmrc" in the list of files stands for the CMRC 2018 trial set."""
    from tqdm import tqdm

    started = time.perf_counter()
    if path_or_paths is None:
        paths = default_eval_files()
    elif isinstance(path_or_paths, (str, os.PathLike)):
        paths = [str(path_or_paths)]
    else:
        paths = [str(p) for p in path_or_paths]
    if not paths:
        raise RagError(f"no eval files given and none in {REPO / 'eval'}")
    modes, answer_mode = _modes(mode)
    try:
        items = _load_items(paths, limit, split)
    except CorpusUnavailable as exc:
        print(f"rag eval: skipping the CMRC questions: {exc}", file=sys.stderr)
        items = _load_items([p for p in paths if p != CMRC_SET], limit, split)
    indexes: dict[str, Any] = {}
    skipped: list[tuple[str, str]] = []
    unavailable: dict[str, str] = {}
    runnable: list[EvalItem] = []
    for item in items:
        if index is not None:
            runnable.append(item)
            continue
        if item.corpus not in indexes and item.corpus not in unavailable:
            try:
                indexes[item.corpus] = corpus_index(item.corpus, model=model, progress=progress)
            except CorpusUnavailable as exc:
                unavailable[item.corpus] = str(exc)
                print(f"rag eval: skipping the {item.corpus!r} questions: {exc}", file=sys.stderr)
        if item.corpus in unavailable:
            skipped.append((item.id, unavailable[item.corpus]))
        else:
            runnable.append(item)

    def index_for(item: EvalItem):
        return index if index is not None else indexes[item.corpus]

    chunk_maps: dict[int, dict[str, list[tuple[str, int, int]]]] = {}
    rows: list[Row] = []
    for item in tqdm(runnable, desc="eval", unit="q", disable=not progress, file=sys.stderr):
        target = index_for(item)
        if id(target) not in chunk_maps:  # the first call loads the model; keep it out of the latencies
            for m in modes:
                target.search(item.question, k=SEARCH_K, mode=m)
            target.answer(item.question, k=ANSWER_K, mode=answer_mode)
            chunk_maps[id(target)] = chunks_by_doc(target)
        rows.append(evaluate_item(target, item, modes, answer_mode, chunk_maps[id(target)]))

    used = {"(given)": index} if index is not None else indexes
    result = EvalResult(
        files=paths, modes=modes, answer_mode=answer_mode, split=split,
        overall={m: compute_metrics(rows, m, answer_mode) for m in modes},
        by_corpus={m: {c: compute_metrics(g, m, answer_mode) for c, g in _group(rows, lambda r: r.corpus).items()}
                   for m in modes},
        by_kind={m: {k: compute_metrics(g, m, answer_mode) for k, g in _group(rows, lambda r: r.kind).items()}
                 for m in modes},
        rows=rows, skipped=skipped,
        indexes={name: {"documents": len(ix.documents()), "chunks": len(ix.chunks),
                        "model": ix.manifest.get("model", ""), "index_dir": str(ix.index_dir)}
                 for name, ix in used.items()},
    )
    result.seconds = round(time.perf_counter() - started, 1)
    return result


# ---- formatting --------------------------------------------------------------------------------
def display_width(text: str) -> int:
    """Terminal columns of a string: wide (CJK) characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int, right: bool) -> str:
    gap = " " * max(0, width - display_width(text))
    return gap + text if right else text + gap


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]], right_from: int = 1) -> str:
    """Plain-text table aligned by display width; columns from `right_from` on are right-aligned."""
    widths = [max(display_width(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for n, cells in enumerate([header, *rows]):
        lines.append("  ".join(_pad(str(c), widths[i], i >= right_from) for i, c in enumerate(cells)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], right_from: int = 1) -> str:
    """The same table as GitHub Markdown (pipes in cells escaped)."""
    def cell(value: Any) -> str:
        text = str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return text.replace("|", "\\|").replace("\n", " ")

    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _f(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}"


def _groups(result: EvalResult, mode: str) -> list[tuple[str, Metrics]]:
    out = [("overall", result.overall[mode])]
    if len(result.by_corpus[mode]) > 1:
        out += [(f"corpus {c}", m) for c, m in result.by_corpus[mode].items()]
    out += [(f"kind {k}", m) for k, m in result.by_kind[mode].items()]
    return out


def comparison_table(result: EvalResult) -> tuple[list[str], list[list[str]]]:
    """Overall numbers with the modes side by side."""
    header = ["overall"] + result.modes
    metrics = [result.overall[m] for m in result.modes]
    rows = [
        ["questions with a gold passage"] + [str(m.positives) for m in metrics],
        ["hit@1"] + [_f(m.hit1) for m in metrics],
        ["hit@3"] + [_f(m.hit3) for m in metrics],
        ["hit@5"] + [_f(m.hit5) for m in metrics],
        ["MRR@10"] + [_f(m.mrr10) for m in metrics],
        ["search p50 ms"] + [_ms(m.search_p50_ms) for m in metrics],
        ["search p95 ms"] + [_ms(m.search_p95_ms) for m in metrics],
    ]
    return header, rows


def retrieval_table(result: EvalResult) -> tuple[list[str], list[list[str]]]:
    """hit@k and MRR per group (rows) and mode (columns), e.g. `0.950 / 0.900 / 0.850`."""
    header = ["group", "n"] + [f"{name} ({'/'.join(result.modes)})" for name in ("hit@1", "hit@3", "hit@5", "MRR@10")]
    rows = []
    for label, base in _groups(result, result.modes[0]):
        if not base.positives:
            continue
        per_mode = [dict(_groups(result, m))[label] for m in result.modes]
        rows.append([label, str(base.positives)] + [
            " / ".join(_f(getattr(m, attr)) for m in per_mode) for attr in ("hit1", "hit3", "hit5", "mrr10")])
    return header, rows


def answer_table(result: EvalResult) -> tuple[list[str], list[list[str]]]:
    """Answer accuracy, wrong answers among those given, and abstention per group, in the answer mode."""
    header = ["group", "answerable", "accuracy", "answers given", "wrong", "wrong rate", "negatives", "abstained",
              "false answers", "answer p50 ms", "p95 ms"]
    rows = []
    for label, m in _groups(result, result.answer_mode):
        if not m.answerable and not m.negatives:
            continue
        rows.append([label, str(m.answerable), _f(m.answer_accuracy), str(m.answered), str(m.wrong_answers),
                     _f(m.wrong_rate), str(m.negatives), _f(m.abstention),
                     str(m.false_answers), _ms(m.answer_p50_ms), _ms(m.answer_p95_ms)])
    return header, rows


def _why(row: Row) -> str:
    return "; ".join(row.failures + ([row.note] if row.note and row.note != STRADDLES else []))


def _expected(row: Row) -> str:
    if row.doc_id is None and not row.answers:
        return "(not found)"
    return " | ".join(row.answers) + (f" [{row.doc_id}]" if row.doc_id else "")


def _got(row: Row) -> str:
    ranks = ", ".join(f"{m} {r if r is not None else '—'}" for m, r in row.ranks.items())
    answer = "(not found)" if row.found is False else _short(row.answer_text or "", 120)
    return answer + (f"; gold rank: {ranks}" if ranks else "")


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def _summary_lines(result: EvalResult) -> list[str]:
    counts = {}
    for row in result.rows:
        counts[row.corpus] = counts.get(row.corpus, 0) + 1
    lines = [f"files: {', '.join(os.path.relpath(f) for f in result.files)}",
             f"questions: {len(result.rows)} ({', '.join(f'{c} {n}' for c, n in sorted(counts.items()))}); "
             f"answers in {result.answer_mode} mode; {result.seconds:.0f} s on {os.cpu_count()} CPUs "
             f"(latencies rise with machine load: 1-min load {_load():.1f} when written)"]
    for name, info in result.indexes.items():
        lines.append(f"index {name}: {info['documents']} documents, {info['chunks']} chunks, model {info['model']}")
    for item_id, reason in _dedupe_reasons(result.skipped):
        lines.append(f"skipped {item_id}: {reason}")
    return lines


def _dedupe_reasons(skipped: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    by_reason: dict[str, list[str]] = {}
    for item_id, reason in skipped:
        by_reason.setdefault(reason, []).append(item_id)
    return [(f"{len(ids)} question(s)", reason) for reason, ids in by_reason.items()]


def format_text(result: EvalResult) -> str:
    """The console report: summary, side-by-side overall, per-group tables, failures."""
    parts = ["\n".join(_summary_lines(result))]
    if len(result.modes) > 1:
        parts.append(format_table(*comparison_table(result)))
    parts.append("Retrieval (first passage holding the evidence; k=10)\n" + format_table(*retrieval_table(result)))
    parts.append(f"Answers ({result.answer_mode})\n" + format_table(*answer_table(result)))
    failures = result.failures
    if failures:
        lines = [f"Failed questions ({len(failures)})"]
        for row in failures:
            lines.append(f"  {row.id} [{_why(row)}] {row.question}")
            lines.append(f"      expected: {_short(_expected(row), 120)}")
            lines.append(f"      got:      {_got(row)}")
        parts.append("\n".join(lines))
    else:
        parts.append("No failed questions.")
    return "\n\n".join(parts) + "\n"


def format_markdown(result: EvalResult, command: str) -> str:
    """The Markdown report: the command, the tables and the failed questions."""
    part = {"test": "test parts", "dev": "dev parts", "all": "dev and test parts"}.get(result.split, result.split)
    lines = [f"# Evaluation report ({part})", "", f"Produced by `{command}` on {time.strftime('%Y-%m-%d %H:%M')}.", "",
             REGENERATE_NOTE, ""]
    lines += [f"- {line}" for line in _summary_lines(result)]
    lines.append("")
    lines.append("A retrieval hit is a passage of the gold document that contains the evidence sentence "
                 "(normalised); when the evidence straddles two chunks, a gold passage overlapping it counts. "
                 "An answer is correct when it contains an accepted answer (normalised); negatives must be "
                 "answered \"not found\". The wrong rate is the share of the answers given that are wrong "
                 "(a wrong value, or any answer to a negative); abstentions are not wrong answers.")
    if len(result.modes) > 1:
        lines += ["", "## Modes side by side", "", markdown_table(*comparison_table(result))]
    lines += ["", "## Retrieval", "", markdown_table(*retrieval_table(result), right_from=1)]
    lines += ["", f"## Answers ({result.answer_mode})", "", markdown_table(*answer_table(result))]
    failures = result.failures
    lines += ["", f"## Failed questions ({len(failures)})", ""]
    if failures:
        table_rows = [[row.id, _why(row), row.question, _expected(row), _got(row)] for row in failures]
        lines.append(markdown_table(["id", "why", "question", "expected", "got"], table_rows, right_from=99))
    else:
        lines.append("None.")
    notes = [row for row in result.rows if row.note and row.note != STRADDLES]
    if notes:
        lines += ["", "## Gold passages that cannot be retrieved", ""] + [f"- {row.id}: {row.note}" for row in notes]
    return "\n".join(lines) + "\n"


def command_line(args) -> str:
    """The `rag eval` command that reproduces a run (from the parsed arguments)."""
    parts = ["rag", "eval", *getattr(args, "files", [])]
    if args.mode != "hybrid":
        parts += ["--mode", args.mode]
    if getattr(args, "split", "test") != "test":
        parts += ["--split", args.split]
    if getattr(args, "limit", None):
        parts += ["--limit", str(args.limit)]
    if getattr(args, "model", None):
        parts += ["--model", args.model]
    if getattr(args, "report", None):
        parts += ["--report", args.report]
    return shlex.join(parts)


def run_cli(args) -> int:
    """`rag eval`: run, print a table (or JSON), optionally write the Markdown report."""
    files = list(args.files) or default_eval_files()
    result = evaluate(files, mode=args.mode, limit=args.limit, progress=not args.json and sys.stderr.isatty(),
                      model=args.model, split=getattr(args, "split", "all"))
    if args.report:
        report = Path(args.report)
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(format_markdown(result, command_line(args)), encoding="utf-8")
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(format_text(result), end="")
        if args.report:
            print(f"report written to {args.report}")
    return 0
