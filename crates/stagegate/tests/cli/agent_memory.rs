//! The memory cap holds for what an agent really uses: a shared anonymous mapping, which
//! `RLIMIT_DATA` does not count, is measured by the supervisor and stops the agent with a
//! permanent failure that names the setting. (A 2 GiB mapping would succeed under the old
//! 256 MB `RLIMIT_DATA`.)
//!
//! The agent is a Python one-liner (`mmap.mmap(-1, N)` is `MAP_SHARED|MAP_ANONYMOUS`); without
//! `python3` on the PATH the test fails and says so.

use crate::harness::{EXIT_STAGE_FAILED, TestRepo, toml_string};

/// Maps 2 GiB shared and writes it 64 MiB at a time, a tenth of a second apart, then answers.
const HOG: &str = "import mmap, time\n\
                   size = 2 << 30\n\
                   m = mmap.mmap(-1, size)\n\
                   for offset in range(0, size, 64 << 20):\n\
                   \x20   m[offset:offset + (64 << 20)] = b'x' * (64 << 20)\n\
                   \x20   time.sleep(0.1)\n\
                   print('touched all of it')\n";

#[test]
fn a_shared_mapping_over_agent_memory_stops_the_agent_permanently() {
    let python = ["/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .find(|path| std::path::Path::new(path).exists())
        .expect("python3 is needed for this test (apt-get install python3)");
    let repo = TestRepo::with_approved_spec();
    let hog = repo.fake_dir.join("hog.py");
    std::fs::write(&hog, HOG).expect("write the hog");
    let repo = repo
        .set("defaults", "backend", "\"hog\"")
        .set("defaults", "agent_memory", "\"256MB\"")
        .set("defaults", "retries", "2")
        .set("timeouts", "default", "\"60s\"")
        .set("timeouts", "stage", "\"90s\"")
        .set("stages.plan", "agents", "[\"requirements-analyst\"]")
        .set("backends.hog", "kind", "\"command\"")
        .set(
            "backends.hog",
            "command",
            &format!(
                "[{}, {}]",
                toml_string(python),
                toml_string(&hog.display().to_string())
            ),
        );
    let outcome = repo
        .run(&["run", "plan", "--no-input"])
        .expect_code(EXIT_STAGE_FAILED)
        .stderr_has("over its agent_memory cap of 244.1 MiB")
        .stderr_has("raise backends.hog.memory (or defaults.agent_memory)");
    assert!(
        !outcome.stderr.contains("attempt 2"),
        "over the cap is permanent: {outcome:?}"
    );
    assert!(!outcome.stderr.contains("touched all of it"), "{outcome:?}");
}
