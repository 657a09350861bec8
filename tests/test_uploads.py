"""Documents added and deleted from the browser panel and the REST API (ui/uploads.py): sanitised names, refused
types and sizes, skipped files with their reasons, the delete rules, the per-route body caps, the build lock, and
the swap of the served index (a request keeps the index it started with; the next one sees the new documents).

One server over a copy of corpus/ serves the whole module; its uploads accumulate in test order.
"""
from __future__ import annotations

import io
import socket
import threading
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from conftest import SEED_NAME
from test_rest_api import KEY, document_url
from test_ui_api import HIGH_TECH_ZH, launch_app, start_app
from test_web_limits import big_chunks

ELDER_NAME = "社区养老服务答复.txt"
ELDER_TEXT = ("关于社区养老服务的答复\n市民政局\n您提出的关于加强社区养老服务的建议收悉，现答复如下：\n"
              "2023年全市新建社区养老服务站42个，新增养老床位1200张。\n市民政局\n2024年4月10日\n")
ELDER_Q = "2023年新建了多少个社区养老服务站？"
ROWS_CSV = ("id,title,text\n1,社区食堂建设情况,2023年全市新建社区食堂18个。\n2,老年大学建设情况,"
            "2023年新增老年大学教学点9个。\n3,空行,\n")
BIG = 3 * 1024 * 1024  # over the 2 MiB cap of every other route


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The server (uploads into its corpus folder), its Library, and its corpus folder."""
    root = tmp_path_factory.mktemp("uploads")
    demo, url = start_app(root, corpus_dir=root / "corpus")
    yield SimpleNamespace(url=url, api=url + "api/v1", library=demo.library, corpus=root / "corpus",
                          index_dir=root / "index")
    demo.close()


@pytest.fixture(scope="module")
def api(served):
    with httpx.Client(base_url=served.api, timeout=300) as client:
        yield client


@pytest.fixture(scope="module")
def first_upload(served, api):
    """One REST upload holding every kind of file: a good one, a hostile name, refused types, unreadable files,
    a collection with a bad row."""
    files = [("files", (ELDER_NAME, ELDER_TEXT.encode())),
             ("files", ("../../../etc/x\x1b[31m\u202e.md", "# 社区助餐点\n\n2023年新增社区助餐点25个。".encode())),
             ("files", ("tool.exe", b"MZ\x90\x00")),
             ("files", ("broken.docx", b"not a zip file")),
             ("files", ("empty.txt", b"")),
             ("files", ("rows.csv", ROWS_CSV.encode()))]
    response = api.post("/documents", files=files)
    assert response.status_code == 200, response.text
    return response.json()


def uploads(served) -> list[str]:
    return sorted(p.name for p in (served.corpus / "uploads").iterdir())


def chat(served):
    from ui.app import WebChat

    return WebChat(served.library.current, served.library)


# ---- names, sizes, the body caps (no build) --------------------------------------------------------
@pytest.mark.parametrize("sent, saved", [
    ("../../etc/passwd.txt", "passwd.txt"),
    ("C:\\Users\\me\\报告.DOCX", "报告.docx"),
    (".bashrc.md", "bashrc.md"),
    ("~$lock.docx", "lock.docx"),
    ("a\x1b[31mb\u202ec\x00.txt", "a[31mbc.txt"),
    ("答复#12.csv", "答复_12.csv"),
    ("..", "upload"),
    ("", "upload"),
    ("x" * 300 + ".pdf", "x" * 96 + ".pdf"),
    ("养" * 150 + ".docx", "养" * 65 + ".docx"),
])
def test_names_are_sanitised(sent, saved):
    from ui.uploads import safe_name

    assert safe_name(sent) == saved
    assert len(saved.encode()) <= 200


def test_a_name_clash_gets_a_suffix_and_never_overwrites(tmp_path):
    from ui.uploads import claim

    (tmp_path / "a.txt").write_text("first")
    (tmp_path / "a-2.txt").symlink_to(tmp_path / "elsewhere.txt")
    names = []
    for _ in range(2):
        path, handle = claim(tmp_path, "a.txt")
        handle.close()
        names.append(path.name)
    assert names == ["a-3.txt", "a-4.txt"]
    assert (tmp_path / "a.txt").read_text() == "first" and not (tmp_path / "elsewhere.txt").exists()


def test_body_limit_per_path():
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from ui.limits import BodyLimit

    async def echo(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(len(await request.body())))

    app = Starlette(routes=[Route("/up", echo, methods=["POST"]), Route("/other", echo, methods=["POST"])],
                    middleware=[Middleware(BodyLimit, max_bytes=5, limits={"/up": 10})])
    with TestClient(app) as client:
        assert client.post("/up", content=b"x" * 10).text == "10"
        assert client.post("/other", content=b"x" * 6).status_code == 413
        assert client.post("/other", content=b"x" * 5).text == "5"
        refused = client.post("/up", content=iter([b"x" * 6, b"x" * 6]))  # chunked, counted as it streams
        assert refused.status_code == 413 and "10 bytes" in refused.json()["error"]


def test_a_3_mb_txt_upload_through_the_page_route_works(served):
    body = ("2023年全市新建社区养老服务站42个。\n" * (BIG // 40)).encode()
    assert len(body) > BIG - 100
    response = httpx.post(f"{served.url}gradio_api/upload", files={"files": ("big.txt", body)}, timeout=120)
    assert response.status_code == 200, response.text[:200]
    assert Path(response.json()[0]).stat().st_size == len(body)


@pytest.mark.parametrize("route", ["gradio_api/call/ask", "gradio_api/queue/join", "api/v1/answer"])
def test_a_3_mb_body_elsewhere_is_still_413(served, route):
    response = httpx.post(f"{served.url}{route}", content=b"".join(big_chunks(BIG)),
                          headers={"content-type": "application/json"}, timeout=60)
    assert response.status_code == 413 and "2,097,152 bytes" in response.json()["error"]


def declared_request(url: str, path: str, length: int) -> bytes:
    """Send only the headers of a request declaring `length` bytes; the server's reply (read before any body)."""
    host, port = url.split("//")[1].rstrip("/").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                     f"Content-Length: {length}\r\n\r\n".encode())
        return sock.recv(4096)


