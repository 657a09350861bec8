"""`rag bench`: build time, query and answer latency, memory — numbers to quote, not tests."""
from __future__ import annotations

import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from rag.evaluation import (
    REPO,
    CorpusUnavailable,
    collection_mapping,
    corpus_index,
    corpus_path,
    format_table,
    load_eval_set,
    percentile,
)


@dataclass
class BenchResult:
    """One benchmark's rows (label, value) plus how it was run."""

    title: str
    rows: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, label: str, value: str) -> None:
        self.rows.append((label, value))

    def format(self) -> str:
        """Aligned two-column table, ready to paste into a report."""
        lines = [self.title, format_table(["measure", "value"], [list(r) for r in self.rows], right_from=1)]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def peak_rss_mb() -> float:
    """Peak resident memory of this process (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def machine_line() -> str:
    """CPU count, load, Python and platform, so quoted numbers carry their context."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{os.cpu_count()} CPUs (1-min load {load:.1f} at the end), Python {platform.python_version()}, "
            f"{platform.system()} {platform.machine()}")


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    """(seconds, result) of one call."""
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def latencies_ms(fn: Callable[[str], object], queries: Sequence[str],
                 before: Callable[[], object] | None = None) -> list[float]:
    """Milliseconds of fn(q) for each query, after one untimed warm-up call; `before` runs untimed each time."""
    if queries:
        fn(queries[0])
    out = []
    for query in queries:
        if before is not None:
            before()
        started = time.perf_counter()
        fn(query)
        out.append((time.perf_counter() - started) * 1000)
    return out


def cycle(items: Sequence[str], n: int) -> list[str]:
    """n items, repeating the list when it is shorter."""
    return [items[i % len(items)] for i in range(n)] if items else []


def eval_questions(corpus: str) -> list[str]:
    """Questions of the eval sets that target a corpus (answerable and negative)."""
    questions = []
    for path in sorted((REPO / "eval").glob("*.jsonl")):
        questions += [item.question for item in load_eval_set(path) if item.corpus == corpus]
    return questions


