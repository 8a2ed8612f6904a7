//! A stage whose inputs are too large for one Temporal payload is refused on the user's
//! machine, before anything is sent, with the size and the limit — not retried on the cluster
//! or failed with the server's own message.

use crate::harness::{EXIT_DONE, EXIT_USAGE, FEATURE, TestRepo};

/// Letters no compressor can shrink much (a xorshift generator), `bytes` of them in lines.
fn incompressible_text(bytes: usize) -> String {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut text = String::with_capacity(bytes + bytes / 80);
    for index in 0..bytes {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        text.push(char::from(b'a' + (state % 26) as u8));
        if index % 80 == 79 {
            text.push('\n');
        }
    }
    text
}

#[test]
fn inputs_over_the_payload_limit_are_refused_before_reaching_the_cluster() {
    let repo = TestRepo::new();
    let spec = format!(
        "{}\n## Appendix\n{}",
        repo.read(&format!("{FEATURE}/spec.md")),
        incompressible_text(4 * 1024 * 1024)
    );
    repo.write(&format!("{FEATURE}/spec.md"), &spec);
    repo.run(&["approve", "spec"]).expect_code(EXIT_DONE);
    // Nothing listens there: the refusal must come before any connection is tried.
    repo.run(&["run", "plan", "--no-input", "--temporal", "127.0.0.1:1"])
        .expect_code(EXIT_USAGE)
        .stderr_has("the request of run")
        .stderr_has("bytes Temporal takes in one payload")
        .stderr_has(&format!("over the {}", 2 * 1024 * 1024 - 64 * 1024))
        .stderr_has("hint: make the stage's inputs smaller");
}
