//! The in-memory store: the same contract as the redb file store, held in ordered maps under one lock, so every
//! operation is atomic and isolated. Used by the demo, the tests and the benchmarks; `serve` uses the file.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use domain::incident::{AuditEvent, Incident};
use domain::ports::{IncidentStore, Page, StoreError};
use domain::{IncidentId, TeamId};
use pipeline::runbook::{RunbookEntry, RunbookStore};

#[derive(Debug, Default)]
struct State {
    incidents: BTreeMap<IncidentId, Incident>,
    events: BTreeMap<IncidentId, Vec<AuditEvent>>,
    /// (team, created_at ms, id) in time order.
    by_team: BTreeMap<(TeamId, u64, IncidentId), ()>,
    deliveries: BTreeMap<(TeamId, String), ()>,
    external: BTreeMap<(TeamId, String), IncidentId>,
    runbook: BTreeMap<TeamId, Vec<RunbookEntry>>,
}

/// An in-memory incident and runbook store.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn millis(rfc3339: &str) -> u64 {
    rfc3339.parse::<jiff::Timestamp>().map(|t| t.as_millisecond().max(0) as u64).unwrap_or(0)
}

/// Parses a `ms:id` listing cursor.
pub(crate) fn parse_cursor(c: &str) -> Result<(u64, String), StoreError> {
    let bad = || StoreError::Corrupt(format!("bad cursor {c:?}"));
    let (ms, id) = c.split_once(':').ok_or_else(bad)?;
    Ok((ms.parse().map_err(|_| bad())?, id.to_owned()))
}

#[async_trait]
impl IncidentStore for MemoryStore {
    async fn record_delivery(&self, team: &TeamId, key: &str) -> Result<bool, StoreError> {
        Ok(self.lock().deliveries.insert((team.clone(), key.to_owned()), ()).is_none())
    }

    async fn create(&self, incident: &Incident, event: &AuditEvent) -> Result<bool, StoreError> {
        let mut s = self.lock();
        if s.incidents.contains_key(&incident.id) {
            return Ok(false);
        }
        let id = incident.id.clone();
        s.incidents.insert(id.clone(), incident.clone());
        s.events.insert(id.clone(), vec![event.clone()]);
        s.by_team.insert((incident.team_id.clone(), millis(&incident.created_at), id.clone()), ());
        s.external.insert((incident.team_id.clone(), incident.source.external_id().to_owned()), id);
        Ok(true)
    }

    async fn get(&self, id: &IncidentId) -> Result<Option<Incident>, StoreError> {
        Ok(self.lock().incidents.get(id).cloned())
    }

    async fn commit(&self, prev: &Incident, next: &Incident, events: &[AuditEvent]) -> Result<(), StoreError> {
        if next.version != prev.version + 1 || next.id != prev.id {
            return Err(StoreError::Corrupt("commit must bump the version of the same incident by one".into()));
        }
        let mut s = self.lock();
        let stored = s.incidents.get(&prev.id).ok_or_else(|| StoreError::NotFound(prev.id.clone()))?;
        if stored.version != prev.version || stored.state != prev.state {
            return Err(StoreError::Conflict(prev.id.clone()));
        }
        s.incidents.insert(prev.id.clone(), next.clone());
        s.events.entry(prev.id.clone()).or_default().extend_from_slice(events);
        Ok(())
    }

    async fn list(&self, team: &TeamId, limit: usize, cursor: Option<&str>) -> Result<Page<Incident>, StoreError> {
        let cursor = cursor.map(parse_cursor).transpose()?;
        let limit = limit.clamp(1, 1000);
        let s = self.lock();
        let lo = (team.clone(), 0, IncidentId::from_string(""));
        let keys: Vec<&(TeamId, u64, IncidentId)> = match &cursor {
            Some((ms, id)) => s
                .by_team
                .range(lo..(team.clone(), *ms, IncidentId::from_string(id.clone())))
                .rev()
                .map(|(k, _)| k)
                .take(limit + 1)
                .collect(),
            None => {
                let hi = (team.clone(), u64::MAX, IncidentId::from_string("\u{10FFFF}"));
                s.by_team.range(lo..=hi).rev().map(|(k, _)| k).take(limit + 1).collect()
            }
        };
        let next = (keys.len() > limit).then(|| format!("{}:{}", keys[limit - 1].1, keys[limit - 1].2));
        let items = keys.iter().take(limit).filter_map(|k| s.incidents.get(&k.2).cloned()).collect();
        Ok(Page { items, next })
    }

    async fn timeline(&self, id: &IncidentId) -> Result<Vec<AuditEvent>, StoreError> {
        Ok(self.lock().events.get(id).cloned().unwrap_or_default())
    }

    async fn list_active(&self) -> Result<Vec<Incident>, StoreError> {
        Ok(self.lock().incidents.values().filter(|i| !i.state.is_terminal()).cloned().collect())
    }

    async fn find_by_external_id(&self, team: &TeamId, external_id: &str) -> Result<Option<IncidentId>, StoreError> {
        Ok(self.lock().external.get(&(team.clone(), external_id.to_owned())).cloned())
    }
}

#[async_trait]
impl RunbookStore for MemoryStore {
    async fn add(&self, entry: &RunbookEntry) -> Result<(), StoreError> {
        self.lock().runbook.entry(entry.team_id.clone()).or_default().push(entry.clone());
        Ok(())
    }

    async fn list(&self, team: &TeamId) -> Result<Vec<RunbookEntry>, StoreError> {
        Ok(self.lock().runbook.get(team).cloned().unwrap_or_default())
    }
}
