//! The attempt pipeline both wire formats share: wait out the backend's rate-limit pause, read
//! the key, send, classify a rejection, then read the answer (streamed or whole), all raced
//! against the attempt's deadline and cancellation.
//!
//! Racing the whole attempt (instead of giving reqwest a total timeout) keeps one clock, the
//! engine's deadline, and dropping the losing future closes the connection, so nothing keeps
//! running after `run` returns.

use std::error::Error as _;
use std::fmt;
use std::time::{Duration, SystemTime};

use eventsource_stream::Event;
use futures_util::StreamExt;
use reqwest::header::CONTENT_TYPE;
use reqwest::{RequestBuilder, Url};
use stagegate_engine::backend::{AgentOutcome, AgentRequest, Failure, NotedOutcome};
use stagegate_engine::secrets;
use stagegate_settings::OnTruncation;
use tokio::time::{Instant, sleep_until};

use crate::answer::Answer;
use crate::backend_error::HttpBackendError;
use crate::body_stream::{not_json, read_body, read_error_body};
use crate::http_error::{RejectionContext, classify};
use crate::key_source::KeySource;
use crate::shared_pause::SharedPause;
use crate::sse::events;
use crate::truncation::{Assembled, continuation_messages};

/// How long connecting may take before the server counts as unreachable.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a response body may send nothing before the stream counts as stalled.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// One wire format: how to authorize a request and how to read its answer.
pub(crate) trait WireFormat {
    /// Adds the key (when there is one) and the format's own headers.
    fn authorize(request: RequestBuilder, key: Option<&str>) -> RequestBuilder;
    /// Folds one server-sent event into the answer; an error event is a failure.
    fn on_event(event: &Event, answer: &mut Answer) -> Result<(), Failure>;
    /// Reads a whole (non-streamed) JSON answer.
    fn parse_json(body: &serde_json::Value) -> Result<Answer, Failure>;
    /// The request that asks the model to go on after `partial`, the answer so far, which it
    /// cut at its token limit: the conversation with that answer and a request to continue.
    fn continuation(body: &serde_json::Value, partial: &str) -> serde_json::Value {
        let mut body = body.clone();
        body["messages"] = continuation_messages(&body["messages"], partial);
        body
    }
}

/// What both agents hold: the client, the endpoint and the call-time settings.
#[derive(Clone)]
pub(crate) struct Transport {
    client: reqwest::Client,
    endpoint: Url,
    pub(crate) model: String,
    pub(crate) key: Option<KeySource>,
    /// `[backends.NAME]`, for messages that point at the setting to change.
    pub(crate) backend_name: Option<String>,
    pub(crate) idle_timeout: Duration,
    pub(crate) on_truncation: OnTruncation,
    /// The output-token limit the request sets, for the message about a cut answer.
    pub(crate) token_limit: Option<u32>,
    pause: SharedPause,
}

