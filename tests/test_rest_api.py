"""The REST API (/api/v1, ui/rest.py) through a real HTTP client against a running server: every route, its
400/401/404/413 replies, the OpenAPI description, the API key, and feedback from the API and the chat's 👍/👎."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import httpx
import pytest

from test_ui_api import HIGH_TECH_ZH, UNSAFE_ID, launch_app, start_app
from test_web_limits import big_chunks

TABLE_ID = "tables/rows.csv#7"  # a '/' and a '#' in one id
TABLE_CSV = "id,title,text\n7,社区公园建设情况,2023年全市新建社区公园15个，改造提升老旧公园8个。\n"
KEY = "s3cret-key-for-tests"
ROUTES = {"/search": {"post"}, "/answer": {"post"}, "/documents": {"get", "post"},
          "/documents/{doc_id}": {"get", "delete"}, "/feedback": {"post"}, "/health": {"get"}}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The server (no key) and the folder of its index."""
    root = tmp_path_factory.mktemp("rest-api")
    demo, url = start_app(root, files={TABLE_ID.split("#")[0]: TABLE_CSV})
    yield url + "api/v1", root / "index"
    demo.close()


@pytest.fixture(scope="module")
def api(served):
    with httpx.Client(base_url=served[0], timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def keyed(served):
    """A second server over the same index that requires the API key."""
    import rag

    demo, url = launch_app(rag.load_index(served[1]), api_key=KEY)
    with httpx.Client(base_url=url + "api/v1", timeout=120) as client:
        yield client
    demo.close()


@pytest.fixture(scope="module")
def high_tech(api):
    response = api.post("/answer", json={"question": HIGH_TECH_ZH})
    assert response.status_code == 200, response.text
    return response.json()


def document_url(doc_id: str) -> str:
    """The route of a document id; dots encoded too, or the client would resolve ../ before sending it."""
    return "/documents/" + quote(doc_id, safe="/").replace(".", "%2E")


def test_health(api):
    health = api.get("/health").json()
    assert health["status"] == "ok" and health["documents"] == 3 and health["chunks"] > 3
    assert health["generation"] and health["model"]


def test_answer_with_its_citations(api, high_tech):
    assert high_tech["found"] is True and high_tech["exact"] is True and "360" in high_tech["answer"]
    assert high_tech["kind"] and high_tech["mode"] == "hybrid" and high_tech["elapsed_ms"] > 0
    assert high_tech["completed_question"] == high_tech["question"] == HIGH_TECH_ZH
    cite = high_tech["citations"][0]
    assert set(cite) == {"n", "doc_id", "title", "issuer", "date", "section", "start", "end", "score", "text",
                         "highlights"}
    assert cite["n"] == 1 and cite["issuer"] and cite["date"] and cite["title"]
    assert any("360" in c["text"][s:e] for c in high_tech["citations"] for s, e in c["highlights"])
    doc = api.get(document_url(cite["doc_id"])).json()
    assert doc["text"][cite["start"]:cite["end"]] == cite["text"]


def test_a_follow_up_is_completed_from_the_history(api, high_tech):
    history = [{"question": HIGH_TECH_ZH, "answer": high_tech["answer"], "doc_id": high_tech["citations"][0]["doc_id"]}]
    result = api.post("/answer", json={"question": "那2022年呢？", "history": history}).json()
    assert result["question"] == "那2022年呢？"
    assert "2022" in result["completed_question"] and "高新技术企业" in result["completed_question"]


def test_search_with_mode_k_and_filters(api):
    hits = api.post("/search", json={"question": "社区图书馆", "k": 3, "mode": "keyword"}).json()
    assert hits["mode"] == "bm25" and 1 <= len(hits["hits"]) <= 3 and hits["elapsed_ms"] >= 0
    assert [h["n"] for h in hits["hits"]] == list(range(1, len(hits["hits"]) + 1))
    kept = api.post("/search", json={"question": HIGH_TECH_ZH, "filters": {"doc_id": UNSAFE_ID}}).json()
    assert kept["hits"] and {h["doc_id"] for h in kept["hits"]} == {UNSAFE_ID}


def test_documents_and_an_id_with_slash_and_hash(api):
    docs = {d["doc_id"]: d for d in api.get("/documents").json()}
    assert TABLE_ID in docs and UNSAFE_ID in docs and all(d["chunks"] >= 1 for d in docs.values())
    doc = api.get(document_url(TABLE_ID))
    assert doc.status_code == 200 and doc.json()["doc_id"] == TABLE_ID and "15个" in doc.json()["text"]
    assert "<script>" in api.get(document_url(UNSAFE_ID)).json()["text"]  # JSON carries the text as stored


def test_without_a_corpus_folder_documents_are_not_added_or_deleted(api):
    added = api.post("/documents", files=[("files", ("a.txt", "2023年新建公园3个。".encode()))])
    deleted = api.delete(document_url(TABLE_ID))
    for response in (added, deleted):
        assert response.status_code == 403 and "without a corpus folder" in response.json()["error"]
    assert TABLE_ID in {d["doc_id"] for d in api.get("/documents").json()}


@pytest.mark.parametrize("doc_id", ["no-such.txt", "../../etc/passwd", "/etc/passwd", "tables/rows.csv",
                                    TABLE_ID + "x", "%00"])
def test_unknown_document_is_404(api, doc_id):
    response = api.get(document_url(doc_id))
    assert response.status_code == 404 and "no document" in response.json()["error"]


def test_unknown_route_is_a_json_404(api):
    response = api.get("/no/such/route")
    assert response.status_code == 404 and response.json() == {"error": "Not Found"}


BAD_QUERIES = [
    ({"question": "   "}, "empty"),
    ({"question": "问" * 20_001}, "the limit is 20,000"),
    ({"question": 42}, "question: "),
    ({}, "question: Field required"),
    ({"question": HIGH_TECH_ZH, "k": 0}, "k: "),
    ({"question": HIGH_TECH_ZH, "k": 11}, "k: "),
    ({"question": HIGH_TECH_ZH, "k": 2.5}, "k: "),
    ({"question": HIGH_TECH_ZH, "k": "5"}, "k: "),
    ({"question": HIGH_TECH_ZH, "mode": "telepathy"}, "mode: "),
    ({"question": HIGH_TECH_ZH, "filters": {"year": "soon"}}, "year"),
    ({"question": HIGH_TECH_ZH, "filters": {"colour": "red"}}, "colour"),
    ({"question": HIGH_TECH_ZH, "filters": ["year"]}, "filters: "),
    ({"question": HIGH_TECH_ZH, "qestion": "typo"}, "qestion: Extra inputs are not permitted"),
]
BAD_HISTORIES = [
    ("那2022年呢", "history: "),
    ([{"answer": "360家"}], "history.0.question: Field required"),
    ([{"question": "q"}] * 21, "history: "),
    ([{"question": "问" * 20_001}], "history.0.question: "),
    ([{"question": "q", "doc_id": 7}], "history.0.doc_id: "),
]


@pytest.mark.parametrize("body, message", BAD_QUERIES)
@pytest.mark.parametrize("route", ["/answer", "/search"])
def test_bad_input_is_a_400_with_a_message(api, route, body, message):
    response = api.post(route, json=body)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


@pytest.mark.parametrize("history, message", BAD_HISTORIES + [([], "history: Extra inputs are not permitted")])
def test_bad_history_is_a_400(api, history, message):
    route = "/search" if history == [] else "/answer"  # a search has no conversation
    response = api.post(route, json={"question": HIGH_TECH_ZH, "history": history})
    assert response.status_code == 400 and message in response.json()["error"], response.text


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b"", "问题".encode()])
def test_a_body_that_is_no_json_object_is_a_400(api, content):
    response = api.post("/answer", content=content, headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("route", ["/answer", "/feedback", "/health"])
def test_a_body_over_the_cap_is_a_json_413(api, route, chunked):
    body = big_chunks() if chunked else b"".join(big_chunks())
    response = api.post(route, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "too large" in response.json()["error"]
    assert api.get("/health").status_code == 200


def test_openapi_and_docs(api):
    schema = api.get("/openapi.json").json()
    assert {path: set(ops) for path, ops in schema["paths"].items()} == ROUTES
    assert schema["servers"] == [{"url": "/api/v1"}]
    names = set(schema["components"]["schemas"])
    assert {"AnswerRequest", "AnswerResponse", "Citation", "FeedbackRequest", "Health", "Turn"} <= names
    answer = schema["components"]["schemas"]["AnswerRequest"]["properties"]
    assert answer["k"]["maximum"] == 10 and "hybrid" in answer["mode"]["enum"]
    docs = api.get("/docs")
    assert docs.status_code == 200 and "POST /api/v1/answer" in docs.text and "GET /api/v1/documents/{doc_id}" in docs.text
    assert "cdn" not in docs.text.lower()  # works offline


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {KEY}"},
                                     {"Authorization": KEY}, {"Authorization": f"Bearer {KEY}x"}])
