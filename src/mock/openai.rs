//! The mock's OpenAI-shaped answers, for `openai = true`: `POST /v1/embeddings` (one embedding
//! per input) and `POST /v1/chat/completions` (a completion, or the stream's head for
//! `"stream": true`), and the OpenAI error body (`{"error":{"message","type","param","code"}}`).
//!
//! In: the request body of one of those two routes, and the [`OpenAi`] settings built once at
//! start. Out: what the request asks ([`Ask`], or the message of a 400) and the JSON bytes of the
//! answer. Values are deterministic (derived from the input's index and the float's position,
//! no RNG); `model` is echoed from the request (`connscope-mock` when absent); ids count up per
//! server (`chatcmpl-mock-N`). This is the only part of the mock that parses a request body
//! besides the `stream` check. It does not decide status, latency or faults: the handler does,
//! as for any request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use http::StatusCode;
use serde::{Deserialize, Serialize};

use super::config::{
    DEFAULT_EMBEDDING_DIMENSIONS, MAX_EMBEDDING_DIMENSIONS, MockConfig, StreamTokens,
};
use crate::units::HumanDuration;

/// The model named in an answer when the request names none.
pub const DEFAULT_MODEL: &str = "connscope-mock";
/// Tokens of a completion (and of its stream) when `[mock] stream` is not set.
pub const DEFAULT_COMPLETION_TOKENS: u32 = 8;
/// The most inputs one embeddings request may carry (OpenAI's own limit).
pub const MAX_INPUTS: usize = 2048;

/// Which OpenAI route a request is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `POST /v1/embeddings`.
    Embeddings,
    /// `POST /v1/chat/completions`.
    ChatCompletions,
}

impl Endpoint {
    /// The endpoint at `path`, if it is one.
    pub fn at(path: &str) -> Option<Endpoint> {
        match path {
            "/v1/embeddings" => Some(Endpoint::Embeddings),
            "/v1/chat/completions" => Some(Endpoint::ChatCompletions),
            _ => None,
        }
    }
}

/// The OpenAI routes' settings, built once per server.
pub(crate) struct OpenAi {
    /// Floats per embedding unless a request asks for `dimensions`.
    dimensions: usize,
    /// Tokens of a completion and the gap between two in its stream.
    pub stream: StreamTokens,
    /// The number of the next chat completion (its id).
    next_id: AtomicU64,
}

/// What a request on an OpenAI route asks, read from its body.
#[derive(Debug, PartialEq)]
pub(crate) enum Ask {
    /// Embeddings for `inputs` inputs.
    Embeddings(EmbeddingsAsk),
    /// A chat completion.
    Chat(ChatAsk),
}

/// An embeddings request.
#[derive(Debug, PartialEq)]
pub(crate) struct EmbeddingsAsk {
    model: Option<String>,
    inputs: usize,
    prompt_tokens: u64,
    dimensions: Option<usize>,
    base64: bool,
}

/// A chat completion request.
#[derive(Debug, PartialEq)]
pub(crate) struct ChatAsk {
    model: Option<String>,
    /// `"stream": true`: answer with server-sent events.
    pub stream: bool,
    prompt_tokens: u64,
}

/// The request body as far as the mock reads it; other keys are ignored.
#[derive(Deserialize)]
struct Wire {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    input: Option<Input>,
    #[serde(default)]
    messages: Option<Vec<Message>>,
    #[serde(default)]
    encoding_format: Option<String>,
    #[serde(default)]
    dimensions: Option<usize>,
}

/// `input` of an embeddings request: a string, strings, one tokenized input or several.
#[derive(Deserialize)]
#[serde(untagged)]
enum Input {
    One(String),
    Many(Vec<String>),
    Tokens(Vec<i64>),
    ManyTokens(Vec<Vec<i64>>),
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: Option<Content>,
}

/// A message's content: text, or parts of which the text ones count.
#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize)]
struct Part {
    #[serde(default)]
    text: Option<String>,
}

fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

impl OpenAi {
    /// Built once per server from its validated config.
    pub fn new(config: &MockConfig) -> OpenAi {
        OpenAi {
            dimensions: config
                .embedding_dimensions
                .unwrap_or(DEFAULT_EMBEDDING_DIMENSIONS),
            stream: config.stream.unwrap_or(StreamTokens {
                tokens: DEFAULT_COMPLETION_TOKENS,
                interval: HumanDuration(Duration::ZERO),
            }),
            next_id: AtomicU64::new(1),
        }
    }

