"""The web chat's named API (/ask, /document, /documents) through gradio_client against a live server.

The corpus is the project's corpus/ plus one document carrying hostile markup, so escaping is tested end to end.
"""
from __future__ import annotations

import shutil
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import CORPUS, REPO, SEED_NAME

UNSAFE_ID = "community-library-reply.txt"
UNSAFE_TEXT = (
    "关于加快社区图书馆建设的答复\n"
    "市文化广电和旅游局\n"
    "您提出的关于加快社区图书馆建设的建议收悉，现答复如下：\n"
    "<script>alert(1)</script>\n"
    "截至2023年底，全市已建成社区图书馆47个，藏书总量达到86万册。\n"
    "<img src=x onerror=alert(1)>\n"
    "2024年计划新建社区图书馆12个，重点覆盖新建居住区。\n"
    "市文化广电和旅游局\n"
    "2024年3月15日\n"
)
HIGH_TECH_ZH = "2023年石家庄新增了多少家高新技术企业？"
HIGH_TECH_EN = "How many high-tech enterprises were added in 2023?"
LIBRARY_ZH = "全市已建成多少个社区图书馆？"
TIMEOUT = 300  # hang guard for the concurrent test, not a speed requirement
# Measured 12.7-17.8 MiB of RSS growth for the 30 questions (thread stacks, connections, queue bookkeeping; 5 runs
# on the 2-core machine, alone and within this file); the bound is ~2.7x the most. A leak of 2 MB a request was
# tried and failed it (90 MiB).
RSS_GROWTH_BOUND = 48 * 2**20


def make_corpus(root: Path) -> Path:
    """corpus/ copied, plus the document with <script> and <img onerror> in its text."""
    corpus = root / "corpus"
    shutil.copytree(CORPUS, corpus)
    for path in corpus.rglob("*"):
        path.chmod(0o644 if path.is_file() else 0o755)
    (corpus / UNSAFE_ID).write_text(UNSAFE_TEXT, encoding="utf-8")
    return corpus


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_app(tmp_root: Path, files: dict[str, str] | None = None, **options):
    """Build an index of the test corpus (plus `files`: relative path -> text) into tmp_root/index, start the web
    chat (create_app `options`, e.g. api_key) on a free port; returns (demo, url)."""
    import rag

    corpus = make_corpus(tmp_root)
    for name, text in (files or {}).items():
        (corpus / name).parent.mkdir(parents=True, exist_ok=True)
        (corpus / name).write_text(text, encoding="utf-8")
    return launch_app(rag.build_index(corpus, tmp_root / "index", progress=False), **options)


def launch_app(index, **options):
    """Serve a loaded index (create_app `options`) on a free port; returns (demo, url)."""
    from ui.app import create_app, launch

    demo = create_app(index, **options)
    _, url, _ = launch(demo, port=free_port(), prevent_thread_lock=True, quiet=True)
    return demo, url


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    demo, url = start_app(tmp_path_factory.mktemp("ui-api"))
    yield url
    demo.close()


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server, verbose=False, analytics_enabled=False)


@pytest.fixture(scope="module")
def high_tech(client):
    """The /ask answer to the reference question, shared by the tests that only read it."""
    return ask(client, HIGH_TECH_ZH)


def ask(client, question, **kwargs):
    return client.predict(question=question, api_name="/ask", **kwargs)


def test_highlight_html_escapes_between_offsets():
    from ui.render import clamp_spans, document_body_html, highlight_html

    text = "a<b>360家</b>&<img src=x onerror=alert(1)>"
    start = text.index("360")
    html = highlight_html(text, [(start, start + 4), (start + 2, start + 3), (-5, 0), (99, 120)])
    assert html == "a&lt;b&gt;<mark>360家</mark>&lt;/b&gt;&amp;&lt;img src=x onerror=alert(1)&gt;"
    assert clamp_spans([(5, 9), (0, 2), (1, 3), (8, 12), (20, 10)], 10) == [(0, 3), (5, 10)]
    body = document_body_html("xx" + text, 2, 2 + len(text), [(start, start + 3)])
    assert body.startswith('xx<span class="cited" id="rag-cited">a&lt;b&gt;<mark>360</mark>')
    assert "<img" not in body and "<b>" not in body


