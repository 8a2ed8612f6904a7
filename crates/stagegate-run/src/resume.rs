//! Where a run picks up again: after the last approved gate, at a pending one, or nowhere (it was
//! rejected, or it is complete).
//!
//! The finished work inside a stage is not decided here: the host replays the run's log and
//! answers every call that already finished from it, so a resumed stage calls no agent twice.

use crate::gate::GateStatus;

/// What `resume` does, given the status of each stage's gate in order (`None`: the stage never
/// reached its gate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumePoint {
    /// Run the stages from this index on (the stage there never reached its gate).
    RunFrom(usize),
    /// The gate of the stage at this index waits for a decision: ask again.
    AskAt(usize),
    /// The run was rejected at the gate of the stage at this index.
    RejectedAt(usize),
    /// A newer run superseded the gate of the stage at this index.
    SupersededAt(usize),
    /// Every gate is approved.
    Complete,
}

/// The first stage whose gate is not approved decides where the run stands.
pub fn resume_point(gates: &[Option<GateStatus>]) -> ResumePoint {
    for (index, gate) in gates.iter().enumerate() {
        match gate {
            Some(GateStatus::Approved) => continue,
            Some(GateStatus::Rejected) => return ResumePoint::RejectedAt(index),
            Some(GateStatus::Superseded) => return ResumePoint::SupersededAt(index),
            Some(GateStatus::Pending) => return ResumePoint::AskAt(index),
            None => return ResumePoint::RunFrom(index),
        }
    }
    ResumePoint::Complete
}

#[cfg(test)]
mod tests {
    use super::*;

    use GateStatus::{Approved, Pending, Rejected};

    #[test]
    fn a_run_resumes_after_its_last_approved_gate() {
        assert_eq!(resume_point(&[None, None]), ResumePoint::RunFrom(0));
        assert_eq!(
            resume_point(&[Some(Approved), None]),
            ResumePoint::RunFrom(1)
        );
        assert_eq!(
            resume_point(&[Some(Approved), Some(Pending), None]),
            ResumePoint::AskAt(1)
        );
        assert_eq!(
            resume_point(&[Some(Rejected), None]),
            ResumePoint::RejectedAt(0)
        );
        assert_eq!(
            resume_point(&[Some(Approved), Some(Approved)]),
            ResumePoint::Complete
        );
        assert_eq!(resume_point(&[]), ResumePoint::Complete);
    }
}
