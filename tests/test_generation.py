"""Written answers against a real OpenAI-compatible server process (tests/llm_server.py): the prompt, the parsing
of plain and streamed replies, the check, and every fault path falling back to the extracted answer in time."""
from __future__ import annotations

import json
import socket
import time

import pytest

from rag.generation import ChatClient, GenerationFailed, LLMConfig, build_prompt
from rag.present import answer_to_json, format_answer
from rag.types import RagError

QUESTION = "2023年新增了多少家高新技术企业？"
TIMEOUT = 3.0


@pytest.fixture
def server(llm):
    """The scripted server, reset (conftest's `llm`); `config` is how the tests here reach it."""
    return llm


@pytest.fixture
def config(server):
    return LLMConfig(base_url=server.url, model="scripted", api_key="secret-key", timeout=TIMEOUT, retries=2,
                     backoff=0.05)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ask(index, config, question=QUESTION, **kwargs):
    started = time.monotonic()
    answer = index.answer(question, generate=True, llm=config, **kwargs)
    return answer, time.monotonic() - started


def test_a_checked_answer_cites_and_highlights_its_passages(reference_index, server, config):
    server.script(default={"content": "2023年全年新增高新技术企业360家[1]，总数达到3431家[1]。"})
    answer, _ = ask(reference_index, config)
    assert answer.generated and answer.verified and answer.found and not answer.unsupported
    assert answer.extractive is not None and "360家" in answer.extractive.text
    marked = [answer.citations[0].text[s:e] for s, e in answer.citations[0].highlights]
    assert "360家" in marked and "3431家" in marked
    data = answer_to_json(answer)
    assert data["verified"] is True and data["statements"][0]["support"]
    assert "已核对" in format_answer(answer)


def test_the_prompt_numbers_the_passages_with_title_issuer_and_date(reference_index, server, config):
    server.script(default={"content": "新增360家[1]。"})
    answer, _ = ask(reference_index, config, k=3)
    (request,) = server.requests()
    body = request["body"]
    assert request["headers"]["authorization"] == "Bearer secret-key"
    assert body["model"] == "scripted" and body["temperature"] == 0
    system, user = body["messages"]
    assert system["role"] == "system" and "[1]" in system["content"] and "文档中未找到答案。" in system["content"]
    content = user["content"]
    assert QUESTION in content
    for n in (1, 2, 3):
        assert f"[{n}] 《" in content
    assert "[4] " not in content
    hit = answer.citations[0]
    assert hit.meta.get("issuer") in content and hit.text[:40] in content
    assert len(answer.citations) == 3


def test_english_questions_get_the_english_prompt(reference_index, server, config):
    server.script(default={"content": "360 high-tech enterprises were added in 2023 [1]."})
    answer, _ = ask(reference_index, config, question="How many high-tech enterprises were added in 2023?")
    system = server.requests()[0]["body"]["messages"][0]["content"]
    assert "Not found in the documents." in system and "square brackets" in system
    assert answer.generated and answer.verified


def test_invented_figures_and_uncited_sentences_are_flagged_and_the_extract_shown(reference_index, server, config):
    server.script(default={"content": "2023年新增高新技术企业360家[1]。其中网络安全企业9999家[1]。总数位居全国第一。"
                                      "另见材料[8]。"})
    answer, _ = ask(reference_index, config)
    assert answer.generated and answer.verified is False
    assert "9999家" in answer.unsupported
    assert "总数位居全国第一。" in answer.unsupported and "另见材料[8]。" in answer.unsupported
    assert [s.supported for s in answer.statements] == [True, False, False, False]
    shown = format_answer(answer)
    assert "⚠‹9999家›" in shown and "摘录答案：" in shown and answer.extractive.text in shown


def test_the_conversation_goes_into_the_prompt(reference_index, server, config):
    server.script(default={"content": "总数达到3431家[1]。"})
    history = [{"question": QUESTION, "answer": "全年新增高新技术企业360家"}]
    answer, _ = ask(reference_index, config, question="那总数呢？", history=history)
    content = server.requests()[0]["body"]["messages"][1]["content"]
    assert "对话上文" in content and "全年新增高新技术企业360家" in content and "那总数呢？" in content
    assert answer.verified


def test_streamed_text_arrives_in_pieces(reference_index, server, config):
    reply = "2023年全年新增高新技术企业360家[1]。"
    server.script(default={"content": reply, "chunk_chars": 3, "chunk_delay": 0.02})
    pieces: list[str] = []
    answer, _ = ask(reference_index, config, on_text=pieces.append)
    assert len(pieces) > 3 and "".join(pieces) == reply
    assert server.requests()[0]["body"]["stream"] is True
    assert answer.text == reply and answer.verified