def test_with_a_key_every_route_needs_it(keyed, headers):
    calls = [("get", "/health", None), ("get", "/documents", None), ("get", document_url(TABLE_ID), None),
             ("post", "/search", {"question": HIGH_TECH_ZH}), ("post", "/answer", {"question": HIGH_TECH_ZH}),
             ("post", "/feedback", {"question": HIGH_TECH_ZH, "answer": "360家", "rating": "up"}),
             ("post", "/answer", {"question": ""}), ("get", "/documents/no-such.txt", None),
             ("delete", document_url(TABLE_ID), None), ("post", "/documents", None)]
    for method, path, body in calls:
        response = keyed.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, (path, response.status_code)
        assert "API key" in response.json()["error"] and response.headers["www-authenticate"] == "Bearer"
    malformed = keyed.post("/answer", content=b"{not json", headers={**headers, "content-type": "application/json"})
    assert malformed.status_code == 401  # the key is checked before the body is read


def test_with_the_key_the_routes_answer(keyed):
    auth = {"Authorization": f"Bearer {KEY}"}
    assert keyed.get("/health", headers=auth).status_code == 200
    assert keyed.get(document_url(TABLE_ID), headers=auth).json()["doc_id"] == TABLE_ID
    result = keyed.post("/answer", json={"question": HIGH_TECH_ZH}, headers=auth).json()
    assert "360" in result["answer"]
    assert keyed.post("/answer", json={"question": ""}, headers=auth).status_code == 400
    assert keyed.get("/documents/no-such.txt", headers=auth).status_code == 404
    schema = keyed.get("/openapi.json").json()  # the description holds no data: no key needed
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert keyed.get("/docs").status_code == 200


