//! `stagegate man`: the man page (roff) generated from the same clap definitions that parse the
//! command line: the synopsis, options and subcommands, with the exit codes.

use clap::CommandFactory as _;

use crate::cli::Cli;
use crate::error::{AppError, Exit};

pub fn man_page() -> Result<Exit, AppError> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .map_err(|error| AppError::internal(format!("cannot render the man page: {error}")))?;
    stdout_text!("{}", String::from_utf8_lossy(&page));
    Ok(Exit::Done)
}
