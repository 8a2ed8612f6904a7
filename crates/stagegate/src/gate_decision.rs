//! The one way a gate is decided, whoever decides: the terminal prompt, `stagegate approve |
//! reject | modify`, or the dashboard.
//!
//! A decision is a transition of the run state machine (`stagegate_run::decide`), applied by
//! the store in one compare-and-set transaction ([`Store::decide_gate`]): the gate is still in
//! the state the decider saw → the decision, the gate, the run's state, the approval's
//! publication and the `gate_decided` event are recorded together; otherwise nothing is, and the
//! decider gets [`AppError::AlreadyDecided`] (exit 6) naming who decided first. The effects — the
//! publication of an approval — run after the commit, through [`crate::effects`], and are
//! finished by the next command if a crash cuts them short.

use stagegate_engine::event::{DecisionKind, Event, now_ms};
use stagegate_run::{GateStatus, Refusal, Request, Transition, Verb};
use stagegate_settings::Settings;
use stagegate_store::{
    DecisionRequest, GateDecision, NewPublication, Refused, RunRecord, Store, StoreError,
    content_hash, file_hash,
};

use crate::effects::{self, Published};
use crate::error::AppError;
use crate::workspace::Feature;

/// Who decided, for the audit trail: git's `user.name <user.email>` as the repository sees it
/// (what the person signs their commits with), else `$USER`, else `unknown`.
pub fn decided_by() -> String {
    GIT_IDENTITY
        .get_or_init(git_identity)
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("USERNAME").ok())
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Git's identity, asked once per process.
static GIT_IDENTITY: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

/// Starts asking git for the identity on a thread of its own, for a command that will likely
/// decide (a run supersedes older gates when it reaches its own): the `git` process then runs
/// beside the stage instead of on the way to its gate.
pub fn prefetch_identity() {
    let Ok(mut prefetching) = PREFETCHING.lock() else {
        return;
    };
    // Asked once per process: a later call finds it known or on its way.
    if prefetching.is_none() && GIT_IDENTITY.get().is_none() {
        *prefetching = Some(std::thread::spawn(|| {
            GIT_IDENTITY.get_or_init(git_identity);
        }));
    }
}

/// The thread [`prefetch_identity`] started, until [`finish_prefetch`] waits for it.
static PREFETCHING: std::sync::Mutex<Option<std::thread::JoinHandle<()>>> =
    std::sync::Mutex::new(None);

/// Waits for a prefetch still asking git, so that no `git` process outlives the command.
pub fn finish_prefetch() {
    let asking = PREFETCHING.lock().ok().and_then(|mut asking| asking.take());
    if let Some(asking) = asking {
        let _ = asking.join();
    }
}

