"""A scripted OpenAI-compatible chat-completions server, run as a real subprocess to test LLM clients against.

Standard library only. Run `python tests/llm_server.py --port 0`; it prints `LISTENING <port>` and serves on
127.0.0.1 until killed. Replies are scripted through `POST /control/script` with ReplySpec dicts:

    match        substring of the last user message's content; rules only, tried in order, never consumed
                 (absent: the rule always applies)
    content      reply text (default "")
    delay        seconds to sleep before sending anything (default 0)
    status       HTTP status (default 200); >= 400 sends {"error": {"message": content or "scripted error", ...}}
    raw          body sent verbatim with `status` and Content-Type application/json (e.g. malformed JSON)
    chunk_chars  streaming: characters per content chunk (default 4; <= 0 sends the content in one chunk)
    chunk_delay  streaming: seconds between content chunks (default 0)
    drop_after   streaming: close the connection after this many content chunks (at most all of them), without
                 the stop chunk, [DONE] or the end of the chunked body (the client sees an incomplete read)
    headers      extra response headers, e.g. {"Retry-After": "1"}

Choice: the first matching rule, else the head of `queue` (popped), else `default`, else "文档中未找到答案。".
`POST /control/reset` clears the script and the record; `GET /control/requests` lists the recorded chat requests.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHAT_PATH = "/v1/chat/completions"
FALLBACK_CONTENT = "文档中未找到答案。"
SPEC_TYPES: dict[str, tuple[type, ...]] = {
    "match": (str,), "content": (str,), "delay": (int, float), "status": (int,), "raw": (str,),
    "chunk_chars": (int,), "chunk_delay": (int, float), "drop_after": (int,), "headers": (dict,),
}
CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


def check_spec(spec: Any, where: str) -> dict:
    """Reject a misspelt key or a wrong type at scripting time, so a test fails loudly instead of oddly."""
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: a ReplySpec must be a JSON object, got {type(spec).__name__}")
    for key, value in spec.items():
        if key not in SPEC_TYPES:
            raise ValueError(f"{where}: unknown ReplySpec key {key!r} (known: {', '.join(SPEC_TYPES)})")
        if isinstance(value, bool) or not isinstance(value, SPEC_TYPES[key]):
            raise ValueError(f"{where}: {key!r} has the wrong type {type(value).__name__}")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in spec.get("headers", {}).items()):
        raise ValueError(f"{where}: 'headers' must map strings to strings")
    if not 100 <= spec.get("status", 200) <= 599:
        raise ValueError(f"{where}: 'status' must be an HTTP status (100-599)")
    if min(spec.get("delay", 0), spec.get("chunk_delay", 0), spec.get("drop_after", 0)) < 0:
        raise ValueError(f"{where}: 'delay', 'chunk_delay' and 'drop_after' must not be negative")
    return spec


def message_text(content: Any) -> str:
    """Text of a message's content, which OpenAI allows to be a string or a list of typed parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def last_user_text(body: Any) -> str:
    """What rules match against: the content of the last message whose role is "user"."""
    messages = body.get("messages") if isinstance(body, dict) else None
    for message in reversed(messages if isinstance(messages, list) else []):
        if isinstance(message, dict) and message.get("role") == "user":
            return message_text(message.get("content"))
    return ""


