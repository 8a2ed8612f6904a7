//! Gate decisions as one compare-and-set transaction.
//!
//! [`Store::decide_gate`] reads the gate, asks the run state machine ([`stagegate_run::decide`])
//! for the transition, and — only if it is accepted — records the decision, moves the gate, sets
//! the run's state, records the approval's publication and appends the `gate_decided` event, all
//! in the one `BEGIN IMMEDIATE` transaction that read the gate. Two processes deciding the same
//! gate are serialised by SQLite's write lock: the second reads the first's decision and is
//! refused, and nothing of its request is written.

use stagegate_run::{Gate, Refusal, Request, RunAfter, Transition};

use crate::error::StoreError;
use crate::records::{
    DecisionKind, DecisionRecord, GateRecord, GateState, LineComment, NewPublication, RunState,
};
use crate::store::gates::select_gate;
use crate::store::{Store, now_ms};

/// A decision as a person (or page) asks for it.
#[derive(Debug, Clone)]
pub struct DecisionRequest {
    pub run_id: String,
    pub stage: String,
    pub request: Request,
    /// Whether this stage is the run's last (an approval then completes the run).
    pub stage_is_last: bool,
    pub reason: Option<String>,
    pub note: Option<String>,
    pub diff: Option<String>,
    /// A modification's comments on lines of the artifacts it was shown.
    pub comments: Vec<LineComment>,
    pub decided_by: String,
    pub decided_at_ms: i64,
    /// The `gate_decided` event, appended in the decision's transaction.
    pub event_kind: String,
    pub event_payload: serde_json::Value,
}

/// How a decision request ended.
#[derive(Debug, Clone)]
pub enum GateDecision {
    Accepted(Accepted),
    /// Boxed: the refusal carries the gate and the decision that stands.
    Refused(Box<Refused>),
}

/// An accepted decision, as recorded.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub decision_id: i64,
    /// The gate before the decision.
    pub before: Gate,
    pub transition: Transition,
}

/// A refused decision: why, the gate as it is, and the decision that closed it (if any).
#[derive(Debug, Clone)]
pub struct Refused {
    pub refusal: Refusal,
    pub gate: GateRecord,
    pub decided_by: Option<DecisionRecord>,
}

impl Store {
    /// Decides a gate (see the module docs). `inside` runs under the write lock once the
    /// transition is accepted and before anything is written: for an approval it returns what
    /// to publish (the staged artifacts' hashes, read while no other decision can change them);
    /// for a modification it switches the staged artifacts to the next round. If it fails,
    /// nothing is recorded.
    pub async fn decide_gate(
        &self,
        decision: &DecisionRequest,
        inside: impl FnOnce(&Transition) -> Result<Option<NewPublication>, StoreError>,
    ) -> Result<GateDecision, StoreError> {
        let operation = "deciding a gate";
        let mut transaction = self.begin_write(operation).await?;
        let row = sqlx::query(select_gate!(" WHERE run_id = ? AND stage = ?"))
            .bind(&decision.run_id)
            .bind(&decision.stage)
            .fetch_optional(&mut *transaction)
            .await
            .map_err(|error| self.error(operation, error))?;
        let Some(row) = row else {
            return Err(StoreError::UnknownGate {
                path: self.database_path().to_path_buf(),
                run_id: decision.run_id.clone(),
                stage: decision.stage.clone(),
            });
        };
        let gate = self.gate_from_row(&row)?;
        let before = Gate {
            status: gate.state.into(),
            round: gate.round,
        };
        let transition =
            match stagegate_run::decide(before, decision.request, decision.stage_is_last) {
                Ok(transition) => transition,
                Err(refusal) => {
                    let decided_by = self
                        .final_decision(&mut transaction, &decision.run_id, &decision.stage)
                        .await?;
                    return Ok(GateDecision::Refused(Box::new(Refused {
                        refusal,
                        gate,
                        decided_by,
                    })));
                }
            };
        let publication = inside(&transition)?;

        let record = DecisionRecord {
            id: None,
            run_id: decision.run_id.clone(),
            stage: decision.stage.clone(),
            kind: decision_kind(decision.request.verb),
            reason: decision.reason.clone(),
            note: decision.note.clone(),
            diff: decision.diff.clone(),
            decided_by: decision.decided_by.clone(),
            decided_at_ms: decision.decided_at_ms,
        };
        let decision_id = self.record_decision_in(&mut transaction, &record).await?;
        self.record_line_comments_in(
            &mut transaction,
            decision_id,
            &decision.run_id,
            &decision.stage,
            before.round,
            &decision.comments,
        )
        .await?;

        let state = GateState::from(transition.gate.status);
        let closed_at = state.ne(&GateState::Pending).then(now_ms);
        sqlx::query(
            "UPDATE gates SET state = ?, round = ?, closed_at_ms = ? WHERE run_id = ? AND stage = ?",
        )
        .bind(state.as_str())
        .bind(i64::from(transition.gate.round))
        .bind(closed_at)
        .bind(&decision.run_id)
        .bind(&decision.stage)
        .execute(&mut *transaction)
        .await
        .map_err(|error| self.error(operation, error))?;

        sqlx::query("UPDATE runs SET state = ?, current_stage = ?, updated_at_ms = ? WHERE id = ?")
            .bind(run_state(transition.run).as_str())
            .bind(&decision.stage)
            .bind(now_ms())
            .bind(&decision.run_id)
            .execute(&mut *transaction)
            .await
            .map_err(|error| self.error(operation, error))?;

        if let Some(publication) = publication.filter(|_| transition.publish) {
            sqlx::query(
                "INSERT INTO publications (run_id, stage, decision_id, feature_dir, \
                 artifacts_json, inputs_json, state, decided_at_ms) \
                 VALUES (?, ?, ?, ?, ?, ?, 'pending', ?)",
            )
            .bind(&decision.run_id)
            .bind(&decision.stage)
            .bind(decision_id)
            .bind(&publication.feature_dir)
            .bind(self.to_json("published artifacts", &publication.artifacts)?)
            .bind(self.to_json("approved inputs", &publication.inputs)?)
            .bind(decision.decided_at_ms)
            .execute(&mut *transaction)
            .await
            .map_err(|error| self.error(operation, error))?;
        }

        self.append_event_in(
            &mut transaction,
            &decision.run_id,
            &decision.event_kind,
            &decision.event_payload,
        )
        .await?;

        transaction
            .commit()
            .await
            .map_err(|error| self.error(operation, error))?;
        Ok(GateDecision::Accepted(Accepted {
            decision_id,
            before,
            transition,
        }))
    }