impl Transport {
    /// A transport to `base_url` + `path`, validated now so that a typo fails at start-up.
    pub(crate) fn new(
        base_url: &str,
        path: &str,
        model: &str,
        key: Option<KeySource>,
    ) -> Result<Self, HttpBackendError> {
        let invalid = |reason: String| HttpBackendError::InvalidBaseUrl {
            base_url: base_url.to_owned(),
            reason,
        };
        let parsed = Url::parse(base_url).map_err(|error| invalid(error.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(invalid(format!("the scheme is `{}`", parsed.scheme())));
        }
        let endpoint = format!("{}{path}", base_url.trim_end_matches('/'));
        let endpoint = Url::parse(&endpoint).map_err(|error| invalid(error.to_string()))?;
        if model.trim().is_empty() {
            return Err(HttpBackendError::EmptyModel);
        }
        if key
            .as_ref()
            .is_some_and(|key| key.variable().trim().is_empty())
        {
            return Err(HttpBackendError::EmptyKeyVariable);
        }
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("stagegate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| HttpBackendError::Client(error_chain(&error)))?;
        Ok(Transport {
            client,
            endpoint,
            model: model.to_owned(),
            key,
            backend_name: None,
            idle_timeout: IDLE_TIMEOUT,
            on_truncation: OnTruncation::default(),
            token_limit: None,
            pause: SharedPause::default(),
        })
    }

    /// Points the transport at `base_url` + `path` instead (another endpoint of one API).
    pub(crate) fn set_path(&mut self, base_url: &str, path: &str) -> Result<(), HttpBackendError> {
        let endpoint = format!("{}{path}", base_url.trim_end_matches('/'));
        self.endpoint =
            Url::parse(&endpoint).map_err(|error| HttpBackendError::InvalidBaseUrl {
                base_url: base_url.to_owned(),
                reason: error.to_string(),
            })?;
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn endpoint(&self) -> &str {
        self.endpoint.as_str()
    }

    /// Runs one attempt with `body` as the request; see the module documentation.
    pub(crate) async fn call<W: WireFormat>(
        self,
        request: AgentRequest,
        body: serde_json::Value,
    ) -> NotedOutcome {
        let started = Instant::now();
        let cancel = request.cancel.clone();
        let bare = |failure| NotedOutcome {
            outcome: AgentOutcome::failure(failure),
            notes: Default::default(),
        };
        if cancel.is_cancelled() {
            return bare(Failure::Cancelled);
        }
        let deadline = request.deadline;
        let output_cap = request.output_cap_bytes;
        tokio::select! {
            biased;
            () = cancel.cancelled() => bare(Failure::Cancelled),
            () = sleep_until(deadline) => {
                let after_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                bare(Failure::TimedOut { after_ms })
            }
            outcome = self.attempt::<W>(body, output_cap, deadline) => outcome,
        }
    }

    async fn attempt<W: WireFormat>(
        &self,
        body: serde_json::Value,
        output_cap: u64,
        deadline: Instant,
    ) -> NotedOutcome {
        let key = match &self.key {
            None => None,
            Some(source) => match source.read() {
                Some(key) => Some(key),
                None => {
                    return NotedOutcome {
                        outcome: AgentOutcome::failure(self.missing_key(source)),
                        notes: Default::default(),
                    };
                }
            },
        };
        if let Some(until) = self.pause.paused_until()
            && until >= deadline
        {
            // Waiting could only end in a timeout: say so now, so that the retry policy (which
            // honours `retry_after_ms`) or the fallback backend can act on it at once.
            let remaining = until.saturating_duration_since(Instant::now());
            let remaining_ms = u64::try_from(remaining.as_millis()).unwrap_or(u64::MAX);
            return NotedOutcome {
                outcome: AgentOutcome::failure(Failure::RateLimited {
                    message: format!(
                        "the server's rate limit holds this backend for {remaining_ms} ms more, past this attempt's deadline"
                    ),
                    retry_after_ms: Some(remaining_ms),
                }),
                notes: Default::default(),
            };
        }
        let mut noted = self
            .assemble::<W>(body, key.as_deref(), output_cap)
            .await
            .into_outcome(self.on_truncation, &self.cut_advice());
        // Our messages never contain the key, but a server or proxy may echo what it was sent,
        // in an error or in the answer itself. The key was remembered when it was read.
        secrets::redact_outcome(&mut noted.outcome);
        noted
    }

    /// The answer, over as many requests as `on_truncation = "continue"` takes.
    async fn assemble<W: WireFormat>(
        &self,
        body: serde_json::Value,
        key: Option<&str>,
        output_cap: u64,
    ) -> Assembled {
        let mut assembled = Assembled::default();
        let mut request = body.clone();
        loop {
            let remaining_cap = output_cap.saturating_sub(assembled.text.len() as u64);
            let continues = !assembled.text.is_empty();
            let answer = self
                .send::<W>(request, key, remaining_cap)
                .await
                .and_then(|answer| answer.finish(continues));
            let answer = match answer {
                Ok(answer) => answer,
                Err(failure) => {
                    assembled.failure = Some(failure);
                    return assembled;
                }
            };
            if !assembled.add(answer, self.on_truncation) {
                return assembled;
            }
            request = W::continuation(&body, &assembled.text);
        }
    }

    /// What to change when answers are cut: the token limit, or the handling.
    fn cut_advice(&self) -> String {
        let prefix = match &self.backend_name {
            Some(name) => format!("backends.{name}."),
            None => String::new(),
        };
        let limit = match self.token_limit {
            Some(limit) => format!("raise {prefix}max_tokens (now {limit})"),
            None => format!("set {prefix}max_tokens higher than the server's default"),
        };
        format!("{limit}, or set {prefix}on_truncation = \"accept\" to keep cut answers")
    }

    async fn send<W: WireFormat>(
        &self,
        body: serde_json::Value,
        key: Option<&str>,
        output_cap: u64,
    ) -> Result<Answer, Failure> {
        self.pause.wait().await;
        let request = W::authorize(self.client.post(self.endpoint.clone()).json(&body), key);
        let response = request
            .send()
            .await
            .map_err(|error| self.send_failure(&error))?;
        let status = response.status();
        if !status.is_success() {
            let headers = response.headers().clone();
            let body = read_error_body(response, self.idle_timeout).await;
            let context = RejectionContext {
                key_variable: self.key.as_ref().map(KeySource::variable),
                endpoint: self.endpoint.as_str(),
                model: &self.model,
            };
            let rejection = classify(status, &headers, &body, SystemTime::now(), &context);
            if let Some(pause) = rejection.pause {
                self.pause.pause_for(pause);
            }
            return Err(rejection.failure);
        }

        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.trim_start().starts_with("application/json"));
        if is_json {
            // The server ignored `"stream": true` and answered in one piece.
            let body = read_body(response, self.idle_timeout, output_cap).await?;
            let json = serde_json::from_slice(&body).map_err(|error| not_json(&error))?;
            return W::parse_json(&json);
        }

        let mut events = std::pin::pin!(events(response, self.idle_timeout));
        let mut answer = Answer::default();
        while let Some(event) = events.next().await {
            W::on_event(&event?, &mut answer)?;
            if answer.text.len() as u64 > output_cap {
                return Err(Failure::permanent(format!(
                    "the answer is larger than the output cap of {output_cap} bytes"
                )));
            }
            if answer.complete {
                break;
            }
        }
        Ok(answer)
    }

    fn missing_key(&self, source: &KeySource) -> Failure {
        let setting = match &self.backend_name {
            Some(name) => format!("backends.{name}.api_key_env"),
            None => "the backend's api_key_env".to_owned(),
        };
        Failure::permanent(format!(
            "environment variable {} is not set; export it or change {setting}",
            source.variable()
        ))
    }

    /// A request that got no HTTP answer: the server may be starting, restarting or briefly
    /// unreachable, so another try may work.
    fn send_failure(&self, error: &reqwest::Error) -> Failure {
        let endpoint = self.endpoint.as_str();
        let message = if error.is_connect() && error.is_timeout() {
            format!(
                "could not reach {endpoint}: no connection within {} s",
                CONNECT_TIMEOUT.as_secs()
            )
        } else if error.is_connect() {
            format!(
                "could not reach {endpoint}: {}; is the server running, and is base_url right?",
                error_chain(error)
            )
        } else {
            format!("the request to {endpoint} failed: {}", error_chain(error))
        };
        Failure::retryable(message)
    }
}

/// Shows where the transport goes and with which model, never the key.
impl fmt::Debug for Transport {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Transport")
            .field("endpoint", &self.endpoint.as_str())
            .field("model", &self.model)
            .field("key", &self.key)
            .field("backend_name", &self.backend_name)
            .field("idle_timeout", &self.idle_timeout)
            .field("on_truncation", &self.on_truncation)
            .finish_non_exhaustive()
    }
}

/// The innermost causes of a reqwest error, which say what actually happened
/// ("Connection refused (os error 111)") where the outer one only says a request failed.
pub(crate) fn error_chain(error: &reqwest::Error) -> String {
    let mut causes = Vec::new();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !causes.contains(&text) {
            causes.push(text);
        }
        source = cause.source();
    }
    match causes.len() {
        0 => error.to_string(),
        // The last two levels carry the information; the rest repeats "client error".
        count => causes[count.saturating_sub(2)..].join(": "),
    }
}

/// The builder options every backend on a [`Transport`] shares, written once: `named`,
/// `with_key_source`, `with_idle_timeout`.
macro_rules! transport_options {
    ($backend:ty) => {
        impl $backend {
            /// Names the backend (`[backends.NAME]`), so that a missing key's message points at
            /// `backends.NAME.api_key_env`.
            pub fn named(mut self, name: impl Into<String>) -> Self {
                self.transport.backend_name = Some(name.into());
                self
            }

            /// Reads the key from `source` instead of the environment (tests, other key stores).
            pub fn with_key_source(mut self, source: KeySource) -> Self {
                self.transport.key = Some(source);
                self
            }

            /// How long the answer may send nothing before the attempt fails as stalled (60 s).
            pub fn with_idle_timeout(mut self, idle_timeout: Duration) -> Self {
                self.transport.idle_timeout = idle_timeout;
                self
            }

            /// What an answer cut at the output-token limit gets (`continue` by default).
            pub fn with_on_truncation(
                mut self,
                on_truncation: stagegate_settings::OnTruncation,
            ) -> Self {
                self.transport.on_truncation = on_truncation;
                self
            }
        }
    };
}
pub(crate) use transport_options;