def test_feedback_round_trip(api, served, high_tech):
    from rag.feedback import FeedbackStore

    cites = [{k: c[k] for k in ("doc_id", "start", "end")} for c in high_tech["citations"]]
    body = {"question": HIGH_TECH_ZH, "answer": high_tech["answer"], "rating": "down", "comment": "少了单位",
            "correction": "360家", "completed_question": high_tech["completed_question"], "citations": cites}
    response = api.post("/feedback", json=body)
    assert response.status_code == 201, response.text
    stored = response.json()
    assert stored["generation"] == api.get("/health").json()["generation"]
    row = next(r for r in FeedbackStore(served[1]).rows() if r["id"] == stored["id"])
    assert (row["rating"], row["comment"], row["correction"], row["citations"]) == ("down", "少了单位", "360家", cites)
    assert row["generation"] == stored["generation"]
    case = next(c for c in FeedbackStore(served[1]).eval_cases() if c["id"] == f"feedback-{stored['id']}")
    assert case["question"] == HIGH_TECH_ZH and case["answers"] == ["360家"]


@pytest.mark.parametrize("change, message", [
    ({"rating": "meh"}, "rating: "), ({"rating": None}, "rating: "), ({"answer": 5}, "answer: "),
    ({"comment": "x" * 5001}, "comment is 5,001 characters long"), ({"question": ""}, "question is empty"),
    ({"citations": [{"doc_id": "a.txt", "start": 1}]}, "citations.0.end: Field required"),
    ({"citations": [{"doc_id": "a.txt", "start": -1, "end": 3}]}, "a citation needs"),
    ({"stars": 5}, "stars: Extra inputs are not permitted"),
])
def test_bad_feedback_is_a_400(api, change, message):
    body = {"question": HIGH_TECH_ZH, "answer": "360家", "rating": "up", **change}
    response = api.post("/feedback", json=body)
    assert response.status_code == 400 and message in response.json()["error"], response.text


