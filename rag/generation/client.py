"""A client of the OpenAI chat-completions protocol (vLLM, Ollama, llama.cpp's server, Xinference, cloud APIs) that
never outlives its deadline: each call runs in a worker thread and the caller stops waiting when time is up."""
from __future__ import annotations

import json
import os
import queue
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable, Iterator

import httpx

from rag.types import RagError

RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class GenerationFailed(Exception):
    """The language model gave no usable answer; the message is one line a user can read."""


@dataclass(frozen=True)
class LLMConfig:
    """Where the user's language model runs and how long to wait for it."""

    base_url: str  # e.g. http://127.0.0.1:8000/v1 (the part before /chat/completions)
    model: str = ""  # empty: the first model the server lists
    api_key: str = ""
    timeout: float = 60.0  # seconds for one whole answer, retries included
    retries: int = 2  # further tries after a connection error, a 429 or a 5xx
    backoff: float = 0.5  # seconds before the first retry, doubled each time
    max_prompt_chars: int = 12_000  # passages are cut to keep the prompt within this
    max_tokens: int = 1024
    temperature: float = 0.0

    @classmethod
    def from_env(cls, base_url: str | None = None, model: str | None = None, api_key: str | None = None,
                 **overrides) -> "LLMConfig | None":
        """The configuration from arguments, else RAG_LLM_* variables; None when no base URL is set (off)."""
        base_url = base_url or os.environ.get("RAG_LLM_BASE_URL", "")
        if not base_url.strip():
            return None
        config = cls(base_url=check_base_url(base_url), model=model or os.environ.get("RAG_LLM_MODEL", ""),
                     api_key=api_key or os.environ.get("RAG_LLM_API_KEY", ""))
        for key, variable, kind in (("timeout", "RAG_LLM_TIMEOUT", float), ("retries", "RAG_LLM_RETRIES", int),
                                    ("max_prompt_chars", "RAG_LLM_MAX_PROMPT_CHARS", int)):
            raw = os.environ.get(variable)
            if raw and key not in overrides:
                try:
                    overrides[key] = kind(raw)
                except ValueError:
                    raise RagError(f"{variable} must be a number, got {raw!r}") from None
        config = replace(config, **overrides)
        if config.timeout <= 0 or config.retries < 0 or config.max_prompt_chars < 1000:
            raise RagError("the language model's timeout must be above 0, retries 0 or more and the prompt cap "
                           "at least 1000 characters")
        return config


def check_base_url(url: str) -> str:
    """An http(s) URL without a trailing slash or /chat/completions (both are common pastes)."""
    url = url.strip().rstrip("/")
    if url.endswith("/chat/completions"):
        url = url[: -len("/chat/completions")]
    if not url.startswith(("http://", "https://")):
        raise RagError(f"the language model's base URL must start with http:// or https://, got {url[:80]!r}")
    return url


