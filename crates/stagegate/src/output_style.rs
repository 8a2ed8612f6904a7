//! How stagegate's own words reach a person: how much it says (`-q`, `-v`) and whether it
//! colours them.
//!
//! Colour follows the conventions a terminal user expects, decided per stream by anstream (the
//! same rules clap applies to `--help`): `NO_COLOR` (non-empty) turns it off whatever else is
//! set; `CLICOLOR_FORCE` turns it on even into a pipe; `CLICOLOR=0` turns it off; otherwise a
//! terminal gets colour and a pipe or file does not. Data meant for programs (`--json`, the
//! metrics, `show --file`) is never styled. Colour only ever marks words stagegate chose itself
//! (states, `error:`, `✓`): agent text is neutralised before any style is added around it.
//!
//! The verbosity is one process-wide setting, made once from the command line in `main`,
//! because the places that print (progress, confirmations, the log filter) are far apart.

use std::fmt::Display;
use std::sync::OnceLock;

use anstyle::{AnsiColor, Style};

use crate::cli::VerbosityArgs;

/// How much stagegate says on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verbosity {
    /// `-q`: warnings, errors and what a person must act on.
    Quiet,
    #[default]
    Normal,
    /// `-v` (1), `-vv` (2): every attempt and the settings in force.
    Verbose(u8),
}

impl Verbosity {
    pub fn from_args(args: VerbosityArgs) -> Self {
        match (args.quiet, args.verbose) {
            (true, _) => Verbosity::Quiet,
            (false, 0) => Verbosity::Normal,
            (false, level) => Verbosity::Verbose(level),
        }
    }

    /// The log level `--log-format` records when neither `STAGEGATE_LOG` nor `RUST_LOG` says.
    pub fn default_log_filter(self) -> &'static str {
        match self {
            Verbosity::Quiet => "warn",
            Verbosity::Normal => "info",
            Verbosity::Verbose(1) => "debug",
            Verbosity::Verbose(_) => "trace",
        }
    }
}

static VERBOSITY: OnceLock<Verbosity> = OnceLock::new();

/// Sets the process's verbosity; the first call wins.
pub fn set_verbosity(verbosity: Verbosity) {
    let _ = VERBOSITY.set(verbosity);
}

pub fn verbosity() -> Verbosity {
    VERBOSITY.get().copied().unwrap_or_default()
}

pub fn quiet() -> bool {
    verbosity() == Verbosity::Quiet
}

pub fn verbose() -> bool {
    matches!(verbosity(), Verbosity::Verbose(_))
}

/// `eprintln!` for what stagegate tells a person that they need not act on (a confirmation, a
/// hint, a note): silent under `-q`.
macro_rules! info_line {
    ($($argument:tt)*) => {{
        if !$crate::output_style::quiet() {
            eprintln!($($argument)*);
        }
    }};
}
pub(crate) use info_line;

/// The stream a piece of text goes to; each decides on colour for itself (`2>log` keeps a
/// terminal's stdout coloured and the log plain).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Whether text written to `stream` now may carry colour.
pub fn colour_enabled(stream: Stream) -> bool {
    let choice = match stream {
        Stream::Stdout => anstream::AutoStream::choice(&std::io::stdout()),
        Stream::Stderr => anstream::AutoStream::choice(&std::io::stderr()),
    };
    choice != anstream::ColorChoice::Never
}

/// What a word means, hence its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Done, approved, passed.
    Good,
    /// Waiting on a person, retried, superseded.
    Attention,
    /// Failed, rejected, an error.
    Bad,
    /// A label such as `hint:`.
    Emphasis,
}

impl Tone {
    fn style(self) -> Style {
        match self {
            Tone::Good => Style::new().fg_color(Some(AnsiColor::Green.into())),
            Tone::Attention => Style::new().fg_color(Some(AnsiColor::Yellow.into())),
            Tone::Bad => Style::new().fg_color(Some(AnsiColor::Red.into())).bold(),
            Tone::Emphasis => Style::new().bold(),
        }
    }
}

/// `text` in `tone`'s colour when `stream` takes colour, as it is otherwise. `text` must be
/// stagegate's own words or already neutralised.
pub fn paint(stream: Stream, tone: Tone, text: impl Display) -> String {
    if colour_enabled(stream) {
        let style = tone.style();
        format!("{style}{text}{style:#}")
    } else {
        text.to_string()
    }
}

/// The tone of a run's or gate's state word as `status` and `runs` print it.
pub fn state_tone(state: &str) -> Option<Tone> {
    match state {
        "done" | "approved" | "completed" => Some(Tone::Good),
        "awaiting_decision"
        | "waiting at the gate"
        | "paused"
        | "interrupted"
        | "running"
        | "superseded" => Some(Tone::Attention),
        "failed" | "rejected" => Some(Tone::Bad),
        _ => None,
    }
}

/// A line stagegate prints about a stage's progress, with its leading mark (`✓`, `✗`, `↻`)
/// coloured. The line must already be neutralised.
pub fn paint_progress_mark(stream: Stream, line: &str) -> String {
    let trimmed = line.trim_start();
    let indent = &line[..line.len() - trimmed.len()];
    let Some(mark) = trimmed.chars().next() else {
        return line.to_owned();
    };
    let tone = match mark {
        '✓' => Tone::Good,
        '✗' => Tone::Bad,
        '↻' | '↪' => Tone::Attention,
        _ => return line.to_owned(),
    };
    let rest = &trimmed[mark.len_utf8()..];
    format!("{indent}{}{rest}", paint(stream, tone, mark))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbosity_maps_onto_the_log_filter() {
        let quiet = VerbosityArgs {
            quiet: true,
            verbose: 0,
        };
        assert_eq!(Verbosity::from_args(quiet).default_log_filter(), "warn");
        assert_eq!(
            Verbosity::from_args(VerbosityArgs::default()).default_log_filter(),
            "info"
        );
        let verbose = |verbose| VerbosityArgs {
            quiet: false,
            verbose,
        };
        assert_eq!(
            Verbosity::from_args(verbose(1)).default_log_filter(),
            "debug"
        );
        assert_eq!(
            Verbosity::from_args(verbose(3)).default_log_filter(),
            "trace"
        );
    }

    #[test]
    fn only_known_marks_are_painted_and_the_text_is_kept() {
        // Under `cargo test` stderr is not a terminal: painting leaves the text as it is.
        let line = "  ✓ agent     requirements-analyst (0.1s)";
        if !colour_enabled(Stream::Stderr) {
            assert_eq!(paint_progress_mark(Stream::Stderr, line), line);
        }
        assert_eq!(paint_progress_mark(Stream::Stderr, "plain"), "plain");
        assert_eq!(paint_progress_mark(Stream::Stderr, ""), "");
    }
}
