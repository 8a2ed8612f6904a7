//! The secrets stagegate knows, and their redaction from every text an agent or a server produced.
//!
//! A secret is a value stagegate itself read: an HTTP backend's API key (`api_key_env`, read at
//! each call) and the values of a `command` backend's variables marked `secret_env`. Every
//! occurrence of one becomes [`REDACTED`], and so does a long fragment of one (at least
//! [`MIN_FRAGMENT_BYTES`]) where a text was cut: at its start, at its end and beside `…`. A key
//! cut in the middle ("Bearer sk-test-…ABCDEFGH…") is still caught that way.
//!
//! Redaction must come *before* any truncation: a backend that shortens a message or keeps only
//! the end of stderr redacts first (`http_error`, `command_agent`), and every attempt's outcome
//! is redacted once more as it leaves its backend (`agent_call`), so that events, the recorder
//! (run files, answers, cache), `status`, `show`, the report and publishing only ever see
//! redacted text.
//!
//! # Design note: one registry per process
//!
//! Secrets are discovered where they are read — deep in a backend, at the moment of a call — and
//! must be redacted far from there: in the engine's events, in the top-level error report, in a
//! second backend that echoes the first one's key. Threading a handle through every layer would
//! touch each of them and would still miss the next path someone adds. So the known values live
//! in one append-only, process-wide [`SecretSet`]: [`remember`] adds one, [`redact`] applies
//! all. Nothing in it is ever printed, serialized or logged; `Debug` shows only the count.

use std::borrow::Cow;
use std::fmt;
use std::sync::RwLock;

use stagegate_settings::{BackendSettings, Settings};

use crate::backend::AgentOutcome;

/// What a secret, or a fragment of one, is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Values shorter than this are not treated as secrets: redacting `1` or `true` everywhere would
/// destroy the text and protect nothing.
pub const MIN_SECRET_BYTES: usize = 6;

/// The shortest fragment of a secret redacted at a cut edge. Shorter pieces are too likely to
/// occur by chance and say too little about the secret.
pub const MIN_FRAGMENT_BYTES: usize = 8;

/// Where a text is cut: what `http_error` and the stderr excerpt append.
const CUT_MARKS: [&str; 2] = ["…", "..."];

/// A set of secret values.
#[derive(Default, Clone)]
pub struct SecretSet {
    /// Longest first, so that a secret containing another is redacted whole.
    values: Vec<String>,
}

impl SecretSet {
    pub const fn new() -> Self {
        SecretSet { values: Vec::new() }
    }

    /// Adds `value` (trimmed, as keys are read) unless it is too short or known already.
    pub fn insert(&mut self, value: &str) {
        let value = value.trim();
        if value.len() < MIN_SECRET_BYTES || self.values.iter().any(|known| known == value) {
            return;
        }
        self.values.push(value.to_owned());
        self.values
            .sort_by_key(|known| std::cmp::Reverse(known.len()));
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `text` with every secret and every fragment of one at a cut edge replaced.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match self.redact_bytes(text.as_bytes()) {
            Cow::Borrowed(_) => Cow::Borrowed(text),
            // Whole secrets are valid UTF-8 and fragments start and end where the text is cut,
            // so the result stays valid; lossy only as a guard.
            Cow::Owned(bytes) => Cow::Owned(match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(error) => String::from_utf8_lossy(error.as_bytes()).into_owned(),
            }),
        }
    }

    /// [`SecretSet::redact`] for bytes that need not be UTF-8 (stderr).
    pub fn redact_bytes<'a>(&self, text: &'a [u8]) -> Cow<'a, [u8]> {
        if self.values.is_empty() || text.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut result: Cow<'a, [u8]> = Cow::Borrowed(text);
        for secret in &self.values {
            if find(&result, secret.as_bytes()).is_some() {
                result = Cow::Owned(replace_all(&result, secret.as_bytes()));
            }
        }
        match self.redact_edges(&result) {
            Some(redacted) => Cow::Owned(redacted),
            None => result,
        }
    }

    /// Fragments at the cut edges: a text's start and end, and either side of a cut mark.
    fn redact_edges(&self, text: &[u8]) -> Option<Vec<u8>> {
        // Ranges to replace, all found on the text as it is, then applied front to back.
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        let mut edges = vec![(0, Side::After), (text.len(), Side::Before)];
        for mark in CUT_MARKS {
            let mut from = 0;
            while let Some(at) = find(&text[from..], mark.as_bytes()) {
                let start = from + at;
                edges.push((start, Side::Before));
                edges.push((start + mark.len(), Side::After));
                from = start + mark.len();
            }
        }
        for (edge, side) in edges {
            if let Some(length) = self.fragment_at(text, edge, side) {
                ranges.push(match side {
                    Side::Before => (edge - length, edge),
                    Side::After => (edge, edge + length),
                });
            }
        }
        if ranges.is_empty() {
            return None;
        }
        ranges.sort_unstable();
        let mut redacted = Vec::with_capacity(text.len());
        let mut position = 0;
        for (start, end) in ranges {
            if start < position {
                // Overlaps the range just replaced (a piece between two cuts): one marker.
                position = position.max(end);
                continue;
            }
            redacted.extend_from_slice(&text[position..start]);
            redacted.extend_from_slice(REDACTED.as_bytes());
            position = end;
        }
        redacted.extend_from_slice(&text[position..]);
        Some(redacted)
    }

    /// The length of the longest piece of a secret (at least [`MIN_FRAGMENT_BYTES`]) that ends
    /// at `edge` (`Before`) or starts there (`After`).
    fn fragment_at(&self, text: &[u8], edge: usize, side: Side) -> Option<usize> {
        let room = match side {
            Side::Before => edge,
            Side::After => text.len() - edge,
        };
        let longest = self.values.first().map_or(0, String::len).min(room);
        let piece = |length: usize| match side {
            Side::Before => &text[edge - length..edge],
            Side::After => &text[edge..edge + length],
        };
        let in_a_secret = |piece: &[u8]| {
            self.values
                .iter()
                .any(|secret| find(secret.as_bytes(), piece).is_some())
        };
        // Every longer piece contains the shortest one: most edges end here.
        if longest < MIN_FRAGMENT_BYTES || !in_a_secret(piece(MIN_FRAGMENT_BYTES)) {
            return None;
        }
        (MIN_FRAGMENT_BYTES..=longest)
            .rev()
            .find(|&length| in_a_secret(piece(length)))
    }
}