@pytest.mark.parametrize("path", ["/gradio_api/upload", "/api/v1/documents"])
def test_an_upload_over_the_cap_is_413(served, path):
    from ui.uploads import MAX_UPLOAD_BYTES

    assert declared_request(served.url, path, MAX_UPLOAD_BYTES + 1).startswith(b"HTTP/1.1 413")
    streamed = httpx.post(served.url + path.lstrip("/"), timeout=120,
                          content=big_chunks(MAX_UPLOAD_BYTES + 1024, 1024 * 1024),
                          headers={"content-type": "multipart/form-data; boundary=b"})
    assert streamed.status_code == 413 and f"{MAX_UPLOAD_BYTES:,} bytes" in streamed.json()["error"]


def test_oversized_files_and_too_many_are_refused_before_any_build(served, monkeypatch, tmp_path):
    import ui.uploads

    generation = served.library.current.get().generation
    sparse = tmp_path / "huge.txt"
    with open(sparse, "wb") as handle:
        handle.truncate(ui.uploads.MAX_FILE_BYTES + 1)
    monkeypatch.setattr(ui.uploads, "MAX_FILES", 2)
    with open(sparse, "rb") as huge:
        change = served.library.add([("huge.txt", huge), ("a.exe", io.BytesIO(b"x")), ("c.txt", io.BytesIO(b"x"))])
    reasons = dict(change.skipped)
    assert "file too large" in reasons["huge.txt"] and "unsupported file type '.exe'" in reasons["a.exe"]
    assert "more than 2 files" in reasons["c.txt"]
    assert change.added == [] and served.library.current.get().generation == generation
    assert not any(name.startswith(("huge", "c")) for name in uploads(served))


def test_the_total_of_one_upload_is_capped(served, monkeypatch):
    import ui.uploads

    monkeypatch.setattr(ui.uploads, "MAX_UPLOAD_BYTES", 1000)
    monkeypatch.setattr(ui.uploads, "MAX_FILE_BYTES", 800)
    text = "关于公园的答复\n2023年新建口袋公园12个。\n".encode()
    change = served.library.add([("a.txt", io.BytesIO(text * 20)), ("b.txt", io.BytesIO(text * 10)),
                                 ("c.pdf", io.BytesIO(b"x" * 600))])
    reasons = dict(change.skipped)
    assert "file too large" in reasons["a.txt"] and "for one upload" in reasons["c.pdf"]
    assert change.added == ["uploads/b.txt"] and uploads(served).count("b.txt") == 1


# ---- adding through the REST API --------------------------------------------------------------------
def test_upload_reports_added_and_skipped_with_reasons(served, first_upload):
    added, skipped = first_upload["added"], {s["file"]: s["reason"] for s in first_upload["skipped"]}
    assert f"uploads/{ELDER_NAME}" in added and "uploads/x[31m.md" in added
    assert {"uploads/rows.csv#1", "uploads/rows.csv#2"} <= set(added)
    assert "unsupported file type '.exe'" in skipped["tool.exe"]
    assert "could not read" in skipped["broken.docx"] and str(served.corpus) not in skipped["broken.docx"]
    assert skipped["empty.txt"] == "empty file (0 bytes)"
    assert "empty text" in skipped["uploads/rows.csv#3"]  # a bad row of a file that is kept
    kept = set(uploads(served))
    assert {ELDER_NAME, "x[31m.md", "rows.csv"} <= kept and not {"tool.exe", "broken.docx", "empty.txt"} & kept
    assert not (served.corpus.parent / "etc").exists()


