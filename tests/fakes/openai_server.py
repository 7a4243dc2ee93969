"""A fake OpenAI-compatible API (``/v1/chat/completions``, ``/v1/embeddings``).

Point a client at :attr:`FakeOpenAIServer.base_url`. Chat answers are queued
with :meth:`FakeOpenAIServer.answer_chat` (the JSON the model "says"),
:meth:`~FakeOpenAIServer.refuse` or :meth:`~FakeOpenAIServer.fail`. Embeddings
are answered by default with deterministic vectors of the requested
dimensions, so end-to-end tests need not queue them.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from typing import Any

from tests.fakes import Canned, FakeHTTPServer, RecordedRequest

CHAT_PATH = "/v1/chat/completions"
EMBEDDINGS_PATH = "/v1/embeddings"


def chat_completion(
    content: str | None, *, model: str = "fake-model", refusal: str | None = None,
    finish_reason: str = "stop",
) -> dict[str, Any]:
    """A chat-completions response body carrying one assistant message."""
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "finish_reason": finish_reason,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
    }


def error_body(message: str, *, type_: str = "invalid_request_error",
               code: str | None = None) -> dict[str, Any]:
    """An error body in OpenAI's shape."""
    return {"error": {"message": message, "type": type_, "code": code, "param": None}}


def fake_vector(text: str, dimensions: int) -> list[float]:
    """A deterministic, deliberately non-normalised vector for ``text``."""
    digest = hashlib.sha256(text.encode()).digest()
    return [(digest[i % len(digest)] - 127.5) / 10 for i in range(dimensions)]


class FakeOpenAIServer(FakeHTTPServer):
    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def answer_chat(self, content: str, *, delay: float = 0.0, model: str = "fake-model") -> None:
        """Queue one chat answer whose message content is ``content`` (JSON text)."""
        self.enqueue(Canned(200, chat_completion(content, model=model), delay=delay),
                     path=CHAT_PATH)

    def refuse(self, reason: str = "I can't help with that.") -> None:
        self.enqueue(Canned(200, chat_completion(None, refusal=reason)), path=CHAT_PATH)

    def fail(self, status: int, *, path: str | None = None, headers: dict[str, str] | None = None,
             message: str = "fake failure", code: str | None = None, delay: float = 0.0) -> None:
        """Queue an error answer (any path when ``path`` is ``None``)."""
        body = error_body(message, code=code)
        self.enqueue(Canned(status, body, headers or {}, delay), path=path)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return self.requests_to(CHAT_PATH)

    @property
    def embedding_requests(self) -> list[RecordedRequest]:
        return self.requests_to(EMBEDDINGS_PATH)

    def default_response(self, request: RecordedRequest) -> Canned:
        if request.path == EMBEDDINGS_PATH:
            return Canned(200, _embeddings_answer(request.json))
        message = f"fake: nothing queued for {request.method} {request.path}"
        return Canned(404, error_body(message, code="not_queued"))


def _embeddings_answer(body: dict[str, Any]) -> dict[str, Any]:
    texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
    dimensions = int(body.get("dimensions") or 8)
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, text in enumerate(texts):
        vector = fake_vector(str(text), dimensions)
        encoded: list[float] | str = vector
        if as_base64:
            encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    return {
        "object": "list",
        "model": body.get("model", "fake-embedding"),
        "data": data,
        "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)},
    }
