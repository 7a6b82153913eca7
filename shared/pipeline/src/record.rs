//! Conditional commits with their audit events.

use domain::incident::{Actor, AuditEvent, Incident};
use domain::ports::StoreError;
use domain::state::State;

use crate::{Deps, StageError};

/// Builds the next version of an incident and the audit events that explain it, then commits both at once.
#[derive(Debug)]
pub struct Recorder<'a> {
    prev: Incident,
    pub next: Incident,
    events: Vec<AuditEvent>,
    stage: &'a str,
    actor: Actor,
    /// The correlation id of the request that caused the change, when it is not the incident's own.
    correlation_id: Option<domain::CorrelationId>,
}

impl<'a> Recorder<'a> {
    pub fn new(prev: Incident, stage: &'a str) -> Self {
        let next = prev.clone();
        Self { prev, next, events: Vec::new(), stage, actor: Actor::Agent, correlation_id: None }
    }

    /// Attributes the following events to a request's correlation id (a change made through the API).
    pub fn correlated(mut self, id: &domain::CorrelationId) -> Self {
        self.correlation_id = Some(id.clone());
        self
    }

    /// Attributes the following events to someone other than the agent.
    pub fn by(mut self, actor: Actor) -> Self {
        self.actor = actor;
        self
    }

    /// Moves to `to`, checked against the state machine, with an audit event saying what and why.
    pub fn transition(&mut self, to: State, what: impl Into<String>, why: impl Into<String>) -> Result<(), StageError> {
        self.next.state.check_transition(to).map_err(|e| StageError::Permanent(e.to_string()))?;
        let from = self.next.state;
        self.next.state = to;
        self.push(Some(from), Some(to), what.into(), why.into());
        Ok(())
    }

    /// Records a step that does not change the state.
    pub fn note(&mut self, what: impl Into<String>, why: impl Into<String>) {
        self.push(None, None, what.into(), why.into());
    }

    fn push(&mut self, from: Option<State>, to: Option<State>, what: String, why: String) {
        self.events.push(AuditEvent {
            incident_id: self.next.id.clone(),
            at: String::new(),
            actor: self.actor.clone(),
            stage: self.stage.to_owned(),
            from,
            to,
            what,
            why,
            correlation_id: self.correlation_id.clone().unwrap_or_else(|| self.next.correlation_id.clone()),
        });
    }

    /// Commits conditionally on the version and state read. `Ok(false)` when another worker moved the incident
    /// first: the caller drops its work, which is the point.
    pub async fn commit(self, deps: &Deps) -> Result<Option<Incident>, StageError> {
        self.commit_to(deps.store.as_ref(), deps.clock.as_ref()).await
    }

    /// As [`Recorder::commit`], with the store and clock given directly.
    pub async fn commit_to(
        mut self,
        store: &dyn domain::ports::IncidentStore,
        clock: &dyn domain::ports::Clock,
    ) -> Result<Option<Incident>, StageError> {
        let now = clock.now().to_string();
        self.next.version = self.prev.version + 1;
        self.next.updated_at = now.clone();
        for e in &mut self.events {
            e.at = now.clone();
        }
        match store.commit(&self.prev, &self.next, &self.events).await {
            Ok(()) => Ok(Some(self.next)),
            Err(StoreError::Conflict(id)) => {
                tracing::info!(incident_id = %id, "Incident changed concurrently; dropping this delivery's work.");
                Ok(None)
            }
            Err(e) => Err(StageError::from_port("store commit", e)),
        }
    }
}
