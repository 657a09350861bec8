"""Build, store, load and query the index: FAISS vectors + bm25s keywords + a JSON chunk store.

Layout of an index folder:
    CURRENT                 name of the generation in use (replaced atomically)
    generations/<name>/     manifest.json, documents.json, chunks.json, vectors.faiss, bm25/
    .build.lock             held while a build runs
A build writes a complete new generation beside the current one and only then switches CURRENT, so a
build killed at any moment leaves the previous index usable. A build removes only what it provably wrote:
generations and temporary files whose names it gives (GENERATION_RE, CURRENT.tmp-<pid>, .tmp-<generation>);
a read never writes, and never builds over an index it cannot read.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from rag.search.retrieval import (
    FUSION_DEPTH,
    MODES,
    Ranking,
    check_filters,
    document_matches,
    fuse,
    top_k,
)
from rag.search.model import sha256_file
from rag.text import has_cjk, normalize, replace_surrogates
from rag.types import Answer, Chunk, Document, Hit, IndexLoadError, QuestionTooLong, RagError, shown

if TYPE_CHECKING:
    from rag.generation import LLMConfig

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MAX_QUESTION_CHARS = 1000  # longer questions are cut for retrieval; 5,000-character pastes stay answerable
MAX_QUESTION_INPUT = 20_000  # a longer "question" is refused: it is a document pasted by mistake, or an attack
MAX_K = 1000  # paragraphs one request may ask for (a cap on the work one request can cause)
STORE_FILES = ("documents.json", "chunks.json", "vectors.faiss")
GENERATION_RE = re.compile(r"\d{8}-\d{6}-\d+-[0-9a-f]{8}")  # the names _new_generation_name gives, nothing else
POINTER_TMP_RE = re.compile(r"CURRENT\.tmp-\d+")
MAX_POINTER_BYTES = 256
# manifest keys a loader relies on, with their types (a manifest edited by hand or damaged is named, not a traceback)
MANIFEST_FIELDS = {"format_version": int, "model": str, "model_name": str, "dim": int, "files": dict}


def _new_generation_name() -> str:
    """Time, pid and a random part: unique even within a second, and matched by GENERATION_RE."""
    return time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}-{uuid.uuid4().hex[:8]}"


@dataclass
class BuildReport:
    """What a build did, for the CLI and benchmarks."""

    documents: int = 0
    chunks: int = 0
    embedded_chunks: int = 0
    reused_chunks: int = 0
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    up_to_date: bool = False


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("rag-gov", "faiss-cpu", "bm25s", "sentence-transformers", "jieba", "langchain-text-splitters"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "unknown"
    return out


def _write_json(path: Path, data: Any) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, ensure_ascii=False)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _current_generation(index_dir: Path) -> Path | None:
    """The generation CURRENT names (None when there is no CURRENT); IndexLoadError when it is unreadable."""
    pointer = index_dir / "CURRENT"
    if not pointer.exists() and not pointer.is_symlink():
        return None
    try:
        with open(pointer, "rb") as handle:
            raw = handle.read(MAX_POINTER_BYTES + 1)
    except OSError as exc:
        raise IndexLoadError(f"cannot read {pointer} ({exc.strerror or exc}); {_rebuild_hint(index_dir)}") from None
    try:
        name = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        name = ""
    if len(raw) > MAX_POINTER_BYTES or not GENERATION_RE.fullmatch(name):
        raise IndexLoadError(f"{pointer} is corrupted (it does not name a generation); {_rebuild_hint(index_dir)}")
    return index_dir / "generations" / name


def _own_generations(index_dir: Path) -> list[Path]:
    """Finished generations a build of this program wrote (by name), oldest first."""
    try:
        entries = sorted((index_dir / "generations").iterdir())
    except OSError:
        return []
    return [p for p in entries if GENERATION_RE.fullmatch(p.name) and p.is_dir() and not p.is_symlink()]


def index_state(index_dir: str | os.PathLike) -> str:
    """"absent" (nothing built here: a first build may run), "ready" (CURRENT names a generation that exists,
    which may still fail verification) or "damaged" (built before, unreadable now: only an explicit build fixes it)."""
    index_dir = Path(index_dir)
    try:
        generation = _current_generation(index_dir)
    except IndexLoadError:
        return "damaged"
    if generation is None:
        return "damaged" if _own_generations(index_dir) else "absent"
    return "ready" if generation.is_dir() else "damaged"


def index_exists(index_dir: str | os.PathLike) -> bool:
    """True when the folder holds an index, readable or damaged: callers then load it (and report the damage)
    instead of building over it."""
    return index_state(index_dir) != "absent"


def _rebuild_hint(index_dir: Path) -> str:
    return f"rebuild it with `rag build CORPUS --rebuild --index {index_dir}`"


class Index:
    """A loaded index: search, answer and read documents; the one object every front end uses."""

    def __init__(self, index_dir: Path, generation: Path, manifest: dict, documents: list[Document],
                 chunks: list[Chunk], vectors, bm25, model: str | None = None):
        from rag.search.embeddings import Embedder

        self.index_dir = index_dir
        self.generation = generation
        self.manifest = manifest
        self._documents = {doc.doc_id: doc for doc in documents}
        self.chunks = chunks
        self.vectors = vectors  # faiss.IndexFlatIP of normalised vectors
        self.bm25 = bm25
        self.embedder = Embedder(model if model is not None else manifest["model_name"])
        self._chunk_doc = [self._documents[c.doc_id] for c in chunks]

    # ---- documents -------------------------------------------------------------------------
    def document(self, doc_id: str) -> Document:
        """The stored document; only ids in the index resolve, so no request reaches other files."""
        if not isinstance(doc_id, str):
            raise RagError(f"a document id is text, got {type(doc_id).__name__}")
        try:
            return self._documents[doc_id]
        except KeyError:
            raise RagError(f"no document {shown(doc_id)} in this index") from None

    def documents(self) -> list[Document]:
        return list(self._documents.values())

    def chunk_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for chunk in self.chunks:
            counts[chunk.doc_id] = counts.get(chunk.doc_id, 0) + 1
        return counts

    # ---- search ----------------------------------------------------------------------------
    def _mask(self, filters: dict[str, Any]) -> np.ndarray | None:
        if not filters:
            return None
        allowed_docs = {d.doc_id for d in self._documents.values() if document_matches(d.doc_id, d.meta, filters)}
        return np.fromiter((c.doc_id in allowed_docs for c in self.chunks), dtype=bool, count=len(self.chunks))

    def _bm25_ranking(self, question: str, depth: int, mask: np.ndarray | None) -> Ranking:
        from rag.search.tokenize import tokenize

        tokens = [t for t in tokenize(keyword_query(question)) if t in self.bm25.vocab_dict]
        if not tokens or len(self.chunks) == 0:
            return top_k(np.zeros(len(self.chunks)), 0)
        scores = self.bm25.get_scores(tokens)
        return top_k(scores, depth, mask, positive_only=True)

    def _dense_ranking(self, question: str, depth: int, mask: np.ndarray | None) -> Ranking:
        import faiss

        n = self.vectors.ntotal
        if n == 0:
            return top_k(np.zeros(0), 0)
        query = self.embedder.embed_queries([question])
        if mask is None:
            scores, ids = self.vectors.search(query, min(depth, n))
        else:
            allowed = np.flatnonzero(mask).astype(np.int64)
            if len(allowed) == 0:
                return top_k(np.zeros(0), 0)
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed))
            scores, ids = self.vectors.search(query, min(depth, len(allowed)), params=params)
        keep = ids[0] >= 0
        return Ranking(ids[0][keep].astype(np.int64), scores[0][keep].astype(np.float32))

    def search(self, question: str, k: int = 5, mode: str = "hybrid",
               filters: dict[str, Any] | None = None) -> list[Hit]:
        """The k best paragraphs for a question, best first; filters apply before the cut."""
        question = _clean_question(question)
        if mode not in MODES:
            raise RagError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        k = check_k(k)
        filters = check_filters(filters)
        mask = self._mask(filters)
        depth = max(FUSION_DEPTH, k)
        bm25 = self._bm25_ranking(question, depth, mask) if mode in ("hybrid", "bm25") else None
        dense = self._dense_ranking(question, depth, mask) if mode in ("hybrid", "dense") else None
        if mode == "bm25":
            final = Ranking(bm25.ids[:k], bm25.scores[:k])
        elif mode == "dense":
            final = Ranking(dense.ids[:k], dense.scores[:k])
        else:
            final = fuse([(bm25, 1.0), (dense, 1.0)], k)
        ranks = {
            "bm25": {int(i): r for r, i in enumerate(bm25.ids.tolist(), 1)} if bm25 is not None else {},
            "dense": {int(i): r for r, i in enumerate(dense.ids.tolist(), 1)} if dense is not None else {},
        }
        return [self._hit(int(i), float(s), ranks) for i, s in zip(final.ids, final.scores)]

    def _hit(self, position: int, score: float, ranks: dict[str, dict[int, int]]) -> Hit:
        chunk = self.chunks[position]
        doc = self._chunk_doc[position]
        meta = {**doc.meta, **chunk.meta, "chunk_id": chunk.chunk_id}
        for name, table in ranks.items():
            if position in table:
                meta[f"{name}_rank"] = table[position]
        return Hit(doc_id=chunk.doc_id, title=doc.title, section=chunk.section, text=chunk.text,
                   start=chunk.start, end=chunk.end, score=round(score, 6), meta=meta)

    def answer(self, question: str, k: int = 5, mode: str = "hybrid",
               filters: dict[str, Any] | None = None, history: list[dict] | None = None,
               generate: bool = False, llm: "LLMConfig | None" = None,
               on_text: "Callable[[str], None] | None" = None,
               on_extracted: "Callable[[Answer], None] | None" = None) -> Answer:
        """An extractive answer with highlighted citations, or an honest not-found.

        `history` holds the earlier turns of a conversation ({"question", "answer", "doc_id"?}, oldest first): a
        follow-up (「那一共有多少呢？」, "and in 2020?") is completed from them (`completed_question` says how), and the
        document the conversation is about is searched first, unless the question names another place or title.

        With `generate`, the language model of `llm` (default: RAG_LLM_* variables) writes the answer from the top k
        passages and each sentence is checked against them (`verified`, `unsupported`, `statements`); `on_text`
        receives the text as it is written, and `on_extracted` the extracted answer before the model is asked (the
        CPU work is done then: a server frees its slot while the model writes). Any fault returns the extracted
        answer with the reason in `note`."""
        from rag.qa.conversation import complete_question

        started = time.perf_counter()
        completion = complete_question(check_question(question), history)
        filters = check_filters(filters)
        carried = completion.doc_id or completion.previous_doc
        result = None
        if carried in self._documents and "doc_id" not in filters and not self._leaves_document(completion, carried):
            result, hits = self._answer_once(completion.completed, k, mode, {**filters, "doc_id": carried})
            if not result.found and not completion.doc_id:  # not in the conversation's document: search them all
                result = None
        if result is None:
            result, hits = self._answer_once(completion.completed, k, mode, filters)
        result.question = question
        result.completed_question = completion.completed
        if generate:
            from rag.generation import LLMConfig, written_answer

            config = llm if llm is not None else LLMConfig.from_env()
            if on_extracted is not None:
                on_extracted(result)
            result = written_answer(question, hits[:k], result, config, history=history,
                                    completed=completion.completed, on_text=on_text)
        result.elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        return result

    def _answer_once(self, question: str, k: int, mode: str, filters: dict[str, Any]) -> tuple[Answer, list[Hit]]:
        """The extracted answer and the passages retrieved for it (in rank order)."""
        from rag.qa import answer_question

        info, hits = self.answer_inputs(question, k=k, mode=mode, filters=filters)
        result = answer_question(info, hits, embedder=self.embedder)
        result.citations = result.citations[:k]
        return result, hits

    def _leaves_document(self, completion, doc_id: str) -> bool:
        """Whether a follow-up names a place, a 《title》 or a document number its conversation's document lacks."""
        from rag.patterns import DOC_NUMBER_RE, TITLE_RE
        from rag.qa.question import NAMED_SCOPE_RE

        text, question = self._documents[doc_id].text, normalize(completion.question)
        named = [m.group(0) for pattern in (NAMED_SCOPE_RE, TITLE_RE, DOC_NUMBER_RE) for m in pattern.finditer(question)]
        return any(name.strip("《》") not in text for name in named)

    def answer_inputs(self, question: str, k: int = 5, mode: str = "hybrid",
                      filters: dict[str, Any] | None = None):
        """What the answer engine reads: the analysed question and the passages retrieved for it
        (shared by `answer` and the script that fits the answer model, so both see the same inputs)."""
        from rag.qa import CANDIDATE_HITS
        from rag.qa.grounding import ground_english
        from rag.qa.question import analyze

        cleaned = _clean_question(question)
        depth = max(check_k(k), CANDIDATE_HITS)  # checked before widening, which would hide k=0
        hits = self.search(cleaned, k=depth, mode=mode, filters=filters)
        info = analyze(cleaned)
        if info.language == "en" and info.unmatched and mode != "dense":
            # names and words the lexicon lacks, found in the first passages (景蓉华苑 for Jingronghuayuan),
            # search again with them: BM25 cannot match an English word against Chinese text
            found = [group[0] for group in ground_english(info, hits).terms if group not in info.terms]
            if found:
                hits = self.search(" ".join([cleaned, *found]), k=depth, mode=mode, filters=filters)
        return info, hits + self._field_hits(info, hits)

    def _field_hits(self, info, hits: list[Hit]) -> list[Hit]:
        """The paragraph where the top document states the field asked about (its phone, signer…), when not retrieved."""
        from rag.qa import asked_fields, locate_field

        if not hits:
            return []
        top = hits[0]
        for key in asked_fields(info):
            value = top.meta.get(key)
            if not isinstance(value, str) or not value.strip():
                continue
            if any(h.doc_id == top.doc_id and locate_field(h.text, value, key) for h in hits):
                continue  # retrieved already: rag.qa.field_candidates finds it there
            for position, chunk in enumerate(self.chunks):
                if chunk.doc_id == top.doc_id and locate_field(chunk.text, value, key):
                    return [self._hit(position, 0.0, {})]
        return []