    /// What a request on `endpoint` with this body asks, or why it is a bad request.
    pub fn parse(endpoint: Endpoint, body: &[u8]) -> Result<Ask, String> {
        let wire: Wire = serde_json::from_slice(body)
            .map_err(|e| format!("the request body is not the expected JSON: {e}"))?;
        match endpoint {
            Endpoint::Embeddings => {
                let (inputs, prompt_tokens) = match wire.input {
                    None => return Err("'input' is a required property".into()),
                    Some(Input::One(s)) => (1, words(&s)),
                    Some(Input::Many(v)) => (v.len(), v.iter().map(|s| words(s)).sum()),
                    Some(Input::Tokens(t)) => (1, t.len() as u64),
                    Some(Input::ManyTokens(v)) => (v.len(), v.iter().map(|t| t.len() as u64).sum()),
                };
                if !(1..=MAX_INPUTS).contains(&inputs) {
                    return Err(format!("expected 1..={MAX_INPUTS} inputs, found {inputs}"));
                }
                if let Some(d) = wire.dimensions
                    && !(1..=MAX_EMBEDDING_DIMENSIONS).contains(&d)
                {
                    return Err(format!(
                        "expected dimensions 1..={MAX_EMBEDDING_DIMENSIONS}, found {d}"
                    ));
                }
                let base64 = match wire.encoding_format.as_deref() {
                    None | Some("float") => false,
                    Some("base64") => true,
                    Some(other) => {
                        return Err(format!(
                            "expected encoding_format \"float\" or \"base64\", found {other:?}"
                        ));
                    }
                };
                Ok(Ask::Embeddings(EmbeddingsAsk {
                    model: wire.model,
                    inputs,
                    prompt_tokens,
                    dimensions: wire.dimensions,
                    base64,
                }))
            }
            Endpoint::ChatCompletions => {
                let messages = wire
                    .messages
                    .ok_or_else(|| "'messages' is a required property".to_string())?;
                let prompt_tokens = messages
                    .iter()
                    .map(|m| match &m.content {
                        None => 0,
                        Some(Content::Text(t)) => words(t),
                        Some(Content::Parts(parts)) => parts
                            .iter()
                            .filter_map(|p| p.text.as_deref())
                            .map(words)
                            .sum(),
                    })
                    .sum();
                Ok(Ask::Chat(ChatAsk {
                    model: wire.model,
                    stream: wire.stream == Some(true),
                    prompt_tokens,
                }))
            }
        }
    }

    /// The JSON answer to a request that is not a stream.
    pub fn answer(&self, ask: &Ask) -> Bytes {
        let json = match ask {
            Ask::Embeddings(e) => serde_json::to_vec(&self.embeddings(e)),
            Ask::Chat(c) => serde_json::to_vec(&self.completion(c)),
        };
        Bytes::from(json.unwrap_or_default())
    }

    fn embeddings<'a>(&self, ask: &'a EmbeddingsAsk) -> EmbeddingList<'a> {
        let dims = ask.dimensions.unwrap_or(self.dimensions);
        let data = (0..ask.inputs)
            .map(|index| {
                let floats = (0..dims).map(|j| value(index, j));
                let embedding = if ask.base64 {
                    let bytes: Vec<u8> = floats.flat_map(f32::to_le_bytes).collect();
                    Vector::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
                } else {
                    Vector::Floats(floats.collect())
                };
                Embedding {
                    object: "embedding",
                    index,
                    embedding,
                }
            })
            .collect();
        EmbeddingList {
            object: "list",
            data,
            model: ask.model.as_deref().unwrap_or(DEFAULT_MODEL),
            usage: Usage {
                prompt_tokens: ask.prompt_tokens,
                completion_tokens: None,
                total_tokens: ask.prompt_tokens,
            },
        }
    }

    fn completion<'a>(&self, ask: &'a ChatAsk) -> Completion<'a> {
        let tokens = self.stream.tokens;
        let content: String = (1..=tokens).map(|n| format!("t{n} ")).collect();
        Completion {
            id: self.next_id(),
            object: "chat.completion",
            created: now_secs(),
            model: ask.model.as_deref().unwrap_or(DEFAULT_MODEL),
            choices: [Choice {
                index: 0,
                message: AssistantMessage {
                    role: "assistant",
                    content,
                },
                logprobs: None,
                finish_reason: "stop",
            }],
            usage: Usage {
                prompt_tokens: ask.prompt_tokens,
                completion_tokens: Some(u64::from(tokens)),
                total_tokens: ask.prompt_tokens + u64::from(tokens),
            },
        }
    }

    /// What every event of a streamed completion starts with: its id, `created` and `model`
    /// (the same style as a completion), up to the opening of `choices`.
    pub fn chunk_head(&self, ask: &ChatAsk) -> Bytes {
        let model = ask.model.as_deref().unwrap_or(DEFAULT_MODEL);
        let model = serde_json::to_string(model).unwrap_or_else(|_| "\"\"".into());
        Bytes::from(format!(
            "{{\"id\":\"{}\",\"object\":\"chat.completion.chunk\",\"created\":{},\"model\":{model},\"choices\":[",
            self.next_id(),
            now_secs(),
        ))
    }

    fn next_id(&self) -> String {
        format!(
            "chatcmpl-mock-{}",
            self.next_id.fetch_add(1, Ordering::Relaxed)
        )
    }
}

