//! Complexity and uncertainty scores (0–100) over a feature's files, behind the adaptive rules
//! (complexity > 80: concurrency 2, timeouts +50%, exhaustive review, 2 synthesis iterations,
//! detailed QA; uncertainty > 70: a discovery step, more clarification, extra validation,
//! required examples, explicit assumptions).
//!
//! Formula: each part has a raw count `n`, a weight `w` and a half-saturation point `h`; it
//! contributes `w × n / (n + h)` — 0 at `n = 0`, `w / 2` at `n = h`, approaching `w` — and the
//! score is the rounded sum. The weights of a score add up to 100, so a score is always within
//! 0–100, never decreases when a count grows, and saturates rather than overflowing.
//!
//! | complexity part | weight | half at | counted as |
//! |---|---|---|---|
//! | requirements | 25 | 12 | `FR-###` in spec.md |
//! | user stories | 15 | 4 | `### User Story` headings |
//! | entities | 15 | 6 | key entities |
//! | integration points | 15 | 3 | requirements naming e-mail, webhooks, APIs, OAuth, third parties, notifications … |
//! | external dependencies | 15 | 4 | plan.md's Primary Dependencies and Storage items, known services named anywhere |
//! | compliance mentions | 15 | 3 | GDPR, HIPAA, PCI, SOC 2, privacy, personal data, consent, audit, retention, accessibility/WCAG |
//!
//! | uncertainty part | weight | half at | counted as |
//! |---|---|---|---|
//! | clarification markers | 40 | 3 | `[NEEDS CLARIFICATION]` in any input |
//! | vague adjectives | 20 | 6 | fast, scalable, secure, intuitive, robust, user-friendly … in requirements, criteria and stories |
//! | missing success criteria | 25 | 2 | stories without acceptance scenarios + success criteria without a number + 3 when there are none |
//! | new-technology mentions | 15 | 2 | "new technology", "experimental", "prototype", "proof of concept", "spike", "beta", "unproven", "evaluate" … |

use std::sync::LazyLock;

use serde::Serialize;
use stagegate_engine::prompt::NamedText;

use crate::speckit::Feature;
use crate::text::{self, Phrases};

/// One term of a score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScorePart {
    pub name: &'static str,
    /// The count it was computed from.
    pub raw: u64,
    /// The most this part can contribute.
    pub weight: f64,
    /// The count at which it contributes half its weight.
    pub half_at: f64,
    /// `weight × raw / (raw + half_at)`.
    pub contribution: f64,
}

/// A score with its parts, so that `stagegate status` can show how it came about.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    /// 0–100.
    pub value: u8,
    pub parts: Vec<ScorePart>,
}

/// The counts both scores are computed from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ScoreInputs {
    pub requirements: u64,
    pub stories: u64,
    pub entities: u64,
    pub integration_points: u64,
    pub external_dependencies: u64,
    pub compliance_mentions: u64,
    pub clarification_markers: u64,
    pub vague_adjectives: u64,
    pub missing_success_criteria: u64,
    pub new_technology_mentions: u64,
}

/// Both scores of a feature.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scores {
    pub inputs: ScoreInputs,
    pub complexity: Score,
    pub uncertainty: Score,
}

/// The adaptive rules' thresholds.
pub const HIGH_COMPLEXITY: u8 = 80;
pub const HIGH_UNCERTAINTY: u8 = 70;

impl Scores {
    /// Whether the high-complexity rules apply (score above 80).
    pub fn high_complexity(&self) -> bool {
        self.complexity.value > HIGH_COMPLEXITY
    }

    /// Whether the high-uncertainty rules apply (score above 70).
    pub fn high_uncertainty(&self) -> bool {
        self.uncertainty.value > HIGH_UNCERTAINTY
    }
}

const INTEGRATION_WORDS: &[&str] = &[
    "email",
    "e-mail",
    "sms",
    "webhook",
    "third-party",
    "third party",
    "external",
    "oauth",
    "api",
    "integration",
    "notification",
    "notify",
    "payment provider",
    "sso",
    "import",
    "export",
    "sync",
];

const KNOWN_SERVICES: &[&str] = &[
    "postgresql",
    "postgres",
    "mysql",
    "sqlite",
    "mongodb",
    "redis",
    "kafka",
    "rabbitmq",
    "s3",
    "object storage",
    "stripe",
    "twilio",
    "sendgrid",
    "auth0",
    "firebase",
    "elasticsearch",
    "openai",
    "github",
    "slack",
];