def keyword_query(question: str) -> str:
    """The text BM25 matches: a question without Chinese gets the Chinese terms of the bilingual lexicon.

    Measured on eval/reference.jsonl (16 English questions): hybrid hit@3 0.81 without, 1.00 with.
    """
    if has_cjk(question):
        return question
    from rag.qa.question import analyze

    info = analyze(question)
    chinese = [term for group in info.terms for term in group if has_cjk(term)]
    return " ".join([question, *chinese])


def check_k(k: Any) -> int:
    """k is the number of paragraphs asked for: a whole number from 1 to MAX_K, never silently changed."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise RagError(f"k must be a whole number from 1 to {MAX_K}, got {k!r}")
    if not 1 <= k <= MAX_K:
        raise RagError(f"k must be from 1 to {MAX_K}, got {k}")
    return int(k)


def check_question(question: Any) -> str:
    """The question stripped, or a RagError when it is no text, empty or beyond MAX_QUESTION_INPUT (the web
    refuses it with this before echoing it)."""
    if not isinstance(question, str):
        raise RagError(f"the question must be text, got {type(question).__name__}")
    question = question.strip()
    if not question:
        raise RagError("the question is empty; type a question such as 2023年新增了多少家高新技术企业？")
    if len(question) > MAX_QUESTION_INPUT:
        raise QuestionTooLong(f"the question is {len(question):,} characters long; the limit is {MAX_QUESTION_INPUT:,}. "
                       "Ask about one point at a time")
    return question


def _clean_question(question: str) -> str:
    question = replace_surrogates(check_question(question))
    if len(question) > MAX_QUESTION_CHARS:
        log.warning("question of %d characters cut to %d for retrieval", len(question), MAX_QUESTION_CHARS)
        question = question[:MAX_QUESTION_CHARS]
    return question


# ---- loading ---------------------------------------------------------------------------------
def _read_manifest(generation: Path, index_dir: Path) -> dict:
    path = generation / "manifest.json"
    if not path.exists():
        raise IndexLoadError(f"{path} is missing: the index is incomplete; {_rebuild_hint(index_dir)}")
    try:
        manifest = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise IndexLoadError(f"cannot read {path} ({exc.strerror or exc}); {_rebuild_hint(index_dir)}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise IndexLoadError(f"{path} is corrupted ({exc}); {_rebuild_hint(index_dir)}") from None
    if not isinstance(manifest, dict):
        raise IndexLoadError(f"{path} is corrupted (not a JSON object); {_rebuild_hint(index_dir)}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexLoadError(
            f"{path} has index format {manifest.get('format_version')!r}, this version reads "
            f"{FORMAT_VERSION}; {_rebuild_hint(index_dir)}")
    for key, kind in MANIFEST_FIELDS.items():
        if not isinstance(manifest.get(key), kind) or isinstance(manifest.get(key), bool):
            raise IndexLoadError(f"{path} is corrupted ({key!r} is missing or not a {kind.__name__}); "
                                 f"{_rebuild_hint(index_dir)}")
    files = manifest["files"]
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()) or not set(STORE_FILES) <= set(files):
        raise IndexLoadError(f"{path} is corrupted (its file list is incomplete); {_rebuild_hint(index_dir)}")
    return manifest


def _verify_files(generation: Path, manifest: dict, index_dir: Path) -> None:
    for rel, expected in manifest["files"].items():
        path = generation / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            raise IndexLoadError(f"{generation / 'manifest.json'} is corrupted (file {rel!r} lies outside the "
                                 f"generation); {_rebuild_hint(index_dir)}")
        if not path.is_file():
            raise IndexLoadError(f"{path} is missing; {_rebuild_hint(index_dir)}")
        try:
            actual = sha256_file(path)
        except OSError as exc:
            raise IndexLoadError(f"cannot read {path} ({exc.strerror or exc}); {_rebuild_hint(index_dir)}") from None
        if actual != expected:
            raise IndexLoadError(f"{path} is corrupted (checksum differs from the manifest); {_rebuild_hint(index_dir)}")


def load_index(index_dir: str | os.PathLike = "index", model: str | None = None) -> Index:
    """Load and verify an index; `model`, when given, must be the one that built it."""
    import bm25s
    import faiss

    from rag.search.model import model_id

    index_dir = Path(index_dir)
    generation = _current_generation(index_dir)
    if generation is None:
        if _own_generations(index_dir):
            raise IndexLoadError(f"{index_dir / 'CURRENT'} is missing, so no generation in {index_dir / 'generations'} "
                                 f"is known to be complete; {_rebuild_hint(index_dir)}")
        raise IndexLoadError(f"no index in {index_dir}; build one with `rag build CORPUS --index {index_dir}`")
    if not generation.is_dir():
        raise IndexLoadError(f"{index_dir / 'CURRENT'} names generation {generation.name}, which is missing from "
                             f"{generation.parent}; {_rebuild_hint(index_dir)}")
    manifest = _read_manifest(generation, index_dir)
    if model is not None and model_id(model) != manifest["model"]:
        raise IndexLoadError(
            f"the index in {index_dir} was built with model {manifest['model']!r}, not {model_id(model)!r}; "
            f"query it with that model or rebuild it with `rag build CORPUS --rebuild --index {index_dir} --model {model}`")
    _verify_files(generation, manifest, index_dir)
    try:
        documents = [Document.from_dict(d) for d in json.loads((generation / "documents.json").read_text("utf-8"))]
        chunks = [Chunk.from_dict(c) for c in json.loads((generation / "chunks.json").read_text("utf-8"))]
        vectors = faiss.read_index(str(generation / "vectors.faiss"))
        bm25 = bm25s.BM25.load(str(generation / "bm25"), allow_pickle=False, show_progress=False)
    except Exception as exc:  # checksums passed, so this is a version mismatch or a bug: say which file
        raise IndexLoadError(f"cannot read the index in {generation} ({type(exc).__name__}: {exc}); "
                             f"{_rebuild_hint(index_dir)}") from exc
    if vectors.ntotal != len(chunks) or vectors.d != manifest["dim"] or bm25.scores["num_docs"] != len(chunks):
        raise IndexLoadError(f"the files in {generation} disagree on the number of chunks; {_rebuild_hint(index_dir)}")
    return Index(index_dir, generation, manifest, documents, chunks, vectors, bm25,
                 model=model if model is not None else manifest["model_name"])


# ---- building --------------------------------------------------------------------------------
def _previous_state(index_dir: Path, model_key: str, chunk_config: dict) -> tuple[dict, dict, bool]:
    """Chunks, tokens and vectors of the current generation, reusable when model and chunking match; the flag
    says whether its BM25 tokens are reusable too (same tokenizer version), else only the vectors are."""
    import faiss

    try:
        generation = _current_generation(index_dir)
        if generation is None or not generation.exists():
            return {}, {}, False
        manifest = _read_manifest(generation, index_dir)
        old_config = manifest.get("chunking") or {}
        if manifest.get("model") != model_key or old_config.get("chunking") != chunk_config["chunking"]:
            return {}, {}, False
        same_tokens = old_config.get("tokenizer") == chunk_config["tokenizer"]
        _verify_files(generation, manifest, index_dir)
        docs = {d["doc_id"]: d for d in json.loads((generation / "documents.json").read_text("utf-8"))}
        chunks = json.loads((generation / "chunks.json").read_text("utf-8"))
        tokens = json.loads((generation / "tokens.json").read_text("utf-8"))
        vectors = faiss.read_index(str(generation / "vectors.faiss"))
        matrix = vectors.reconstruct_n(0, vectors.ntotal) if vectors.ntotal else np.zeros((0, manifest["dim"]))
    except Exception as exc:  # noqa: BLE001 - reuse is an optimisation: anything unreadable is embedded again
        log.warning("previous index not reusable (%s); embedding everything again", exc)
        return {}, {}, False
    by_doc: dict[str, list[tuple[dict, list[str], np.ndarray]]] = {}
    for position, chunk in enumerate(chunks):
        by_doc.setdefault(chunk["doc_id"], []).append((chunk, tokens[position], matrix[position]))
    return docs, by_doc, same_tokens


def _remove_leftovers(index_dir: Path) -> None:
    """Temporary files of builds that crashed (the caller holds the build lock, so no build is writing them)."""
    for path in index_dir.glob("CURRENT.tmp-*"):
        if POINTER_TMP_RE.fullmatch(path.name) and path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)
    generations = index_dir / "generations"
    for path in generations.glob(".tmp-*") if generations.is_dir() else []:
        if GENERATION_RE.fullmatch(path.name[len(".tmp-"):]) and path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)


def _cleanup_stale(index_dir: Path, keep: str) -> None:
    """Earlier generations this program wrote; anything else in the folder is not ours and stays."""
    for path in _own_generations(index_dir):
        if path.name != keep:
            shutil.rmtree(path, ignore_errors=True)
    others = [p.name for p in (index_dir / "generations").iterdir()
              if not GENERATION_RE.fullmatch(p.name) and not p.name.startswith(".tmp-")]
    if others:
        log.warning("left alone in %s (not written by rag build): %s", index_dir / "generations", ", ".join(sorted(others)))


def _switch_generation(index_dir: Path, name: str) -> None:
    pointer_tmp = index_dir / f"CURRENT.tmp-{os.getpid()}"
    pointer_tmp.write_text(name + "\n", encoding="utf-8")
    with open(pointer_tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(pointer_tmp, index_dir / "CURRENT")
    _fsync_dir(index_dir)


def build_index(corpus_dir: str | os.PathLike = "corpus", index_dir: str | os.PathLike = "index",
                model: str | None = None, mapping: dict | None = None, rebuild: bool = False,
                progress: bool = True, report: BuildReport | None = None, follow_symlinks: bool = False) -> Index:
    """Build or update the index of a corpus folder or of one corpus file (e.g. an .xlsx/.jsonl collection);
    unchanged documents are not embedded again.

    `mapping` names the columns of tabular files that have no `<file>.rag.json` sidecar beside them;
    `follow_symlinks` also reads links that lead out of the corpus folder (skipped and listed by default).
    """
    from filelock import FileLock, Timeout

    index_dir = Path(index_dir)
    lock_path = index_dir / ".build.lock"
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(lock_path), timeout=0)
        lock.acquire()
    except Timeout:
        raise RagError(f"another build is running on {index_dir} (lock {lock_path}); "
                       "wait for it to finish, then run the build again") from None
    except OSError as exc:
        raise RagError(f"cannot write to the index folder {index_dir} ({exc.strerror or exc}: "
                       f"{exc.filename or lock_path}); choose a writable --index folder or fix its permissions") from None
    try:
        report = report if report is not None else BuildReport()
        pointer = index_dir / "CURRENT"
        if pointer.is_dir() and not pointer.is_symlink():
            raise RagError(f"{pointer} is a folder, not the pointer file a build writes; it is not this program's "
                           "to delete: move it away, then build again")
        _remove_leftovers(index_dir)
        _build_locked(Path(corpus_dir), index_dir, model, mapping, rebuild, progress, report, follow_symlinks)
    finally:
        lock.release()
    return load_index(index_dir, model=model)


def _build_locked(corpus_dir: Path, index_dir: Path, model: str | None, mapping: dict | None,
                  rebuild: bool, progress: bool, report: BuildReport, follow_symlinks: bool = False) -> None:
    from tqdm import tqdm

    from rag.ingest import chunking
    from rag.search import tokenize as tokenize_module
    from rag.ingest.chunking import chunk_document, embedding_text
    from rag.ingest.documents import load_corpus
    from rag.search.embeddings import Embedder
    from rag.search.model import DEFAULT_MODEL, model_id
    from rag.search.tokenize import tokenize

    started = time.perf_counter()
    model_name = model if model is not None else os.environ.get("RAG_MODEL") or DEFAULT_MODEL
    model_key = model_id(model_name)
    loaded = load_corpus(corpus_dir, mapping=mapping, progress=progress, follow_symlinks=follow_symlinks)
    report.skipped = [(s.path, s.reason) for s in loaded.skipped]
    if not loaded.documents:
        if corpus_dir.is_file():
            reasons = "; ".join(f"{s.path}: {s.reason}" for s in loaded.skipped[:3])
            raise RagError(f"no readable documents in {corpus_dir}" + (f" ({reasons})" if reasons else ""))
        raise RagError(f"no readable documents in {corpus_dir}"
                       + (f" ({len(loaded.skipped)} files skipped)" if loaded.skipped else "")
                       + "; put .txt, .md, .html, .docx, .pdf, .xlsx, .csv or .jsonl files there")
    seen: set[str] = set()
    documents = []
    for doc in loaded.documents:
        if doc.doc_id in seen:
            report.skipped.append((doc.doc_id, "duplicate document id; the first one is kept"))
            continue
        seen.add(doc.doc_id)
        documents.append(doc)

    chunk_config = {
        "chunking": dict(getattr(chunking, "CHUNK_CONFIG", {})),
        "tokenizer": getattr(tokenize_module, "TOKENIZER_VERSION", "1"),
    }
    old_docs, old_chunks, same_tokens = ({}, {}, True) if rebuild else _previous_state(index_dir, model_key,
                                                                                      chunk_config)
    new_ids = {d.doc_id for d in documents}
    report.removed = sorted(set(old_docs) - new_ids)
    unchanged = {d.doc_id for d in documents
                 if d.doc_id in old_docs and old_docs[d.doc_id].get("content_hash") == d.content_hash}
    report.added = sorted(d.doc_id for d in documents if d.doc_id not in old_docs)
    report.changed = sorted(d.doc_id for d in documents if d.doc_id in old_docs and d.doc_id not in unchanged)
    report.documents = len(documents)
    if old_docs and same_tokens and not report.added and not report.changed and not report.removed:
        report.up_to_date = True
        report.chunks = sum(len(old_chunks.get(d, [])) for d in new_ids)
        report.reused_chunks = report.chunks
        report.seconds = time.perf_counter() - started
        return

    chunks: list[Chunk] = []
    tokens: list[list[str]] = []
    vectors: list[np.ndarray | None] = []
    for doc in tqdm(documents, desc="chunking", unit="doc", disable=not progress):
        if doc.doc_id in unchanged:
            for chunk, chunk_tokens, vector in old_chunks.get(doc.doc_id, []):
                chunks.append(Chunk.from_dict(chunk))
                tokens.append(chunk_tokens if same_tokens else tokenize(embedding_text(chunks[-1], doc.title)))
                vectors.append(vector)
            continue
        for chunk in chunk_document(doc):
            chunks.append(chunk)
            tokens.append(tokenize(embedding_text(chunk, doc.title)))
            vectors.append(None)
    if not chunks:
        raise RagError(f"the documents in {corpus_dir} hold no text to index")

    todo = [i for i, v in enumerate(vectors) if v is None]
    report.embedded_chunks, report.reused_chunks, report.chunks = len(todo), len(chunks) - len(todo), len(chunks)
    embedder = Embedder(model_name)
    titles = {d.doc_id: d.title for d in documents}
    if todo:
        if progress:
            print(f"embedding {len(todo)} chunks with {model_key} ({report.reused_chunks} reused)", flush=True)
        fresh = embedder.embed_passages([embedding_text(chunks[i], titles[chunks[i].doc_id]) for i in todo],
                                        progress=progress)
        for row, i in enumerate(todo):
            vectors[i] = fresh[row]
    matrix = np.ascontiguousarray(np.vstack(vectors), dtype=np.float32)

    name = _new_generation_name()
    generations = index_dir / "generations"
    staging = generations / f".tmp-{name}"
    try:
        generations.mkdir(exist_ok=True)
        staging.mkdir()
        _write_generation(staging, matrix, tokens, documents, chunks, model_key, model_name, corpus_dir,
                          chunk_config)
        final = generations / name
        os.replace(staging, final)
        _switch_generation(index_dir, name)
    except (OSError, RuntimeError) as exc:  # faiss reports a failed write as RuntimeError
        shutil.rmtree(staging, ignore_errors=True)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[0]
        raise RagError(f"could not write the index into {index_dir} ({reason}); the previous index "
                       f"is unchanged; free space or fix permissions, then build again") from None
    _cleanup_stale(index_dir, keep=name)
    report.seconds = time.perf_counter() - started


def _write_generation(staging: Path, matrix: np.ndarray, tokens: list[list[str]], documents: list[Document],
                      chunks: list[Chunk], model_key: str, model_name: str, corpus_dir: Path,
                      chunk_config: dict) -> None:
    """Every file of a generation, checksummed in its manifest (written last)."""
    import bm25s
    import faiss

    dim = matrix.shape[1]
    flat = faiss.IndexFlatIP(dim)
    flat.add(matrix)
    faiss.write_index(flat, str(staging / "vectors.faiss"))
    retriever = bm25s.BM25()
    retriever.index([t if t else [""] for t in tokens], show_progress=False)
    retriever.save(str(staging / "bm25"), allow_pickle=False)
    _write_json(staging / "documents.json", [d.to_dict() for d in documents])
    _write_json(staging / "chunks.json", [c.to_dict() for c in chunks])
    _write_json(staging / "tokens.json", tokens)
    files = {}
    for path in sorted(p for p in staging.rglob("*") if p.is_file()):
        files[path.relative_to(staging).as_posix()] = sha256_file(path)
    manifest = {
        "format_version": FORMAT_VERSION,
        "model": model_key,
        "model_name": model_name,
        "dim": int(dim),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "corpus_dir": str(corpus_dir),
        "counts": {"documents": len(documents), "chunks": len(chunks)},
        "chunking": chunk_config,
        "versions": _versions(),
        "files": files,
    }
    _write_json(staging / "manifest.json", manifest)
    _fsync_dir(staging)