def test_an_uploaded_document_answers_at_once(api, first_upload):
    result = api.post("/answer", json={"question": ELDER_Q}).json()
    assert result["found"] is True and "42个" in result["answer"]
    assert result["citations"][0]["doc_id"] == f"uploads/{ELDER_NAME}"
    health = api.get("/health").json()
    assert health["documents"] == first_upload["documents"] and health["generation"] == first_upload["generation"]
    assert "42个" in api.get(document_url(f"uploads/{ELDER_NAME}")).json()["text"]


def test_the_same_name_again_gets_a_suffix(api, served, first_upload):
    response = api.post("/documents", files=[("files", (ELDER_NAME, "2024年全市新建社区养老服务站50个。".encode()))])
    stem = ELDER_NAME[:-4]
    assert response.json()["added"] == [f"uploads/{stem}-2.txt"]
    assert (served.corpus / "uploads" / ELDER_NAME).read_text(encoding="utf-8") == ELDER_TEXT


def test_an_upload_without_files_is_a_400(api):
    response = api.post("/documents", data={"other": "x"})
    assert response.status_code == 400 and "files" in response.json()["error"]


# ---- deleting -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("doc_id, status, message", [
    (SEED_NAME, 403, "only documents under uploads/ can be deleted"),
    ("uploads/no-such.txt", 404, "no document"),
    ("../corpus/" + SEED_NAME, 404, "no document"),
    ("uploads/rows.csv#1", 400, "delete 'uploads/rows.csv'"),
])
def test_delete_rules(api, served, first_upload, doc_id, status, message):
    response = api.delete(document_url(doc_id))
    assert response.status_code == status and message in response.json()["error"], response.text
    assert (served.corpus / SEED_NAME).exists()


def test_delete_an_upload_and_a_collection(api, served, first_upload):
    removed = api.delete(document_url("uploads/rows.csv"))
    assert removed.status_code == 200, removed.text
    assert removed.json()["removed"] == ["uploads/rows.csv#1", "uploads/rows.csv#2"]
    assert "rows.csv" not in uploads(served)
    gone = api.delete(document_url(f"uploads/{ELDER_NAME}")).json()
    assert gone["removed"] == [f"uploads/{ELDER_NAME}"] and ELDER_NAME not in uploads(served)
    ids = {d["doc_id"] for d in api.get("/documents").json()}
    assert f"uploads/{ELDER_NAME}" not in ids and SEED_NAME in ids
    assert api.get(document_url(f"uploads/{ELDER_NAME}")).status_code == 404


# ---- the build lock, the swap ------------------------------------------------------------------------
def test_while_another_build_runs_uploads_are_refused_and_nothing_is_kept(api, served, tmp_path):
    from filelock import FileLock

    with FileLock(str(served.index_dir / ".build.lock")):  # a `rag build` of the same index
        response = api.post("/documents", files=[("files", ("locked.txt", "2023年新建公园3个。".encode()))])
        assert response.status_code == 409 and "another build is running" in response.json()["error"]
        (tmp_path / "locked.txt").write_text("2023年新建公园3个。", encoding="utf-8")
        report, files, *_ = chat(served).upload([str(tmp_path / "locked.txt")], "", "", "")
        assert "another build is running" in report and files is not None  # the files stay in the box
    with served.library.building():  # a build of this server's (the panel's next one waits in the queue)
        response = api.post("/documents", files=[("files", ("busy.txt", "2023年新建公园3个。".encode()))])
        assert response.status_code == 409 and "another build is running" in response.json()["error"]
    assert not any(name.startswith(("locked", "busy")) for name in uploads(served))


