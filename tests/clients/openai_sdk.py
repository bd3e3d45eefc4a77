"""Drives the bundled mock with the OpenAI Python SDK, for tests/mock_openai.rs.

Usage: python3 openai_sdk.py BASE_URL MODE
  MODE "ok":    embeddings (a list and a string), a chat completion, the same streamed;
  MODE "error": one chat completion that the mock answers with a 5xx.
Prints one JSON object with what the SDK returned (or raised); the Rust test judges it.
Every call has a timeout and no retries; the mock is on loopback.
"""

import json
import sys

import openai


def main() -> None:
    base_url, mode = sys.argv[1], sys.argv[2]
    client = openai.OpenAI(base_url=base_url, api_key="test", max_retries=0, timeout=10.0)
    out = {"version": openai.__version__}
    if mode == "ok":
        many = client.embeddings.create(model="text-embedding-3-small", input=["a cat", "a dog", "x"])
        out["embeddings"] = {
            "model": many.model,
            "count": len(many.data),
            "indexes": [e.index for e in many.data],
            "first": many.data[1].embedding,
            "prompt_tokens": many.usage.prompt_tokens,
        }
        one = client.embeddings.create(model="m", input="just one", encoding_format="float")
        out["one"] = {"count": len(one.data), "dims": len(one.data[0].embedding)}
        chat = client.chat.completions.create(
            model="gpt-mock", messages=[{"role": "user", "content": "hello there"}]
        )
        out["chat"] = {
            "id": chat.id,
            "object": chat.object,
            "model": chat.model,
            "role": chat.choices[0].message.role,
            "content": chat.choices[0].message.content,
            "finish_reason": chat.choices[0].finish_reason,
            "completion_tokens": chat.usage.completion_tokens,
        }
        chunks = list(
            client.chat.completions.create(
                model="gpt-mock", messages=[{"role": "user", "content": "hi"}], stream=True
            )
        )
        out["stream"] = {
            "chunks": len(chunks),
            "ids": sorted({c.id for c in chunks}),
            "models": sorted({c.model for c in chunks}),
            "content": "".join(c.choices[0].delta.content or "" for c in chunks),
            "finish_reason": chunks[-1].choices[0].finish_reason,
        }
    else:
        try:
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
            out["raised"] = None
        except openai.APIStatusError as e:
            out["raised"] = {
                "class": type(e).__name__,
                "status": e.status_code,
                "type": e.type,
                "code": e.code,
                "message": e.message,
            }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
