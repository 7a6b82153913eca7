//! Versioned messages between stages (design §4). Producer and consumer share these types.

use serde::{Deserialize, Serialize};

use crate::ids::{ActionId, CorrelationId, IncidentId, TeamId};

/// The message format version this build writes and reads.
pub const MESSAGE_VERSION: u32 = 1;

/// What the next stage is asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum StageMessage {
    /// Gather a snapshot, diagnose and decide.
    Analyze,
    /// Apply one planned action.
    Execute { action_id: ActionId },
    /// Check whether the action held; `check` counts the checks so far.
    Verify { action_id: ActionId, check: u32 },
    /// Escalate a proposal still awaiting approval at `deadline` (RFC 3339).
    ExpireApproval { deadline: String },
    /// The incident was ignored because the team's alerts are used up: tell the team (once per period).
    QuotaExceeded,
    /// A human resolved the source incident (the page) after the agent handed it over: close the fault's
    /// escalation issue and bring the chat message up to date. `by` is who resolved it, as the source says.
    ResolvedByHuman { by: String },
}

impl StageMessage {
    pub fn stage(&self) -> &'static str {
        match self {
            Self::Analyze => "analyze",
            Self::Execute { .. } => "execute",
            Self::Verify { .. } => "verify",
            Self::ExpireApproval { .. } => "approval",
            Self::QuotaExceeded => "quota",
            Self::ResolvedByHuman { .. } => "follow_up",
        }
    }
}

/// A stage message with the fields every message carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub v: u32,
    pub incident_id: IncidentId,
    pub team_id: TeamId,
    pub correlation_id: CorrelationId,
    /// Delivery attempt as counted by the producer chain (1 for the first).
    pub attempt: u32,
    #[serde(flatten)]
    pub body: StageMessage,
}

/// A message that cannot be processed: never retried, it goes to the dead-letter queue.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("unsupported message version {0} (this build reads version {MESSAGE_VERSION})")]
    UnsupportedVersion(u64),
    #[error("malformed stage message: {0}")]
    Malformed(#[from] serde_json::Error),
}

impl Envelope {
    pub fn new(incident_id: IncidentId, team_id: TeamId, correlation_id: CorrelationId, body: StageMessage) -> Self {
        Self { v: MESSAGE_VERSION, incident_id, team_id, correlation_id, attempt: 1, body }
    }

    /// The follow-up message for the same incident.
    pub fn next(&self, body: StageMessage) -> Self {
        Self { body, attempt: 1, ..self.clone() }
    }

    pub fn encode(&self) -> String {
        // Serialising a struct of strings and integers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Decodes a message, checking its version before its shape so an old or future producer gets a clear error.
    pub fn decode(text: &str) -> Result<Self, MessageError> {
        #[derive(Deserialize)]
        struct Version {
            v: Option<u64>,
        }
        let version: Version = serde_json::from_str(text)?;
        match version.v {
            Some(v) if v == u64::from(MESSAGE_VERSION) => Ok(serde_json::from_str(text)?),
            Some(v) => Err(MessageError::UnsupportedVersion(v)),
            None => Err(MessageError::Malformed(serde::de::Error::missing_field("v"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope {
        Envelope::new(
            IncidentId::from_string("inc_1"),
            TeamId::parse("payments").unwrap(),
            CorrelationId::from_string("cor_1"),
            StageMessage::Verify { action_id: ActionId::from_string("act_1"), check: 3 },
        )
    }

    #[test]
    fn round_trips_with_a_flat_wire_shape() {
        let m = sample();
        let text = m.encode();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["v"], 1);
        assert_eq!(v["stage"], "verify");
        assert_eq!(v["action_id"], "act_1");
        assert_eq!(v["check"], 3);
        assert_eq!(Envelope::decode(&text).unwrap(), m);
    }

    #[test]
    fn rejects_other_versions_and_garbage() {
        let text = sample().encode().replace("\"v\":1", "\"v\":2");
        assert!(matches!(Envelope::decode(&text), Err(MessageError::UnsupportedVersion(2))));
        assert!(matches!(Envelope::decode("{}"), Err(MessageError::Malformed(_))));
        assert!(matches!(Envelope::decode("[1]"), Err(MessageError::Malformed(_))));
        let bad_team = sample().encode().replace("payments", "Pay Ments");
        assert!(matches!(Envelope::decode(&bad_team), Err(MessageError::Malformed(_))));
        let bad_stage = sample().encode().replace("\"verify\"", "\"explode\"");
        assert!(matches!(Envelope::decode(&bad_stage), Err(MessageError::Malformed(_))));
    }
}