/// Shows how many secrets are known, never one of them.
impl fmt::Debug for SecretSet {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("SecretSet")
            .field("count", &self.values.len())
            .finish()
    }
}

#[derive(Clone, Copy)]
enum Side {
    /// The fragment ends at the edge (the text was cut after it).
    Before,
    /// The fragment starts at the edge (the text was cut before it).
    After,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > haystack.len() {
        return None;
    }
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn replace_all(text: &[u8], secret: &[u8]) -> Vec<u8> {
    let mut result = Vec::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = find(rest, secret) {
        result.extend_from_slice(&rest[..at]);
        result.extend_from_slice(REDACTED.as_bytes());
        rest = &rest[at + secret.len()..];
    }
    result.extend_from_slice(rest);
    result
}

/// The secrets this process has read.
static KNOWN: RwLock<SecretSet> = RwLock::new(SecretSet::new());

/// Adds `value` to the secrets every later [`redact`] replaces.
pub fn remember(value: &str) {
    let mut known = KNOWN
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    known.insert(value);
}

/// Remembers the secrets `settings` point at, as they are now: every HTTP backend's key
/// (`api_key_env`) and every `command` backend's `secret_env` values (from its `env`, else from
/// this process's environment, which the program inherits).
pub fn remember_from_settings(settings: &Settings) {
    remember_from_backends(settings.backends.values(), |variable| {
        std::env::var(variable).ok()
    });
}

fn remember_from_backends<'a>(
    backends: impl Iterator<Item = &'a BackendSettings>,
    read_variable: impl Fn(&str) -> Option<String>,
) {
    for backend in backends {
        match backend {
            BackendSettings::OpenAi {
                api_key_env: Some(variable),
                ..
            }
            | BackendSettings::Anthropic {
                api_key_env: variable,
                ..
            } => {
                if let Some(key) = read_variable(variable) {
                    remember(&key);
                }
            }
            BackendSettings::Command {
                env, secret_env, ..
            } => {
                for name in secret_env {
                    if let Some(value) = env.get(name).cloned().or_else(|| read_variable(name)) {
                        remember(&value);
                    }
                }
            }
            _ => {}
        }
    }
}

/// `text` with every secret this process knows redacted; see the module documentation.
pub fn redact(text: &str) -> Cow<'_, str> {
    let known = KNOWN
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    match known.redact(text) {
        Cow::Borrowed(_) => Cow::Borrowed(text),
        Cow::Owned(text) => Cow::Owned(text),
    }
}

/// [`redact`] for bytes.
pub fn redact_bytes(text: &[u8]) -> Cow<'_, [u8]> {
    let known = KNOWN
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    match known.redact_bytes(text) {
        Cow::Borrowed(_) => Cow::Borrowed(text),
        Cow::Owned(text) => Cow::Owned(text),
    }
}

