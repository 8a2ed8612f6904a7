//! Configuration errors: typed for the caller, renderable by miette for the user.
//!
//! Every error about a file says where in its own message (`stagegate.toml:12:5: …`), so that it
//! reads well even where it is printed without miette's snippet (logs, `--json`), and also
//! carries the file's text and a span for miette to underline. Errors about the environment or a
//! flag name the variable or flag instead.
//!
//! The workspace uses miette without its `derive` feature, so [`miette::Diagnostic`] is
//! implemented by hand below; it is the same as `#[source_code]`, `#[label]` and `#[help]` on
//! the fields, without a proc-macro in the build.

use std::fmt::Display;
use std::path::{Path, PathBuf};

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode, SourceSpan};

use crate::raw::{Layer, Location};
use crate::source_file::Sources;

/// What kind of mistake a [`ConfigError`] is about, for callers and tests that need to tell
/// them apart without parsing messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// The file is not valid TOML.
    Syntax,
    /// A value has the wrong type (a string where a number belongs, …).
    WrongType,
    /// A backend name that no `[backends.NAME]` defines.
    UnknownBackend,
    /// A `kind` that stagegate does not know.
    UnknownBackendKind,
    /// An agent id that no `[agents.ID]` defines.
    UnknownAgent,
    /// A stage id that no `[stages.ID]` defines.
    UnknownStage,
    /// A `timeout_class` other than `default`, `complex_analysis`, `simple_check`.
    UnknownTimeoutClass,
    /// A duration that humantime cannot read.
    InvalidDuration,
    /// A size that is not `"1MiB"`-like or a number of bytes.
    InvalidSize,
    /// A number outside its allowed range.
    OutOfRange,
    /// A key that must be given is missing.
    MissingKey,
    /// A list or string that must not be empty is.
    Empty,
    /// A name given twice where names must be unique (stage aliases, pipeline entries).
    Duplicate,
    /// A value that is malformed in some other way (an artifact path leaving the feature
    /// directory, …).
    InvalidValue,
    /// `--config FILE` names a file that does not exist.
    NotFound,
    /// The file exists but cannot be read.
    Io,
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A mistake in a configuration file (the user's or, as a bug, the embedded defaults).
    #[error(transparent)]
    File(Box<FileError>),

    /// A bad value in one of the `STAGEGATE_*` environment variables.
    #[error("environment variable {variable}: {message}")]
    Environment {
        kind: ConfigErrorKind,
        variable: String,
        message: String,
        help: Option<String>,
    },

    /// A bad command-line flag value.
    #[error("{flag}: {message}")]
    Flag {
        kind: ConfigErrorKind,
        flag: String,
        message: String,
        help: Option<String>,
    },

    /// `--config FILE` names a file that does not exist.
    #[error("config file {} does not exist", path.display())]
    NotFound { path: PathBuf },

    /// The configuration path is a directory, a FIFO, a device or a socket.
    #[error("config file {} is {found}, not a regular file", path.display())]
    NotAFile { path: PathBuf, found: &'static str },

    /// The configuration file is larger than [`crate::MAX_CONFIG_BYTES`].
    #[error("config file {} is too large: {size} bytes, more than the limit of {limit} bytes", path.display())]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },

    /// The configuration file exists but could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A mistake at a place in a configuration file.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct FileError {
    kind: ConfigErrorKind,
    /// The file as messages name it.
    file: String,
    path: Option<PathBuf>,
    line: usize,
    column: usize,
    message: String,
    /// The file's text, for miette to quote.
    source_code: NamedSource<String>,
    /// The offending key or value.
    span: SourceSpan,
    /// The text under the underline.
    label: String,
    /// How to fix it.
    help: Option<String>,
}

impl Diagnostic for FileError {
    fn code<'a>(&'a self) -> Option<Box<dyn Display + 'a>> {
        Some(Box::new(self.kind.code()))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn Display + 'a>> {
        self.help
            .as_ref()
            .map(|help| Box::new(help) as Box<dyn Display + 'a>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.source_code)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let label = LabeledSpan::new_primary_with_span(Some(self.label.clone()), self.span);
        Some(Box::new(std::iter::once(label)))
    }
}

impl Diagnostic for ConfigError {
    fn code<'a>(&'a self) -> Option<Box<dyn Display + 'a>> {
        Some(Box::new(self.kind().code()))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn Display + 'a>> {
        let help: &'a str = match self {
            ConfigError::File(error) => return error.help(),
            ConfigError::Environment { help, .. } | ConfigError::Flag { help, .. } => {
                help.as_deref()?
            }
            ConfigError::NotFound { .. } => {
                "check the path given to --config; without --config, stagegate.toml at the repository root is read if it exists"
            }
            ConfigError::Read { .. } => "check that the path is a file stagegate may read",
            ConfigError::NotAFile { .. } => {
                "point --config at a regular file (a symlink to one is fine), or leave it out to read stagegate.toml at the repository root"
            }
            ConfigError::TooLarge { .. } => {
                "a stagegate.toml is a few kilobytes; check that --config names the configuration file"
            }
        };
        Some(Box::new(help))
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        match self {
            ConfigError::File(error) => error.source_code(),
            _ => None,
        }
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        match self {
            ConfigError::File(error) => error.labels(),
            _ => None,
        }
    }
}