def test_the_chat_thumbs_record_feedback(served):
    import gradio as gr

    import rag
    from rag.feedback import FeedbackStore
    from ui.app import WebChat

    index = rag.load_index(served[1])
    chat = WebChat(index)
    history, _, question = chat.accept(HIGH_TECH_ZH, [])
    history, _, _, cites, turns = chat.respond(question, history, "hybrid", 5, "", "", "", [])
    message = len(history) - 1

    def click(liked):
        return chat.rate(turns, gr.LikeData(None, {"index": message, "value": [history[-1]["content"]], "liked": liked}))

    store = FeedbackStore(served[1])
    turns = click(True)
    row = next(r for r in store.rows() if r["id"] == turns[0]["feedback"])
    assert row["rating"] == "up" and "360" in row["answer"] and row["question"] == HIGH_TECH_ZH
    assert row["citations"] == [{k: c[k] for k in ("doc_id", "start", "end")} for c in cites]
    assert row["generation"] == index.generation.name
    first = turns[0]["feedback"]
    turns = click(False)  # the other thumb replaces the rating
    ids = {r["id"]: r["rating"] for r in store.rows()}
    assert first not in ids and ids[turns[0]["feedback"]] == "down"
    last = turns[0]["feedback"]
    turns = click("")  # the same thumb again withdraws it
    assert turns[0]["feedback"] is None and last not in {r["id"] for r in store.rows()}
    assert chat.rate(turns, gr.LikeData(None, {"index": 0, "value": [], "liked": True})) == turns  # a question


def test_the_chat_takes_a_comment_or_a_correction(served):
    import gradio as gr

    import rag
    from rag.feedback import FeedbackStore
    from ui.app import WebChat

    chat = WebChat(rag.load_index(served[1]))
    with pytest.raises(gr.Error, match="Ask a question first"):
        chat.comment([], "👍 right 正确", "good", "")
    history, _, question = chat.accept(HIGH_TECH_ZH, [])
    history, _, _, _, turns = chat.respond(question, history, "hybrid", 5, "", "", "", [])
    with pytest.raises(gr.Error, match="Choose 👍 or 👎"):
        chat.comment(turns, None, "a comment without a rating", "")
    turns, status, comment, correction = chat.comment(turns, None, "", "全年新增高新技术企业360家")
    assert "recorded" in status and comment == correction == ""
    store = FeedbackStore(served[1])
    row = next(r for r in store.rows() if r["id"] == turns[0]["feedback"])
    assert row["rating"] == "down" and row["correction"] == "全年新增高新技术企业360家"
    first = turns[0]["feedback"]
    turns, _, _, _ = chat.comment(turns, "👍 right 正确", "<b>clear</b>", "")
    ids = {r["id"]: r for r in store.rows()}
    assert first not in ids and ids[turns[0]["feedback"]]["comment"] == "<b>clear</b>"  # the latest word replaces


class SlowIndex:
    """The real index, with answers that take a while and count how many run at once, and a broken search."""

    def __init__(self, index):
        self._index, self.running, self.most = index, 0, 0
        self.lock = threading.Lock()

    def __getattr__(self, name):
        return getattr(self._index, name)

    def answer(self, question, **kwargs):
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.6)
        with self.lock:
            self.running -= 1
        return self._index.answer(question, **kwargs)

    def search(self, question, **kwargs):
        raise ZeroDivisionError("a bug")


def test_answers_run_off_the_event_loop_at_most_concurrency_at_once_and_a_bug_is_a_json_500(served):
    import rag
    from ui.app import CONCURRENCY

    slow = SlowIndex(rag.load_index(served[1]))
    demo, url = launch_app(slow)
    try:
        from gradio_client import Client

        chat = Client(url, verbose=False, analytics_enabled=False)
        with httpx.Client(base_url=url + "api/v1", timeout=120) as client, ThreadPoolExecutor(10) as pool:
            answers = [pool.submit(client.post, "/answer", json={"question": HIGH_TECH_ZH}) for _ in range(6)]
            asked = [pool.submit(chat.predict, question=HIGH_TECH_ZH, api_name="/ask") for _ in range(3)]
            time.sleep(0.3)
            started = time.monotonic()
            assert client.get("/health").status_code == 200
            health_s = time.monotonic() - started
            assert not all(a.done() for a in answers)  # the answers were still running meanwhile
            assert all(a.result().status_code == 200 for a in answers)
            assert all("360" in a.result()["answer"] for a in asked)
            broken = client.post("/search", json={"question": HIGH_TECH_ZH})
            assert broken.status_code == 500
            assert broken.json() == {"error": "internal error (ZeroDivisionError); see the server log"}
        assert health_s < 0.5, f"/health waited {health_s:.2f} s behind the answers"
        assert slow.most == CONCURRENCY  # the chat's /ask and the API share one budget
    finally:
        demo.close()
