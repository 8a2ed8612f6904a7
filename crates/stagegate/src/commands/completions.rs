//! `stagegate completions SHELL`: a completion script generated from the same clap definitions
//! that parse the command line, so it cannot drift from them.

use clap::CommandFactory as _;
use clap_complete::Shell;

use crate::cli::Cli;
use crate::error::Exit;

pub fn completions(shell: Shell) -> Exit {
    let mut command = Cli::command();
    // Rendered into memory first: clap_complete panics on a failed write, and a reader that went
    // away (`| head`) is not an error of ours.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "stagegate", &mut script);
    stdout_text!("{}", String::from_utf8_lossy(&script));
    Exit::Done
}
