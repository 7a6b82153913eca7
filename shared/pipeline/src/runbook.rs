//! Runbook entries the agent learns from every verified fix: what the symptom looked like, what fixed it.

use async_trait::async_trait;
use domain::TeamId;
use domain::ports::StoreError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunbookEntry {
    pub team_id: TeamId,
    /// (team, workload, category) key shared with recurrence detection.
    pub fingerprint: String,
    pub category: String,
    pub workload: String,
    pub symptom: String,
    pub action: String,
    pub evidence: Vec<String>,
    pub outcome: String,
    /// Seconds from the alert reaching us to the verified fix.
    pub mttr_secs: i64,
    pub incident_id: String,
    pub learned_at: String,
}

#[async_trait]
pub trait RunbookStore: Send + Sync {
    async fn add(&self, entry: &RunbookEntry) -> Result<(), StoreError>;
    async fn list(&self, team: &TeamId) -> Result<Vec<RunbookEntry>, StoreError>;
}