def title_queries(index, n: int) -> list[str]:
    """Document titles as queries, for a collection without an eval set."""
    titles = [d.title.strip() or d.text[:40] for d in index.documents()]
    step = max(1, len(titles) // max(1, n))
    return [t[:60] for t in titles[::step]][:n]


def add_latency_rows(result: BenchResult, label: str, values: Sequence[float]) -> None:
    result.add(f"{label} p50", f"{percentile(values, 50):.1f} ms")
    result.add(f"{label} p95", f"{percentile(values, 95):.1f} ms")


# ---- benchmarks --------------------------------------------------------------------------------
def bench_build_and_search(name: str, queries_n: int, model: str | None) -> BenchResult:
    """Fresh build of a registered corpus into a temp folder, then search latency over N queries."""
    import rag

    corpus = corpus_path(name)
    mapping = collection_mapping(name)
    result = BenchResult(f"rag bench {'corpus' if name == 'reference' else name} — {corpus}")
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        report = rag.BuildReport()
        seconds, index = timed(lambda: rag.build_index(corpus, Path(tmp) / "index", model=model, mapping=mapping,
                                                       progress=False, report=report))
        queries = eval_questions(name) or title_queries(index, queries_n)
        source = "eval questions" if eval_questions(name) else "document titles"
        queries = cycle(queries, queries_n)
        search = latencies_ms(lambda q: index.search(q, k=5), queries, before=index.embedder.forget_queries)
        result.add("build (fresh, incl. model load)", f"{seconds:.1f} s")
        result.add("documents", str(report.documents))
        result.add("chunks", str(report.chunks))
        if report.skipped:
            result.add("skipped files/rows", str(len(report.skipped)))
        result.add("index size on disk", f"{_folder_mb(Path(tmp) / 'index'):.1f} MB")
        result.add("queries", f"{len(queries)} ({source})")
        add_latency_rows(result, "search k=5 (hybrid)", search)
        result.add("peak memory (RSS)", f"{peak_rss_mb():.0f} MB")
    result.notes.append(machine_line())
    return result


def _folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def bench_incremental(model: str | None) -> BenchResult:
    """tipdm + one text file: full build, unchanged rebuild, then change / add / delete one document."""
    import rag

    source = corpus_path("tipdm")
    mapping = collection_mapping("tipdm")
    seed = next(iter(sorted((REPO / "corpus").glob("*.txt"))))
    result = BenchResult(f"rag bench incremental — {source} + {seed.name}")
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        corpus = Path(tmp) / "corpus"  # the read-only workbook (linked) beside a text file that changes
        corpus.mkdir()
        (corpus / source.name).symlink_to(source.resolve())
        shutil.copy(seed, corpus / "extra.txt")
        index_dir = Path(tmp) / "index"

        def build() -> tuple[float, "rag.BuildReport"]:
            report = rag.BuildReport()
            seconds, _ = timed(lambda: rag.build_index(corpus, index_dir, model=model, mapping=mapping,
                                                       progress=False, report=report, follow_symlinks=True))
            return seconds, report

        full, report = build()
        result.add("full build", f"{full:.1f} s ({report.documents} documents, {report.chunks} chunks)")
        same, report = build()
        result.add("rebuild, nothing changed", f"{same:.1f} s (up to date: {report.up_to_date})")
        result.add("full / unchanged ratio", f"{full / same:.1f}×")
        extra = corpus / "extra.txt"
        extra.write_text(extra.read_text(encoding="utf-8") + "\n补充说明：本答复另附一段新内容。\n", encoding="utf-8")
        changed, report = build()
        result.add("one document changed", f"{changed:.1f} s (embedded {report.embedded_chunks} chunks)")
        shutil.copy(seed, corpus / "added.txt")
        added, report = build()
        result.add("one document added", f"{added:.1f} s (embedded {report.embedded_chunks} chunks)")
        (corpus / "added.txt").unlink()
        deleted, report = build()
        result.add("one document deleted", f"{deleted:.1f} s (removed {len(report.removed)})")
        result.add("peak memory (RSS)", f"{peak_rss_mb():.0f} MB")
    result.notes.append("every update re-reads the whole corpus and embeds only new or changed documents; " + machine_line())
    return result


def bench_answer(queries_n: int, model: str | None, corpus: str = "reference") -> BenchResult:
    """Answer latency vs search latency over an eval corpus's questions (eval index in the user cache); every
    question is timed as new: its vector and its sentences' vectors are computed again."""
    from rag.qa.semantic import forget_sentences

    index = corpus_index(corpus, model=model, progress=False)
    queries = cycle(eval_questions(corpus) or title_queries(index, queries_n), queries_n)

    def forget() -> None:
        index.embedder.forget_queries()
        forget_sentences()

    result = BenchResult(f"rag bench answer — {corpus} corpus ({len(index.chunks)} chunks)")
    search = latencies_ms(lambda q: index.search(q, k=5), queries, before=forget)
    answers = latencies_ms(lambda q: index.answer(q, k=5), queries, before=forget)
    result.add("queries", str(len(queries)))
    add_latency_rows(result, "search k=5 (hybrid)", search)
    add_latency_rows(result, "answer k=5 (hybrid, incl. its search)", answers)
    result.add("answer / search (p50)", f"{percentile(answers, 50) / percentile(search, 50):.1f}×")
    result.add("peak memory (RSS)", f"{peak_rss_mb():.0f} MB")
    result.notes.append(machine_line())
    return result


def run(target: str, queries: int = 50, model: str | None = None, corpus: str = "reference") -> BenchResult:
    """Run one benchmark by name; shared collections raise CorpusUnavailable when absent."""
    if target == "corpus":
        return bench_build_and_search("reference", queries, model)
    if target in ("tipdm", "ncp"):
        return bench_build_and_search(target, queries, model)
    if target == "incremental":
        return bench_incremental(model)
    if target == "answer":
        return bench_answer(queries, model, corpus)
    raise ValueError(f"unknown benchmark {target!r}")


def run_cli(args) -> int:
    """`rag bench TARGET`: print the table; a missing shared collection is a skip, not an error."""
    try:
        result = run(args.target, queries=args.queries, model=args.model, corpus=getattr(args, "corpus", "reference"))
    except CorpusUnavailable as exc:
        print(f"rag bench {args.target}: skipped: {exc}")
        return 0
    print(result.format())
    return 0