const COMPLIANCE_WORDS: &[&str] = &[
    "gdpr",
    "hipaa",
    "pci",
    "soc 2",
    "soc2",
    "privacy",
    "personal data",
    "consent",
    "audit",
    "retention",
    "accessibility",
    "wcag",
    "compliance",
    "regulat",
];

const NEW_TECHNOLOGY_WORDS: &[&str] = &[
    "new technology",
    "experimental",
    "prototype",
    "proof of concept",
    "spike",
    "beta",
    "unproven",
    "evaluate",
    "not yet chosen",
    "to be decided",
    "unfamiliar",
    "cutting-edge",
    "research needed",
];

static KNOWN_SERVICE_PHRASES: LazyLock<Phrases> = LazyLock::new(|| Phrases::new(KNOWN_SERVICES));
static COMPLIANCE_PHRASES: LazyLock<Phrases> = LazyLock::new(|| Phrases::new(COMPLIANCE_WORDS));
static NEW_TECHNOLOGY_PHRASES: LazyLock<Phrases> =
    LazyLock::new(|| Phrases::new(NEW_TECHNOLOGY_WORDS));

impl ScoreInputs {
    /// Counts over a feature's files (spec.md, plan.md, tasks.md …).
    pub fn from_files(files: &[NamedText]) -> ScoreInputs {
        ScoreInputs::from_feature(&Feature::from_files(files, &[]))
    }

    /// Counts over an already parsed feature.
    pub fn from_feature(feature: &Feature) -> ScoreInputs {
        let spec = &feature.spec;
        let spec_lower = feature.text("spec.md").unwrap_or_default().to_lowercase();
        let all_lower: String = feature
            .texts
            .iter()
            .map(|file| file.content.to_lowercase())
            .collect::<Vec<_>>()
            .join("\n");
        let integration_points = spec
            .requirements
            .iter()
            .filter(|requirement| {
                let lower = requirement.text.to_lowercase();
                INTEGRATION_WORDS.iter().any(|word| lower.contains(word))
            })
            .count() as u64;
        let mut external_dependencies = KNOWN_SERVICE_PHRASES.found_as_words(&all_lower) as u64;
        if let Some(plan) = &feature.plan {
            for key in ["primary dependencies", "storage"] {
                if let Some(value) = plan.context(key) {
                    let upper = value.to_uppercase();
                    if !upper.contains("NEEDS CLARIFICATION") && !upper.starts_with("N/A") {
                        external_dependencies += value
                            .split(',')
                            .filter(|part| !part.trim().is_empty())
                            .count() as u64;
                    }
                }
            }
        }
        let clarification_markers = feature
            .texts
            .iter()
            .map(|file| {
                file.content
                    .to_uppercase()
                    .matches("NEEDS CLARIFICATION")
                    .count() as u64
            })
            .sum::<u64>()
            .max(spec.open_questions.len() as u64);
        let vague_adjectives = spec
            .requirements
            .iter()
            .chain(&spec.success_criteria)
            .map(|requirement| text::vague_words(&requirement.text).len() as u64)
            .chain(spec.stories.iter().map(|story| {
                text::vague_words(&format!("{} {}", story.title, story.narrative)).len() as u64
            }))
            .sum();
        let missing_success_criteria = spec
            .stories
            .iter()
            .filter(|story| story.scenarios.is_empty())
            .count() as u64
            + spec
                .success_criteria
                .iter()
                .filter(|criterion| !text::has_number(&criterion.text))
                .count() as u64
            + if spec.success_criteria.is_empty() {
                3
            } else {
                0
            };
        ScoreInputs {
            requirements: spec.requirements.len() as u64,
            stories: spec.stories.len() as u64,
            entities: spec.entities.len() as u64,
            integration_points,
            external_dependencies,
            compliance_mentions: COMPLIANCE_PHRASES.occurrences(&spec_lower),
            clarification_markers,
            vague_adjectives,
            missing_success_criteria,
            new_technology_mentions: NEW_TECHNOLOGY_PHRASES.occurrences(&all_lower),
        }
    }
}

fn part(name: &'static str, raw: u64, weight: f64, half_at: f64) -> ScorePart {
    let count = raw as f64;
    ScorePart {
        name,
        raw,
        weight,
        half_at,
        contribution: weight * count / (count + half_at),
    }
}

fn total(parts: Vec<ScorePart>) -> Score {
    let sum: f64 = parts.iter().map(|part| part.contribution).sum();
    Score {
        // The weights add up to 100, so the sum is within 0..=100.
        value: sum.round().clamp(0.0, 100.0) as u8,
        parts,
    }
}

