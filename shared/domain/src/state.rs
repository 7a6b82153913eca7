//! The incident state machine (design §1). Transitions are checked here; the store makes each one a
//! conditional write so that a redelivered message or a second worker can never move an incident twice.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why an incident was closed without any work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IgnoreReason {
    /// The same alert was already being handled.
    Duplicate,
    /// The team has used its alerts for the month.
    QuotaExceeded,
    /// The event was caused by DreamOps itself (our own note or resolve echoed back).
    OwnEcho,
    /// A human resolved the page before the agent acted.
    ResolvedByHuman,
    /// The alert source reported the alerts resolved (Alertmanager `status: resolved`) before the agent acted.
    ResolvedAtSource,
}

impl IgnoreReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Duplicate => "duplicate",
            Self::QuotaExceeded => "quota_exceeded",
            Self::OwnEcho => "own_echo",
            Self::ResolvedByHuman => "resolved_by_human",
            Self::ResolvedAtSource => "resolved_at_source",
        }
    }
}

/// Where an incident stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "state", content = "reason", rename_all = "snake_case")]
pub enum State {
    Received,
    Analyzing,
    AwaitingApproval,
    Executing,
    Verifying,
    /// Fixed and verified, or nothing needed doing.
    Resolved,
    /// Handed to a human with the diagnosis; nothing was changed, or the change could not be undone.
    Escalated,
    /// The action did not heal, was undone, and the incident was escalated.
    RolledBack,
    /// The agent could not complete its own work (an action errored); a human has been told.
    Failed,
    Ignored(IgnoreReason),
}

/// A transition the state machine does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("transition {from} -> {to} is not allowed")]
pub struct TransitionError {
    pub from: State,
    pub to: State,
}

impl State {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Resolved | Self::Escalated | Self::RolledBack | Self::Failed | Self::Ignored(_))
    }

    /// An action of the agent's is in flight: proposed to a human, being applied, or being verified.
    pub fn holds_an_action(self) -> bool {
        matches!(self, Self::AwaitingApproval | Self::Executing | Self::Verifying)
    }

    /// Checks a transition against the table of design §1.
    pub fn check_transition(self, to: State) -> Result<(), TransitionError> {
        use State::*;
        let ok = matches!(
            (self, to),
            (Received, Analyzing | Ignored(_) | Failed)
                | (Analyzing, AwaitingApproval | Executing | Escalated | Resolved | Failed)
                | (
                    Analyzing,
                    Ignored(IgnoreReason::ResolvedByHuman | IgnoreReason::ResolvedAtSource | IgnoreReason::Duplicate)
                )
                | (
                    AwaitingApproval,
                    Executing | Escalated | Ignored(IgnoreReason::ResolvedByHuman | IgnoreReason::ResolvedAtSource)
                )
                | (Executing, Verifying | Escalated | Failed)
                // An approved diff the cluster no longer yields is proposed again, not applied.
                | (Executing, AwaitingApproval)
                | (Verifying, Resolved | Escalated | RolledBack | Failed)
        );
        if ok { Ok(()) } else { Err(TransitionError { from: self, to }) }
    }

    /// A stable lower-case name, used in APIs, storage and logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Analyzing => "analyzing",
            Self::AwaitingApproval => "awaiting_approval",
            Self::Executing => "executing",
            Self::Verifying => "verifying",
            Self::Resolved => "resolved",
            Self::Escalated => "escalated",
            Self::RolledBack => "rolled_back",
            Self::Failed => "failed",
            Self::Ignored(_) => "ignored",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ignored(r) => write!(f, "ignored({})", r.as_str()),
            s => f.write_str(s.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use State::*;

    const ALL: [State; 14] = [
        Received,
        Analyzing,
        AwaitingApproval,
        Executing,
        Verifying,
        Resolved,
        Escalated,
        RolledBack,
        Failed,
        Ignored(IgnoreReason::Duplicate),
        Ignored(IgnoreReason::QuotaExceeded),
        Ignored(IgnoreReason::OwnEcho),
        Ignored(IgnoreReason::ResolvedByHuman),
        Ignored(IgnoreReason::ResolvedAtSource),
    ];

    #[test]
    fn happy_paths_are_allowed() {
        let paths: &[&[State]] = &[
            &[Received, Analyzing, Executing, Verifying, Resolved],
            &[Received, Analyzing, AwaitingApproval, Executing, Verifying, RolledBack],
            &[Received, Analyzing, Escalated],
            &[Received, Analyzing, Resolved],
            &[Received, Ignored(IgnoreReason::QuotaExceeded)],
            &[Received, Analyzing, AwaitingApproval, Ignored(IgnoreReason::ResolvedByHuman)],
            &[Received, Analyzing, Executing, Failed],
            &[Received, Analyzing, Ignored(IgnoreReason::Duplicate)],
        ];
        for path in paths {
            for w in path.windows(2) {
                assert_eq!(w[0].check_transition(w[1]), Ok(()), "{} -> {}", w[0], w[1]);
            }
        }
    }

    #[test]
    fn terminal_states_never_move() {
        for from in ALL.into_iter().filter(|s| s.is_terminal()) {
            for to in ALL {
                assert!(from.check_transition(to).is_err(), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn no_state_skips_the_decision_or_moves_to_itself() {
        for s in ALL {
            assert!(s.check_transition(s).is_err(), "{s} -> {s}");
        }
        assert!(Received.check_transition(Executing).is_err());
        assert!(Received.check_transition(Resolved).is_err());
        assert!(Executing.check_transition(Resolved).is_err(), "a fix must be verified before resolving");
        assert!(Analyzing.check_transition(Verifying).is_err());
        assert!(Verifying.check_transition(Executing).is_err());
        assert!(Executing.check_transition(Ignored(IgnoreReason::ResolvedByHuman)).is_err());
        assert!(Verifying.check_transition(Ignored(IgnoreReason::ResolvedAtSource)).is_err(), "a change is verified");
    }

    #[test]
    fn serde_shape_is_stable() {
        assert_eq!(serde_json::to_string(&Verifying).unwrap(), r#"{"state":"verifying"}"#);
        assert_eq!(
            serde_json::to_string(&Ignored(IgnoreReason::OwnEcho)).unwrap(),
            r#"{"state":"ignored","reason":"own_echo"}"#
        );
        let back: State = serde_json::from_str(r#"{"state":"ignored","reason":"quota_exceeded"}"#).unwrap();
        assert_eq!(back, Ignored(IgnoreReason::QuotaExceeded));
    }
}
