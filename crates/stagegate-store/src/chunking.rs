//! Content-defined chunking: cuts a text where its own bytes say, so that two texts sharing a
//! long passage cut it the same way wherever it starts, and share the chunks that hold it.
//!
//! A gear rolling hash (one table lookup, a shift and an add per byte) over the bytes since the
//! last cut; a cut falls where the hash's low bits are all zero, which happens on average every
//! `2^AVERAGE_BITS` bytes, never before `MIN_CHUNK` bytes and always by `MAX_CHUNK`.

const MIN_CHUNK: usize = 2 * 1024;
const MAX_CHUNK: usize = 64 * 1024;
/// Cuts on average every 8 KiB after the minimum.
const AVERAGE_BITS: u32 = 13;
const CUT_MASK: u64 = (1 << AVERAGE_BITS) - 1;

/// 256 fixed pseudo-random words (splitmix64), one per byte value. Fixed, because a text must
/// be cut the same way by every stagegate that stores it.
const GEAR: [u64; 256] = gear_table();

const fn gear_table() -> [u64; 256] {
    let mut table = [0u64; 256];
    let mut state: u64 = 0x5354_4147_4547_4154; // "STAGEGAT"
    let mut index = 0;
    while index < 256 {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut word = state;
        word = (word ^ (word >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        word = (word ^ (word >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        table[index] = word ^ (word >> 31);
        index += 1;
    }
    table
}

/// The chunks of `bytes`, in order; together they are `bytes`. Empty input gives no chunk.
pub(crate) fn chunks(bytes: &[u8]) -> Vec<&[u8]> {
    let mut chunks = Vec::with_capacity(bytes.len() / (MIN_CHUNK + (1 << AVERAGE_BITS)) + 1);
    let mut rest = bytes;
    while !rest.is_empty() {
        let length = cut(rest);
        let (chunk, after) = rest.split_at(length);
        chunks.push(chunk);
        rest = after;
    }
    chunks
}

/// The length of the first chunk of `bytes` (non-empty).
fn cut(bytes: &[u8]) -> usize {
    if bytes.len() <= MIN_CHUNK {
        return bytes.len();
    }
    let end = bytes.len().min(MAX_CHUNK);
    let mut hash: u64 = 0;
    for (offset, byte) in bytes.iter().enumerate().take(end).skip(MIN_CHUNK) {
        hash = (hash << 1).wrapping_add(GEAR[usize::from(*byte)]);
        if hash & CUT_MASK == 0 {
            return offset + 1;
        }
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Text with no repetition a chunker could key on: words from a fixed-seed generator.
    fn prose(seed: u64, words: usize) -> String {
        let mut state = seed;
        let vocabulary = [
            "the",
            "system",
            "must",
            "export",
            "report",
            "user",
            "weekly",
            "summary",
            "when",
            "given",
            "then",
            "requirement",
            "story",
            "data",
            "field",
            "error",
            "page",
        ];
        let mut text = String::new();
        for index in 0..words {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            text.push_str(vocabulary[(state % vocabulary.len() as u64) as usize]);
            text.push(if index % 12 == 11 { '\n' } else { ' ' });
        }
        text
    }

    #[test]
    fn the_chunks_are_the_text_and_respect_the_bounds() {
        let text = prose(7, 60_000);
        let pieces = chunks(text.as_bytes());
        assert_eq!(pieces.concat(), text.as_bytes());
        let (last, whole) = pieces.split_last().expect("chunks");
        assert!(
            whole
                .iter()
                .all(|chunk| (MIN_CHUNK..=MAX_CHUNK).contains(&chunk.len()))
        );
        assert!(!last.is_empty() && last.len() <= MAX_CHUNK);
        assert!(chunks(b"").is_empty());
        assert_eq!(chunks(b"short"), vec![&b"short"[..]]);
    }

    #[test]
    fn a_shared_passage_after_different_headers_is_cut_into_the_same_chunks() {
        let shared = prose(11, 40_000);
        let first = format!("You are the requirements analyst.\n\n{shared}");
        let second =
            format!("You are the solution architect; focus on the data model.\n\n{shared}");
        let first_chunks = chunks(first.as_bytes());
        let second_chunks = chunks(second.as_bytes());
        let common = first_chunks
            .iter()
            .filter(|chunk| second_chunks.contains(chunk))
            .map(|chunk| chunk.len())
            .sum::<usize>();
        assert!(
            common * 10 >= shared.len() * 9,
            "only {common} of {} shared bytes are in shared chunks",
            shared.len()
        );
    }
}
