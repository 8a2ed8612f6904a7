//! Long text at a terminal goes through the person's pager: `$PAGER`, else `less -R`; where
//! neither starts, it is written to stderr. Like the editor, the pager is our child in our
//! process group (the terminal's foreground) and never started through a shell.

use std::io::Write;
use std::process::{Command, Stdio};

/// Shows `text` (already neutralised: no control characters of anyone else's) page by page.
pub fn page(text: &str) {
    let configured = std::env::var("PAGER")
        .ok()
        .filter(|pager| !pager.trim().is_empty());
    let pager = configured.unwrap_or_else(|| "less -R".to_owned());
    let mut words = pager.split_whitespace();
    let Some(program) = words.next() else {
        eprint!("{text}");
        return;
    };
    let child = Command::new(program)
        .args(words)
        .stdin(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("(cannot start the pager `{pager}`; set $PAGER to an installed one)");
        eprint!("{text}");
        return;
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A pager that quits early closes its end: the rest is simply not shown.
        let _ = stdin.write_all(text.as_bytes());
    }
    let _ = child.wait();
}
