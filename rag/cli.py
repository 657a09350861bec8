"""The `rag` command: a thin layer over the public API in rag/__init__.py."""
from __future__ import annotations

import argparse
import logging
import os
import sys

DEFAULT_INDEX = os.environ.get("RAG_INDEX_DIR", "index")
DEFAULT_CORPUS = os.environ.get("RAG_CORPUS_DIR", "corpus")


def say(text: str = "", file=None) -> None:
    """Print text that may hold document content: controls and escape sequences shown, never obeyed."""
    from rag.present import for_terminal

    print(for_terminal(text), file=file or sys.stdout)


class SafeFormatter(logging.Formatter):
    """Log lines name files and documents; their control characters are shown, not sent to the terminal."""

    def format(self, record: logging.LogRecord) -> str:
        from rag.present import for_terminal

        return for_terminal(super().format(record))


def _parse_filters(items: list[str] | None) -> dict:
    """--filter key=value (repeatable; a repeated key means any of the values)."""
    filters: dict[str, object] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"rag: --filter expects key=value, got {item!r}")
        key, value = key.strip(), value.strip()
        if key in filters:
            previous = filters[key]
            filters[key] = (previous if isinstance(previous, list) else [previous]) + [value]
        else:
            filters[key] = value
    return filters


def _paragraph_count(value: str) -> int:
    """-k: a whole number of paragraphs, at least 1 (argparse reports anything else as a usage error)."""
    try:
        k = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of paragraphs, got {value!r}") from None
    if k < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {k}")
    return k


def _load_mapping(path: str | None) -> dict | None:
    """The checked --mapping JSON (a RagError, printed as "rag: cannot read mapping …", when bad)."""
    if not path:
        return None
    from rag.ingest.formats import load_mapping

    return load_mapping(path)


def _index_for_query(args) -> "rag.Index":  # noqa: F821
    import rag

    return rag.default_index(args.index, args.corpus, model=args.model)


def cmd_build(args) -> int:
    import rag

    report = rag.BuildReport()
    index = rag.build_index(args.corpus_dir or args.corpus, args.index, model=args.model,
                            mapping=_load_mapping(args.mapping), rebuild=args.rebuild,
                            progress=not args.quiet, report=report, follow_symlinks=args.follow_symlinks)
    if report.up_to_date:
        say(f"index {args.index} is up to date: {report.documents} documents, {report.chunks} chunks "
            f"({report.seconds:.1f} s)")
    else:
        say(f"indexed {report.documents} documents, {report.chunks} chunks into {args.index} in "
            f"{report.seconds:.1f} s (embedded {report.embedded_chunks}, reused {report.reused_chunks}; "
            f"added {len(report.added)}, changed {len(report.changed)}, removed {len(report.removed)})")
    if report.skipped:
        say(f"skipped {len(report.skipped)} file(s):")
        for path, reason in report.skipped:
            say(f"  {path}: {reason}")
    del index
    return 0


def json_for_terminal(data) -> str:
    from rag.present import json_for_terminal as dump

    return dump(data)


def cmd_search(args) -> int:
    index = _index_for_query(args)
    hits = index.search(args.question, k=args.k, mode=args.mode, filters=_parse_filters(args.filter))
    if args.json:
        print(json_for_terminal([h.to_dict() for h in hits]))
        return 0
    if not hits:
        say("no matching paragraphs")
    for n, hit in enumerate(hits, 1):
        say(f"[{n}] {hit.title} · {hit.section or '—'} · {hit.doc_id}:{hit.start}-{hit.end} · score {hit.score:.4f}")
        say(f"    {hit.text}\n")
    return 0


def cmd_ask(args) -> int:
    from rag.present import answer_to_json, format_answer

    index = _index_for_query(args)
    llm = _llm_config(args) if args.generate else None
    result = index.answer(args.question, k=args.k, mode=args.mode, filters=_parse_filters(args.filter),
                          generate=args.generate, llm=llm)
    if args.json:
        print(json_for_terminal(answer_to_json(result)))
    else:
        print(format_answer(result, color=sys.stdout.isatty()))  # made terminal-safe by format_answer
    return 0


