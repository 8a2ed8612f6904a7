//! Word-level helpers shared by the parsers and analysts: ids (`FR-001`), key words for
//! matching requirements to stories and tasks, vague adjectives, and safe truncation.
//!
//! Matching is by key words rather than by meaning: it is deterministic, explainable in one
//! sentence ("shares the words album, share, link") and linear in the input.

use std::collections::BTreeSet;

/// Words too common in specs to say anything about what a requirement is about.
const STOP_WORDS: &[&str] = &[
    "able", "about", "above", "across", "after", "again", "all", "also", "and", "any", "are", "as",
    "at", "be", "been", "before", "being", "both", "but", "by", "can", "could", "does", "each",
    "either", "else", "every", "for", "from", "given", "has", "have", "how", "if", "in", "into",
    "is", "it", "its", "may", "more", "most", "must", "no", "not", "of", "on", "one", "only", "or",
    "other", "our", "out", "over", "own", "per", "shall", "should", "so", "some", "such", "than",
    "that", "the", "their", "them", "then", "there", "these", "they", "this", "those", "through",
    "to", "under", "until", "up", "upon", "use", "used", "via", "was", "were", "what", "when",
    "where", "which", "while", "who", "whose", "will", "with", "within", "without", "would", "you",
    "your", "system", "allow", "allows", "let", "lets", "ensure", "provide", "provides", "support",
    "supports", "any", "time", "way", "new", "given",
];

/// Adjectives that state a quality without a measure (spec-kit's ambiguity category).
pub(crate) const VAGUE_WORDS: &[&str] = &[
    "fast",
    "quick",
    "quickly",
    "scalable",
    "secure",
    "securely",
    "intuitive",
    "robust",
    "user-friendly",
    "easy",
    "easily",
    "simple",
    "efficient",
    "efficiently",
    "reliable",
    "responsive",
    "seamless",
    "seamlessly",
    "flexible",
    "performant",
    "appropriate",
    "adequate",
    "reasonable",
    "sufficient",
    "typical",
    "lightweight",
    "high-performance",
    "real-time",
    "minimal",
];

/// Placeholders that mark unfinished text.
pub(crate) const PLACEHOLDERS: &[&str] = &["TODO", "TBD", "TKTK", "???", "XXX", "FIXME"];

/// Words of a text: runs of letters, digits and `-`, lower-cased (`album's` → `album`, `s`).
pub(crate) fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_alphanumeric() || c == '-'))
        .map(|word| word.trim_matches('-').to_lowercase())
        .filter(|word| !word.is_empty())
}

/// A light stemmer: plural and verb endings off, so "photos"/"photo", "uploaded"/"upload",
/// "sharing"/"share" meet. Deliberately crude; it only has to be consistent.
pub(crate) fn stem(word: &str) -> String {
    let mut word = word.to_owned();
    for suffix in ["ing", "ed", "es", "s"] {
        if word.len() > suffix.len() + 3 && word.ends_with(suffix) {
            word.truncate(word.len() - suffix.len());
            break;
        }
    }
    if word.ends_with('e') && word.len() > 4 {
        word.pop();
    }
    word
}

/// The key words of a text: stemmed, without stop words, numbers or very short words. Text
/// in a script written without spaces (Chinese, Japanese, Korean) gives its pairs of adjacent
/// characters instead (`料金表` → `料金`, `金表`), leaving out pairs of kana alone, which
/// are mostly grammar; a lone ideograph counts by itself.
pub(crate) fn keywords(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for word in words(text) {
        if word.chars().any(is_cjk) {
            cjk_terms(&word, &mut found);
        } else if is_key_word(&word) {
            found.insert(stem(&word));
        }
    }
    found
}

fn is_key_word(word: &str) -> bool {
    word.chars().count() >= 3
        && !word.chars().all(|c| c.is_ascii_digit() || c == '-')
        && !STOP_WORDS.contains(&word)
}

/// Characters of scripts written without spaces between words.
fn is_cjk(character: char) -> bool {
    matches!(u32::from(character),
        0x3040..=0x30FF // hiragana, katakana
        | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF // ideographs
        | 0xAC00..=0xD7AF // hangul
        | 0xFF66..=0xFF9F) // half-width katakana
}

fn is_kana(character: char) -> bool {
    matches!(u32::from(character), 0x3040..=0x309F)
}

