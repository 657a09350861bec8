"""Written answers in the web chat and its APIs, against a real scripted OpenAI-compatible server (a subprocess):
the "Written answer" switch streams the text into the chat, then shows it checked (✓), or with the unsupported
figures marked and the extracted answer beside it (⚠); any fault of the model falls back to the extracted answer
with a note; without a configured model nothing changes."""
from __future__ import annotations

import threading
import time

import httpx
import pytest

from test_ui_api import HIGH_TECH_ZH, free_port, launch_app

VERIFIED = "2023年全年新增高新技术企业360家[1]。"
INVENTED = "2023年全年新增高新技术企业1234家[1]。"
STREAMED = {"content": VERIFIED, "chunk_chars": 2, "chunk_delay": 0.06}  # ~11 pieces over ~0.6 s
FALLBACK_SLACK = 30.0  # seconds beyond the model's timeout for retrieval and extraction on a busy 2-core machine


@pytest.fixture(scope="module")
def config(scripted_llm):
    from rag.generation import LLMConfig

    return LLMConfig(base_url=scripted_llm.url, model="scripted", timeout=20, retries=0)


@pytest.fixture(scope="module")
def chat(reference_index, config):
    from ui.app import WebChat

    return WebChat(reference_index, llm=config)


@pytest.fixture(scope="module")
def served(reference_index, config):
    """The web chat with the language model configured, on a free port; its base URL."""
    demo, url = launch_app(reference_index, llm=config)
    yield url
    demo.close()


def asked(chat, question=HIGH_TECH_ZH, generate=True, **options):
    """Every update of the page's handler for one question, each with the time it came."""
    history, _, pending = chat.accept(question, [])
    args = dict(mode="hybrid", k=5, doc_id="", issuer="", year="", turns=[], generate=generate) | options
    updates = []
    for update in chat.stream(pending, history, **args):
        updates.append((time.monotonic(), update))
    return updates


def reply_of(update) -> str:
    return update[0][-1]["content"]


# ---- rendering (no server) ------------------------------------------------------------------------------------------
def test_marking_survives_escaping_and_is_the_only_markup():
    from ui.render import UNSUPPORTED_CLOSE, UNSUPPORTED_OPEN, marked_markdown

    text = "<b>x</b> 共**1234家**[1]\n<img src=x onerror=alert(1)>第2行"
    start = text.index("1234")
    html = marked_markdown(text, [(start, start + 5), (text.index("[1]"), text.index("onerror"))])
    assert html.count(UNSUPPORTED_OPEN) == 3  # the second span is marked line by line
    assert f"{UNSUPPORTED_OPEN}1234家{UNSUPPORTED_CLOSE}" in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "\\*\\*" in html and "\\[1\\]" in html
    assert "&lt;img src=x " in html and "onerror=alert\\(1\\)&gt;第2行" in html
    ours = html.replace(UNSUPPORTED_OPEN, "").replace(UNSUPPORTED_CLOSE, "")
    assert "<" not in ours and ">" not in ours  # every other < and > of the text is escaped
    assert all(line.count(UNSUPPORTED_OPEN) == line.count(UNSUPPORTED_CLOSE) for line in html.split("\n"))


def test_writing_is_escaped_and_hides_a_reasoning_scratchpad():
    from ui.render import WRITING_NOTE, writing_markdown

    shown = writing_markdown("<think>let me see [7]</think>共<script>1</script>")
    assert shown.startswith(f"*{WRITING_NOTE}*") and "let me see" not in shown
    assert "&lt;script&gt;" in shown and "<script" not in shown
    assert "thinking" not in writing_markdown("<think>thinking, not closed yet")


# ---- the chat -------------------------------------------------------------------------------------------------------
def test_a_streamed_reply_updates_the_chat_then_shows_the_checked_answer(chat, llm):
    from ui.app import ANSWER_SLOTS, CONCURRENCY, STREAM_INTERVAL
    from ui.render import CHECKED_LINE, WRITING_NOTE

    llm.script(default=STREAMED)
    held = []
    updates = []
    history, _, pending = chat.accept(HIGH_TECH_ZH, [])
    for update in chat.stream(pending, history, "hybrid", 5, "", "", "", [], True):
        updates.append((time.monotonic(), update))
        held.append(ANSWER_SLOTS._value)
    partial, (_, final) = updates[:-1], updates[-1]
    assert len(partial) >= 2, [reply_of(u) for _, u in updates]
    for _, update in partial:
        assert reply_of(update).startswith(f"*{WRITING_NOTE}*")
        assert "Sources 出处" in update[1] and "src-card" not in update[1]  # no stale cards beside the new text
        assert len(update[0]) == 2  # the question and the text so far
    texts = [reply_of(u) for _, u in partial]
    assert len(set(texts)) == len(texts) and len(texts[0]) < len(texts[-1])  # it grows, never repeats
    gaps = [b[0] - a[0] for a, b in zip(partial, partial[1:])]
    assert min(gaps) >= STREAM_INTERVAL * 0.9, gaps  # at most every STREAM_INTERVAL
    assert all(h == CONCURRENCY for h in held[:-1])  # the extraction is done: waiting for the model holds no slot
    assert ANSWER_SLOTS._value == CONCURRENCY

    chat_history, sources, view, cites, turns = final
    reply = chat_history[-1]["content"]
    assert WRITING_NOTE not in reply and "360家" in reply and "\\[1\\]" in reply and CHECKED_LINE in reply
    assert "written by the language model" in reply and "Extracted answer" not in reply
    assert "src-card" in sources and "<mark>360家</mark>" in sources  # the span backing the statement
    assert cites and 'id="rag-cited"' in view
    assert turns[-1]["answer"] == VERIFIED and turns[-1]["message"] == len(chat_history) - 1