def cmd_docs(args) -> int:
    index = _index_for_query(args)
    counts = index.chunk_counts()
    rows = [(d.doc_id, d.title, d.meta.get("publish_date") or d.meta.get("date") or "", counts.get(d.doc_id, 0))
            for d in index.documents()]
    if args.json:
        print(json_for_terminal([dict(zip(("doc_id", "title", "date", "chunks"), r)) for r in rows]))
        return 0
    for doc_id, title, date, chunks in rows:
        say(f"{doc_id}\t{date or '—'}\t{chunks} chunks\t{title}")
    say(f"{len(rows)} documents, {sum(counts.values())} chunks")
    return 0


def _llm_config(args):
    """The language model from --llm-* options, else RAG_LLM_* variables (None: not configured)."""
    from rag.generation import LLMConfig

    overrides = {"timeout": args.llm_timeout} if args.llm_timeout is not None else {}
    return LLMConfig.from_env(args.llm_base_url, args.llm_model, args.llm_api_key, **overrides)


def cmd_serve(args) -> int:
    from ui.app import serve

    serve(corpus_dir=args.corpus, index_dir=args.index, host=args.host, port=args.port, model=args.model,
          api_key=args.api_key, uploads=not args.no_uploads, llm=_llm_config(args))
    return 0


def cmd_feedback(args) -> int:
    """`rag feedback export|stats`: the ratings recorded beside the index, as eval lines or counts."""
    from pathlib import Path

    from rag.feedback import FeedbackStore, eval_line
    from rag.types import RagError

    store = FeedbackStore(args.index)
    if args.action == "stats":
        stats = store.stats()
        if args.json:
            print(json_for_terminal(stats))
        else:
            say(f"{stats['ratings']} ratings in {stats['file']}: {stats['up']} up, {stats['down']} down; "
                f"{stats['with_correction']} with a correction, {stats['without_correction']} without; "
                f"last {stats['last'] or '—'}")
        return 0
    cases = store.eval_cases(corpus=args.corpus, split=args.split)
    text = "".join(eval_line(case) + "\n" for case in cases)
    if not args.output:
        print(text, end="")
        return 0
    try:
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise RagError(f"cannot write {args.output} ({exc.strerror or exc})") from None
    say(f"wrote {len(cases)} eval cases to {args.output}; run them with `rag eval {args.output} --split {args.split}`")
    return 0


def cmd_eval(args) -> int:
    if args.conversations:
        from rag.conversation_eval import evaluate_conversations, format_summary, summary
        from rag.evaluation import corpus_index

        indexes: dict = {}

        def index_for(corpus: str):
            if corpus not in indexes:
                indexes[corpus] = corpus_index(corpus, model=args.model, progress=False)
            return indexes[corpus]

        results = evaluate_conversations(index_for, split=args.split)
        if args.json:
            print(json_for_terminal({"summary": summary(results), "turns": [vars(r) for r in results]}))
        else:
            say(f"follow-up turns of eval/conversations.jsonl ({args.split} part)\n")
            say(format_summary(summary(results)))
        return 0
    if args.generate:
        return _eval_generate(args)
    from rag.evaluation import run_cli

    return run_cli(args)