impl ConfigErrorKind {
    /// A stable code for the diagnostic: `stagegate::config::unknown_backend`.
    pub fn code(self) -> &'static str {
        match self {
            ConfigErrorKind::Syntax => "stagegate::config::syntax",
            ConfigErrorKind::WrongType => "stagegate::config::wrong_type",
            ConfigErrorKind::UnknownBackend => "stagegate::config::unknown_backend",
            ConfigErrorKind::UnknownBackendKind => "stagegate::config::unknown_backend_kind",
            ConfigErrorKind::UnknownAgent => "stagegate::config::unknown_agent",
            ConfigErrorKind::UnknownStage => "stagegate::config::unknown_stage",
            ConfigErrorKind::UnknownTimeoutClass => "stagegate::config::unknown_timeout_class",
            ConfigErrorKind::InvalidDuration => "stagegate::config::invalid_duration",
            ConfigErrorKind::InvalidSize => "stagegate::config::invalid_size",
            ConfigErrorKind::OutOfRange => "stagegate::config::out_of_range",
            ConfigErrorKind::MissingKey => "stagegate::config::missing_key",
            ConfigErrorKind::Empty => "stagegate::config::empty",
            ConfigErrorKind::Duplicate => "stagegate::config::duplicate",
            ConfigErrorKind::InvalidValue => "stagegate::config::invalid_value",
            ConfigErrorKind::NotFound => "stagegate::config::not_found",
            ConfigErrorKind::Io => "stagegate::config::io",
        }
    }
}

impl FileError {
    pub fn kind(&self) -> ConfigErrorKind {
        self.kind
    }

    /// The path as given; `None` for the embedded defaults.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// 1-based line of the offending key or value.
    pub fn line(&self) -> usize {
        self.line
    }

    /// 1-based column, in characters.
    pub fn column(&self) -> usize {
        self.column
    }

    /// What is wrong, without the location prefix.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl ConfigError {
    pub fn kind(&self) -> ConfigErrorKind {
        match self {
            ConfigError::File(error) => error.kind,
            ConfigError::Environment { kind, .. } | ConfigError::Flag { kind, .. } => *kind,
            ConfigError::NotFound { .. } => ConfigErrorKind::NotFound,
            ConfigError::Read { .. } | ConfigError::NotAFile { .. } => ConfigErrorKind::Io,
            ConfigError::TooLarge { .. } => ConfigErrorKind::OutOfRange,
        }
    }

    /// The 1-based line in the file the error is about, when it is about a place in a file.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::File(error) => Some(error.line),
            _ => None,
        }
    }

    /// The file the error is about, as given; `None` for the environment, flags and the embedded
    /// defaults.
    pub fn path(&self) -> Option<&Path> {
        match self {
            ConfigError::File(error) => error.path(),
            ConfigError::NotFound { path }
            | ConfigError::Read { path, .. }
            | ConfigError::NotAFile { path, .. }
            | ConfigError::TooLarge { path, .. } => Some(path),
            ConfigError::Environment { .. } | ConfigError::Flag { .. } => None,
        }
    }
}

/// What is wrong with a value, before it is placed: validation describes the problem, and
/// [`Sources::error`] turns it into the right [`ConfigError`] for the layer the value came from.
#[derive(Debug, Clone)]
pub(crate) struct Problem {
    pub(crate) kind: ConfigErrorKind,
    /// What is wrong, naming the key path: `unknown backend "sonet" for agents.x.backend`.
    pub(crate) message: String,
    /// The short text under miette's underline.
    pub(crate) label: String,
    /// How to fix it.
    pub(crate) help: Option<String>,
}

impl Problem {
    pub(crate) fn new(
        kind: ConfigErrorKind,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> Self {
        Problem {
            kind,
            message: message.into(),
            label: label.into(),
            help: None,
        }
    }

    pub(crate) fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl Sources {
    /// The error for `problem` at `location`, in whichever form its layer calls for.
    pub(crate) fn error(&self, location: &Location, problem: Problem) -> ConfigError {
        match &location.layer {
            Layer::Environment(variable) => ConfigError::Environment {
                kind: problem.kind,
                variable: variable.clone(),
                message: problem.message,
                help: problem.help,
            },
            Layer::Flag(flag) => ConfigError::Flag {
                kind: problem.kind,
                flag: flag.clone(),
                message: problem.message,
                help: problem.help,
            },
            Layer::Defaults | Layer::UserConfig | Layer::Repository => {
                match self.file(&location.layer) {
                    Some(file) => {
                        let (line, column) = file.line_column(location.span.start);
                        ConfigError::File(Box::new(FileError {
                            kind: problem.kind,
                            file: file.name.clone(),
                            path: file.path.clone(),
                            line,
                            column,
                            message: problem.message,
                            source_code: NamedSource::new(file.name.clone(), file.text.clone()),
                            span: SourceSpan::from(location.span.clone()),
                            label: problem.label,
                            help: problem.help,
                        }))
                    }
                    // A user-layer value without a user file cannot be built by `load`; name the
                    // problem anyway rather than panic.
                    None => ConfigError::Flag {
                        kind: problem.kind,
                        flag: "configuration".to_owned(),
                        message: problem.message,
                        help: problem.help,
                    },
                }
            }
        }
    }
}
