"""LLM providers: Gemini through google-genai, or any OpenAI-compatible endpoint.

A plain package that the agent (rationales) and ask-the-database both use; it imports no
project app. The public API: `llm_client()` (None when no LLM is configured),
`LLMClient.complete(prompt, system=...)` and `LLMError`. Errors name the provider and
what went wrong, never the API key.
"""

import functools
import logging
from abc import ABC, abstractmethod

import httpx
from django.conf import settings

logger = logging.getLogger(__name__)


def _transport_errors() -> tuple[type[Exception], ...]:
    """httpx errors; newer google-genai releases send through the httpx2 fork instead."""
    errors: list[type[Exception]] = [httpx.HTTPError]
    try:
        import httpx2

        errors.append(httpx2.HTTPError)
    except ImportError:
        pass
    return tuple(errors)


TRANSPORT_ERRORS = _transport_errors()


class LLMError(Exception):
    """The LLM could not give an answer; str() says which provider and why."""


class LLMClient(ABC):
    name: str

    @abstractmethod
    def complete(self, prompt: str, *, system: str | None = None) -> str:
        """The model's text answer to one prompt; raises LLMError."""


class GeminiClient(LLMClient):
    name = "gemini"

    def __init__(self, *, api_key: str, model: str, base_url: str = "", timeout_s: float = 60.0):
        from google import genai
        from google.genai import types

        http_options = types.HttpOptions(timeout=int(timeout_s * 1000), base_url=base_url or None)
        self._client = genai.Client(api_key=api_key, http_options=http_options)
        self._types = types
        self.model = model

    def complete(self, prompt: str, *, system: str | None = None) -> str:
        from google.genai import errors

        config = self._types.GenerateContentConfig(system_instruction=system, temperature=0)
        try:
            response = self._client.models.generate_content(
                model=self.model, contents=prompt, config=config
            )
        except errors.APIError as exc:
            raise LLMError(f"Gemini API error {exc.code}: {exc.message or exc.status}") from None
        except TRANSPORT_ERRORS as exc:
            raise LLMError(f"Gemini is not reachable: {type(exc).__name__}: {exc}") from None
        except ValueError as exc:  # a body that is not the API's JSON
            raise LLMError(f"Gemini returned an unreadable answer: {exc}") from None
        try:
            text = response.text
        except ValueError as exc:
            raise LLMError(f"Gemini returned an unreadable answer: {exc}") from None
        if not text:
            reason = _gemini_finish_reason(response)
            raise LLMError(f"Gemini returned no text (finish reason: {reason}).")
        return text


def _gemini_finish_reason(response) -> str:
    candidates = getattr(response, "candidates", None) or []
    if not candidates:
        return "no candidates"
    return str(getattr(candidates[0], "finish_reason", None) or "unknown")


class OpenAIClient(LLMClient):
    """POST {base_url}/chat/completions, as OpenAI, Ollama, vLLM and LiteLLM serve it."""

    name = "openai"

    def __init__(self, *, base_url: str, api_key: str, model: str, timeout_s: float = 60.0):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.api_key = api_key
        self.model = model
        self.timeout_s = timeout_s

    def complete(self, prompt: str, *, system: str | None = None) -> str:
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": prompt})
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        body = {"model": self.model, "messages": messages, "temperature": 0}
        try:
            response = httpx.post(self.url, json=body, headers=headers, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise LLMError(
                f"OpenAI-compatible endpoint {self.url} is not reachable: {type(exc).__name__}"
            ) from None
        if response.status_code != 200:
            raise LLMError(
                f"OpenAI-compatible endpoint returned HTTP {response.status_code}: "
                f"{_openai_error_message(response)}"
            )
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise LLMError(
                f"OpenAI-compatible endpoint returned an unreadable answer: {response.text[:200]!r}"
            ) from None
        if not isinstance(content, str) or not content.strip():
            raise LLMError("OpenAI-compatible endpoint returned an empty answer.")
        return content


def _openai_error_message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])[:300]
    if isinstance(error, str):
        return error[:300]
    return response.text[:300] or response.reason_phrase


def llm_client() -> LLMClient | None:
    """The configured LLM, or None when LLM_PROVIDER is empty (every feature works without)."""
    provider = settings.LLM_PROVIDER
    if not provider:
        return None
    if provider == "gemini":
        if not settings.GEMINI_API_KEY:
            raise LLMError("LLM_PROVIDER is gemini but GEMINI_API_KEY is empty.")
        return _gemini_client(
            settings.GEMINI_API_KEY,
            settings.GEMINI_MODEL,
            settings.GEMINI_BASE_URL,
            settings.LLM_TIMEOUT_SECONDS,
        )
    if provider == "openai":
        if not settings.OPENAI_BASE_URL:
            raise LLMError("LLM_PROVIDER is openai but OPENAI_BASE_URL is empty.")
        return OpenAIClient(
            base_url=settings.OPENAI_BASE_URL,
            api_key=settings.OPENAI_API_KEY,
            model=settings.OPENAI_MODEL,
            timeout_s=settings.LLM_TIMEOUT_SECONDS,
        )
    raise LLMError(f"LLM_PROVIDER={provider!r} is not gemini or openai.")


@functools.lru_cache(maxsize=4)
def _gemini_client(api_key: str, model: str, base_url: str, timeout_s: float) -> GeminiClient:
    # Building a google-genai client loads TLS certificates (~0.1 s): one per configuration.
    return GeminiClient(api_key=api_key, model=model, base_url=base_url, timeout_s=timeout_s)
