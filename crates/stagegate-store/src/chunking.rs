//! Content-defined chunking: cuts a text where its own bytes say, so that two texts sharing a
//! long passage cut it the same way wherever it starts, and share the chunks that hold it.
//!
//! A gear rolling hash (one table lookup, a shift and an add per byte) over the bytes since the
//! last cut; a cut falls where the hash's low bits are all zero, which happens on average every
//! `2^average_bits` bytes, never before the grain's minimum and always by its maximum.

/// Small enough that a prompt of a few KiB is cut at all: the agents of a stage get prompts
/// that differ in a line or two (role, task), and with 2 KiB minimum cuts each such prompt was
/// one unshared chunk, stored whole once per agent (and one row per page, 40 % of it empty).
/// How finely a text is cut: the bounds and average of its chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Grain {
    min: usize,
    max: usize,
    /// Cuts on average every `2^average_bits` bytes after the minimum.
    average_bits: u32,
}

impl Grain {
    /// For prompts: the agents of a stage get prompts that differ in a line or two (role, task)
    /// and share the rest, so a prompt of a few KiB must be cut at all for the rest to be
    /// shared (with 2 KiB minimum cuts each was one chunk of its own, stored once per agent).
    pub(crate) const FINE: Grain = Grain {
        min: 512,
        max: 64 * 1024,
        average_bits: 9,
    };
    /// For outputs and stderr, which rarely share passages: chunks big enough to compress.
    pub(crate) const COARSE: Grain = Grain {
        min: 2 * 1024,
        max: 64 * 1024,
        average_bits: 13,
    };

    fn cut_mask(self) -> u64 {
        (1 << self.average_bits) - 1
    }
}

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
pub(crate) fn chunks(bytes: &[u8], grain: Grain) -> Vec<&[u8]> {
    let mut chunks = Vec::with_capacity(bytes.len() / (grain.min + (1 << grain.average_bits)) + 1);
    let mut rest = bytes;
    while !rest.is_empty() {
        let length = cut(rest, grain);
        let (chunk, after) = rest.split_at(length);
        chunks.push(chunk);
        rest = after;
    }
    chunks
}

/// The length of the first chunk of `bytes` (non-empty).
fn cut(bytes: &[u8], grain: Grain) -> usize {
    if bytes.len() <= grain.min {
        return bytes.len();
    }
    let end = bytes.len().min(grain.max);
    let mask = grain.cut_mask();
    let mut hash: u64 = 0;
    for (offset, byte) in bytes.iter().enumerate().take(end).skip(grain.min) {
        hash = (hash << 1).wrapping_add(GEAR[usize::from(*byte)]);
        if hash & mask == 0 {
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
        for grain in [Grain::FINE, Grain::COARSE] {
            let pieces = chunks(text.as_bytes(), grain);
            assert_eq!(pieces.concat(), text.as_bytes());
            let (last, whole) = pieces.split_last().expect("chunks");
            assert!(
                whole
                    .iter()
                    .all(|chunk| (grain.min..=grain.max).contains(&chunk.len()))
            );
            assert!(!last.is_empty() && last.len() <= grain.max);
            assert!(chunks(b"", grain).is_empty());
            assert_eq!(chunks(b"short", grain), vec![&b"short"[..]]);
        }
    }

    #[test]
    fn prompts_of_a_few_kib_that_differ_in_one_line_share_most_of_their_chunks() {
        let shared = prose(3, 560);
        let first = format!("You are Analyst 1.\n\n{shared}");
        let second = format!("You are Analyst 2.\n\n{shared}");
        assert!(first.len() < 4096, "{}", first.len());
        let first_chunks = chunks(first.as_bytes(), Grain::FINE);
        let second_chunks = chunks(second.as_bytes(), Grain::FINE);
        let unshared = second_chunks
            .iter()
            .filter(|chunk| !first_chunks.contains(chunk))
            .map(|chunk| chunk.len())
            .sum::<usize>();
        assert!(
            unshared * 2 < second.len(),
            "{unshared} of {}",
            second.len()
        );
    }

    #[test]
    fn a_shared_passage_after_different_headers_is_cut_into_the_same_chunks() {
        let shared = prose(11, 40_000);
        let first = format!("You are the requirements analyst.\n\n{shared}");
        let second =
            format!("You are the solution architect; focus on the data model.\n\n{shared}");
        let first_chunks = chunks(first.as_bytes(), Grain::FINE);
        let second_chunks = chunks(second.as_bytes(), Grain::FINE);
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