def test_a_request_keeps_its_index_and_the_next_sees_the_new_one(api, served):
    before = served.library.current.get()
    results: list[httpx.Response] = []

    def ask_meanwhile(stop: threading.Event) -> None:
        while not stop.is_set():
            results.append(api.post("/answer", json={"question": HIGH_TECH_ZH, "k": 3}))

    stop = threading.Event()
    asker = threading.Thread(target=ask_meanwhile, args=(stop,))
    asker.start()
    try:
        change = api.post("/documents", files=[("files", ("swap.txt", ELDER_TEXT.encode()))]).json()
    finally:
        stop.set()
        asker.join()
    assert change["added"] == ["uploads/swap.txt"]
    assert results and all(r.status_code == 200 and "360" in r.json()["answer"] for r in results)
    after = served.library.current.get()
    assert after is not before and not before.generation.exists()  # the old generation is gone from disk …
    assert "360" in before.answer(HIGH_TECH_ZH).text  # … and the index loaded from it still answers
    assert "uploads/swap.txt" not in {d.doc_id for d in before.documents()}
    assert "uploads/swap.txt" in {d.doc_id for d in after.documents()}


# ---- the panel's handlers ------------------------------------------------------------------------------
def test_panel_upload_updates_header_filters_and_delete_choices(served, tmp_path):
    doc = tmp_path / "图书馆答复.txt"
    doc.write_text("关于社区图书馆的答复\n市文化局\n2023年新建社区书屋31个。\n市文化局\n2025年1月5日\n", encoding="utf-8")
    report, files, header, docs, issuers, years, choice = chat(served).upload([str(doc)], SEED_NAME, "", "1999")
    assert "uploads/图书馆答复.txt" in report and files is None
    index = served.library.current.get()
    assert f"{len(index.documents())} documents" in header
    assert ("uploads/图书馆答复.txt" in [v for _, v in docs.choices]) and docs.value == SEED_NAME
    assert "2025" in [v for _, v in years.choices] and years.value == ""  # a filter choice that is gone resets
    assert "uploads/图书馆答复.txt" in [v for _, v in choice.choices] and SEED_NAME not in [v for _, v in choice.choices]
    report = chat(served).delete("uploads/图书馆答复.txt", "uploads/图书馆答复.txt", "", "")
    assert "Removed" in report[0] and report[3].value == ""
    assert "uploads/图书馆答复.txt" not in [v for _, v in report[6].choices]


def test_panel_refuses_to_delete_a_corpus_document(served):
    report = chat(served).delete(SEED_NAME, "", "", "")[0]
    assert "only documents under uploads/ can be deleted" in report
    assert (served.corpus / SEED_NAME).exists()


def test_panel_escapes_names_and_reasons():
    from ui.render import change_html

    change = SimpleNamespace(added=["uploads/<b>.txt"], removed=[], skipped=[("<img src=x>.exe", "bad <script>")],
                             index=SimpleNamespace(documents=lambda: [1, 2]))
    html = change_html(change)
    assert "<img" not in html and "<script" not in html and "&lt;b&gt;" in html and "2 documents" in html


def test_a_single_file_corpus_takes_no_uploads(served, tmp_path):
    from starlette.testclient import TestClient

    from ui.app import WebChat, body_limits, create_app
    from ui.rest import create_api
    from ui.uploads import Library

    single = served.corpus / SEED_NAME
    library = Library(served.library.current, single)
    assert "uploads need a corpus folder" in library.refusal()
    (tmp_path / "a.txt").write_text("2023年新建公园3个。", encoding="utf-8")
    report = WebChat(served.library.current, library).upload([str(tmp_path / "a.txt")], "", "", "")[0]
    assert "uploads need a corpus folder" in report
    with TestClient(create_api(served.library.current, library=library)) as client:
        response = client.post("/documents", files=[("files", ("a.txt", b"2023"))])
    assert response.status_code == 403 and "uploads need a corpus folder" in response.json()["error"]
    assert body_limits(create_app(served.library.current, corpus_dir=single)) == {}  # the small cap everywhere


def test_an_index_built_from_another_folder_takes_no_uploads(served, tmp_path):
    from ui.uploads import Library

    assert "was built from" in Library(served.library.current, tmp_path).refusal()


def test_with_a_key_the_document_routes_need_it(served):
    demo, url = launch_app(served.library.current, api_key=KEY, corpus_dir=served.corpus)
    try:
        with httpx.Client(base_url=url + "api/v1", timeout=120) as client:
            post = client.post("/documents", files=[("files", ("k.txt", b"2023"))])
            delete = client.delete(document_url(SEED_NAME))
            assert post.status_code == delete.status_code == 401 and "API key" in post.json()["error"]
            auth = {"Authorization": f"Bearer {KEY}"}
            assert client.delete(document_url(SEED_NAME), headers=auth).status_code == 403
    finally:
        demo.close()
    assert "k.txt" not in uploads(served)


def test_serve_no_uploads_is_parsed():
    from rag.cli import build_parser

    assert build_parser().parse_args(["serve", "--no-uploads"]).no_uploads is True
    assert build_parser().parse_args(["serve"]).no_uploads is False
