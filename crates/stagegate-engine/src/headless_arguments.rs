//! Where words a user adds to a CLI agent's command go: `--model NAME` and spec-kit's
//! `SPECKIT_INTEGRATION_<KEY>_EXTRA_ARGS`.
//!
//! spec-kit puts them before its own output flags, and so does stagegate: appended last, a
//! user's `--output-format text` would override the preset's JSON flag and the parser would
//! read the wrong thing; placed before, the preset's flag comes last and wins. A trailing `-`
//! (read the prompt from stdin, as `codex exec -` does) stays last too.

use stagegate_settings::OutputFormat;

/// The flag that selects `format`'s output in the presets' commands, if the format has one.
fn output_flags(format: OutputFormat) -> &'static [&'static str] {
    match format {
        OutputFormat::ClaudeJson | OutputFormat::GeminiJson | OutputFormat::QwenJson => {
            &["--output-format"]
        }
        OutputFormat::CodexJsonl => &["--json"],
        OutputFormat::OpencodeJsonl => &["--format"],
        OutputFormat::Text => &["--output-format", "--format", "--json"],
    }
}

/// Inserts `words` into `command` (the program first) before its output flags, else before a
/// trailing `-`, else at the end.
pub(crate) fn insert_before_output_flags(
    command: &mut Vec<String>,
    format: OutputFormat,
    words: Vec<String>,
) {
    let flags = output_flags(format);
    let at = command
        .iter()
        .skip(1)
        .position(|argument| {
            flags
                .iter()
                .any(|flag| argument == flag || argument.starts_with(&format!("{flag}=")))
        })
        .map(|index| index + 1)
        .or_else(|| {
            (command.len() > 1 && command.last().is_some_and(|last| last == "-"))
                .then(|| command.len() - 1)
        })
        .unwrap_or(command.len());
    command.splice(at..at, words);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|word| (*word).to_owned()).collect()
    }

    fn placed(command: &[&str], format: OutputFormat, added: &[&str]) -> Vec<String> {
        let mut command = words(command);
        insert_before_output_flags(&mut command, format, words(added));
        command
    }

    #[test]
    fn words_go_before_the_presets_output_flag() {
        assert_eq!(
            placed(
                &[
                    "claude",
                    "-p",
                    "--no-session-persistence",
                    "--output-format",
                    "json"
                ],
                OutputFormat::ClaudeJson,
                &["--output-format", "text"]
            ),
            words(&[
                "claude",
                "-p",
                "--no-session-persistence",
                "--output-format",
                "text",
                "--output-format",
                "json"
            ])
        );
        assert_eq!(
            placed(
                &["codex", "exec", "--json", "--ephemeral", "-"],
                OutputFormat::CodexJsonl,
                &["--model", "o3"]
            ),
            words(&[
                "codex",
                "exec",
                "--model",
                "o3",
                "--json",
                "--ephemeral",
                "-"
            ])
        );
    }

    #[test]
    fn without_an_output_flag_a_trailing_dash_stays_last() {
        assert_eq!(
            placed(&["codex", "exec", "-"], OutputFormat::Text, &["-m", "x"]),
            words(&["codex", "exec", "-m", "x", "-"])
        );
        assert_eq!(
            placed(&["copilot", "-s"], OutputFormat::Text, &["--model", "x"]),
            words(&["copilot", "-s", "--model", "x"])
        );
        assert_eq!(
            placed(&["-"], OutputFormat::Text, &["a"]),
            words(&["-", "a"])
        );
    }
}