/// [`redact_bytes`] for bytes the caller owns: no copy when there is nothing to redact.
pub fn redact_vec(bytes: Vec<u8>) -> Vec<u8> {
    let redacted = match redact_bytes(&bytes) {
        Cow::Owned(redacted) => Some(redacted),
        Cow::Borrowed(_) => None,
    };
    redacted.unwrap_or(bytes)
}

/// Redacts `text` in place; true when something was replaced.
pub fn redact_in_place(text: &mut String) -> bool {
    match redact(text) {
        Cow::Borrowed(_) => false,
        Cow::Owned(redacted) => {
            *text = redacted;
            true
        }
    }
}

/// Redacts everything an attempt produced: its answer, its failure's message and its stderr.
/// Backends redact before they cut a text; this catches whatever a backend did not.
pub fn redact_outcome(outcome: &mut AgentOutcome) {
    match &mut outcome.result {
        Ok(text) => {
            redact_in_place(text);
        }
        Err(failure) => {
            if let Some(message) = failure.message_mut() {
                redact_in_place(message);
            }
        }
    }
    outcome.stderr = redact_vec(std::mem::take(&mut outcome.stderr));
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk-test-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

    fn set(values: &[&str]) -> SecretSet {
        let mut set = SecretSet::new();
        for value in values {
            set.insert(value);
        }
        set
    }

    #[test]
    fn every_occurrence_is_replaced() {
        let secrets = set(&[KEY]);
        assert_eq!(
            secrets.redact(&format!("Authorization: Bearer {KEY}, again {KEY}.")),
            "Authorization: Bearer [REDACTED], again [REDACTED]."
        );
        assert!(matches!(secrets.redact("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_secret_cut_at_the_end_or_the_start_is_still_caught() {
        let secrets = set(&[KEY]);
        let cut = &KEY[..KEY.len() - 1];
        assert_eq!(
            secrets.redact(&format!("401: Bearer {cut}…")),
            "401: Bearer [REDACTED]…"
        );
        assert_eq!(
            secrets.redact(&format!("401: Bearer {cut}")),
            "401: Bearer [REDACTED]"
        );
        // A tail buffer that starts in the middle of the key.
        assert_eq!(
            secrets.redact(&format!("{} was sent", &KEY[5..])),
            "[REDACTED] was sent"
        );
        // Both ends cut: a piece from the middle.
        assert_eq!(
            secrets.redact(&format!("…{}…", &KEY[3..30])),
            "…[REDACTED]…"
        );
        // Seven characters at the edge are not enough to be sure.
        assert_eq!(secrets.redact("Bearer sk-test"), "Bearer sk-test");
        // A fragment in the middle of a text that was not cut there is left alone.
        assert_eq!(
            secrets.redact("the word 0123456789 inside"),
            "the word 0123456789 inside"
        );
    }

    #[test]
    fn short_values_are_not_secrets_and_debug_hides_the_values() {
        let secrets = set(&["true", "1", " ", KEY]);
        assert_eq!(secrets.redact("true 1"), "true 1");
        let debug = format!("{secrets:?}");
        assert_eq!(debug, "SecretSet { count: 1 }");
    }

    #[test]
    fn bytes_that_are_not_utf8_are_redacted_too() {
        let secrets = set(&[KEY]);
        let mut stderr = vec![0xff, b' '];
        stderr.extend_from_slice(KEY.as_bytes());
        assert_eq!(
            secrets.redact_bytes(&stderr).as_ref(),
            b"\xff [REDACTED]".as_slice()
        );
    }

    #[test]
    fn settings_name_the_secrets_to_remember() {
        let backends = [
            BackendSettings::Command {
                command: vec!["x".to_owned()],
                env: [("TOKEN".to_owned(), "settings-secret-value".to_owned())].into(),
                secret_env: vec!["TOKEN".to_owned(), "INHERITED".to_owned()],
                output_format: Default::default(),
                speckit_integration: None,
                model: None,
                memory_bytes: None,
            },
            BackendSettings::OpenAi {
                base_url: "http://x".to_owned(),
                model: "m".to_owned(),
                api_key_env: Some("KEY_VARIABLE".to_owned()),
                temperature: None,
                max_tokens: None,
                api: Default::default(),
                http: Default::default(),
            },
        ];
        remember_from_backends(backends.iter(), |variable| match variable {
            "INHERITED" => Some("inherited-secret-value".to_owned()),
            "KEY_VARIABLE" => Some("openai-secret-value".to_owned()),
            _ => None,
        });
        assert_eq!(
            redact("settings-secret-value inherited-secret-value openai-secret-value"),
            "[REDACTED] [REDACTED] [REDACTED]"
        );
    }
}
