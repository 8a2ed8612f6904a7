//! The spec-kit parsers and the scores never panic, whatever the feature files hold.
//!
//! A randomized test with fixed seeds rather than proptest or cargo-fuzz: proptest would add
//! about a dozen crates to the build, and these inputs are cheap to generate by hand. Each
//! case splices spec-kit's syntax (headings, `FR-###`, task lines, markers, tables) with
//! random characters, odd Unicode and truncation. It runs in about a second; a failure names
//! the seed and the case to reproduce it.

use stagegate_analysts::scores::{ScoreInputs, complexity, uncertainty};
use stagegate_analysts::speckit::checklist::Checklist;
use stagegate_analysts::speckit::constitution::Constitution;
use stagegate_analysts::speckit::feature::Feature;
use stagegate_analysts::speckit::plan::Plan;
use stagegate_analysts::speckit::spec::Spec;
use stagegate_analysts::speckit::tasks::TaskList;
use stagegate_analysts::speckit::template::Template;
use stagegate_engine::prompt::NamedText;

const FRAGMENTS: &[&str] = &[
    "# Feature Specification: ",
    "## User Scenarios & Testing",
    "### User Story 1 - Browse (Priority: P1)",
    "(Priority: P",
    "**Given** ",
    "**When** ",
    "**Then** ",
    "- **FR-001**: System MUST ",
    "- **FR-",
    "FR-999999999999999999999",
    "SC-001",
    "- **SC-",
    "[NEEDS CLARIFICATION: ",
    "[NEEDS CLARIFICATION",
    "]",
    "- [ ] T001 [P] [US1] ",
    "- [x] T0",
    "- [X] T99999999999999999999 [US",
    "* [ ] ",
    "CHK001 ",
    "- [ ] CHK",
    "## Phase 1: Setup",
    "## Summary",
    "## Technical Context",
    "**Language/Version**: ",
    "**Storage**: ",
    "## Constitution Check",
    "### I. Library-First",
    "## Project Structure",
    "```text\nsrc/\n",
    "```",
    "| a | b |\n|---|---|\n| c | d |",
    "### Key Entities",
    "- **User**: ",
    "[FEATURE NAME]",
    "$ARGUMENTS",
    "<!-- ",
    "-->",
    "#",
    "######## ",
    "\n",
    "\n\n",
    "\r\n",
    "\t",
    " ",
    "é",
    "\u{200b}",
    "\u{feff}",
    "👩‍💻",
    "\u{0}",
    "\u{fffd}",
    ":",
    "**",
    "`",
    "1.",
    "-",
];

fn random_text(rng: &mut fastrand::Rng) -> String {
    let mut text = String::new();
    for _ in 0..rng.usize(0..120) {
        match rng.u8(0..10) {
            0 => text.push(rng.char(..)),
            1 => {
                for _ in 0..rng.usize(0..20) {
                    text.push(rng.alphanumeric());
                }
            }
            2 => text.push_str(&rng.u64(..).to_string()),
            _ => text.push_str(FRAGMENTS[rng.usize(..FRAGMENTS.len())]),
        }
    }
    // Sometimes cut it anywhere (at a character boundary).
    if rng.bool() && !text.is_empty() {
        let mut cut = rng.usize(..text.len());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

#[test]
fn the_parsers_and_scores_never_panic() {
    for seed in 0..1500u64 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let texts: Vec<String> = (0..4).map(|_| random_text(&mut rng)).collect();
        let outcome = std::panic::catch_unwind(|| {
            let [spec, plan, tasks, other] = &texts[..] else {
                unreachable!("four texts")
            };
            let _ = Spec::parse(spec);
            let _ = Plan::parse(plan);
            let _ = TaskList::parse(tasks).all_done();
            let _ = Checklist::parse(other).open_items().count();
            let _ = Constitution::parse(other);
            let _ = Template::parse(other).headings();
            let files = [
                ("spec.md", spec),
                ("plan.md", plan),
                ("tasks.md", tasks),
                ("checklists/requirements.md", other),
            ]
            .map(|(name, content)| NamedText {
                name: name.to_owned(),
                content: content.clone(),
            });
            let feature = Feature::from_files(&files, &[]);
            let _ = feature.notes();
            let inputs = ScoreInputs::from_feature(&feature);
            (complexity(&inputs).value, uncertainty(&inputs).value)
        });
        match outcome {
            Ok((complexity, uncertainty)) => assert!(
                complexity <= 100 && uncertainty <= 100,
                "seed {seed}: scores {complexity} and {uncertainty} outside 0-100 for {texts:?}"
            ),
            Err(_) => panic!("seed {seed}: a parser panicked on {texts:?}"),
        }
    }
}