/// Git's `user.name <user.email>`, read in one `git config` call (a supersede by every new
/// run asks for it, and a second process was a tenth of a cached re-run).
fn git_identity() -> Option<String> {
    let output = std::process::Command::new("git")
        .args(["config", "--get-regexp", r"^user\.(name|email)$"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let listed = String::from_utf8_lossy(&output.stdout);
    identity_from_config(&listed)
}

/// `name <email>` (or the name alone) from `git config --get-regexp` lines; the last value of
/// a key wins, as it does for `git config --get`.
fn identity_from_config(listed: &str) -> Option<String> {
    let value_of = |wanted: &str| {
        listed
            .lines()
            .filter_map(|line| line.split_once(' '))
            .filter(|(key, _)| *key == wanted)
            .map(|(_, value)| value.trim())
            .rfind(|value| !value.is_empty())
    };
    let name = value_of("user.name")?;
    Some(match value_of("user.email") {
        Some(email) => format!("{name} <{email}>"),
        None => name.to_owned(),
    })
}

/// What a person asks of a gate, with what they said.
#[derive(Debug, Clone, Default)]
pub struct Ask {
    /// The round of staged artifacts the person was shown (`None`: whatever is staged now).
    pub seen_round: Option<u32>,
    pub reason: Option<String>,
    pub note: Option<String>,
    /// A modification's change, as a unified diff.
    pub diff: Option<String>,
    /// A modification's comments on lines of the artifacts it was shown.
    pub comments: Vec<stagegate_store::LineComment>,
}

/// An accepted decision.
#[derive(Debug)]
pub struct Decided {
    pub transition: Transition,
    /// The `gate_decided` event as recorded, for the live subscribers to show.
    pub event: Event,
    /// What an approval published (empty otherwise).
    pub published: Vec<Published>,
}

/// Everything a decision needs to know about where it happens.
pub struct Place<'a> {
    pub store: &'a Store,
    pub settings: &'a Settings,
    pub run: &'a RunRecord,
    pub feature: &'a Feature,
    pub stage: &'a str,
}

/// Decides the gate of `place.stage`: see the module docs.
///
/// A modification expects its next round to be prepared already (`staged.next/`, see
/// [`stagegate_store::RunDir::begin_next_round`]); it becomes the staged round in the same
/// transaction.
pub async fn decide(place: &Place<'_>, verb: Verb, ask: Ask) -> Result<Decided, AppError> {
    if verb == Verb::Reject
        && ask
            .reason
            .as_deref()
            .is_none_or(|reason| reason.trim().is_empty())
    {
        return Err(AppError::usage(
            "a rejection needs a reason\nhint: stagegate reject --reason \"what is wrong\"",
        ));
    }
    remote_decision(place, verb).await?;
    let at_ms = now_ms();
    let event = Event::GateDecided {
        run_id: place.run.id.clone(),
        stage: place.stage.to_owned(),
        decision: event_kind(verb),
        reason: ask.reason.clone(),
        note: ask.note.clone(),
        diff: ask.diff.clone(),
        at_ms,
    };
    let request = DecisionRequest {
        run_id: place.run.id.clone(),
        stage: place.stage.to_owned(),
        request: Request {
            verb,
            seen_round: ask.seen_round,
        },
        stage_is_last: place.run.stages.last().map(String::as_str) == Some(place.stage),
        reason: ask.reason,
        note: ask.note,
        diff: ask.diff,
        comments: ask.comments,
        decided_by: decided_by(),
        decided_at_ms: at_ms,
        event_kind: event.kind().to_owned(),
        event_payload: serde_json::to_value(&event)
            .map_err(|error| AppError::internal(error.to_string()))?,
    };
    let decision = place
        .store
        .decide_gate(&request, |transition| inside_decision(place, transition))
        .await?;
    let transition = match decision {
        GateDecision::Accepted(accepted) => accepted.transition,
        GateDecision::Refused(refused) => return Err(refusal_error(place, verb, &refused)),
    };
    let published = if transition.publish {
        effects::finish_publication(place.store, place.feature, &place.run.id, place.stage).await?
    } else {
        Vec::new()
    };
    Ok(Decided {
        transition,
        event,
        published,
    })
}

/// A cluster run's gate is decided by its workflow first (see `crate::cluster`).
#[cfg(feature = "cluster")]
async fn remote_decision(place: &Place<'_>, verb: Verb) -> Result<(), AppError> {
    crate::cluster::decide_remotely(place, verb).await
}

#[cfg(not(feature = "cluster"))]
async fn remote_decision(place: &Place<'_>, _verb: Verb) -> Result<(), AppError> {
    let run_dir = place.store.run_dir(&place.run.id);
    match crate::cluster::ClusterMarker::read(run_dir.path())? {
        Some(_) => Err(crate::cluster::not_built()),
        None => Ok(()),
    }
}

/// Closes every gate of `stage` on `feature` still waiting for a decision, but `except_run`'s,
/// as superseded (nothing of them is published): one pending gate per feature and stage, the
/// newest product (a newer run's, or the existing artifacts a person adopted). A gate decided
/// meanwhile by someone else is left as they decided it.
pub async fn supersede_pending(
    store: &Store,
    settings: &Settings,
    feature: &Feature,
    stage: &str,
    except_run: Option<&str>,
    reason: &str,
) -> Result<(), AppError> {
    for gate in store.pending_gates().await? {
        if gate.stage != stage || Some(gate.run_id.as_str()) == except_run {
            continue;
        }
        let Some(older) = store.run(&gate.run_id).await? else {
            continue;
        };
        if older.feature_dir != feature.key {
            continue;
        }
        let place = Place {
            store,
            settings,
            run: &older,
            feature,
            stage,
        };
        let ask = Ask {
            reason: Some(reason.to_owned()),
            ..Ask::default()
        };
        match decide(&place, Verb::Supersede, ask).await {
            Ok(_) => eprintln!(
                "note: run {}'s {stage} gate was still waiting for a decision; it is superseded ({reason}), and nothing of it was published",
                older.id
            ),
            Err(AppError::AlreadyDecided { .. }) => {}
            Err(other) => return Err(other),
        }
    }
    Ok(())
}

/// The file-system part of a decision, under its lock: an approval binds itself to the bytes
/// staged now (and to the stage's inputs as they are); a modification makes its prepared round
/// the staged one.
fn inside_decision(
    place: &Place<'_>,
    transition: &Transition,
) -> Result<Option<NewPublication>, StoreError> {
    let run_dir = place.store.run_dir(&place.run.id);
    if transition.publish {
        let staged = run_dir
            .staged_artifacts(place.stage)
            .map_err(|source| effect_error("reading the staged artifacts", source))?;
        if staged.is_empty() {
            return Err(effect_error(
                "reading the staged artifacts",
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!(
                        "nothing is staged in {}; the run directory may have been deleted",
                        run_dir.staged_dir(place.stage).display()
                    ),
                ),
            ));
        }
        let mut artifacts = Vec::new();
        for (name, path) in staged {
            let bytes = std::fs::read(&path)
                .map_err(|source| effect_error(&format!("reading {}", path.display()), source))?;
            artifacts.push((name, content_hash(&bytes)));
        }
        let inputs = place
            .settings
            .stages
            .get(place.stage)
            .map(|stage| stage.inputs.clone())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|input| {
                let hash = file_hash(&place.feature.dir.join(&input)).ok()?;
                Some((input, hash))
            })
            .collect();
        return Ok(Some(NewPublication {
            feature_dir: place.feature.key.clone(),
            artifacts,
            inputs,
        }));
    }
    if transition.gate.status == GateStatus::Pending {
        let current = transition.gate.round.saturating_sub(1);
        run_dir
            .promote_next_round(place.stage, current)
            .map_err(|source| effect_error("switching to the modified artifacts", source))?;
    }
    Ok(None)
}

