//! stagegate's HTTP model backends: `openai` (any OpenAI-compatible chat-completions server:
//! OpenAI itself, llama.cpp, Ollama, vLLM) and `anthropic` (the Messages API).
//!
//! Both stream the answer as server-sent events, classify every way a call can fail into the
//! engine's [`Failure`](stagegate_engine::backend::Failure) kinds, and share one rate-limit pause
//! per backend so that a 429 slows the whole stage down instead of every agent retrying on its own.
//!
//! # Design note: a thin client of our own
//!
//! We talk to the two APIs through a small client on `reqwest` (rustls, HTTP/2) rather than an SDK
//! or a multi-provider framework (genai, rig), because:
//!
//! - there are two endpoints and two wire formats; the request body is a handful of fields and the
//!   streamed answer is a handful of event kinds (`openai` and `anthropic` hold each format in
//!   about a hundred lines);
//! - the engine's retry policy, quorum and fallback need every failure classified our way
//!   (retryable, rate limited with its `Retry-After`, permanent with the server's own message,
//!   timed out, cancelled) and need full control of timeouts: a connect timeout, an idle timeout
//!   on the stream, and the attempt's deadline, none of which a framework exposes in one place;
//! - keys are read at the moment of each call and must never reach an error, a log line or a
//!   `Debug` output, which is easy to guarantee when we build every message ourselves;
//! - the multi-provider crates move fast (rig-core ≥ 0.45 already needs a newer rustc than ours),
//!   and pinning one would tie the whole build to its release train.
//!
//! Retries are *not* done here: one [`Backend::run`](stagegate_engine::backend::Backend::run) is
//! one attempt, and the engine's retry policy (an event per attempt, counted for the quorum)
//! decides whether to try again. What this crate adds is the shared pause after a 429: every
//! later attempt on the same backend waits it out first (see `shared_pause`).
//!
//! The pieces, one per file: `client` (the reqwest client and the attempt pipeline shared by both
//! formats), `body_stream` (a response body that fails when it stalls), `sse` (server-sent
//! events), `http_error` (a non-2xx answer as a [`Failure`](stagegate_engine::backend::Failure)),
//! `retry_after` (the `Retry-After` header), `shared_pause`, `answer` (the text and usage being
//! assembled), `reasoning` (`<think>` blocks), `truncation` (answers cut at the token limit:
//! continued, failed or kept), [`KeySource`], and the formats: chat completions (`openai`),
//! the Responses API (`responses`) and Messages (`anthropic`).

mod answer;
mod anthropic;
mod backend_error;
mod body_stream;
mod client;
mod http_error;
mod key_source;
mod openai;
mod reasoning;
mod responses;
mod retry_after;
mod settings_factory;
mod shared_pause;
mod sse;
mod truncation;

pub use anthropic::AnthropicAgent;
pub use backend_error::HttpBackendError;
pub use key_source::KeySource;
pub use openai::OpenAiAgent;
pub use settings_factory::backend_from_settings;