/// The `j`-th float of the embedding of input `index`: a multiple of 1/16 in 0..1, exact in
/// binary and short in JSON.
pub(crate) fn value(index: usize, j: usize) -> f32 {
    ((index + j) % 16) as f32 / 16.0
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[derive(Serialize)]
struct EmbeddingList<'a> {
    object: &'static str,
    data: Vec<Embedding>,
    model: &'a str,
    usage: Usage,
}

#[derive(Serialize)]
struct Embedding {
    object: &'static str,
    index: usize,
    embedding: Vector,
}

/// Floats, or their little-endian `f32` bytes in base64 (`encoding_format = "base64"`).
#[derive(Serialize)]
#[serde(untagged)]
enum Vector {
    Floats(Vec<f32>),
    Base64(String),
}

#[derive(Serialize)]
struct Usage {
    prompt_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    completion_tokens: Option<u64>,
    total_tokens: u64,
}

#[derive(Serialize)]
struct Completion<'a> {
    id: String,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [Choice; 1],
    usage: Usage,
}

#[derive(Serialize)]
struct Choice {
    index: u32,
    message: AssistantMessage,
    logprobs: Option<()>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct AssistantMessage {
    role: &'static str,
    content: String,
}

/// OpenAI's error body for a 4xx or 5xx: `type` and `code` from the status, as the API names
/// them (`rate_limit_error`/`rate_limit_exceeded` for 429, `server_error` for 5xx).
pub(crate) fn error_body(status: StatusCode, message: &str) -> Bytes {
    let (kind, code) = match status.as_u16() {
        401 => ("authentication_error", Some("invalid_api_key")),
        403 => ("permission_error", Some("permission_denied")),
        404 => ("invalid_request_error", Some("not_found")),
        429 => ("rate_limit_error", Some("rate_limit_exceeded")),
        500..=599 => ("server_error", Some("server_error")),
        _ => ("invalid_request_error", None),
    };
    let body = serde_json::json!({
        "error": { "message": message, "type": kind, "param": null, "code": code }
    });
    Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn openai(config: &str) -> OpenAi {
        OpenAi::new(&toml::from_str(config).unwrap())
    }

    fn answer(o: &OpenAi, endpoint: Endpoint, body: &str) -> Value {
        let ask = OpenAi::parse(endpoint, body.as_bytes()).unwrap();
        serde_json::from_slice(&o.answer(&ask)).unwrap()
    }

    #[test]
    fn embeddings_answer_one_vector_per_input_in_the_openai_list_shape() {
        let o = openai("openai = true");
        let v = answer(
            &o,
            Endpoint::Embeddings,
            r#"{"model":"text-embedding-3-small","input":["a cat","a dog sat","x"]}"#,
        );
        assert_eq!(v["object"], "list");
        assert_eq!(v["model"], "text-embedding-3-small");
        let data = v["data"].as_array().unwrap();
        assert_eq!(data.len(), 3);
        for (i, e) in data.iter().enumerate() {
            assert_eq!(e["object"], "embedding");
            assert_eq!(e["index"], i);
            assert_eq!(e["embedding"].as_array().unwrap().len(), 8);
        }
        assert_eq!(
            v["usage"],
            serde_json::json!({"prompt_tokens": 6, "total_tokens": 6})
        );
        let one = answer(&o, Endpoint::Embeddings, r#"{"input":"just one"}"#);
        assert_eq!(one["data"].as_array().unwrap().len(), 1);
        assert_eq!(one["model"], DEFAULT_MODEL);
        let tokens = answer(&o, Endpoint::Embeddings, r#"{"input":[[1,2],[3]]}"#);
        assert_eq!(tokens["data"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn embedding_values_are_deterministic_and_follow_the_configured_dimension() {
        let o = openai("openai = true\nembedding_dimensions = 20");
        let body = r#"{"input":["a","b"]}"#;
        let (a, b) = (
            answer(&o, Endpoint::Embeddings, body),
            answer(&o, Endpoint::Embeddings, body),
        );
        assert_eq!(a, b);
        let second = a["data"][1]["embedding"].as_array().unwrap();
        assert_eq!(second.len(), 20);
        assert_eq!(second[0], 0.0625);
        assert_eq!(second[15], 0.0);
        let asked = answer(&o, Endpoint::Embeddings, r#"{"input":"a","dimensions":3}"#);
        assert_eq!(
            asked["data"][0]["embedding"],
            serde_json::json!([0.0, 0.0625, 0.125])
        );
    }

    #[test]
    fn base64_embeddings_are_the_same_floats_as_little_endian_f32() {
        let o = openai("openai = true");
        let v = answer(
            &o,
            Endpoint::Embeddings,
            r#"{"input":["a","b"],"encoding_format":"base64"}"#,
        );
        let text = v["data"][1]["embedding"].as_str().unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap();
        let floats: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(floats, (0..8).map(|j| value(1, j)).collect::<Vec<_>>());
    }

    #[test]
    fn a_chat_completion_echoes_the_model_and_counts_its_tokens() {
        let o = openai("openai = true\nstream = { tokens = 3, interval = \"1ms\" }");
        let body = r#"{"model":"gpt-x","messages":[{"role":"user","content":"hello there"},{"role":"user","content":[{"type":"text","text":"and you"}]}]}"#;
        let v = answer(&o, Endpoint::ChatCompletions, body);
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["model"], "gpt-x");
        assert_eq!(v["id"], "chatcmpl-mock-1");
        assert!(v["created"].as_u64().unwrap() > 1_600_000_000);
        let choice = &v["choices"][0];
        assert_eq!(choice["message"]["role"], "assistant");
        assert_eq!(choice["message"]["content"], "t1 t2 t3 ");
        assert_eq!(choice["finish_reason"], "stop");
        assert_eq!(
            v["usage"],
            serde_json::json!({"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7})
        );
        let next = answer(&o, Endpoint::ChatCompletions, r#"{"messages":[]}"#);
        assert_eq!(next["id"], "chatcmpl-mock-2");
        assert_eq!(next["model"], DEFAULT_MODEL);
        assert_eq!(
            next["choices"][0]["message"]["content"], "t1 t2 t3 ",
            "the same content a stream of that many tokens carries"
        );
    }

    #[test]
    fn a_stream_request_is_seen_and_its_chunks_carry_the_completions_id_style() {
        let o = openai("openai = true");
        let ask = OpenAi::parse(
            Endpoint::ChatCompletions,
            br#"{"model":"m\"q","stream":true,"messages":[]}"#,
        )
        .unwrap();
        let Ask::Chat(chat) = &ask else {
            panic!("{ask:?}")
        };
        assert!(chat.stream);
        assert_eq!(o.stream.tokens, DEFAULT_COMPLETION_TOKENS);
        let head = String::from_utf8(o.chunk_head(chat).to_vec()).unwrap();
        let whole: Value = serde_json::from_str(&format!("{head}]}}")).unwrap();
        assert_eq!(whole["id"], "chatcmpl-mock-1");
        assert_eq!(whole["object"], "chat.completion.chunk");
        assert_eq!(whole["model"], "m\"q");
    }

    #[test]
    fn bad_requests_say_what_is_missing() {
        let cases = [
            (Endpoint::Embeddings, "not json", "not the expected JSON"),
            (Endpoint::Embeddings, "{}", "'input' is a required property"),
            (Endpoint::Embeddings, r#"{"input":[]}"#, "found 0"),
            (
                Endpoint::Embeddings,
                r#"{"input":"a","encoding_format":"hex"}"#,
                "found \"hex\"",
            ),
            (
                Endpoint::Embeddings,
                r#"{"input":"a","dimensions":0}"#,
                "expected dimensions 1..=65536, found 0",
            ),
            (Endpoint::ChatCompletions, "{}", "'messages' is a required"),
        ];
        for (endpoint, body, msg) in cases {
            let e = OpenAi::parse(endpoint, body.as_bytes()).unwrap_err();
            assert!(e.contains(msg), "{body}: {e}");
        }
    }

    #[test]
    fn error_bodies_have_the_openai_shape_with_type_and_code_from_the_status() {
        let v: Value =
            serde_json::from_slice(&error_body(StatusCode::SERVICE_UNAVAILABLE, "down")).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error": {"message": "down", "type": "server_error", "param": null, "code": "server_error"}})
        );
        let v: Value =
            serde_json::from_slice(&error_body(StatusCode::TOO_MANY_REQUESTS, "slow")).unwrap();
        assert_eq!(v["error"]["type"], "rate_limit_error");
        assert_eq!(v["error"]["code"], "rate_limit_exceeded");
        let v: Value = serde_json::from_slice(&error_body(StatusCode::BAD_REQUEST, "x")).unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["code"], Value::Null);
    }
}