fn effect_error(what: &str, source: std::io::Error) -> StoreError {
    StoreError::DecisionEffect {
        what: what.to_owned(),
        source,
    }
}

/// The loser's message: who decided first, how, when and why.
fn refusal_error(place: &Place<'_>, verb: Verb, refused: &Refused) -> AppError {
    let run = &place.run.id;
    let stage = place.stage;
    match refused.refusal {
        Refusal::AlreadyDecided { status } => {
            let by = refused
                .decided_by
                .as_ref()
                .map_or(String::new(), |decision| {
                    let why = decision
                        .reason
                        .as_deref()
                        .or(decision.note.as_deref())
                        .map(|text| format!(": {}", first_line(text)))
                        .unwrap_or_default();
                    format!(" by {}{why}", decision.decided_by)
                });
            AppError::AlreadyDecided {
                status: Some(status),
                message: format!(
                    "cannot {} the {stage} gate of run {run}: it was already {status}{by}; nothing was changed\nhint: `stagegate status {run}` shows the decision",
                    verb.as_str()
                ),
            }
        }
        Refusal::Superseded { seen, current } => AppError::AlreadyDecided {
            status: None,
            message: format!(
                "cannot {} the {stage} gate of run {run}: its artifacts were modified since you saw them (round {seen}, now round {current}); nothing was changed\nhint: look at the new round (`stagegate status {run}`) and decide again",
                verb.as_str()
            ),
        },
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

fn event_kind(verb: Verb) -> DecisionKind {
    match verb {
        Verb::Approve => DecisionKind::Approve,
        Verb::Reject => DecisionKind::Reject,
        Verb::Modify => DecisionKind::Modify,
        Verb::Supersede => DecisionKind::Supersede,
    }
}

/// A unified diff of one artifact's change, empty when nothing changed.
pub fn artifact_diff(name: &str, before: &str, after: &str) -> String {
    if before == after {
        return String::new();
    }
    similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .header(&format!("a/{name}"), &format!("b/{name}"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::identity_from_config;

    #[test]
    fn the_identity_is_the_last_name_and_email_git_lists() {
        let listed = "user.name Old Name\nuser.email a@example.org\nuser.name Ada Lovelace\n";
        assert_eq!(
            identity_from_config(listed).as_deref(),
            Some("Ada Lovelace <a@example.org>")
        );
        assert_eq!(
            identity_from_config("user.name Ada\n").as_deref(),
            Some("Ada")
        );
        assert_eq!(identity_from_config("user.email a@example.org\n"), None);
        assert_eq!(identity_from_config(""), None);
    }
}
