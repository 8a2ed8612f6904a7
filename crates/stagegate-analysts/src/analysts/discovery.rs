//! `discovery-analyst`: the adaptive discovery step of uncertain inputs. It lists the unknowns
//! of the feature — every open `[NEEDS CLARIFICATION]` with the requirement it blocks, vague
//! adjectives without a number and where they occur, requirements and success criteria
//! without a measurable criterion, stories without acceptance scenarios, missing success
//! criteria — and for each a working assumption the other agents use ("Assume: …"), plus the
//! questions the person should answer.
//!
//! The same functions give the other analysts their assumptions and the synthesizers their
//! `## Assumptions` and `## Examples` sections, so the discovery's answer, the agents' and the
//! artifacts' agree word for word.

use std::collections::BTreeMap;

use crate::analysts::confidence::Confidence;
use crate::analysts::synthesis::{options, section_items};
use crate::analysts::{Call, report, traceability};
use crate::markdown;
use crate::speckit::{Feature, Spec};
use crate::text;

/// What kind of unknown an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    OpenQuestion,
    VagueTerm,
    NotMeasurable,
    NoScenarios,
    NoSuccessCriteria,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::OpenQuestion => "Open question",
            Kind::VagueTerm => "Vague term",
            Kind::NotMeasurable => "No measurable criterion",
            Kind::NoScenarios => "No acceptance scenarios",
            Kind::NoSuccessCriteria => "No success criteria",
        }
    }
}

/// One unknown and the assumption to work from until it is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unknown {
    pub(crate) kind: Kind,
    /// What is unknown, in a sentence.
    pub(crate) what: String,
    /// Where it occurs (`spec.md:12`, `FR-001, US2`).
    pub(crate) place: String,
    /// The requirements or stories it affects.
    pub(crate) affects: String,
    /// The working assumption, without the `Assume:` prefix.
    pub(crate) assumption: String,
    /// The question for the person.
    pub(crate) question: String,
}

impl Unknown {
    /// The assumption as a list item: `FR-008 (open question …): Assume: …`.
    pub(crate) fn assumption_item(&self) -> String {
        format!(
            "{} — {}: Assume: {}",
            self.affects, self.what, self.assumption
        )
    }
}

/// The most locations listed for one vague word.
const LOCATION_LIMIT: usize = 12;

/// A concrete reading of a vague adjective.
pub(crate) fn concrete(word: &str) -> &'static str {
    match word {
        "fast" | "quick" | "quickly" | "performant" | "high-performance" => {
            "p95 under 2 s for every user-facing action"
        }
        "responsive" => "the interface reacts to input within 200 ms (p95)",
        "real-time" => "changes are visible to other users within 1 s",
        "scalable" => "10× the expected load (1,000 concurrent users) without a design change",
        "secure" | "securely" => {
            "authenticated access checked server-side, TLS in transit, encryption at rest, the OWASP Top 10 addressed"
        }
        "intuitive" | "user-friendly" | "easy" | "easily" | "simple" => {
            "90 % of first-time users finish the main task unaided within 2 minutes"
        }
        "robust" | "reliable" => "99.9 % monthly availability and no data loss on a single failure",
        "efficient" | "efficiently" | "lightweight" => {
            "p95 server time under 500 ms and at most 256 MB memory per instance"
        }
        "seamless" | "seamlessly" => "no extra step, sign-in or page reload between the steps",
        "flexible" => "new variants are added by configuration, without code changes",
        "minimal" => "the smallest set of steps and data that satisfies the requirement",
        _ => "a documented default value that can be changed by configuration",
    }
}

/// A working default for an open question without options, by its words.
fn default_answer(question: &str) -> String {
    let lower = question.to_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|needle| lower.contains(needle));
    let value = if has(&["retention", "how long", "expir", "period", "duration"]) {
        "30 days, as a setting"
    } else if has(&["size", "how large", "megabyte", " mb"]) {
        "25 MB per item, as a setting"
    } else if has(&["how many", "limit", "maximum", "max ", "quota", "number of"]) {
        "at most 100 per user, as a setting"
    } else if has(&["auth", "sign-in", "sign in", "login", "log in", "account"]) {
        "the existing accounts with e-mail and password sign-in"
    } else if has(&["notif", "channel", "alert"]) {
        "in-app notifications only"
    } else if has(&["role", "permission", "access", "who can"]) {
        "only the owner and admins, everyone else read-only"
    } else if has(&["format", "file type"]) {
        "the most common format only, others refused with a message"
    } else if has(&["sort", "order", "rank"]) {
        "newest first, ties by name"
    } else if has(&[
        "engine",
        "technology",
        "framework",
        "library",
        "database",
        "storage",
    ]) {
        "the project's existing stack; a spike compares the alternatives before the design is fixed"
    } else {
        "the simplest behaviour that satisfies the requirement as written, made a setting with a documented default"
    };
    value.to_owned()
}