/// The terms of a word holding CJK text: its non-CJK runs as words, its CJK runs as pairs.
fn cjk_terms(word: &str, found: &mut BTreeSet<String>) {
    let characters: Vec<char> = word.chars().collect();
    let mut start = 0;
    while start < characters.len() {
        let cjk = is_cjk(characters[start]);
        let end = characters[start..]
            .iter()
            .position(|c| is_cjk(*c) != cjk)
            .map_or(characters.len(), |length| start + length);
        let run = &characters[start..end];
        if !cjk {
            let latin: String = run.iter().collect();
            if is_key_word(&latin) {
                found.insert(stem(&latin));
            }
        } else if run.len() == 1 {
            if !is_kana(run[0]) {
                found.insert(run[0].to_string());
            }
        } else {
            for pair in run.windows(2) {
                if !(is_kana(pair[0]) && is_kana(pair[1])) {
                    found.insert(pair.iter().collect());
                }
            }
        }
        start = end;
    }
}

/// Ids like `FR-001` (`prefix` = `"FR-"`) in a text, in order, without repeats.
pub(crate) fn ids(text: &str, prefix: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
    let mut start = 0;
    while let Some(offset) = text[start..].find(prefix) {
        let at = start + offset;
        let before_ok = text[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric());
        let digits_start = at + prefix.len();
        let digits = text[digits_start..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        if before_ok && digits > 0 {
            let id = &text[at..digits_start + digits];
            if seen.insert(id) {
                found.push(id.to_owned());
            }
        }
        start = digits_start + digits;
        if start >= text.len() {
            break;
        }
    }
    found
}

/// Requirement ids in a text, in order: `FR-###`, `SC-###` and the derived `DR-###`.
pub(crate) fn requirement_ids(text: &str) -> Vec<String> {
    let mut found = ids(text, "FR-");
    found.extend(ids(text, "SC-"));
    found.extend(ids(text, crate::speckit::spec::DERIVED_PREFIX));
    found
}

/// The id at the very start of a text (`FR-001: …`, `**FR-001**: …`), if any.
pub(crate) fn leading_id(text: &str, prefix: &str) -> Option<String> {
    let trimmed = text.trim_start_matches(|c: char| c == '*' || c == '`' || c.is_whitespace());
    let rest = trimmed.strip_prefix(prefix)?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    Some(format!("{prefix}{}", &rest[..digits]))
}

/// The text after a leading id and its `:` (`**FR-001**: System MUST …` → `System MUST …`).
pub(crate) fn after_leading_id(text: &str, id: &str) -> String {
    let plain = crate::markdown::plain(text);
    let rest = plain
        .find(id)
        .map_or(plain.as_str(), |at| &plain[at + id.len()..]);
    rest.trim_start_matches([':', ' ', '-', '.', '—'])
        .trim()
        .to_owned()
}

/// Whether a text holds a number (a measurable criterion has one).
pub(crate) fn has_number(text: &str) -> bool {
    text.bytes().any(|byte| byte.is_ascii_digit())
}

/// Whether `word` (lower case) occurs in `lower` as a whole word.
pub(crate) fn contains_word(lower: &str, word: &str) -> bool {
    let mut start = 0;
    while let Some(offset) = lower[start..].find(word) {
        let at = start + offset;
        let end = at + word.len();
        if is_word_at(lower, at, end) {
            return true;
        }
        start = end;
    }
    false
}

/// A fixed list of lower-case words and phrases, found in one pass over a text however long
/// it is: searching a spec once per word read a 10 MB spec sixty times over.
pub(crate) struct Phrases {
    words: &'static [&'static str],
    automaton: aho_corasick::AhoCorasick,
}

impl Phrases {
    pub(crate) fn new(words: &'static [&'static str]) -> Phrases {
        let automaton = aho_corasick::AhoCorasick::new(words)
            .unwrap_or_else(|_| unreachable!("a fixed list of short phrases always builds"));
        Phrases { words, automaton }
    }

    /// Every match of every phrase, overlapping ones included, in order of their ends.
    fn matches<'a>(&'a self, lower: &'a str) -> impl Iterator<Item = (usize, usize, usize)> + 'a {
        self.automaton
            .find_overlapping_iter(lower)
            .map(|found| (found.pattern().as_usize(), found.start(), found.end()))
    }

    /// How often the phrases occur, each counted as `str::matches` counts it (left to right,
    /// not overlapping itself), summed.
    pub(crate) fn occurrences(&self, lower: &str) -> u64 {
        let mut next_free = vec![0; self.words.len()];
        let mut count = 0;
        for (pattern, start, end) in self.matches(lower) {
            if start >= next_free[pattern] {
                next_free[pattern] = end;
                count += 1;
            }
        }
        count
    }

    /// How many of the phrases occur as whole words (see [`contains_word`]).
    pub(crate) fn found_as_words(&self, lower: &str) -> usize {
        let mut found = vec![false; self.words.len()];
        for (pattern, start, end) in self.matches(lower) {
            if !found[pattern] && is_word_at(lower, start, end) {
                found[pattern] = true;
            }
        }
        found.iter().filter(|found| **found).count()
    }
}