def _eval_generate(args) -> int:
    """`rag eval --generate`: the eval questions answered by the configured language model, with the check."""
    from rag.evaluation import _load_items, corpus_index, default_eval_files
    import json
    from pathlib import Path

    from rag.generation_eval import evaluate_written, flagged_for_hand_check, format_summary, load_verdicts, summary
    from rag.types import RagError

    llm = _llm_config(args)
    if llm is None:
        raise RagError("rag eval --generate needs a language model: set RAG_LLM_BASE_URL or pass --llm-base-url")
    items = _load_items(list(args.files) or default_eval_files(), args.limit, args.split)
    indexes: dict = {}

    def index_for(item):
        if item.corpus not in indexes:
            indexes[item.corpus] = corpus_index(item.corpus, model=args.model, progress=False)
        return indexes[item.corpus]

    rows = evaluate_written(index_for, items, llm, progress=not args.json and sys.stderr.isatty())
    verdicts = load_verdicts(args.hand_checked) if args.hand_checked else None
    data = summary(rows, verdicts)
    if args.flagged:
        Path(args.flagged).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n"
                                              for r in flagged_for_hand_check(rows)), encoding="utf-8")
    if args.json:
        print(json_for_terminal({"summary": data, "rows": [vars(r) for r in rows]}))
    else:
        say(f"written answers by {llm.model or 'the served model'} at {llm.base_url} ({args.split} part)\n")
        say(format_summary(data))
        if args.flagged:
            say(f"flagged answers for a hand check written to {args.flagged}")
    return 0