def test_a_failure_then_success_is_retried(reference_index, server, config):
    server.script(queue=[{"status": 503}, {"status": 429, "headers": {"Retry-After": "0"}},
                         {"content": "新增高新技术企业360家[1]。"}])
    answer, _ = ask(reference_index, config)
    assert answer.generated and answer.verified
    assert len(server.requests()) == 3


@pytest.mark.parametrize("reply, reason", [
    ({"status": 500}, "HTTP 500"),
    ({"status": 401, "content": "bad key"}, "RAG_LLM_API_KEY"),
    ({"raw": "{not json"}, "not valid chat-completion JSON"),
    ({"raw": '{"choices": []}'}, "not valid chat-completion JSON"),
    ({"content": ""}, "empty answer"),
    ({"content": "<think>让我想想</think>"}, "empty answer"),
    ({"content": "2023 saw 360 new high-tech enterprises [1]."}, "answered in English to a question in Chinese"),
    ({"content": "抱歉，我无法回答这个问题。"}, "declined"),
    ({"content": "文档中未找到答案。"}, "found no answer"),
    ({"content": "材料[2]和材料[3]。"}, "only pointed at passages"),
])
def test_each_fault_falls_back_to_the_extracted_answer(reference_index, server, config, reply, reason):
    server.script(default=reply)
    answer, elapsed = ask(reference_index, config)
    assert not answer.generated and reason in answer.note
    assert answer.found and "360家" in answer.text  # the extracted answer, as without a model
    assert elapsed < TIMEOUT + 1
    assert "\n" not in answer.note and "Traceback" not in answer.note
    assert "未使用语言模型" in format_answer(answer)


def test_a_broken_stream_falls_back(reference_index, server, config):
    server.script(default={"content": "2023年全年新增高新技术企业360家[1]。", "chunk_chars": 2, "drop_after": 3})
    answer, _ = ask(reference_index, config, on_text=lambda piece: None)
    assert not answer.generated and "broke off" in answer.note and answer.found


@pytest.mark.parametrize("reply", [{"delay": 10}, {"content": "新增360家[1]。" * 20, "chunk_chars": 1, "chunk_delay": 0.5}])
def test_a_slow_model_falls_back_within_the_timeout(reference_index, server, config, reply):
    server.script(default=reply)
    streamed = "chunk_delay" in reply
    answer, elapsed = ask(reference_index, config, on_text=(lambda piece: None) if streamed else None)
    assert not answer.generated and "within 3 s" in answer.note and answer.found
    assert elapsed < TIMEOUT + 1


@pytest.mark.parametrize("model", ["m", ""])  # "": the model name is asked of the server first
def test_an_endpoint_that_is_down_falls_back_at_once(reference_index, model):
    config = LLMConfig(base_url=f"http://127.0.0.1:{closed_port()}/v1", model=model, timeout=TIMEOUT, backoff=0.05)
    answer, elapsed = ask(reference_index, config)
    assert not answer.generated and "could not be reached" in answer.note and answer.found
    assert elapsed < TIMEOUT + 1


def test_without_an_endpoint_nothing_changes(reference_index, monkeypatch):
    monkeypatch.delenv("RAG_LLM_BASE_URL", raising=False)
    plain = reference_index.answer(QUESTION)
    asked = reference_index.answer(QUESTION, generate=True)
    assert not plain.generated and plain.note == "" and plain.verified is None
    assert asked.text == plain.text and not asked.generated and "RAG_LLM_BASE_URL" in asked.note


def test_the_model_name_is_asked_of_the_server_when_not_configured(server, config):
    server.script(default={"content": "好的"})
    client = ChatClient(LLMConfig(base_url=server.url, timeout=TIMEOUT))
    assert client.complete([{"role": "user", "content": "hi"}]) == "好的"
    assert server.requests()[0]["body"]["model"] == "scripted"