/// Whether `lower[start..end]` stands alone: no letter, digit or hyphen right before or after.
fn is_word_at(lower: &str, start: usize, end: usize) -> bool {
    let before = lower[..start].chars().next_back();
    let after = lower[end..].chars().next();
    let boundary = |c: Option<char>| c.is_none_or(|c| !(c.is_alphanumeric() || c == '-'));
    boundary(before) && boundary(after)
}

/// The vague words a text uses, in list order.
pub(crate) fn vague_words(text: &str) -> Vec<&'static str> {
    let lower = text.to_lowercase();
    VAGUE_WORDS
        .iter()
        .copied()
        .filter(|word| contains_word(&lower, word))
        .collect()
}

/// At most `limit` characters, with `…` when cut.
pub(crate) fn truncate(text: &str, limit: usize) -> String {
    let mut out = String::new();
    for (count, character) in text.chars().enumerate() {
        if count == limit {
            out.push('…');
            return out;
        }
        out.push(character);
    }
    out
}

/// A sentence-case summary of a requirement: its text with "System MUST" and similar openings
/// taken off, cut to `limit` characters.
pub(crate) fn summary(text: &str, limit: usize) -> String {
    let mut rest = text.trim();
    for opening in [
        "System MUST ",
        "The system MUST ",
        "Users MUST be able to ",
        "System SHOULD ",
        "The system SHOULD ",
    ] {
        if let Some(after) = rest.strip_prefix(opening) {
            rest = after;
            break;
        }
    }
    let mut characters = rest.chars();
    let first: String = characters
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default();
    truncate(&format!("{first}{}", characters.as_str()), limit)
}

/// `0.8234` → `"0.82"`.
pub(crate) fn two_decimals(value: f64) -> String {
    format!("{:.2}", value.clamp(0.0, 1.0))
}

/// Normalized name for comparing entity names across files: lower case, letters and digits
/// only, a plural `s` off ("Share Link", "share_links" and "ShareLink" meet).
pub(crate) fn name_key(name: &str) -> String {
    let mut key: String = name
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    if key.len() > 3 && key.ends_with('s') && !key.ends_with("ss") {
        key.pop();
    }
    key
}

#[cfg(test)]
mod tests {

    #[test]
    fn phrases_count_and_find_as_the_per_word_searches_do() {
        const WORDS: &[&str] = &["audit", "soc 2", "soc2", "s3", "aa", "regulat", "data"];
        let phrases = super::Phrases::new(WORDS);
        for text in [
            "",
            "audit the audit; soc 2 and soc2 in s3 buckets, aaaa, regulated regulation",
            "metadata s3-compatible s3 amazons3 (s3) aaa data-driven data",
            "ünïcode audit s3ö öaudit",
        ] {
            let expected: u64 = WORDS
                .iter()
                .map(|word| text.matches(word).count() as u64)
                .sum();
            assert_eq!(phrases.occurrences(text), expected, "{text}");
            let found = WORDS
                .iter()
                .filter(|word| super::contains_word(text, word))
                .count();
            assert_eq!(phrases.found_as_words(text), found, "{text}");
        }
    }
    use super::*;

    #[test]
    fn ids_are_found_once_and_at_word_starts() {
        assert_eq!(
            ids("FR-001, FR-002 and FR-001; XFR-003 FR- FR-9", "FR-"),
            vec!["FR-001", "FR-002", "FR-9"]
        );
        assert_eq!(
            leading_id("**FR-010**: System MUST", "FR-"),
            Some("FR-010".to_owned())
        );
        assert_eq!(
            after_leading_id("**FR-010**: System MUST x", "FR-010"),
            "System MUST x"
        );
    }

    #[test]
    fn cjk_text_gives_character_pairs_without_pairs_of_kana() {
        let terms = keywords("システムは料金表ファイルを取り込まなければならない");
        for term in ["料金", "金表", "取り", "り込", "ファ"] {
            assert!(terms.contains(term), "{term} in {terms:?}");
        }
        assert!(
            !terms.contains("なけ") && !terms.contains("ばな"),
            "{terms:?}"
        );
        let task = keywords("料金表の取り込み internal/tolls/import.go");
        assert!(task.contains("料金") && task.contains("toll") && task.contains("import"));
        assert!(keywords("区").contains("区"));
    }

    #[test]
    fn keywords_stems_and_vague_words() {
        let words = keywords("System MUST let members upload photos and share albums");
        assert!(words.contains("photo") && words.contains("album") && words.contains("upload"));
        assert!(!words.contains("must") && !words.contains("system"));
        assert_eq!(
            vague_words("A fast, user-friendly and steadfast UI"),
            vec!["fast", "user-friendly"]
        );
        assert_eq!(name_key("Share Links"), name_key("ShareLink"));
        assert_eq!(truncate("abcdef", 3), "abc…");
        assert_eq!(summary("System MUST keep it", 40), "Keep it");
    }
}