class Script:
    """The scripted replies and the record of requests, shared by all handler threads under one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rules: list[dict] = []
        self.queue: list[dict] = []
        self.default: dict | None = None
        self.recorded: list[dict] = []
        self.counter = 0

    def replace(self, payload: Any) -> None:
        """Install a whole new script (validated first, so a bad one leaves the old script in place)."""
        if not isinstance(payload, dict):
            raise ValueError("the script must be a JSON object with 'rules', 'queue' and 'default'")
        unknown = set(payload) - {"rules", "queue", "default"}
        if unknown:
            raise ValueError(f"unknown script keys: {sorted(unknown)}")
        lists = {}
        for name in ("rules", "queue"):
            items = payload.get(name) or []
            if not isinstance(items, list):
                raise ValueError(f"{name!r} must be a list of ReplySpec objects")
            lists[name] = [check_spec(item, f"{name}[{i}]") for i, item in enumerate(items)]
        default = payload.get("default")
        default = None if default is None else check_spec(default, "default")
        with self.lock:
            self.rules, self.queue, self.default = lists["rules"], lists["queue"], default

    def reset(self) -> None:
        with self.lock:
            self.rules, self.queue, self.default, self.recorded = [], [], None, []

    def record_and_choose(self, entry: dict) -> tuple[dict, int]:
        """Record one chat request and pick its reply atomically, so concurrent requests each pop their own item."""
        text = last_user_text(entry["body"])
        with self.lock:
            self.recorded.append(entry)
            self.counter += 1
            for rule in self.rules:
                if rule.get("match", "") in text:
                    return rule, self.counter
            if self.queue:
                return self.queue.pop(0), self.counter
            return (self.default or {"content": FALLBACK_CONTENT}), self.counter

    def requests(self) -> list[dict]:
        with self.lock:
            return list(self.recorded)


class Handler(BaseHTTPRequestHandler):
    """One request; HTTP/1.1 so clients can keep connections alive and streams use chunked encoding like OpenAI's."""

    protocol_version = "HTTP/1.1"
    server_version = "ScriptedLLM/1.0"
    script: Script  # set on the class by serve()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read stdout for LISTENING and stderr only for real failures."""

    def read_body(self) -> bytes:
        """The request body, by Content-Length or chunked transfer encoding."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def send_json(self, status: int, payload: Any, headers: dict | None = None, raw: str | None = None) -> None:
        """One complete JSON (or verbatim raw) response with a Content-Length."""
        data = (raw if raw is not None else json.dumps(payload, ensure_ascii=False)).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def do_GET(self) -> None:
        self.read_body()
        try:
            if self.path == "/v1/models":
                self.send_json(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})
            elif self.path == "/control/requests":
                self.send_json(200, self.script.requests())
            else:
                self.send_json(404, {"error": {"message": f"no route GET {self.path}", "type": "not_found"}})
        except CLIENT_GONE:
            self.close_connection = True

    def do_POST(self) -> None:
        received = time.time()
        raw_body = self.read_body()
        try:
            if self.path == CHAT_PATH:
                self.chat(raw_body, received)
            elif self.path == "/control/script":
                try:
                    self.script.replace(json.loads(raw_body or b"{}"))
                except ValueError as exc:  # json.JSONDecodeError is a ValueError too
                    self.send_json(400, {"error": {"message": str(exc), "type": "invalid_script"}})
                else:
                    self.send_json(200, {"ok": True})
            elif self.path == "/control/reset":
                self.script.reset()
                self.send_json(200, {"ok": True})
            else:
                self.send_json(404, {"error": {"message": f"no route POST {self.path}", "type": "not_found"}})
        except CLIENT_GONE:
            self.close_connection = True

    def chat(self, raw_body: bytes, received: float) -> None:
        """Record the request, pick the scripted reply and send it plain, streamed or as an error."""
        text = raw_body.decode("utf-8", errors="replace")
        try:
            body: Any = json.loads(text)
        except ValueError:
            body = text
        headers = {name.lower(): value for name, value in self.headers.items()}
        spec, number = self.script.record_and_choose(
            {"path": self.path, "headers": headers, "body": body, "time": received})
        if spec.get("delay"):
            time.sleep(spec["delay"])
        status, content, extra = spec.get("status", 200), spec.get("content", ""), spec.get("headers", {})
        if "raw" in spec:
            self.send_json(status, None, extra, raw=spec["raw"])
        elif status >= 400:
            error = {"error": {"message": content or "scripted error", "type": "server_error"}}
            self.send_json(status, error, extra)
        elif isinstance(body, dict) and body.get("stream") is True:
            self.stream(body, spec, f"chatcmpl-scripted-{number}")
        else:
            self.send_json(status, {
                "id": f"chatcmpl-scripted-{number}", "object": "chat.completion", "created": int(time.time()),
                "model": self.model(body),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                             "finish_reason": "stop"}],
                "usage": self.usage(body, content),
            }, extra)

    @staticmethod
    def model(body: Any) -> str:
        return body.get("model", "scripted") if isinstance(body, dict) else "scripted"

    @staticmethod
    def usage(body: Any, content: str) -> dict:
        """Character counts stand in for tokens: plausible numbers without a tokenizer."""
        messages = body.get("messages") if isinstance(body, dict) else None
        prompt = sum(len(message_text(m.get("content"))) for m in messages if isinstance(m, dict)) \
            if isinstance(messages, list) else 0
        return {"prompt_tokens": prompt, "completion_tokens": len(content), "total_tokens": prompt + len(content)}

    def write_chunk(self, data: bytes) -> None:
        """One HTTP chunk, flushed at once so the client sees each SSE event as it is sent."""
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def stream(self, body: dict, spec: dict, reply_id: str) -> None:
        """Server-sent events the way OpenAI sends them; a vanished client ends the stream quietly."""
        content = spec.get("content", "")
        size = spec.get("chunk_chars", 4)
        pieces = [content[i:i + size] for i in range(0, len(content), size)] if size > 0 else [content]
        pieces = [p for p in pieces if p]
        base = {"id": reply_id, "object": "chat.completion.chunk", "created": int(time.time()),
                "model": self.model(body)}

        def event(delta: dict, finish: str | None, **more: Any) -> bytes:
            chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **more}
            return b"data: " + json.dumps(chunk, ensure_ascii=False).encode("utf-8") + b"\n\n"

        self.send_response(spec.get("status", 200))
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in spec.get("headers", {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.write_chunk(event({"role": "assistant", "content": ""}, None))
        for sent, piece in enumerate(pieces):
            if "drop_after" in spec and sent >= spec["drop_after"]:
                break
            if sent and spec.get("chunk_delay"):
                time.sleep(spec["chunk_delay"])
            self.write_chunk(event({"content": piece}, None))
        if "drop_after" in spec:
            self.close_connection = True  # no final chunk, no [DONE], no terminating zero-length chunk
            return
        self.write_chunk(event({}, "stop"))
        options = body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            usage = b"data: " + json.dumps({**base, "choices": [], "usage": self.usage(body, content)},
                                           ensure_ascii=False).encode("utf-8") + b"\n\n"
            self.write_chunk(usage)
        self.write_chunk(b"data: [DONE]\n\n")
        self.write_chunk(b"")


class QuietServer(ThreadingHTTPServer):
    """Threads per request, daemon so a killed server never waits; a client hanging up is not an error."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], CLIENT_GONE):
            super().handle_error(request, client_address)


