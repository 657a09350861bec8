"""The web server's edges: body size caps (413), question length, short errors for bad ids, odd API values.

Runs against a live server started in this process (fixtures from test_ui_api), so what gradio itself prints
(tracebacks on stderr) is part of what is checked.
"""
from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from test_ui_api import HIGH_TECH_ZH, UNSAFE_ID, ask, client, server  # noqa: F401  (fixtures reused)

BIG_BODY = 3 * 1024 * 1024  # over the 2 MB cap
CLIENT_LOGGERS = ("httpx", "httpcore", "gradio_client")  # this process is also the client; its lines are not the server's
ROUTES = ["gradio_api/call/ask", "gradio_api/queue/join", "gradio_api/upload", "no/such/route"]


def big_chunks(total: int = BIG_BODY, size: int = 64 * 1024):
    """A well-formed /ask request with a huge question, sent chunked (no Content-Length): counted as it arrives."""
    yield b'{"data": ["'
    for _ in range(total // size):
        yield b"x" * size
    yield b'"]}'


def server_output(capfd, caplog) -> list[str]:
    """Every line the server wrote to stdout, stderr or the log during the test."""
    out, err = capfd.readouterr()
    records = [r for r in caplog.records if not r.name.startswith(CLIENT_LOGGERS)]
    lines = (out + err).splitlines() + [line for r in records for line in r.getMessage().splitlines()]
    return [line for line in lines if line.strip()]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_large_body_is_refused_with_413(server, client, route, chunked):
    import httpx

    body = big_chunks() if chunked else b"".join(big_chunks())
    response = httpx.post(f"{server}{route}", content=body, headers={"content-type": "application/json"},
                          timeout=60)
    assert response.status_code == 413, (route, response.status_code, response.text[:200])
    assert "too large" in response.json()["error"]
    assert "360" in ask(client, HIGH_TECH_ZH)["answer"]  # the server still answers normally


def test_body_under_the_cap_is_served(server):
    import httpx

    response = httpx.post(f"{server}gradio_api/call/ask", json={"data": [HIGH_TECH_ZH]}, timeout=60)
    assert response.status_code == 200 and response.json()["event_id"]


def test_too_long_question_is_refused_before_it_is_echoed():
    import gradio as gr

    from ui.app import WebChat

    question = "长" * 25_000
    with pytest.raises(gr.Error) as refused:
        WebChat(SimpleNamespace(documents=list)).accept(question, [])  # refused before any use of the index
    assert "25,000" in refused.value.message and "20,000" in refused.value.message
    assert question[:100] not in refused.value.message


def test_too_long_question_through_the_api(client):
    from gradio_client.exceptions import AppError

    question = (HIGH_TECH_ZH * 1200)[:25_000]
    with pytest.raises(AppError) as refused:
        ask(client, question)
    message = str(refused.value)
    assert "25,000" in message and "20,000" in message and refused.value.title == "Question too long"
    assert HIGH_TECH_ZH not in message


@pytest.mark.parametrize("doc_id", ["no-such-reply.txt", "x" * 10_000, "<script>alert(1)</script>\x1b[31mred\x1b[0m\n"],
                         ids=["unknown", "10k", "markup-ansi"])
def test_bad_document_id_is_one_short_line(client, capfd, caplog, doc_id):
    from gradio_client.exceptions import AppError

    capfd.readouterr()
    caplog.set_level(logging.INFO)
    with pytest.raises(AppError, match="no document") as refused:
        client.predict(doc_id=doc_id, api_name="/document")
    assert len(str(refused.value)) < 200 and "x" * 81 not in str(refused.value)
    assert "\x1b" not in str(refused.value)
    lines = server_output(capfd, caplog)
    assert len(lines) <= 1, lines
    assert not any("Traceback" in line or "\x1b" in line or len(line) > 300 for line in lines), lines


def test_a_real_bug_keeps_its_traceback(caplog):
    import gradio as gr

    from ui.app import user_errors

    with pytest.raises(gr.Error, match="internal error") as raised, user_errors():
        raise ZeroDivisionError("a bug")
    assert raised.value.print_exception is False  # the log below has the real trace; gradio's would be noise
    assert any(r.exc_info and r.exc_info[0] is ZeroDivisionError for r in caplog.records)


ODD_VALUES = [
    ("/ask", {"mode": 5}), ("/ask", {"mode": None}), ("/ask", {"mode": ["hybrid"]}), ("/ask", {"k": [1]}),
    ("/ask", {"k": None}), ("/ask", {"k": True}), ("/ask", {"doc_id": 5}), ("/ask", {"issuer": {"a": 1}}),
    ("/ask", {"year": 2.5}), ("/ask", {"year": "abc"}), ("/ask", {"question": 5}), ("/ask", {"question": ["q"]}),
    ("/document", {"doc_id": 5}), ("/document", {"doc_id": None}), ("/document", {"doc_id": ["a"]}),
    ("/document", {"start": "x"}), ("/document", {"start": [1], "end": 5}), ("/document", {"end": 2.5}),
    ("/document", {"start": {"a": 1}}),
]


@pytest.mark.parametrize("api_name, values", ODD_VALUES, ids=[f"{a}-{v}" for a, v in ODD_VALUES])
def test_odd_api_values_are_readable(client, capfd, api_name, values):
    from gradio_client.exceptions import AppError

    defaults = {"/ask": {"question": HIGH_TECH_ZH}, "/document": {"doc_id": UNSAFE_ID}}[api_name]
    capfd.readouterr()
    try:
        result = client.predict(**{**defaults, **values}, api_name=api_name)
    except AppError as exc:
        assert str(exc).strip() and "internal error" not in str(exc), str(exc)
    else:
        assert isinstance(result, dict) and ("answer" in result or "text" in result)
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err