def test_named_endpoints_are_listed(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/ask", "/document", "/documents"} <= names
    assert not any("respond" in n or "accept" in n or "open_source" in n for n in names)


def test_ask_answers_with_highlighted_citation(high_tech):
    result = high_tech
    assert result["found"] is True
    assert "360" in result["answer"]
    assert result["citations"], result
    marked = [c for c in result["citations"] if "<mark>" in c["html"]]
    assert any("360" in html_mark for c in marked for html_mark in c["html"].split("<mark>")[1:]
               if "360" in html_mark.split("</mark>")[0])
    first = result["citations"][0]
    assert first["doc_id"] and first["title"] and first["end"] > first["start"]
    assert result["elapsed_ms"] > 0


def test_english_question(client):
    result = ask(client, HIGH_TECH_EN)
    assert result["found"] is True and "360" in result["answer"]


def test_document_view_marks_the_cited_range(client, high_tech):
    cite = high_tech["citations"][0]
    doc = client.predict(doc_id=cite["doc_id"], start=cite["start"], end=cite["end"], api_name="/document")
    assert doc["doc_id"] == cite["doc_id"] and doc["title"] == cite["title"]
    assert doc["text"][cite["start"]:cite["end"]] == cite["text"]
    assert 'id="rag-cited"' in doc["html"]
    assert doc["meta"].get("issuer")


def test_documents_list(client):
    docs = client.predict(api_name="/documents")
    ids = {d["doc_id"] for d in docs}
    assert {UNSAFE_ID, SEED_NAME} <= ids
    assert all(d["chunks"] >= 1 for d in docs)


def test_no_file_is_served_outside_the_index(server):
    import httpx

    for path in (CORPUS / SEED_NAME, REPO / "pyproject.toml", Path("/etc/passwd")):
        for url in (f"{server}gradio_api/file={path}", f"{server}file={path}", f"{server}gradio_api/file={path.name}"):
            response = httpx.get(url, timeout=30)
            assert response.status_code in (403, 404), (url, response.status_code)


def test_unknown_document_is_a_readable_error(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="no document"):
        client.predict(doc_id="../../etc/passwd", api_name="/document")


def test_doc_filter_limits_citations(client):
    result = ask(client, LIBRARY_ZH, doc_id=UNSAFE_ID, k=5)
    assert result["citations"]
    assert {c["doc_id"] for c in result["citations"]} == {UNSAFE_ID}
    other = ask(client, HIGH_TECH_ZH, doc_id=UNSAFE_ID, k=5)
    assert {c["doc_id"] for c in other["citations"]} <= {UNSAFE_ID}
    assert "360" not in (other["answer"] or "")


def test_year_and_issuer_filters(client):
    docs = {d["doc_id"]: d for d in client.predict(api_name="/documents")}
    seed = next(d for d in docs.values() if d["doc_id"] != UNSAFE_ID)
    by_year = ask(client, HIGH_TECH_ZH, year=seed["date"][:4])
    assert by_year["citations"] and all(c["date"].startswith(seed["date"][:4]) for c in by_year["citations"])
    by_issuer = ask(client, LIBRARY_ZH, issuer=docs[UNSAFE_ID]["issuer"])
    assert {c["doc_id"] for c in by_issuer["citations"]} == {UNSAFE_ID}


def test_empty_question_is_a_readable_error(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="empty"):
        ask(client, "   ")


def test_unknown_mode_is_a_readable_error(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="unknown mode"):
        ask(client, HIGH_TECH_ZH, mode="telepathy")


@pytest.mark.parametrize("k", [0, -1, 2.5, "many", 11])
def test_k_outside_the_slider_is_a_readable_error(client, k):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="k must"):
        ask(client, HIGH_TECH_ZH, k=k)


def test_modes_by_ui_names(client):
    for mode in ("keyword", "semantic", "bm25", "dense"):
        result = ask(client, HIGH_TECH_ZH, mode=mode)
        assert result["mode"] in ("bm25", "dense") and result["citations"]


def test_five_thousand_character_question_is_handled(client):
    from gradio_client.exceptions import AppError

    question = (HIGH_TECH_ZH + "请详细说明。") * 250
    question = question[:5000]
    assert len(question) == 5000
    try:
        result = ask(client, question)
    except AppError as exc:  # a readable refusal is acceptable; a crash or hang is not
        assert str(exc).strip()
    else:
        assert result["question"] == question and isinstance(result["citations"], list)
    assert ask(client, HIGH_TECH_ZH)["found"] is True  # the server is still fine afterwards


def test_hostile_markup_is_escaped(client):
    doc = client.predict(doc_id=UNSAFE_ID, api_name="/document")
    assert "<script>" in doc["text"]  # stored as read
    html = doc["html"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<script" not in html.lower() and "<img" not in html.lower()
    result = ask(client, LIBRARY_ZH, doc_id=UNSAFE_ID)
    for cite in result["citations"]:
        assert "<script" not in cite["html"].lower() and "<img" not in cite["html"].lower()
    assert any("&lt;" in c["html"] for c in result["citations"])


def test_thirty_concurrent_questions_answer_right_in_bounded_memory(client):
    import gc

    import psutil

    questions = [(HIGH_TECH_ZH, "360"), (HIGH_TECH_EN, "360"), (LIBRARY_ZH, "47")] * 10
    for question, _ in questions[:3]:  # warm: model, tokenizer and caches are loaded before the baseline
        ask(client, question)
    gc.collect()
    process = psutil.Process()  # the server runs in this process
    before = process.memory_info().rss
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(questions)) as pool:
        futures = [pool.submit(ask, client, q) for q, _ in questions]
        results = [f.result(timeout=TIMEOUT) for f in futures]
    assert time.monotonic() - started < TIMEOUT
    gc.collect()
    grown = process.memory_info().rss - before
    for (question, expected), result in zip(questions, results):
        assert result["question"] == question
        assert result["found"] is True and expected in result["answer"], (question, result["answer"])
    assert grown < RSS_GROWTH_BOUND, f"RSS grew {grown / 2**20:.1f} MiB"
