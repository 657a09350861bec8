"""The scripted OpenAI-compatible server itself, through raw HTTP, so LLM-client tests can trust what it sends."""
from __future__ import annotations

import http.client
import json
import threading
import time

import pytest

from llm_server import FALLBACK_CONTENT




def request(llm, method, path, body=None, headers=None):
    """One raw request; returns the open response (the caller reads it) and its connection."""
    conn = http.client.HTTPConnection("127.0.0.1", llm.port, timeout=10)
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body, ensure_ascii=False).encode()
    conn.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
    return conn.getresponse(), conn


def chat(llm, text, stream=False, headers=None, **extra):
    """A chat completion for one user message: (status, headers, raw body) when plain, the response when streamed."""
    body = {"model": "test-model", "messages": [{"role": "user", "content": text}], "stream": stream, **extra}
    response, conn = request(llm, "POST", "/v1/chat/completions", body, headers)
    if stream:
        return response
    data = response.read()
    conn.close()
    return response.status, response.headers, data


def content_of(llm, text):
    status, _, data = chat(llm, text)
    assert status == 200
    return json.loads(data)["choices"][0]["message"]["content"]


def read_sse(response):
    """The `data:` payloads of a stream, and whether the HTTP body was cut off before its end."""
    data, truncated = b"", False
    try:
        while piece := response.read1():  # readline() would hide a cut-off chunked body as a clean end
            data += piece
    except http.client.IncompleteRead:
        truncated = True
    events = [line[len(b"data: "):].decode() for line in data.split(b"\n") if line.startswith(b"data: ")]
    return events, truncated


def test_models_and_non_streaming_shape(llm):
    response, conn = request(llm, "GET", "/v1/models")
    assert response.status == 200
    assert json.loads(response.read()) == {"object": "list", "data": [{"id": "scripted", "object": "model"}]}
    conn.close()

    llm.script(default={"content": "改造了12公里。"})
    status, headers, data = chat(llm, "改造了多少公里？")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    body = json.loads(data)
    assert body["object"] == "chat.completion" and body["model"] == "test-model"
    assert isinstance(body["id"], str) and isinstance(body["created"], int)
    assert body["choices"] == [{"index": 0, "message": {"role": "assistant", "content": "改造了12公里。"},
                                "finish_reason": "stop"}]
    assert set(body["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}


def test_streaming_events_join_to_the_content_and_end_with_done(llm):
    content = "石家庄市改造供水管网共计十二公里。"
    llm.script(default={"content": content, "chunk_chars": 3})
    response = chat(llm, "问", stream=True)
    assert response.status == 200 and response.headers["Content-Type"] == "text/event-stream"
    events, truncated = read_sse(response)
    assert not truncated and events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "test-model" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    pieces = [c["choices"][0]["delta"].get("content", "") for c in chunks]
    assert "".join(pieces) == content
    assert [len(p) for p in pieces if p] == [3] * 5 + [2]
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])


def test_stream_usage_chunk_when_asked(llm):
    llm.script(default={"content": "答"})
    events, _ = read_sse(chat(llm, "问", stream=True, stream_options={"include_usage": True}))
    usage_chunk = json.loads(events[-2])
    assert usage_chunk["choices"] == [] and usage_chunk["usage"]["completion_tokens"] == 1


def test_rules_then_queue_then_default(llm):
    llm.script(rules=[{"match": "水管", "content": "rule"}],
               queue=[{"content": "q1"}, {"content": "q2"}], default={"content": "default"})
    replies = [content_of(llm, q) for q in ("供水管网？", "其他", "水管", "其他", "其他", "其他")]
    assert replies == ["rule", "q1", "rule", "q2", "default", "default"]


def test_match_looks_only_at_the_last_user_message(llm):
    llm.script(rules=[{"match": "水管", "content": "rule"}], queue=[{"content": "queued"}])
    messages = [{"role": "system", "content": "水管"}, {"role": "user", "content": "水管"},
                {"role": "assistant", "content": "水管"}, {"role": "user", "content": [{"type": "text", "text": "别的"}]}]
    response, conn = request(llm, "POST", "/v1/chat/completions", {"model": "m", "messages": messages})
    assert json.loads(response.read())["choices"][0]["message"]["content"] == "queued"
    conn.close()
    assert content_of(llm, "无规则") == FALLBACK_CONTENT  # queue used up, no default


