//! One stage of a run as a workflow: run the stage's activity, hold the product at the gate,
//! take one decision, return. Deterministic: no clock, no randomness, no I/O here — the
//! activity does the work and the update carries the decision.

use serde::{Deserialize, Serialize};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{SyncWorkflowContext, WorkflowContext, WorkflowContextView, WorkflowResult};

use crate::activity_options::heartbeating;
use crate::gate::{self, DecisionReply, GateDecision, GatePhase, GateView};
use crate::stage_activity::{StageActivities, StageTask};

/// Attempts of a stage's activity: each lost worker costs one; a stage that fails this often
/// (it cannot even report, say) ends the workflow instead of being retried for ever.
const MAX_STAGE_ATTEMPTS: u32 = 5;

/// How a stage's workflow ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageOutcome {
    pub at_gate: bool,
    pub product: String,
    pub decision: Option<String>,
}

#[workflow]
#[derive(Default)]
pub struct StageWorkflow {
    view: GateView,
}

#[workflow_methods]
impl StageWorkflow {
    #[run]
    pub async fn run(
        context: &mut WorkflowContext<Self>,
        task: StageTask,
    ) -> WorkflowResult<StageOutcome> {
        let options = heartbeating(task.limit_ms, MAX_STAGE_ATTEMPTS);
        let answer = match context
            .execute_activity(StageActivities::run_stage, task, options)
            .await
        {
            Ok(answer) => answer,
            Err(error) => {
                // Closed with the reason, so that whoever waits for the gate stops waiting.
                context.state_mut(|state| {
                    state.view.phase = GatePhase::Closed;
                    state.view.failure = Some(error.to_string());
                });
                return Ok(StageOutcome {
                    at_gate: false,
                    product: String::new(),
                    decision: None,
                });
            }
        };
        let at_gate = answer.at_gate;
        context.state_mut(|state| {
            state.view.product = Some(answer.product.clone());
            state.view.round = 1;
            state.view.phase = if at_gate {
                GatePhase::Waiting
            } else {
                GatePhase::Closed
            };
        });
        if at_gate {
            context
                .wait_condition(|state| state.view.phase == GatePhase::Closed)
                .await?;
        }
        Ok(StageOutcome {
            at_gate,
            product: answer.product,
            decision: context.state(|state| state.view.decision.clone()),
        })
    }

    #[update]
    pub fn decide(
        &mut self,
        _context: &mut SyncWorkflowContext<Self>,
        decision: GateDecision,
    ) -> DecisionReply {
        gate::decide(&mut self.view, decision)
    }

    #[query]
    pub fn view(&self, _context: &WorkflowContextView) -> GateView {
        self.view.clone()
    }
}