/// The complexity score (see the module documentation for the formula).
pub fn complexity(inputs: &ScoreInputs) -> Score {
    total(vec![
        part("requirements", inputs.requirements, 25.0, 12.0),
        part("user stories", inputs.stories, 15.0, 4.0),
        part("entities", inputs.entities, 15.0, 6.0),
        part("integration points", inputs.integration_points, 15.0, 3.0),
        part(
            "external dependencies",
            inputs.external_dependencies,
            15.0,
            4.0,
        ),
        part("compliance mentions", inputs.compliance_mentions, 15.0, 3.0),
    ])
}

/// The uncertainty score (see the module documentation for the formula).
pub fn uncertainty(inputs: &ScoreInputs) -> Score {
    total(vec![
        part(
            "clarification markers",
            inputs.clarification_markers,
            40.0,
            3.0,
        ),
        part("vague adjectives", inputs.vague_adjectives, 20.0, 6.0),
        part(
            "missing success criteria",
            inputs.missing_success_criteria,
            25.0,
            2.0,
        ),
        part(
            "new-technology mentions",
            inputs.new_technology_mentions,
            15.0,
            2.0,
        ),
    ])
}

/// Both scores over a feature's files.
pub fn scores(files: &[NamedText]) -> Scores {
    scores_for(ScoreInputs::from_files(files))
}

/// Both scores from counts.
pub fn scores_for(inputs: ScoreInputs) -> Scores {
    Scores {
        complexity: complexity(&inputs),
        uncertainty: uncertainty(&inputs),
        inputs,
    }
}

/// A score as one line: `62/100 (requirements 11 → 12.8, …)`.
pub fn explain(score: &Score) -> String {
    let parts: Vec<String> = score
        .parts
        .iter()
        .map(|part| format!("{} {} → {:.1}", part.name, part.raw, part.contribution))
        .collect();
    format!("{}/100 ({})", score.value, parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = include_str!("../../../examples/specs/001-team-photo-albums/spec.md");

    fn with(field: usize, count: u64) -> ScoreInputs {
        let mut inputs = ScoreInputs::default();
        let slot = match field {
            0 => &mut inputs.requirements,
            1 => &mut inputs.stories,
            2 => &mut inputs.entities,
            3 => &mut inputs.integration_points,
            4 => &mut inputs.external_dependencies,
            5 => &mut inputs.compliance_mentions,
            6 => &mut inputs.clarification_markers,
            7 => &mut inputs.vague_adjectives,
            8 => &mut inputs.missing_success_criteria,
            _ => &mut inputs.new_technology_mentions,
        };
        *slot = count;
        inputs
    }

    #[test]
    fn scores_are_monotone_bounded_and_saturating() {
        for field in 0..10 {
            let mut previous = (0u8, 0u8);
            for count in [0, 1, 2, 3, 5, 8, 13, 100, 10_000, u64::MAX / 2] {
                let inputs = with(field, count);
                let now = (complexity(&inputs).value, uncertainty(&inputs).value);
                assert!(
                    now.0 >= previous.0 && now.1 >= previous.1,
                    "field {field} count {count}"
                );
                assert!(now.0 <= 100 && now.1 <= 100);
                previous = now;
            }
        }
        let everything = ScoreInputs {
            requirements: 1_000,
            stories: 1_000,
            entities: 1_000,
            integration_points: 1_000,
            external_dependencies: 1_000,
            compliance_mentions: 1_000,
            clarification_markers: 1_000,
            vague_adjectives: 1_000,
            missing_success_criteria: 1_000,
            new_technology_mentions: 1_000,
        };
        let all = scores_for(everything);
        assert!(all.complexity.value >= 99 && all.uncertainty.value >= 99);
        assert!(all.high_complexity() && all.high_uncertainty());
        let none = scores_for(ScoreInputs::default());
        assert_eq!((none.complexity.value, none.uncertainty.value), (0, 0));
    }

    #[test]
    fn the_example_feature_scores_with_parts() {
        let scores = scores(&[NamedText {
            name: "spec.md".to_owned(),
            content: SPEC.to_owned(),
        }]);
        assert_eq!(scores.inputs.requirements, 11);
        assert_eq!(scores.inputs.clarification_markers, 2);
        assert_eq!(scores.complexity.parts.len(), 6);
        let sum: f64 = scores.complexity.parts.iter().map(|p| p.contribution).sum();
        assert_eq!(scores.complexity.value, sum.round() as u8);
        assert!(
            scores.complexity.value > 30 && scores.complexity.value < 80,
            "{}",
            explain(&scores.complexity)
        );
        assert!(
            scores.uncertainty.value > 10 && scores.uncertainty.value < 70,
            "{}",
            explain(&scores.uncertainty)
        );
    }
}