def test_delay_and_chunk_delay_are_honoured(llm):
    llm.script(queue=[{"content": "慢", "delay": 0.4}, {"content": "abc", "chunk_chars": 1, "chunk_delay": 0.1}])
    started = time.monotonic()
    assert content_of(llm, "问") == "慢"
    assert time.monotonic() - started >= 0.4
    started = time.monotonic()
    events, _ = read_sse(chat(llm, "问", stream=True))
    assert time.monotonic() - started >= 0.2 and events[-1] == "[DONE]"


def test_concurrent_requests_are_served_in_parallel(llm):
    llm.script(default={"content": "并行", "delay": 0.5})
    replies = []
    threads = [threading.Thread(target=lambda: replies.append(content_of(llm, "问"))) for _ in range(4)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert replies == ["并行"] * 4 and time.monotonic() - started < 1.5


def test_error_status_sends_error_json_and_headers(llm):
    llm.script(queue=[{"status": 500, "content": "boom"}, {"status": 429, "headers": {"Retry-After": "2"}},
                      {"status": 503}])
    status, _, data = chat(llm, "问")
    assert status == 500 and json.loads(data) == {"error": {"message": "boom", "type": "server_error"}}
    status, headers, data = chat(llm, "问")
    assert status == 429 and headers["Retry-After"] == "2"
    assert json.loads(data)["error"]["message"] == "scripted error"
    response = chat(llm, "问", stream=True)  # an error is plain JSON even when a stream was asked for
    assert response.status == 503 and json.loads(response.read())["error"]["type"] == "server_error"


def test_raw_body_is_sent_verbatim(llm):
    llm.script(queue=[{"raw": '{"choices": [{"message": '}, {"raw": "not json", "status": 502}])
    status, headers, data = chat(llm, "问")
    assert (status, headers["Content-Type"], data) == (200, "application/json", b'{"choices": [{"message": ')
    status, _, data = chat(llm, "问")
    assert (status, data) == (502, b"not json")


def test_drop_after_closes_the_stream_without_done(llm):
    llm.script(default={"content": "一二三四五六七八九十", "chunk_chars": 2, "drop_after": 2})
    events, truncated = read_sse(chat(llm, "问", stream=True))
    assert truncated and "[DONE]" not in events
    deltas = [json.loads(e)["choices"][0] for e in events]
    assert [d["delta"].get("content") for d in deltas] == ["", "一二", "三四"]
    assert all(d["finish_reason"] is None for d in deltas)


def test_client_hanging_up_mid_stream_leaves_the_server_serving(llm):
    llm.script(queue=[{"content": "x" * 200, "chunk_chars": 1, "chunk_delay": 0.01}, {"content": "still here"}])
    response = chat(llm, "问", stream=True)
    assert response.readline().startswith(b"data: ")
    response.close()  # the server is still writing: it must swallow the broken pipe
    assert content_of(llm, "问") == "still here"
    assert llm.process.poll() is None


def test_requests_are_recorded_with_headers_and_body(llm):
    before = time.time()
    chat(llm, "供水管网", headers={"Authorization": "Bearer sk-test", "X-Trace": "7"}, temperature=0.1)
    response, conn = request(llm, "POST", "/v1/chat/completions", b"{not json")
    response.read()
    conn.close()
    request(llm, "GET", "/v1/models")[0].read()  # not a chat request: not recorded
    first, second = llm.requests()
    assert first["path"] == "/v1/chat/completions"
    assert first["headers"]["authorization"] == "Bearer sk-test" and first["headers"]["x-trace"] == "7"
    assert first["body"]["messages"] == [{"role": "user", "content": "供水管网"}]
    assert first["body"]["temperature"] == 0.1 and first["body"]["stream"] is False
    assert before <= first["time"] <= second["time"] <= time.time()
    assert second["body"] == "{not json"


def test_reset_clears_script_and_record(llm):
    llm.script(default={"content": "scripted"})
    assert content_of(llm, "问") == "scripted" and len(llm.requests()) == 1
    llm.reset()
    assert llm.requests() == []
    assert content_of(llm, "问") == FALLBACK_CONTENT


def test_bad_script_is_rejected_and_keeps_the_old_one(llm):
    llm.script(default={"content": "old"})
    with pytest.raises(RuntimeError, match="unknown ReplySpec key 'contents'"):
        llm.script(queue=[{"contents": "typo"}])
    with pytest.raises(RuntimeError, match="'delay' has the wrong type"):
        llm.script(rules=[{"delay": "1"}])
    assert content_of(llm, "问") == "old"