    /// Runs `repair` with the round the gate of `(run_id, stage)` has recorded, while holding
    /// the database's write lock so that no decision moves the round meanwhile (used to put the
    /// staged artifacts back in line after a crash). Writes nothing; `None` if there is no gate.
    pub async fn with_gate_round_locked<T>(
        &self,
        run_id: &str,
        stage: &str,
        repair: impl FnOnce(u32) -> T,
    ) -> Result<Option<T>, StoreError> {
        let operation = "checking a gate's round";
        let mut transaction = self.begin_write(operation).await?;
        let round: Option<i64> =
            sqlx::query_scalar("SELECT round FROM gates WHERE run_id = ? AND stage = ?")
                .bind(run_id)
                .bind(stage)
                .fetch_optional(&mut *transaction)
                .await
                .map_err(|error| self.error(operation, error))?;
        let result = round.map(|round| repair(u32::try_from(round).unwrap_or(u32::MAX)));
        transaction
            .rollback()
            .await
            .map_err(|error| self.error(operation, error))?;
        Ok(result)
    }

    /// The decision that closed a gate (approve, reject or supersede), if it has one.
    async fn final_decision(
        &self,
        connection: &mut sqlx::SqliteConnection,
        run_id: &str,
        stage: &str,
    ) -> Result<Option<DecisionRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, run_id, stage, kind, reason, note, diff, decided_by, decided_at_ms \
             FROM decisions WHERE run_id = ? AND stage = ? AND kind != 'modify' \
             ORDER BY id LIMIT 1",
        )
        .bind(run_id)
        .bind(stage)
        .fetch_optional(connection)
        .await
        .map_err(|error| self.error("reading a decision", error))?;
        row.map(|row| self.decision_from_row(&row)).transpose()
    }
}

fn decision_kind(verb: stagegate_run::Verb) -> DecisionKind {
    match verb {
        stagegate_run::Verb::Approve => DecisionKind::Approve,
        stagegate_run::Verb::Reject => DecisionKind::Reject,
        stagegate_run::Verb::Modify => DecisionKind::Modify,
        stagegate_run::Verb::Supersede => DecisionKind::Supersede,
    }
}

fn run_state(after: RunAfter) -> RunState {
    match after {
        RunAfter::Completed => RunState::Completed,
        // A process that goes on with the next stage sets `running` when it starts it.
        RunAfter::Continues => RunState::Paused,
        RunAfter::Rejected => RunState::Rejected,
        RunAfter::AwaitsDecision => RunState::AwaitingDecision,
        RunAfter::Superseded => RunState::Superseded,
    }
}
