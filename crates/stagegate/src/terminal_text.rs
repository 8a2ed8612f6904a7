//! Text from agents (and servers, and files they wrote) made safe to show on a terminal.
//!
//! An agent's output, its stderr and every failure reason built from them can hold control
//! characters: an OSC 52 sequence writes the person's clipboard, OSC 0 retitles the window,
//! `ESC [2J` clears the screen, a lone `\r` overwrites what a line said. Before such text reaches
//! a terminal, [`neutralise`] shows every control character visibly instead of letting the
//! terminal act on it: C0 controls and DEL as their Unicode control pictures (`ESC` → `␛`,
//! BEL → `␇`), C1 controls and the bidirectional overrides (which reorder what is shown) as
//! `\u{9b}`. Newlines and tabs stay, and so does `\r` in `\r\n`.
//!
//! Where it applies: progress lines (failure reasons), `status`, `runs`, the `show` listing,
//! `show --file` when stdout is a terminal, the gate's QA feedback and "view the artifacts", and
//! the error printed at the top. stagegate adds no colour of its own on those paths today; a
//! path that does must neutralise the agent's parts *before* adding its SGR sequences, never the
//! finished line.
//!
//! What stays faithful: `show --file` into a pipe or file (the bytes the agent wrote, for
//! `diff` and tools), the run files, the logs, and `--json`, whose strings hold every character
//! but escaped: serde_json escapes the C0 controls, [`escape_json`] the rest.

use std::borrow::Cow;

/// `text` with every control character shown instead of acted on; see the module documentation.
pub fn neutralise(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut safe = String::with_capacity(text.len() + 16);
    let mut characters = text.chars().peekable();
    while let Some(character) = characters.next() {
        match character {
            '\r' if characters.peek() == Some(&'\n') => safe.push('\r'),
            character if needs_escape(character) => push_visible(&mut safe, character),
            character => safe.push(character),
        }
    }
    Cow::Owned(safe)
}

/// [`neutralise`] for bytes that may not be UTF-8 (an agent's stderr): invalid bytes become
/// `\xNN`, so that nothing is lost from view.
pub fn neutralise_bytes(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        text.push_str(&neutralise(chunk.valid()));
        for byte in chunk.invalid() {
            text.push_str(&format!("\\x{byte:02x}"));
        }
    }
    text
}

/// JSON text (from `serde_json`) with DEL, the C1 controls and the bidirectional controls written
/// as `\u00XX` escapes. serde_json escapes the C0 controls itself but writes these raw, and a
/// terminal reading `--json` would act on them. Outside strings JSON is ASCII, so every such
/// character is inside a string and the escape means the same character: the data stays
/// faithful.
pub fn escape_json(json: String) -> String {
    if !json
        .chars()
        .any(|character| character > '\u{7e}' && needs_escape(character))
    {
        return json;
    }
    let mut escaped = String::with_capacity(json.len() + 16);
    for character in json.chars() {
        if character > '\u{7e}' && needs_escape(character) {
            escaped.push_str(&format!("\\u{:04x}", u32::from(character)));
        } else {
            escaped.push(character);
        }
    }
    escaped
}

/// Whether `character` would make a terminal do something rather than show something.
fn needs_escape(character: char) -> bool {
    match character {
        '\n' | '\t' => false,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
        // Bidirectional embeddings, overrides and isolates reorder the text that follows.
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => true,
        _ => false,
    }
}

fn push_visible(safe: &mut String, character: char) {
    let code = u32::from(character);
    match code {
        // U+2400 CONTROL PICTURES: ␀ … ␟ for C0, ␡ for DEL.
        0x00..=0x1f => safe.push(char::from_u32(0x2400 + code).unwrap_or('\u{fffd}')),
        0x7f => safe.push('\u{2421}'),
        _ => safe.push_str(&format!("\\u{{{code:x}}}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_are_shown_not_acted_on() {
        let hostile = "a\u{1b}]52;c;cHduZWQ=\u{7}b\u{1b}]0;title\u{7}c\u{1b}[2J\u{1b}[31mred";
        assert_eq!(
            neutralise(hostile),
            "a␛]52;c;cHduZWQ=␇b␛]0;title␇c␛[2J␛[31mred"
        );
        assert_eq!(neutralise("csi \u{9b}2J"), "csi \\u{9b}2J");
        assert_eq!(neutralise("over\rwrite\u{7f}"), "over␍write␡");
        assert_eq!(neutralise("rtl \u{202e}txt"), "rtl \\u{202e}txt");
    }

    #[test]
    fn lines_tabs_and_ordinary_text_stay() {
        let text = "line one\n\tindented ✓ — ünïcödé\r\nend";
        assert_eq!(neutralise(text), text);
        assert!(matches!(neutralise("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_keeps_its_meaning_with_c1_controls_escaped() {
        let value = serde_json::json!({"reason": "csi \u{9b}2J del \u{7f} esc \u{1b} ok ✓"});
        let json = escape_json(serde_json::to_string(&value).expect("json"));
        assert_eq!(
            json,
            r#"{"reason":"csi \u009b2J del \u007f esc \u001b ok ✓"}"#
        );
        let back: serde_json::Value = serde_json::from_str(&json).expect("still JSON");
        assert_eq!(back, value);
    }

    #[test]
    fn bytes_that_are_not_utf8_are_shown_as_hex() {
        assert_eq!(neutralise_bytes(b"ok\xff\x1b[2J"), "ok\\xff␛[2J");
    }
}