/// The text of a requirement or story without its `[NEEDS CLARIFICATION …]` markers, so that
/// the numbers of a question ("rule 1") do not count as a measure.
fn without_markers(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(start) = rest.find('[') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        if after
            .to_ascii_uppercase()
            .starts_with("[NEEDS CLARIFICATION")
        {
            match after.find(']') {
                Some(end) => rest = &after[end + 1..],
                None => return out,
            }
        } else {
            out.push('[');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    out
}

/// The working answer to an open question: the first option it names, else a default.
fn working_answer(question: &str) -> String {
    options(question)
        .into_iter()
        .next()
        .unwrap_or_else(|| default_answer(question))
}

/// The text with every `[NEEDS CLARIFICATION: q]` replaced by its working answer, marked
/// `(assumed)`, so that an example built from it reads as a sentence.
fn with_assumed(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(start) = rest.find('[') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let marker = "[NEEDS CLARIFICATION";
        if after.to_ascii_uppercase().starts_with(marker) {
            let end = after.find(']').unwrap_or(after.len());
            let question = after[marker.len()..end]
                .trim_start_matches([':', ' ', '-'])
                .trim();
            out.push_str(&format!("{} (assumed)", working_answer(question)));
            rest = after.get(end + 1..).unwrap_or("");
        } else {
            out.push('[');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    out
}

/// Every unknown of a spec, in a fixed order: open questions (spec order), vague terms (word
/// list order), unmeasurable requirements and criteria, stories without scenarios, missing
/// success criteria.
pub(crate) fn unknowns(spec: &Spec) -> Vec<Unknown> {
    let mut found = Vec::new();
    for question in &spec.open_questions {
        let options = options(&question.question);
        let assumption = match options.first() {
            Some(first) => format!(
                "{first} — the first option the question names, until it is answered (alternatives: {})",
                options[1..].join(", ")
            ),
            None => default_answer(&question.question),
        };
        found.push(Unknown {
            kind: Kind::OpenQuestion,
            what: format!(
                "[NEEDS CLARIFICATION: {}]",
                text::truncate(&question.question, 160)
            ),
            place: format!("spec.md:{}", question.line),
            affects: question.location.clone(),
            assumption,
            question: format!(
                "{}: {}",
                question.location,
                text::truncate(&question.question, 200)
            ),
        });
    }

    // Vague words, grouped by word: where each occurs without a number next to it.
    let mut vague: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut note = |label: String, source: &str| {
        let plain = without_markers(source);
        if text::has_number(&plain) {
            return;
        }
        for word in text::vague_words(&plain) {
            if let Some(index) = text::VAGUE_WORDS.iter().position(|known| *known == word) {
                let places = vague.entry(index).or_default();
                if !places.contains(&label) {
                    places.push(label.clone());
                }
            }
        }
    };
    for requirement in spec.requirements.iter().chain(&spec.success_criteria) {
        note(requirement.id.clone(), &requirement.text);
    }
    for story in &spec.stories {
        note(
            story.label(),
            &format!("{} {}", story.title, story.narrative),
        );
    }
    for (index, places) in vague {
        let word = text::VAGUE_WORDS[index];
        let mut shown: Vec<String> = places.iter().take(LOCATION_LIMIT).cloned().collect();
        if places.len() > LOCATION_LIMIT {
            shown.push(format!("… {} more", places.len() - LOCATION_LIMIT));
        }
        let place = shown.join(", ");
        found.push(Unknown {
            kind: Kind::VagueTerm,
            what: format!("\"{word}\" is stated without a number"),
            place: place.clone(),
            affects: place.clone(),
            assumption: format!("\"{word}\" means {}", concrete(word)),
            question: format!(
                "What does \"{word}\" mean in {place}, as a number (working assumption: {})?",
                concrete(word)
            ),
        });
    }

    // Requirements that neither state a number nor trace to an acceptance scenario.
    for trace in traceability::trace(spec) {
        let requirement = trace.requirement;
        let plain = without_markers(&requirement.text);
        if text::has_number(&plain) {
            continue;
        }
        let criterion = requirement.id.starts_with("SC-");
        let questioned = spec
            .open_questions
            .iter()
            .any(|question| question.requirement.as_deref() == Some(requirement.id.as_str()));
        // An open question on the requirement already stands for what is unknown about it.
        if questioned || (!criterion && !trace.scenarios.is_empty()) {
            continue;
        }
        let (what, assumption) = if criterion {
            (
                "the success criterion states no number".to_owned(),
                format!(
                    "{} is met when {}",
                    requirement.id,
                    measurable_reading(&plain)
                ),
            )
        } else {
            (
                "no measurable criterion: it states no number and no acceptance scenario traces to it"
                    .to_owned(),
                format!(
                    "{} is met when this example passes as an automated test: {}",
                    requirement.id,
                    example(spec, &trace).1
                ),
            )
        };
        found.push(Unknown {
            kind: Kind::NotMeasurable,
            what,
            place: format!("spec.md:{}", requirement.line),
            affects: requirement.id.clone(),
            assumption,
            question: format!(
                "How will {} be measured (\"{}\")?",
                requirement.id,
                text::truncate(&plain, 120)
            ),
        });
    }

    for story in spec
        .stories
        .iter()
        .filter(|story| story.scenarios.is_empty())
    {
        found.push(Unknown {
            kind: Kind::NoScenarios,
            what: "the story has no acceptance scenarios".to_owned(),
            place: format!("spec.md:{}", story.line),
            affects: story.label(),
            assumption: format!(
                "{} is accepted when: given a signed-in user, when they {}, then the outcome the story describes is visible to them and to the people it concerns",
                story.label(),
                lower_first(&story.title)
            ),
            question: format!(
                "Which acceptance scenarios (Given / When / Then) accept {} \"{}\"?",
                story.label(),
                text::truncate(&story.title, 100)
            ),
        });
    }

    if spec.success_criteria.is_empty() {
        found.push(Unknown {
            kind: Kind::NoSuccessCriteria,
            what: "the spec has no `SC-###` success criteria".to_owned(),
            place: "spec.md".to_owned(),
            affects: "the whole feature".to_owned(),
            assumption: "success means every P1 story's acceptance scenarios pass, user-facing actions answer within 2 s (p95), and no CRITICAL issue is open at release".to_owned(),
            question: "Which measurable outcomes (`SC-###`) say that the feature succeeded?"
                .to_owned(),
        });
    }
    found
}

/// A success criterion without a number, read with a measure.
fn measurable_reading(criterion: &str) -> String {
    let words = text::vague_words(criterion);
    let lower = criterion.to_lowercase();
    let absolute = ["no", "none", "never", "every", "all", "always", "zero"]
        .iter()
        .any(|word| text::contains_word(&lower, word));
    if absolute && words.is_empty() {
        format!(
            "the check it names finds no exception (a pass/fail criterion, 0 violations): \"{}\"",
            text::truncate(criterion, 100)
        )
    } else if words.is_empty() {
        format!(
            "\"{}\" holds for at least 90 % of the users or cases measured in acceptance testing",
            text::truncate(criterion, 100)
        )
    } else {
        let readings: Vec<String> = words
            .iter()
            .map(|word| format!("\"{word}\" = {}", concrete(word)))
            .collect();
        format!(
            "\"{}\" holds with {}",
            text::truncate(criterion, 100),
            readings.join("; ")
        )
    }
}

fn lower_first(source: &str) -> String {
    let mut characters = source.chars();
    match characters.next() {
        Some(first) => first.to_lowercase().chain(characters).collect(),
        None => String::new(),
    }
}

/// `sort messages …` → `sorts messages …` (third person of the leading verb, crudely).
fn third_person(phrase: &str) -> String {
    let (verb, rest) = phrase.split_once(' ').unwrap_or((phrase, ""));
    let lower = verb.to_lowercase();
    let conjugated = if lower == "be" {
        "is".to_owned()
    } else if lower == "have" {
        "has".to_owned()
    } else if ["s", "sh", "ch", "x", "z"]
        .iter()
        .any(|ending| lower.ends_with(ending))
    {
        format!("{verb}es")
    } else if lower.ends_with('y')
        && lower.len() > 1
        && !lower[..lower.len() - 1].ends_with(['a', 'e', 'i', 'o', 'u'])
    {
        format!("{}ies", &verb[..verb.len() - 1])
    } else {
        format!("{verb}s")
    };
    if rest.is_empty() {
        conjugated
    } else {
        format!("{conjugated} {rest}")
    }
}

/// What a requirement says the system does, as a `then` clause.
fn outcome(requirement: &str) -> String {
    let plain = with_assumed(requirement);
    let plain = plain.trim().trim_end_matches('.').trim();
    for (opening, subject) in [
        ("System MUST NOT ", "the system does not "),
        ("The system MUST NOT ", "the system does not "),
        ("System MUST ", "the system "),
        ("The system MUST ", "the system "),
        ("System SHOULD ", "the system "),
        ("The system SHOULD ", "the system "),
    ] {
        if let Some(rest) = plain.strip_prefix(opening) {
            let rest = text::truncate(rest, 200);
            return if subject.ends_with("not ") {
                format!("{subject}{rest}")
            } else {
                format!("{subject}{}", third_person(&rest))
            };
        }
    }
    if let Some((who, rest)) = plain.split_once(" MUST be able to ") {
        return format!(
            "{} can {}",
            lower_first(who.trim()),
            text::truncate(rest, 200)
        );
    }
    format!("it holds that {}", lower_first(&text::truncate(plain, 200)))
}

/// A concrete example for a requirement: `(label, "given …, when …, then …")`, from the first
/// acceptance scenario traced to it, else synthesized from its text (the label says which).
pub(crate) fn example(spec: &Spec, trace: &traceability::Trace<'_>) -> (String, String) {
    // The traced scenario sharing the most key words with the requirement (the first on ties).
    let words = text::keywords(&trace.requirement.text);
    let mut best: Option<(usize, String, &crate::speckit::Scenario)> = None;
    for label in &trace.scenarios {
        let Some((story_label, number)) = label.split_once("-AS") else {
            continue;
        };
        let Some(scenario) = number.parse::<usize>().ok().and_then(|number| {
            spec.stories
                .iter()
                .find(|story| story.label() == story_label)?
                .scenarios
                .get(number.checked_sub(1)?)
        }) else {
            continue;
        };
        let overlap = text::keywords(&scenario.text).intersection(&words).count();
        if best.as_ref().is_none_or(|(most, _, _)| overlap > *most) {
            best = Some((overlap, label.clone(), scenario));
        }
    }
    // A scenario that shares less than half the requirement's words gets its outcome added.
    let partial = best
        .as_ref()
        .is_some_and(|(overlap, _, _)| overlap * 2 < words.len());
    let addition = if partial {
        format!("; and {}", outcome(&trace.requirement.text))
    } else {
        String::new()
    };
    let scenario = best.map(|(_, label, scenario)| (label, scenario));
    let vague: Vec<String> = text::vague_words(&without_markers(&trace.requirement.text))
        .iter()
        .map(|word| format!("\"{word}\" taken as {}", concrete(word)))
        .collect();
    let measured = if vague.is_empty() {
        String::new()
    } else {
        format!(" ({})", vague.join("; "))
    };
    match scenario {
        Some((label, scenario)) if scenario.is_complete() => (
            label,
            format!(
                "given {}, when {}, then {}{addition}{measured}",
                lower_first(&scenario.given),
                scenario.when,
                scenario.then.trim_end_matches('.'),
            ),
        ),
        Some((label, scenario)) => (label, format!("{}{addition}{measured}", scenario.text)),
        None => {
            let given = trace
                .stories
                .iter()
                .find_map(|story| story.scenarios.first())
                .filter(|scenario| !scenario.given.is_empty())
                .map_or_else(
                    || "a signed-in user of the feature".to_owned(),
                    |scenario| lower_first(&scenario.given),
                );
            (
                "synthetic".to_owned(),
                format!(
                    "given {given}, when they use what {} describes, then {}{measured}",
                    trace.requirement.id,
                    outcome(&trace.requirement.text)
                ),
            )
        }
    }
}

/// One example per functional requirement: `FR-003 (US1-AS2): given …, when …, then …`.
pub(crate) fn examples(spec: &Spec) -> Vec<String> {
    traceability::trace(spec)
        .iter()
        .filter(|trace| trace.requirement.is_functional())
        .map(|trace| {
            let (label, example) = example(spec, trace);
            format!("{} ({label}): {example}", trace.requirement.id)
        })
        .collect()
}

/// Every assumption to work from: the spec's own, then one per unknown.
pub(crate) fn assumption_items(spec: &Spec) -> Vec<String> {
    spec.assumptions
        .iter()
        .map(|assumption| format!("Stated in spec.md: {}", assumption.text))
        .chain(unknowns(spec).iter().map(Unknown::assumption_item))
        .collect()
}

/// The items of a discovery answer's `## Assumptions` section (a real model's or ours).
pub(crate) fn discovery_assumptions(discovery: &str) -> Vec<String> {
    section_items(discovery, "Assumptions")
}

/// The assumptions a call works from: the discovery step's when it ran, else the feature's own.
pub(crate) fn assumptions_for(call: &Call<'_>) -> Vec<String> {
    let mut items = assumption_items(&call.feature.spec);
    if let Some(discovery) = call.materials().discovery.as_deref() {
        for item in discovery_assumptions(discovery) {
            if !items.contains(&item) {
                items.push(item);
            }
        }
    }
    items
}

pub(crate) fn analyze(call: &Call<'_>) -> String {
    let feature = &call.feature;
    let spec = &feature.spec;
    let unknowns = unknowns(spec);
    let mut out = report::header(call, "Discovery");
    out.push_str(&format!("{}\n\n", summary_line(feature, &unknowns)));

    out.push_str("## Unknowns\n\n");
    if unknowns.is_empty() {
        out.push_str("None: no open questions, vague terms, unmeasurable requirements or stories without scenarios were found.\n\n");
    } else {
        let rows: Vec<Vec<String>> = unknowns
            .iter()
            .enumerate()
            .map(|(index, unknown)| {
                vec![
                    format!("U{}", index + 1),
                    unknown.kind.as_str().to_owned(),
                    unknown.what.clone(),
                    unknown.place.clone(),
                    unknown.affects.clone(),
                ]
            })
            .collect();
        markdown::table(
            &mut out,
            &["#", "Kind", "Unknown", "Where", "Affects"],
            &rows,
        );
        out.push('\n');
    }

    out.push_str("## Assumptions\n\n");
    out.push_str("Work from these until the person answers the questions below; say in your output which ones you relied on.\n\n");
    let mut items: Vec<String> = spec
        .assumptions
        .iter()
        .map(|assumption| format!("Stated in spec.md: {}", assumption.text))
        .collect();
    items.extend(unknowns.iter().map(Unknown::assumption_item));
    out.push_str(&report::bullets(
        &items,
        "- None needed: the spec states everything the agents need.",
    ));

    out.push_str("## Questions for the person\n\n");
    if unknowns.is_empty() {
        out.push_str("None.\n\n");
    } else {
        for (index, unknown) in unknowns.iter().enumerate() {
            out.push_str(&format!(
                "{}. {} (U{})\n",
                index + 1,
                unknown.question,
                index + 1
            ));
        }
        out.push('\n');
    }
    out.push_str(&report::reading_notes(feature));
    let mut confidence = Confidence::for_feature(feature);
    let others = unknowns
        .iter()
        .filter(|unknown| unknown.kind != Kind::OpenQuestion)
        .count();
    confidence.subtract(
        (0.01 * others as f64).min(0.20),
        format!("{others} unknown(s) besides the open questions"),
    );
    out.push_str(&confidence.render());
    out
}

fn summary_line(feature: &Feature, unknowns: &[Unknown]) -> String {
    let count = |kind: Kind| {
        unknowns
            .iter()
            .filter(|unknown| unknown.kind == kind)
            .count()
    };
    format!(
        "{} unknown(s): {} open question(s), {} vague term(s), {} requirement(s) or criteria without a measure, {} story(ies) without scenarios{}; {} stated assumption(s) in {}.",
        unknowns.len(),
        count(Kind::OpenQuestion),
        count(Kind::VagueTerm),
        count(Kind::NotMeasurable),
        count(Kind::NoScenarios),
        if count(Kind::NoSuccessCriteria) > 0 {
            ", no success criteria"
        } else {
            ""
        },
        feature.spec.assumptions.len(),
        if feature.has_spec {
            "spec.md"
        } else {
            "the inputs (no spec.md)"
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../../examples/specs/001-team-photo-albums/spec.md");

    const UNCERTAIN: &str = "# Feature Specification: Smart Inbox\n\n## User Scenarios\n\n\
        ### User Story 1 - A fast inbox (Priority: P1)\n\nA user wants a robust inbox view.\n\n\
        ## Requirements\n\n\
        - **FR-001**: System MUST sort messages in a fast and intuitive way [NEEDS CLARIFICATION: sorting rule 1 not specified].\n\
        - **FR-002**: System MUST notify users via [NEEDS CLARIFICATION: channel - in-app only, email, or both?].\n\
        - **FR-003**: System MUST load the inbox in under 2 seconds, even when it is fast.\n\
        - **FR-004**: System MUST archive old messages.\n\n\
        ## Assumptions\n\n- The engine is experimental; a spike will evaluate it.\n";

    #[test]
    fn markers_and_vague_words_become_unknowns_with_assumptions() {
        let spec = Spec::parse(UNCERTAIN);
        let unknowns = unknowns(&spec);
        let questions: Vec<&Unknown> = unknowns
            .iter()
            .filter(|unknown| unknown.kind == Kind::OpenQuestion)
            .collect();
        assert_eq!(questions.len(), 2);
        assert_eq!(questions[0].affects, "FR-001");
        assert!(questions[0].assumption.contains("newest first"));
        assert!(
            questions[1].assumption.starts_with("in-app only"),
            "{}",
            questions[1].assumption
        );
        let fast = unknowns
            .iter()
            .find(|unknown| unknown.what.contains("\"fast\""))
            .expect("fast is vague");
        // FR-003 states a number: its "fast" is measured already; the marker's "1" is not.
        assert_eq!(fast.place, "FR-001, US1");
        assert!(fast.assumption.contains("p95 under 2 s"));
        assert!(
            unknowns
                .iter()
                .any(|unknown| unknown.what.contains("robust"))
        );
        assert!(
            unknowns
                .iter()
                .any(|unknown| unknown.kind == Kind::NoScenarios && unknown.affects == "US1")
        );
        assert!(
            unknowns
                .iter()
                .any(|unknown| unknown.kind == Kind::NoSuccessCriteria)
        );
        // FR-004 has no number and no scenario; FR-002's open question already stands for it.
        let unmeasured: Vec<&str> = unknowns
            .iter()
            .filter(|unknown| unknown.kind == Kind::NotMeasurable)
            .map(|unknown| unknown.affects.as_str())
            .collect();
        assert_eq!(unmeasured, vec!["FR-004"]);
        let fr_004 = unknowns
            .iter()
            .find(|unknown| unknown.affects == "FR-004")
            .expect("FR-004");
        assert!(
            fr_004
                .assumption
                .contains("then the system archives old messages"),
            "{}",
            fr_004.assumption
        );
        let items = assumption_items(&spec);
        assert!(items[0].starts_with("Stated in spec.md: The engine is experimental"));
        assert!(items.iter().skip(1).all(|item| item.contains("Assume: ")));
    }

    #[test]
    fn the_example_has_two_open_questions_and_measured_criteria() {
        let spec = Spec::parse(EXAMPLE);
        let unknowns = unknowns(&spec);
        assert_eq!(
            unknowns
                .iter()
                .filter(|unknown| unknown.kind == Kind::OpenQuestion)
                .count(),
            2
        );
        assert!(
            unknowns[0].assumption.starts_with("in-app only"),
            "{:?}",
            unknowns[0]
        );
        assert!(unknowns[1].assumption.contains("30 days"));
        assert!(
            !unknowns
                .iter()
                .any(|unknown| unknown.kind == Kind::NoSuccessCriteria)
        );
        let examples = examples(&spec);
        assert_eq!(examples.len(), 11);
        assert!(examples[0].starts_with("FR-001 ("), "{}", examples[0]);
        assert!(examples.iter().all(|example| example.contains("given ")
            && example.contains(", when ")
            && example.contains(", then ")));
    }

    #[test]
    fn synthetic_examples_read_as_sentences() {
        assert_eq!(
            outcome("System MUST keep photos for [NEEDS CLARIFICATION: retention period?]."),
            "the system keeps photos for 30 days, as a setting (assumed)"
        );
        assert_eq!(
            outcome("System MUST send alerts via [NEEDS CLARIFICATION: channel - push, or sms?]"),
            "the system sends alerts via push (assumed)"
        );
        assert_eq!(
            outcome("Team members MUST be able to post comments"),
            "team members can post comments"
        );
        assert_eq!(third_person("notify users"), "notifies users");
        assert_eq!(third_person("stay put"), "stays put");
        assert_eq!(
            without_markers("a [x] b [NEEDS CLARIFICATION: 1] c [NEEDS CLARIFICATION"),
            "a [x] b  c "
        );
    }
}
