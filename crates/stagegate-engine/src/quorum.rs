//! The quorum: how many of a stage's agents must succeed, counted as outcomes arrive.
//!
//! `needed = ceil(min_success_ratio × agents)`, at least 1 when there are agents, and every
//! agent marked `required` must be among the successes ("3 of 4, Requirements mandatory").
//! The count is pure bookkeeping so that the stage loop's decision is a function of the
//! outcomes so far — what makes resume a replay.

use std::collections::BTreeSet;

/// What a newly recorded outcome changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuorumChange {
    /// The quorum now holds (reported once).
    Met,
    /// The quorum can no longer hold with the outcomes so far (reported once).
    Lost(String),
}

#[derive(Debug, Clone)]
pub struct Quorum {
    total: usize,
    needed: usize,
    required: BTreeSet<String>,
    succeeded: BTreeSet<String>,
    failed: BTreeSet<String>,
    reported_met: bool,
    reported_lost: bool,
}

impl Quorum {
    pub fn new(total: usize, min_success_ratio: f64, required: BTreeSet<String>) -> Self {
        Quorum {
            total,
            needed: needed_successes(total, min_success_ratio),
            required,
            succeeded: BTreeSet::new(),
            failed: BTreeSet::new(),
            reported_met: false,
            reported_lost: false,
        }
    }

    pub fn needed(&self) -> usize {
        self.needed
    }

    pub fn succeeded(&self) -> usize {
        self.succeeded.len()
    }

    /// Records an agent's final outcome (a later success replaces an earlier failure, as in
    /// the sequential pass) and says whether that changed the verdict.
    pub fn record(&mut self, agent: &str, success: bool) -> Option<QuorumChange> {
        if success {
            self.failed.remove(agent);
            self.succeeded.insert(agent.to_owned());
        } else {
            self.succeeded.remove(agent);
            self.failed.insert(agent.to_owned());
        }
        if self.is_met() && !self.reported_met {
            self.reported_met = true;
            return Some(QuorumChange::Met);
        }
        if let Some(reason) = self.lost_reason()
            && !self.reported_lost
            && !self.reported_met
        {
            self.reported_lost = true;
            return Some(QuorumChange::Lost(reason));
        }
        None
    }

    /// Enough successes, and every required agent among them.
    pub fn is_met(&self) -> bool {
        self.succeeded.len() >= self.needed && self.required.is_subset(&self.succeeded)
    }

    /// Why the quorum cannot hold any more, if it cannot.
    pub fn lost_reason(&self) -> Option<String> {
        if let Some(agent) = self
            .required
            .iter()
            .find(|agent| self.failed.contains(*agent))
        {
            return Some(format!("required agent {agent} failed"));
        }
        let still_possible = self.total - self.failed.len();
        (still_possible < self.needed).then(|| {
            format!(
                "{} of {} agents failed; {} of {} must succeed",
                self.failed.len(),
                self.total,
                self.needed,
                self.total
            )
        })
    }
}

/// `ceil(ratio × total)`, at least 1 when there is any agent, never more than `total`.
pub fn needed_successes(total: usize, min_success_ratio: f64) -> usize {
    if total == 0 {
        return 0;
    }
    let ratio = min_success_ratio.clamp(0.0, 1.0);
    // The small epsilon keeps 0.75 × 4 at 3 despite floating-point rounding.
    let exact = ratio * total as f64 - 1e-9;
    (exact.ceil().max(1.0) as usize).min(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quorum(total: usize, ratio: f64, required: &[&str]) -> Quorum {
        Quorum::new(
            total,
            ratio,
            required.iter().map(|agent| (*agent).to_owned()).collect(),
        )
    }

    #[test]
    fn needed_successes_follows_the_ratio() {
        assert_eq!(needed_successes(4, 0.75), 3);
        assert_eq!(needed_successes(4, 1.0), 4);
        assert_eq!(needed_successes(4, 0.5), 2);
        assert_eq!(needed_successes(3, 0.75), 3);
        assert_eq!(needed_successes(5, 0.75), 4);
        assert_eq!(needed_successes(4, 0.0), 1);
        assert_eq!(needed_successes(0, 0.75), 0);
        assert_eq!(needed_successes(1000, 0.75), 750);
    }

    #[test]
    fn three_of_four_meets_the_seed_quorum() {
        let mut quorum = quorum(4, 0.75, &[]);
        assert_eq!(quorum.record("a", true), None);
        assert_eq!(quorum.record("b", false), None);
        assert_eq!(quorum.record("c", true), None);
        assert_eq!(quorum.record("d", true), Some(QuorumChange::Met));
        assert!(quorum.is_met());
    }

    #[test]
    fn two_failures_of_four_lose_it_as_soon_as_they_arrive() {
        let mut quorum = quorum(4, 0.75, &[]);
        assert_eq!(quorum.record("a", false), None);
        assert!(matches!(
            quorum.record("b", false),
            Some(QuorumChange::Lost(_))
        ));
        assert_eq!(quorum.record("c", true), None, "lost is reported once");
        assert!(!quorum.is_met());
    }

    #[test]
    fn a_required_agent_must_succeed() {
        let mut quorum = quorum(4, 0.75, &["requirements-analyst"]);
        let change = quorum.record("requirements-analyst", false);
        assert_eq!(
            change,
            Some(QuorumChange::Lost(
                "required agent requirements-analyst failed".into()
            ))
        );
        quorum.record("b", true);
        quorum.record("c", true);
        quorum.record("d", true);
        assert!(!quorum.is_met());
        // The sequential pass may still rescue it.
        assert_eq!(
            quorum.record("requirements-analyst", true),
            Some(QuorumChange::Met)
        );
    }
}
