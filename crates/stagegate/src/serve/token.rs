//! The session token that guards the dashboard, and the CSRF values its forms carry.
//!
//! The token is 128 random bits, printed once (in the URL on stderr) and kept only in memory:
//! never in the store, never in a log line. Every request presents it (the `token` query
//! parameter or form field, or the `X-Stagegate-Token` header), compared in constant time.
//!
//! A decision form also carries a CSRF value derived from the token and the gate it was
//! rendered for (`run`, `stage`): a keyed BLAKE3 hash, so it needs no server-side table, it
//! cannot be computed without the token, and a page rendered for one gate cannot decide
//! another (a stale page of the plan gate does not approve the prep gate that followed).

use std::io::Read as _;

/// The dashboard's secret.
pub struct Token {
    text: String,
    /// The key the CSRF values are derived with.
    csrf_key: [u8; 32],
}

impl Token {
    /// A fresh random token: 16 bytes from `/dev/urandom`, or, where that cannot be read, a
    /// BLAKE3 hash of the time, the process id and `salt` (the listening address).
    pub fn generate(salt: &str) -> Self {
        let mut bytes = [0u8; 16];
        let random = std::fs::File::open("/dev/urandom")
            .and_then(|mut file| file.read_exact(&mut bytes))
            .is_ok();
        if !random {
            let seed = format!(
                "{:?} {} {salt}",
                std::time::SystemTime::now(),
                std::process::id()
            );
            let hash = blake3::hash(seed.as_bytes());
            bytes.copy_from_slice(&hash.as_bytes()[..16]);
        }
        Token::from_bytes(&bytes)
    }

    fn from_bytes(bytes: &[u8; 16]) -> Self {
        let text = hex(bytes);
        let csrf_key = blake3::derive_key("stagegate serve 2026 csrf", text.as_bytes());
        Token { text, csrf_key }
    }

    /// The token as it goes into URLs and forms: 32 lowercase hex digits.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `presented` is the token, in time that does not depend on where they differ.
    pub fn matches(&self, presented: Option<&str>) -> bool {
        presented
            .is_some_and(|presented| constant_time_eq(self.text.as_bytes(), presented.as_bytes()))
    }

    /// The CSRF value of the decision forms of `run`'s gate of `stage`.
    pub fn csrf(&self, run: &str, stage: &str) -> String {
        let mut hasher = blake3::Hasher::new_keyed(&self.csrf_key);
        // Lengths first, so that ("ab", "c") and ("a", "bc") differ.
        hasher.update(&(run.len() as u64).to_le_bytes());
        hasher.update(run.as_bytes());
        hasher.update(&(stage.len() as u64).to_le_bytes());
        hasher.update(stage.as_bytes());
        hex(&hasher.finalize().as_bytes()[..16])
    }

    /// Whether `presented` is the CSRF value of `run`'s gate of `stage`.
    pub fn csrf_matches(&self, run: &str, stage: &str, presented: Option<&str>) -> bool {
        presented.is_some_and(|presented| {
            constant_time_eq(self.csrf(run, stage).as_bytes(), presented.as_bytes())
        })
    }
}

/// Compares every byte whatever the first difference; only the length (public: always 32 hex
/// digits) shortens it.
fn constant_time_eq(expected: &[u8], presented: &[u8]) -> bool {
    if expected.len() != presented.len() {
        return false;
    }
    let difference = expected
        .iter()
        .zip(presented)
        .fold(0u8, |difference, (a, b)| difference | (a ^ b));
    std::hint::black_box(difference) == 0
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_32_hex_digits_and_fresh_each_time() {
        let first = Token::generate("127.0.0.1:1");
        let second = Token::generate("127.0.0.1:1");
        assert_eq!(first.as_str().len(), 32);
        assert!(first.as_str().bytes().all(|byte| byte.is_ascii_hexdigit()));
        assert_ne!(first.as_str(), second.as_str());
    }

    #[test]
    fn only_the_exact_token_matches() {
        let token = Token::from_bytes(&[0xab; 16]);
        assert!(token.matches(Some(token.as_str())));
        assert!(!token.matches(None));
        assert!(!token.matches(Some("")));
        assert!(!token.matches(Some(&token.as_str()[..31])));
        assert!(!token.matches(Some(&token.as_str().to_uppercase())));
    }

    #[test]
    fn the_csrf_value_is_bound_to_the_token_the_run_and_the_stage() {
        let token = Token::from_bytes(&[7; 16]);
        let other = Token::from_bytes(&[8; 16]);
        let value = token.csrf("run-1", "plan");
        assert!(token.csrf_matches("run-1", "plan", Some(&value)));
        assert!(!token.csrf_matches("run-1", "prep", Some(&value)));
        assert!(!token.csrf_matches("run-2", "plan", Some(&value)));
        assert!(!other.csrf_matches("run-1", "plan", Some(&value)));
        assert_ne!(token.csrf("ab", "c"), token.csrf("a", "bc"));
        assert!(!value.contains(token.as_str()));
    }
}
