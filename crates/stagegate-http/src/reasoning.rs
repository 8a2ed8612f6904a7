//! `<think>…</think>` blocks that reasoning models (DeepSeek-R1, Qwen3, …) write into the answer
//! text when the server does not separate them out: reasoning, not part of the answer.
//!
//! A chat template often opens the block in the prompt, so the answer may hold only the closing
//! tag; everything before it is then reasoning. A block still open at the end (the model was
//! stopped while thinking) runs to the end of the text.

const OPEN: &str = "<think>";
const CLOSE: &str = "</think>";

/// The text without its think blocks, and how many characters of reasoning were taken out.
pub(crate) fn strip_think_blocks(text: &str) -> (String, u64) {
    let mut rest = text;
    let mut reasoning = 0u64;
    // A closing tag before any opening one: the block was opened by the template.
    if let Some(close) = rest.find(CLOSE)
        && rest.find(OPEN).is_none_or(|open| open > close)
    {
        reasoning += rest[..close].chars().count() as u64;
        rest = &rest[close + CLOSE.len()..];
    }
    let mut answer = String::with_capacity(rest.len());
    while let Some(open) = rest.find(OPEN) {
        answer.push_str(&rest[..open]);
        let inside = &rest[open + OPEN.len()..];
        match inside.find(CLOSE) {
            Some(close) => {
                reasoning += inside[..close].chars().count() as u64;
                rest = &inside[close + CLOSE.len()..];
            }
            None => {
                reasoning += inside.chars().count() as u64;
                rest = "";
            }
        }
    }
    answer.push_str(rest);
    if reasoning == 0 && !text.contains(OPEN) && !text.contains(CLOSE) {
        return (text.to_owned(), 0);
    }
    (answer.trim_start().to_owned(), reasoning)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leading_block_is_taken_out_and_counted() {
        assert_eq!(
            strip_think_blocks("<think>plan it</think>\n\n# Plan"),
            ("# Plan".to_owned(), 7)
        );
    }

    #[test]
    fn a_closing_tag_alone_ends_reasoning_the_template_opened() {
        assert_eq!(
            strip_think_blocks("hmm, so</think>The answer"),
            ("The answer".to_owned(), 7)
        );
    }

    #[test]
    fn an_unclosed_block_runs_to_the_end() {
        assert_eq!(
            strip_think_blocks("Intro <think>still going"),
            ("Intro ".to_owned(), 11)
        );
    }

    #[test]
    fn text_without_blocks_is_untouched() {
        assert_eq!(
            strip_think_blocks("  plain text  "),
            ("  plain text  ".to_owned(), 0)
        );
    }
}