def serve(port: int) -> None:
    """Bind 127.0.0.1, announce the port on stdout, serve until killed."""
    Handler.script = Script()
    server = QuietServer(("127.0.0.1", port), Handler)
    print(f"LISTENING {server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


class ScriptedLLMServer:
    """Starts tests/llm_server.py as a subprocess; .url is 'http://127.0.0.1:<port>/v1'."""

    def __init__(self, startup_timeout: float = 20.0) -> None:
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen | None = None
        self.port: int | None = None
        self._stderr: Any = None
        # Control calls must never go through an HTTP proxy from the environment.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("ScriptedLLMServer is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return self.base_url + "/v1"

    def start(self) -> "ScriptedLLMServer":
        """Launch the subprocess and wait for its LISTENING line, failing with its stderr if it never comes."""
        if self.process is not None:
            return self
        self._stderr = tempfile.TemporaryFile()  # a file, not a pipe, so a chatty server can never block
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--port", "0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr, text=True)
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(self.process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(self.startup_timeout)
        line = lines[0].strip() if lines else ""
        if not line.startswith("LISTENING "):
            if lines:  # stdout closed: let the process finish writing its traceback
                try:
                    self.process.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    pass
            stderr = self._stderr_text()
            self.stop()
            why = (f"printed no LISTENING line within {self.startup_timeout} s" if not lines
                   else f"printed {line!r} instead of LISTENING <port>" if line else "exited before LISTENING")
            raise RuntimeError(f"scripted LLM server {why}; stderr:\n{stderr}")
        self.port = int(line.split()[1])
        return self

    def _stderr_text(self) -> str:
        if self._stderr is None or self._stderr.closed:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", errors="replace")

    def stop(self) -> None:
        """Terminate the subprocess (kill if it lingers) and release its pipes."""
        process, self.process, self.port = self.process, None, None
        if process is not None:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)
            if process.stdout is not None:
                process.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        """One control request; an HTTP error becomes a RuntimeError carrying the server's message."""
        data = None if payload is None else json.dumps(payload, ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(self.base_url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with self._opener.open(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            message = exc.read().decode("utf-8", "replace")
            raise RuntimeError(f"{method} {path} failed ({exc.code}): {message}") from None

    def script(self, rules: Any = (), queue: Any = (), default: dict | None = None) -> None:
        """Replace the whole script: rules by match, then the queue in order, then the default."""
        self._call("POST", "/control/script", {"rules": list(rules), "queue": list(queue), "default": default})

    def reset(self) -> None:
        self._call("POST", "/control/reset", {})

    def requests(self) -> list[dict]:
        """The chat-completion requests received since the last reset: path, headers, body, time."""
        return self._call("GET", "/control/requests")

    def __enter__(self) -> "ScriptedLLMServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    serve(parser.parse_args().port)