def test_an_invented_figure_is_marked_and_the_extracted_answer_shown_beside(chat, llm):
    from ui.render import CHECKED_LINE, EXTRACTED_LABEL, NOT_VERIFIED_LINE, UNSUPPORTED_CLOSE, UNSUPPORTED_OPEN

    llm.script(default={"content": INVENTED})
    history, _, pending = chat.accept(HIGH_TECH_ZH, [])
    chat_history, sources, _, cites, _ = chat.respond(pending, history, "hybrid", 5, "", "", "", [], True)
    reply = chat_history[-1]["content"]
    assert f"{UNSUPPORTED_OPEN}1234家{UNSUPPORTED_CLOSE}" in reply
    assert NOT_VERIFIED_LINE in reply and "1234家 is not in \\[1\\]" in reply and CHECKED_LINE not in reply
    written, extracted = reply.split(EXTRACTED_LABEL)
    assert "360家" not in written and "> 全年新增高新技术企业360家" in extracted
    assert "src-card" in sources and cites


def test_a_verified_answer_shows_the_check_line(chat, llm):
    from ui.render import CHECKED_LINE, UNSUPPORTED_OPEN

    llm.script(default={"content": VERIFIED})
    reply = reply_of(asked(chat)[-1][1])
    assert CHECKED_LINE in reply and UNSUPPORTED_OPEN not in reply and "⚠" not in reply


def test_the_model_not_finding_it_falls_back_with_a_note(chat, llm):
    from ui.render import NOT_USED_LABEL

    llm.script(default={"content": "文档中未找到答案。"})
    reply = reply_of(asked(chat)[-1][1])
    assert "360家" in reply and NOT_USED_LABEL in reply and "found no answer" in reply
    assert "written by the language model" not in reply


@pytest.mark.parametrize("fault", ["closed port", "timeout"])
def test_a_model_down_or_too_slow_gives_the_extracted_answer_with_a_note_in_time(reference_index, llm, fault):
    from rag.generation import LLMConfig
    from ui.app import ANSWER_SLOTS, CONCURRENCY, WebChat
    from ui.render import NOT_USED_LABEL

    if fault == "closed port":
        config = LLMConfig(base_url=f"http://127.0.0.1:{free_port()}/v1", model="m", timeout=5, retries=1,
                           backoff=0.1)
    else:
        llm.script(default={"content": VERIFIED, "delay": 30})
        config = LLMConfig(base_url=llm.url, model="scripted", timeout=2, retries=0)
    started = time.monotonic()
    updates = asked(WebChat(reference_index, llm=config))
    assert time.monotonic() - started < config.timeout + FALLBACK_SLACK
    reply = reply_of(updates[-1][1])
    assert "360家" in reply and NOT_USED_LABEL in reply
    assert ("ConnectError" if fault == "closed port" else "did not answer within 2 s") in reply, reply
    assert "src-card" in updates[-1][1][1]
    assert ANSWER_SLOTS._value == CONCURRENCY


def test_the_slot_is_freed_while_the_model_writes_and_a_closed_page_ends_cleanly(chat, llm):
    from ui.app import ANSWER_SLOTS, CONCURRENCY

    llm.script(default={"content": VERIFIED, "chunk_chars": 2, "chunk_delay": 0.2})
    history, _, pending = chat.accept(HIGH_TECH_ZH, [])
    stream = chat.stream(pending, history, "hybrid", 5, "", "", "", [], True)
    next(stream)  # the first text, then the page closes
    stream.close()

    def writing() -> bool:
        return any(t.name == "written-answer" for t in threading.enumerate())

    assert writing() and ANSWER_SLOTS._value == CONCURRENCY  # the model still writes; its wait holds no slot

    deadline = time.monotonic() + 30
    while (writing() or ANSWER_SLOTS._value != CONCURRENCY) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ANSWER_SLOTS._value == CONCURRENCY and not writing()