class ChatClient:
    """Sends one conversation, returns the model's reply; streams the text to `on_text` as it is written."""

    def __init__(self, config: LLMConfig, transport: httpx.BaseTransport | None = None):
        self.config = config
        self._transport = transport
        self._model = config.model

    def complete(self, messages: list[dict], on_text: Callable[[str], None] | None = None) -> str:
        """The reply's text, or GenerationFailed within the configured timeout (streamed when on_text is given)."""
        deadline = time.monotonic() + self.config.timeout
        events: queue.Queue = queue.Queue()
        worker = threading.Thread(target=self._run, args=(messages, on_text is not None, deadline, events),
                                  daemon=True, name="llm-request")
        worker.start()
        while True:
            remaining = deadline - time.monotonic()
            try:
                kind, value = events.get(timeout=max(remaining, 0.001))
            except queue.Empty:
                raise GenerationFailed(f"the language model did not answer within {self.config.timeout:g} s") from None
            if kind == "text":
                on_text(value)  # only a stream sends pieces, and only when on_text asked for one
            elif kind == "error":
                raise GenerationFailed(value)
            else:
                return value

    # ---- the worker thread ---------------------------------------------------------------------
    def _run(self, messages: list[dict], stream: bool, deadline: float, events: queue.Queue) -> None:
        try:
            with httpx.Client(transport=self._transport, headers=self._headers(), follow_redirects=False) as http:
                if not self._model:
                    self._model = self._first_model(http, deadline)
                body = {"model": self._model, "messages": messages, "temperature": self.config.temperature,
                        "max_tokens": self.config.max_tokens, "stream": stream}
                events.put(("done", self._with_retries(http, body, stream, deadline, events)))
        except GenerationFailed as failure:
            events.put(("error", str(failure)))
        except Exception as exc:  # noqa: BLE001 - anything else is still one line for the user, never a traceback
            events.put(("error", f"the language model request failed: {type(exc).__name__}: {str(exc)[:160]}"))

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        return headers

    def _timeout(self, deadline: float) -> httpx.Timeout:
        remaining = max(deadline - time.monotonic(), 0.001)
        return httpx.Timeout(remaining, connect=min(remaining, 10.0))

    def _first_model(self, http: httpx.Client, deadline: float) -> str:
        """The model to ask when none is configured: the first the server lists (llama.cpp and Ollama list theirs)."""
        try:
            response = http.get(f"{self.config.base_url}/models", timeout=self._timeout(deadline))
        except httpx.TransportError as exc:
            raise GenerationFailed(f"the language model could not be reached ({type(exc).__name__})") from None
        try:
            models = response.json().get("data") or []
            return str(models[0]["id"])
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise GenerationFailed("no model is configured (RAG_LLM_MODEL or --llm-model) and the server lists "
                                   "none") from None

    def _with_retries(self, http: httpx.Client, body: dict, stream: bool, deadline: float,
                      events: queue.Queue) -> str:
        delay = self.config.backoff
        for attempt in range(self.config.retries + 1):
            try:
                return self._stream(http, body, deadline, events) if stream else self._once(http, body, deadline)
            except _Retryable as problem:
                wait = max(problem.retry_after or 0.0, delay)
                if attempt == self.config.retries or time.monotonic() + wait >= deadline:
                    raise GenerationFailed(str(problem)) from None
                time.sleep(wait)
                delay *= 2
        raise AssertionError("unreachable")

    def _post(self, http: httpx.Client, body: dict, deadline: float, stream: bool):
        url = f"{self.config.base_url}/chat/completions"
        try:
            if stream:
                return http.stream("POST", url, json=body, timeout=self._timeout(deadline))
            return http.post(url, json=body, timeout=self._timeout(deadline))
        except httpx.TransportError as exc:
            raise _Retryable(f"the language model could not be reached ({type(exc).__name__})") from None

    def _once(self, http: httpx.Client, body: dict, deadline: float) -> str:
        response = self._post(http, body, deadline, stream=False)
        _raise_for_status(response)
        return self._content_of(response)

    def _stream(self, http: httpx.Client, body: dict, deadline: float, events: queue.Queue) -> str:
        pieces: list[str] = []
        try:
            with self._post(http, body, deadline, stream=True) as response:
                if response.status_code >= 400:
                    response.read()
                    _raise_for_status(response)
                if "text/event-stream" not in response.headers.get("content-type", ""):
                    response.read()  # a server that ignores "stream": one JSON body
                    text = self._content_of(response)
                    events.put(("text", text))
                    return text
                finished = False
                for data in _sse_data(response.iter_lines()):
                    if data == "[DONE]":
                        finished = True
                        break
                    piece = _delta_text(data)
                    if piece:
                        pieces.append(piece)
                        events.put(("text", piece))
                    if time.monotonic() > deadline:
                        raise GenerationFailed(f"the language model did not finish within {self.config.timeout:g} s")
        except httpx.TransportError as exc:
            if not pieces:
                raise _Retryable(f"the language model could not be reached ({type(exc).__name__})") from None
            raise GenerationFailed("the language model's stream broke off before the answer was complete") from None
        if not finished:
            raise GenerationFailed("the language model's stream ended before the answer was complete")
        return "".join(pieces)

    @staticmethod
    def _content_of(response: httpx.Response) -> str:
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise GenerationFailed("the language model's reply was not valid chat-completion JSON") from None
        return content if isinstance(content, str) else ""


class _Retryable(Exception):
    """A failure worth another try (connection, 429, 5xx); retry_after from the server's header."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def _raise_for_status(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    detail = ""
    try:
        error = response.json().get("error")
        detail = error.get("message", "") if isinstance(error, dict) else str(error or "")
    except (ValueError, AttributeError):
        pass
    message = f"the language model answered HTTP {response.status_code}" + (f": {detail[:160]}" if detail else "")
    if response.status_code in RETRY_STATUSES:
        try:
            retry_after = float(response.headers.get("retry-after", ""))
        except ValueError:
            retry_after = None
        raise _Retryable(message, retry_after)
    if response.status_code in (401, 403):
        message += " (check RAG_LLM_API_KEY or --llm-api-key)"
    raise GenerationFailed(message)


def _sse_data(lines: Iterator[str]) -> Iterator[str]:
    """The data fields of a server-sent event stream, one per event (multi-line data joined)."""
    data: list[str] = []
    for line in lines:
        if not line.strip():
            if data:
                yield "\n".join(data)
                data = []
        elif line.startswith("data:"):
            data.append(line[5:].lstrip(" "))
    if data:
        yield "\n".join(data)


def _delta_text(data: str) -> str:
    """The text a chunk adds; malformed chunks end the answer as failed, not silently short."""
    try:
        chunk = json.loads(data)
        if "error" in chunk and not chunk.get("choices"):
            message = chunk["error"].get("message", "") if isinstance(chunk["error"], dict) else str(chunk["error"])
            raise GenerationFailed(f"the language model reported an error: {message[:160]}")
        choices = chunk.get("choices") or []
        delta = (choices[0].get("delta") or {}) if choices else {}
        content = delta.get("content")
        return content if isinstance(content, str) else ""
    except (ValueError, AttributeError, TypeError):
        raise GenerationFailed("the language model's stream was not valid chat-completion JSON") from None