def cmd_bench(args) -> int:
    from rag.bench import run_cli

    return run_cli(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description="Ask questions over Chinese government replies, with cited sources.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p, corpus=True):
        p.add_argument("--index", default=DEFAULT_INDEX, help="index folder (default: %(default)s)")
        if corpus:
            p.add_argument("--corpus", default=DEFAULT_CORPUS,
                           help="corpus folder or file, used when the index is missing (default: %(default)s)")
        p.add_argument("--model", default=None, help="embedding model name or path (default: the bundled multilingual-e5-small)")

    def query_args(p):
        p.add_argument("question")
        p.add_argument("-k", type=_paragraph_count, default=5, help="number of paragraphs (default: %(default)s)")
        p.add_argument("--mode", choices=("hybrid", "bm25", "dense"), default="hybrid")
        p.add_argument("--filter", action="append", metavar="KEY=VALUE",
                       help="doc_id, path_prefix, issuer, year, date_from, date_to (repeatable)")
        p.add_argument("--json", action="store_true", help="print JSON")

    def llm_args(p, switch: str | None):
        if switch:
            p.add_argument("--generate", action="store_true", help=switch)
        p.add_argument("--llm-base-url", default=None, metavar="URL",
                       help="OpenAI-compatible endpoint of your language model, e.g. http://127.0.0.1:8000/v1 "
                            "(default: $RAG_LLM_BASE_URL; document text is sent only there)")
        p.add_argument("--llm-model", default=None, metavar="NAME",
                       help="model name (default: $RAG_LLM_MODEL, else the first the server lists)")
        p.add_argument("--llm-api-key", default=None, metavar="KEY",
                       help="bearer key of the endpoint (default: $RAG_LLM_API_KEY; the variable keeps it out of "
                            "the process list)")
        p.add_argument("--llm-timeout", type=float, default=None, metavar="SECONDS",
                       help="longest wait for one written answer (default: $RAG_LLM_TIMEOUT or 60)")

    p = sub.add_parser("build", help="build or update the index of a corpus folder or file")
    p.add_argument("corpus_dir", nargs="?", default=None, metavar="PATH",
                   help="corpus folder, or one file such as a .xlsx/.csv/.jsonl collection (default: --corpus)")
    common(p)
    p.add_argument("--mapping", metavar="JSON",
                   help="column mapping for .xlsx/.csv/.jsonl files without a <file>.rag.json sidecar, "
                        "e.g. corpora/tipdm.rag.json (default: guessed from the column names)")
    p.add_argument("--rebuild", action="store_true", help="start from scratch instead of updating")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.add_argument("--follow-symlinks", action="store_true",
                   help="also read symbolic links that lead out of the corpus folder (skipped and listed by default)")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("search", help="list the paragraphs that best match a question")
    query_args(p)
    common(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("ask", help="answer a question with highlighted citations")
    query_args(p)
    common(p)
    llm_args(p, "have your language model write the answer from the passages, every sentence checked against "
                "them (the extracted answer when it fails or is not configured)")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("docs", help="list the indexed documents")
    common(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_docs)

    p = sub.add_parser("serve", help="serve the web chat (builds the index first when missing)")
    common(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--api-key", default=None, metavar="KEY",
                   help="require Authorization: Bearer KEY on the REST API /api/v1 (default: $RAG_API_KEY; "
                        "the variable keeps the key out of the process list)")
    p.add_argument("--no-uploads", action="store_true",
                   help="no adding or deleting documents from the browser or the API (the page itself has no key)")
    llm_args(p, None)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("feedback", help="the 👍/👎 ratings recorded beside the index: export them or count them")
    p.add_argument("action", choices=("export", "stats"),
                   help="export: the rated questions as eval JSONL lines; stats: counts and the last time")
    p.add_argument("--index", default=DEFAULT_INDEX, help="index folder (default: %(default)s)")
    p.add_argument("--output", metavar="FILE", help="export: write the JSONL here (default: print it)")
    p.add_argument("--corpus", default="reference",
                   help="export: the eval corpus the cases ask (default: %(default)s)")
    p.add_argument("--split", choices=("dev", "test"), default="dev",
                   help="export: the eval part the cases join (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="stats: print JSON")
    p.set_defaults(func=cmd_feedback)

    p = sub.add_parser("eval", help="run eval sets and report retrieval and answer quality")
    p.add_argument("files", nargs="*", help="eval JSONL files, or cmrc for the CMRC 2018 trial set "
                                            "(default: eval/*.jsonl and cmrc)")
    p.add_argument("--split", choices=("test", "dev", "all"), default="test",
                   help="which part to run: test (reported; never tuned on), dev (tuned on) or all")
    p.add_argument("--mode", choices=("hybrid", "bm25", "dense", "all"), default="hybrid")
    p.add_argument("--json", action="store_true")
    p.add_argument("--report", help="write a Markdown report to this path")
    p.add_argument("--model", default=None)
    p.add_argument("--limit", type=int, default=None, help="only the first N questions of each file")
    p.add_argument("--conversations", action="store_true",
                   help="run the follow-up conversations of eval/conversations.jsonl instead")
    p.add_argument("--generate", action="store_true",
                   help="answer with the configured language model and report its accuracy and its check")
    p.add_argument("--flagged", metavar="FILE", help="--generate: write the flagged answers here for a hand check")
    p.add_argument("--hand-checked", metavar="FILE",
                   help="--generate: verdicts on flagged answers (JSONL id, verdict wrong|right) to count")
    llm_args(p, None)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("bench", help="measure build time, query latency and memory")
    p.add_argument("target", choices=("corpus", "tipdm", "ncp", "incremental", "answer"))
    p.add_argument("--queries", type=int, default=50)
    p.add_argument("--corpus", choices=("reference", "tipdm", "ncp"), default="reference",
                   help="answer: the eval corpus whose questions are timed (default: %(default)s)")
    p.add_argument("--model", default=None)
    p.set_defaults(func=cmd_bench)
    return parser


def configure_logging(verbose: bool) -> None:
    """Warnings only (details with -v), through the safe formatter."""
    level = logging.INFO if verbose else logging.WARNING
    handler = logging.StreamHandler()
    handler.setFormatter(SafeFormatter("%(levelname)s %(name)s: %(message)s"))
    handler.setLevel(level)  # also holds back libraries that set their own logger to DEBUG on import (bm25s)
    logging.basicConfig(level=level, handlers=[handler], force=True)


def main(argv: list[str] | None = None) -> int:
    from rag.types import RagError

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    try:
        return args.func(args)
    except RagError as exc:
        say(f"rag: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `rag search … | head` closed the pipe: the output was not wanted any more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit-time flush stays quiet
        return 141