def test_without_a_model_there_is_no_switch_and_answers_do_not_change(reference_index, llm):
    from ui.app import WebChat, create_app

    def switches(demo):
        return [c for c in demo.config["components"] if c.get("props", {}).get("elem_id") == "generate"]

    plain = create_app(reference_index)
    assert switches(plain) == [] and "Written answer" not in str(plain.config)
    chat = WebChat(reference_index)
    off, on = asked(chat, generate=False), asked(chat, generate=True)  # a stale request's switch is ignored
    assert len(off) == len(on) == 1
    footer = "\n\n*Hybrid"
    assert reply_of(off[0][1]).split(footer)[0] == reply_of(on[0][1]).split(footer)[0]
    assert "Language model" not in reply_of(on[0][1]) and "written by" not in reply_of(on[0][1])
    assert llm.requests() == []
    result = chat.ask(HIGH_TECH_ZH, generate=True)  # the API says why it is not written
    assert result["generated"] is False and "no language model is configured" in result["note"]
    assert "360" in result["answer"]

    switch, = switches(create_app(reference_index, llm=object()))
    assert switch["props"]["label"] == "Written answer 模型撰写" and switch["props"]["value"] is False


def test_the_ask_api_takes_generate(chat, llm):
    llm.script(default={"content": INVENTED})
    result = chat.ask(HIGH_TECH_ZH, generate=True)
    assert result["generated"] is True and result["verified"] is False and result["unsupported"] == ["1234家"]
    assert result["answer_with_citations"] == INVENTED == result["answer"]
    start = INVENTED.index("1234")
    assert result["unsupported_spans"] == [[start, start + 5]]
    assert result["extractive"]["found"] is True and "360" in result["extractive"]["answer"]
    assert "<mark>" in result["extractive"]["citations"][0]["html"]
    plain = chat.ask(HIGH_TECH_ZH)
    assert plain["generated"] is False and plain["note"] == "" and "verified" not in plain


# ---- over HTTP ------------------------------------------------------------------------------------------------------
def test_rest_answer_with_generate(served, llm):
    llm.script(rules=[{"match": "1234", "content": INVENTED}], default={"content": VERIFIED})
    with httpx.Client(base_url=served + "api/v1", timeout=120) as api:
        body = api.post("/answer", json={"question": HIGH_TECH_ZH, "k": 3, "generate": True}).json()
        assert body["generated"] is True and body["verified"] is True and body["unsupported"] == []
        assert body["answer"] == VERIFIED == body["answer_with_citations"] and body["note"] == ""
        statement, = body["statements"]
        assert statement["supported"] is True and statement["citations"] == [1] and statement["problems"] == []
        support, = statement["support"]
        assert support["n"] == 1 and "360" in support["text"]
        assert len(body["citations"]) == 3 and body["citations"][0]["highlights"]
        assert body["extractive"]["found"] is True and body["extractive"]["generated"] is False
        sent = llm.requests()[-1]["body"]["messages"][-1]["content"]
        assert HIGH_TECH_ZH in sent and body["citations"][0]["text"][:40] in sent

        llm.script(default={"content": INVENTED})
        body = api.post("/answer", json={"question": HIGH_TECH_ZH, "generate": True}).json()
        assert body["verified"] is False and body["unsupported"] == ["1234家"] and body["unsupported_spans"]
        assert "is not in [1]" in body["statements"][0]["problems"][0]

        plain = api.post("/answer", json={"question": HIGH_TECH_ZH}).json()
        assert plain["generated"] is False and plain["note"] == "" and plain["verified"] is None

        refused = api.post("/answer", json={"question": HIGH_TECH_ZH, "generate": "yes"})
        assert refused.status_code == 400 and "generate" in refused.json()["error"]
        schema = api.get("/openapi.json").json()["components"]["schemas"]
        assert "generate" in schema["AnswerRequest"]["properties"]
        assert {"generated", "verified", "unsupported", "statements", "extractive", "note"} <= set(
            schema["AnswerResponse"]["properties"])


def test_gradio_ask_with_generate(served, llm):
    from gradio_client import Client

    llm.script(default={"content": VERIFIED})
    client = Client(served, verbose=False, analytics_enabled=False)
    result = client.predict(question=HIGH_TECH_ZH, generate=True, api_name="/ask")
    assert result["generated"] is True and result["verified"] is True and result["answer"] == VERIFIED
    assert client.predict(question=HIGH_TECH_ZH, api_name="/ask")["generated"] is False


def test_the_api_gives_up_its_answer_slot_while_the_model_writes(chat, llm):
    """/ask (and the REST API, through the same run_answer) hold a place only while retrieving and extracting."""
    from ui.app import ANSWER_SLOTS, CONCURRENCY

    llm.script(default={"content": VERIFIED, "delay": 1.5})
    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(chat.ask(HIGH_TECH_ZH, generate=True)))
    worker.start()
    deadline = time.monotonic() + 30
    while not llm.requests() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert llm.requests(), "the model was never asked"
    assert ANSWER_SLOTS._value == CONCURRENCY  # the model is writing; no answer place is held meanwhile
    worker.join(30)
    assert result["generated"] and result["verified"]
    assert ANSWER_SLOTS._value == CONCURRENCY
