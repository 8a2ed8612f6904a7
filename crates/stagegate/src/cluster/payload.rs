//! What travels through Temporal is packed: JSON, deflated, in base64 (specs, plans and agents'
//! answers are text, and shrink several times). Temporal refuses a payload over its blob size
//! limit (2 MiB by default) with an error that names neither the run nor the file; packing
//! checks the limit first and says what was too large, by how much, and what to do.

use std::io::{Read as _, Write as _};

use base64::Engine as _;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Temporal's default blob size limit (`limit.blobSize.error`), less room for the rest of the
/// message a payload travels in.
pub const PAYLOAD_LIMIT_BYTES: usize = 2 * 1024 * 1024 - 64 * 1024;

/// A payload over the limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{what} is {size} bytes once compressed, over the {limit} bytes Temporal takes in one payload\nhint: {hint}"
)]
pub struct TooLarge {
    pub what: String,
    pub size: usize,
    pub limit: usize,
    pub hint: String,
}

/// Packs `value`, or says it is too large to send. `what` and `hint` name it for a person.
pub fn pack<T: Serialize>(value: &T, what: &str, hint: &str) -> Result<String, PackError> {
    let json = serde_json::to_vec(value).map_err(|error| PackError::Encode(error.to_string()))?;
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder
        .write_all(&json)
        .map_err(|error| PackError::Encode(error.to_string()))?;
    let deflated = encoder
        .finish()
        .map_err(|error| PackError::Encode(error.to_string()))?;
    let packed = base64::engine::general_purpose::STANDARD.encode(deflated);
    if packed.len() > PAYLOAD_LIMIT_BYTES {
        return Err(PackError::TooLarge(TooLarge {
            what: what.to_owned(),
            size: packed.len(),
            limit: PAYLOAD_LIMIT_BYTES,
            hint: hint.to_owned(),
        }));
    }
    Ok(packed)
}

pub fn unpack<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    let deflated = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|error| error.to_string())?;
    let mut json = Vec::new();
    flate2::read::DeflateDecoder::new(deflated.as_slice())
        .read_to_end(&mut json)
        .map_err(|error| error.to_string())?;
    serde_json::from_slice(&json).map_err(|error| error.to_string())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackError {
    #[error("cannot be written: {0}")]
    Encode(String),
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_travels_compressed_and_comes_back_whole() {
        let text = "the same line again\n".repeat(200_000);
        let packed = pack(&text, "the text", "none").expect("repetitive text compresses");
        assert!(packed.len() < text.len() / 20, "{} bytes", packed.len());
        assert_eq!(unpack::<String>(&packed).expect("unpacks"), text);
    }

    #[test]
    fn a_payload_over_the_limit_is_refused_with_its_size_and_the_limit() {
        // Pseudo-random letters: deflate cannot take much off them.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let noise: String = (0..4 * 1024 * 1024)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                char::from(b'a' + (state % 26) as u8)
            })
            .collect();
        let error = pack(&noise, "stage plan's inputs", "make spec.md smaller")
            .expect_err("4 MiB of noise does not fit");
        let PackError::TooLarge(too_large) = &error else {
            panic!("{error}");
        };
        assert!(too_large.size > PAYLOAD_LIMIT_BYTES);
        let message = error.to_string();
        assert!(message.contains("stage plan's inputs is"), "{message}");
        assert!(
            message.contains(&PAYLOAD_LIMIT_BYTES.to_string()),
            "{message}"
        );
        assert!(message.contains("hint: make spec.md smaller"), "{message}");
    }
}
