//! A decision on a cluster run's gate goes to its workflow first: the workflow takes one
//! decision per gate, so two deciders on two machines cannot both win. The store's own
//! compare-and-set follows on the user's machine.

use stagegate_cluster::{ClusterClient, DecisionReply, GateDecision, NEXT_ROUND};
use stagegate_run::{GateStatus, Verb};

use super::{ClusterMarker, cluster_error};
use crate::error::AppError;
use crate::gate_decision::Place;

/// Sends `verb` to the workflow of `place`'s gate if the run is a cluster run. Accepted, or
/// already decided the same way (a decider that crashed between the workflow and the store):
/// the decision goes on to the store. Otherwise it is refused like a decision the store refuses.
pub async fn decide_remotely(place: &Place<'_>, verb: Verb) -> Result<(), AppError> {
    let run_dir = place.store.run_dir(&place.run.id);
    let Some(marker) = ClusterMarker::read(run_dir.path())? else {
        return Ok(());
    };
    // A modification reworks the artifacts on this machine; on the cluster it moves the
    // workflow's gate to its next round, still open: only the final decision closes it.
    let verb_text = match verb {
        Verb::Modify => NEXT_ROUND,
        Verb::Approve => "approve",
        Verb::Reject => "reject",
        Verb::Supersede => "supersede",
    };
    let client = ClusterClient::connect(&marker.address())
        .await
        .map_err(cluster_error)?;
    let decision = GateDecision {
        verb: verb_text.to_owned(),
        seen_round: None,
    };
    match client
        .decide(&place.run.id, place.stage, decision)
        .await
        .map_err(cluster_error)?
    {
        DecisionReply::Accepted => Ok(()),
        DecisionReply::Refused {
            decided: Some(decided),
            ..
        } if decided == verb_text => Ok(()),
        DecisionReply::Refused { decided, reason } => Err(AppError::AlreadyDecided {
            status: decided.as_deref().and_then(status_of),
            message: format!(
                "run {}'s {} gate on the cluster refused the decision: {reason}\nhint: `stagegate status {}` shows how it stands",
                place.run.id, place.stage, place.run.id
            ),
        }),
    }
}

fn status_of(verb: &str) -> Option<GateStatus> {
    match verb {
        "approve" => Some(GateStatus::Approved),
        "reject" => Some(GateStatus::Rejected),
        "supersede" => Some(GateStatus::Superseded),
        _ => None,
    }
}