def test_configuration_from_the_environment(monkeypatch):
    monkeypatch.delenv("RAG_LLM_BASE_URL", raising=False)
    assert LLMConfig.from_env() is None
    monkeypatch.setenv("RAG_LLM_BASE_URL", "http://127.0.0.1:8000/v1/chat/completions/")
    monkeypatch.setenv("RAG_LLM_MODEL", "qwen2.5")
    monkeypatch.setenv("RAG_LLM_TIMEOUT", "12.5")
    config = LLMConfig.from_env()
    assert (config.base_url, config.model, config.timeout) == ("http://127.0.0.1:8000/v1", "qwen2.5", 12.5)
    assert LLMConfig.from_env(base_url="http://h:1/v1", model="other").model == "other"
    monkeypatch.setenv("RAG_LLM_TIMEOUT", "soon")
    with pytest.raises(RagError, match="RAG_LLM_TIMEOUT"):
        LLMConfig.from_env()
    with pytest.raises(RagError, match="http"):
        LLMConfig.from_env(base_url="ftp://h/v1")


def test_the_prompt_stays_within_its_cap(reference_index):
    hits = reference_index.search(QUESTION, k=10)
    prompt = build_prompt(QUESTION, hits, max_chars=1500)
    size = sum(len(m["content"]) for m in prompt.messages)
    assert size <= 1500 and 1 <= len(prompt.passages) < 10
    for passage, hit in zip(prompt.passages, hits):
        assert hit.text.startswith(passage.text)  # cut passages keep their offsets
    long_question = "问" * 5000
    assert sum(len(m["content"]) for m in build_prompt(long_question, hits, 4000).messages) <= 4000


def test_the_client_never_waits_past_its_deadline(server):
    server.script(default={"delay": 10})
    client = ChatClient(LLMConfig(base_url=server.url, model="m", timeout=0.5))
    started = time.monotonic()
    with pytest.raises(GenerationFailed, match="within 0.5 s"):
        client.complete([{"role": "user", "content": "hi"}])
    assert time.monotonic() - started < 1.0


def test_rag_ask_generate_prints_the_checked_answer(reference_index_dir, server, config, capsys):
    from rag.cli import main

    server.script(default={"content": "2023年全年新增高新技术企业360家[1]，另有9999家[1]。"})
    argv = ["ask", QUESTION, "--generate", "--index", str(reference_index_dir), "--llm-base-url", server.url,
            "--llm-model", "scripted", "--llm-timeout", "5"]
    assert main(argv) == 0
    shown = capsys.readouterr().out
    assert "模型撰写：" in shown and "⚠‹9999家›" in shown and "摘录答案：全年新增高新技术企业360家" in shown
    assert main(argv + ["--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["generated"] and data["verified"] is False and data["unsupported"] == ["9999家"]
    assert data["extractive"]["answer"] == "全年新增高新技术企业360家"
    assert data["statements"][0]["support"][0]["text"] in ("360家", "2023")


def test_rag_eval_generate_reports_and_lists_the_flags(server, config, tmp_path, monkeypatch, capsys):
    from rag.cli import main

    server.script(rules=[{"match": "高新技术企业", "content": "新增高新技术企业360家[1]。"}],
                  default={"content": "共有12345家[1]。"})
    monkeypatch.setenv("RAG_LLM_BASE_URL", server.url)
    flagged = tmp_path / "flagged.jsonl"
    assert main(["eval", "eval/reference.jsonl", "--generate", "--split", "dev", "--limit", "4",
                 "--flagged", str(flagged), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    summary = data["summary"]
    assert summary["questions"] == 4 and summary["written"] + sum(summary["fell_back"].values()) == 4
    rows = [json.loads(line) for line in flagged.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == summary["flagged"] and all(r["verdict"] == "" and r["unsupported"] for r in rows)
    verdicts = tmp_path / "verdicts.jsonl"
    verdicts.write_text("".join(json.dumps({"id": r["id"], "verdict": "wrong"}) + "\n" for r in rows), encoding="utf-8")
    assert main(["eval", "eval/reference.jsonl", "--generate", "--split", "dev", "--limit", "4",
                 "--hand-checked", str(verdicts)]) == 0
    assert f"{len(rows)} confirmed wrong" in capsys.readouterr().out


def test_rag_eval_generate_without_an_endpoint_says_how(monkeypatch, capsys):
    from rag.cli import main

    monkeypatch.delenv("RAG_LLM_BASE_URL", raising=False)
    assert main(["eval", "--generate"]) != 0
    assert "RAG_LLM_BASE_URL" in capsys.readouterr().err


def test_both_prompt_languages_say_the_same_things():
    from rag.generation.prompt import PROMPTS

    assert set(PROMPTS["zh"]) == set(PROMPTS["en"])
    for language in ("zh", "en"):
        words = PROMPTS[language]
        assert "{not_found}" in words["system"]
        assert all(f"{{{key}}}" in words["user"] for key in ("passages", "conversation", "question"))
