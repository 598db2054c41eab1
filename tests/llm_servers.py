"""Local HTTP servers that speak the Gemini and OpenAI chat APIs, for contract tests.

Each server runs in a thread on 127.0.0.1 (random port), answers from a queue of canned
replies (then `default`), and records every request so a test can assert on the prompt.

    def test_x(gemini_server, settings):
        gemini_server.configure(settings)          # LLM_PROVIDER=gemini, base URL, key
        gemini_server.reply("SELECT 1")            # next answer (text)
        gemini_server.reply_error(500, "boom")     # or an HTTP error
        ...
        assert "demo_user" in gemini_server.requests[0].prompt

Register the fixtures in a conftest: `from tests.llm_servers import gemini_server, openai_server`.
"""

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Reply:
    status: int = 200
    text: str | None = None  # the model's answer, wrapped in the API's JSON
    raw: bytes | None = None  # or a raw body (garbage, an API error document)


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: dict | None
    prompt: str = ""  # every text part / message content, joined
    system: str = ""
    extra: dict = field(default_factory=dict)


class LLMServer:
    """The shared machinery; subclasses format bodies and read prompts for one API."""

    provider = ""

    def __init__(self, default: str = "SELECT 1"):
        self.default = default
        self.replies: deque[Reply] = deque()
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "LLMServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def reply(self, text: str) -> None:
        self.replies.append(Reply(text=text))

    def reply_error(self, status: int, message: str = "error") -> None:
        self.replies.append(Reply(status=status, raw=self.error_body(status, message)))

    def reply_raw(self, body: bytes, status: int = 200) -> None:
        self.replies.append(Reply(status=status, raw=body))

    @property
    def prompts(self) -> list[str]:
        return [request.prompt for request in self.requests]

    # --- per API ---
    def configure(self, settings) -> None:
        raise NotImplementedError

    def answer_body(self, text: str) -> dict:
        raise NotImplementedError

    def error_body(self, status: int, message: str) -> bytes:
        raise NotImplementedError

    def read_prompt(self, body: dict) -> tuple[str, str]:
        raise NotImplementedError

    def _next_reply(self) -> Reply:
        with self._lock:
            return self.replies.popleft() if self.replies else Reply(text=self.default)

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"null")
                except ValueError:
                    body = None
                prompt, system = server.read_prompt(body) if isinstance(body, dict) else ("", "")
                server.requests.append(
                    RecordedRequest(
                        method="POST",
                        path=self.path,
                        headers={key.lower(): value for key, value in self.headers.items()},
                        body=body,
                        prompt=prompt,
                        system=system,
                    )
                )
                reply = server._next_reply()
                payload = (
                    reply.raw
                    if reply.raw is not None
                    else json.dumps(server.answer_body(reply.text or "")).encode()
                )
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):  # keep test output quiet
                pass

        return Handler


class GeminiServer(LLMServer):
    """POST /{api version}/models/{model}:generateContent, as google-genai calls it."""

    provider = "gemini"
    api_key = "test-gemini-key"

    def configure(self, settings) -> None:
        settings.LLM_PROVIDER = "gemini"
        settings.GEMINI_BASE_URL = self.url
        settings.GEMINI_API_KEY = self.api_key
        settings.GEMINI_MODEL = "gemini-test"

    def answer_body(self, text: str) -> dict:
        return {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": text}]},
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5},
            "modelVersion": "gemini-test",
        }

    def error_body(self, status: int, message: str) -> bytes:
        statuses = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED"}
        error = {"code": status, "message": message, "status": statuses.get(status, "INTERNAL")}
        return json.dumps({"error": error}).encode()

    def read_prompt(self, body: dict) -> tuple[str, str]:
        def texts(content) -> list[str]:
            return [part.get("text", "") for part in (content or {}).get("parts", [])]

        prompt = [text for content in body.get("contents", []) for text in texts(content)]
        system = texts(body.get("systemInstruction") or body.get("system_instruction"))
        return "\n".join(prompt), "\n".join(system)


class OpenAIServer(LLMServer):
    """POST /v1/chat/completions, as OpenAI, Ollama and vLLM serve it."""

    provider = "openai"
    api_key = "test-openai-key"

    def configure(self, settings) -> None:
        settings.LLM_PROVIDER = "openai"
        settings.OPENAI_BASE_URL = self.url + "/v1"
        settings.OPENAI_API_KEY = self.api_key
        settings.OPENAI_MODEL = "local-test-model"

    def answer_body(self, text: str) -> dict:
        return {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "model": "local-test-model",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }

    def error_body(self, status: int, message: str) -> bytes:
        return json.dumps({"error": {"message": message, "type": "test_error"}}).encode()

    def read_prompt(self, body: dict) -> tuple[str, str]:
        messages = body.get("messages") or []
        prompt = [m.get("content", "") for m in messages if m.get("role") == "user"]
        system = [m.get("content", "") for m in messages if m.get("role") == "system"]
        return "\n".join(prompt), "\n".join(system)


@pytest.fixture
def gemini_server():
    server = GeminiServer().start()
    yield server
    server.stop()


@pytest.fixture
def openai_server():
    server = OpenAIServer().start()
    yield server
    server.stop()
