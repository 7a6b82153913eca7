//! The in-memory store: the same contract as the redb file store, held in ordered maps under one lock, so every
//! operation is atomic and isolated. Used by the demo, the tests and the benchmarks; `serve` uses the file.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use domain::billing::{BillingAccount, Meter, Metered, Notice, Order};
use domain::incident::{AuditEvent, Incident};
use domain::ports::{BillingStore, IncidentStore, Page, RateCounter, StoreError, TeamStore};
use domain::{ApiKey, ControlEvent, IncidentId, Team, TeamId};
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
    teams: BTreeMap<TeamId, Team>,
    /// By hash.
    keys: BTreeMap<String, ApiKey>,
    /// (team, at ms, event id), in time order.
    audit: BTreeMap<(TeamId, u64, String), ControlEvent>,
    /// (key, window length, window number) → count.
    counters: BTreeMap<(String, u64, u64), u64>,
    accounts: BTreeMap<TeamId, BillingAccount>,
    /// (team, period) → alerts counted.
    usage: BTreeMap<(TeamId, String), u64>,
    notices: std::collections::BTreeSet<(TeamId, String, Notice)>,
    orders: BTreeMap<String, Order>,
    /// (team, key) → chat message.
    threads: BTreeMap<(TeamId, String), String>,
}

impl State {
    fn insert_incident(&mut self, incident: &Incident, event: &AuditEvent) {
        let id = incident.id.clone();
        self.incidents.insert(id.clone(), incident.clone());
        self.events.insert(id.clone(), vec![event.clone()]);
        self.by_team.insert((incident.team_id.clone(), millis(&incident.created_at), id.clone()), ());
        self.external.insert((incident.team_id.clone(), incident.source.external_id().to_owned()), id);
    }
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
        s.insert_incident(incident, event);
        Ok(true)
    }

    async fn create_metered(
        &self,
        incident: &Incident,
        event: &AuditEvent,
        meter: &Meter,
    ) -> Result<Metered, StoreError> {
        let mut s = self.lock();
        if s.incidents.contains_key(&incident.id) {
            return Ok(Metered::Exists);
        }
        let used = s.usage.entry((incident.team_id.clone(), meter.period.clone())).or_insert(0);
        if meter.limit.is_some_and(|l| *used >= l) {
            return Ok(Metered::OverQuota);
        }
        *used += 1;
        s.insert_incident(incident, event);
        Ok(Metered::Created)
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

    async fn acted_since(&self, team: &TeamId, since_ms: u64, limit: usize) -> Result<Vec<Incident>, StoreError> {
        let s = self.lock();
        let mut hits: Vec<(u64, &Incident)> = s
            .incidents
            .values()
            .filter(|i| &i.team_id == team)
            .filter_map(|i| {
                i.action_index().into_iter().map(|(ms, _)| ms).filter(|ms| *ms >= since_ms).max().map(|ms| (ms, i))
            })
            .collect();
        hits.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.id.cmp(&a.1.id)));
        Ok(hits.into_iter().take(limit).map(|(_, i)| i.clone()).collect())
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

fn audit_page(
    audit: &BTreeMap<(TeamId, u64, String), ControlEvent>,
    team: &TeamId,
    limit: usize,
    cursor: Option<&str>,
) -> Result<Page<ControlEvent>, StoreError> {
    let cursor = cursor.map(parse_cursor).transpose()?;
    let limit = limit.clamp(1, 1000);
    let lo = (team.clone(), 0, String::new());
    let rows: Vec<(&(TeamId, u64, String), &ControlEvent)> = match &cursor {
        Some((ms, id)) => audit.range(lo..(team.clone(), *ms, id.clone())).rev().take(limit + 1).collect(),
        None => audit.range(lo..=(team.clone(), u64::MAX, "\u{10FFFF}".into())).rev().take(limit + 1).collect(),
    };
    let next = (rows.len() > limit).then(|| rows[limit - 1].0).map(|(_, ms, id)| format!("{ms}:{id}"));
    Ok(Page { items: rows.into_iter().take(limit).map(|(_, e)| e.clone()).collect(), next })
}

#[async_trait]
impl TeamStore for MemoryStore {
    async fn create_team(&self, team: &Team, event: &ControlEvent) -> Result<bool, StoreError> {
        let mut s = self.lock();
        if s.teams.contains_key(&team.id) {
            return Ok(false);
        }
        s.teams.insert(team.id.clone(), team.clone());
        s.audit.insert((event.team.clone(), millis(&event.at), event.id.clone()), event.clone());
        Ok(true)
    }

    async fn team(&self, id: &TeamId) -> Result<Option<Team>, StoreError> {
        Ok(self.lock().teams.get(id).cloned())
    }

    async fn teams(&self) -> Result<Vec<Team>, StoreError> {
        Ok(self.lock().teams.values().cloned().collect())
    }

    async fn update_team(&self, prev_version: u64, next: &Team, event: &ControlEvent) -> Result<(), StoreError> {
        if next.version != prev_version + 1 {
            return Err(StoreError::Corrupt("a team update must bump the version by one".into()));
        }
        let mut s = self.lock();
        match s.teams.get(&next.id) {
            Some(t) if t.version == prev_version => {}
            _ => return Err(StoreError::Stale(format!("team {}", next.id))),
        }
        s.teams.insert(next.id.clone(), next.clone());
        s.audit.insert((event.team.clone(), millis(&event.at), event.id.clone()), event.clone());
        Ok(())
    }

    async fn create_key(&self, key: &ApiKey, event: &ControlEvent) -> Result<(), StoreError> {
        let mut s = self.lock();
        if s.keys.contains_key(&key.hash) || s.keys.values().any(|k| k.id == key.id) {
            return Err(StoreError::Stale(format!("api key {}", key.id)));
        }
        s.keys.insert(key.hash.clone(), key.clone());
        s.audit.insert((event.team.clone(), millis(&event.at), event.id.clone()), event.clone());
        Ok(())
    }

    async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
        Ok(self.lock().keys.get(hash).cloned())
    }

    async fn keys(&self, team: Option<&TeamId>) -> Result<Vec<ApiKey>, StoreError> {
        let mut keys: Vec<ApiKey> = self.lock().keys.values().filter(|k| k.team.as_ref() == team).cloned().collect();
        keys.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
        Ok(keys)
    }

    async fn revoke_key(
        &self,
        team: Option<&TeamId>,
        id: &str,
        at: &str,
        event: &ControlEvent,
    ) -> Result<Option<ApiKey>, StoreError> {
        let mut s = self.lock();
        let Some(k) = s.keys.values_mut().find(|k| k.id == id && k.team.as_ref() == team) else {
            return Ok(None);
        };
        if k.revoked_at.is_none() {
            k.revoked_at = Some(at.to_owned());
        }
        let out = k.clone();
        s.audit.insert((event.team.clone(), millis(&event.at), event.id.clone()), event.clone());
        Ok(Some(out))
    }

    async fn touch_key(&self, hash: &str, at: &str) -> Result<(), StoreError> {
        if let Some(k) = self.lock().keys.get_mut(hash) {
            k.last_used_at = Some(at.to_owned());
        }
        Ok(())
    }

    async fn record(&self, event: &ControlEvent) -> Result<(), StoreError> {
        self.lock().audit.insert((event.team.clone(), millis(&event.at), event.id.clone()), event.clone());
        Ok(())
    }

    async fn audit(&self, team: &TeamId, limit: usize, cursor: Option<&str>) -> Result<Page<ControlEvent>, StoreError> {
        audit_page(&self.lock().audit, team, limit, cursor)
    }
}

#[async_trait]
impl RateCounter for MemoryStore {
    async fn hit(&self, key: &str, window_secs: u64, now_secs: u64) -> Result<u64, StoreError> {
        let secs = window_secs.max(1);
        let mut s = self.lock();
        // Windows that have ended are dropped, so the map holds only live ones.
        s.counters.retain(|(_, len, w), _| (*w + 1) * *len > now_secs);
        let n = s.counters.entry((key.to_owned(), secs, now_secs / secs)).or_insert(0);
        *n += 1;
        Ok(*n)
    }

    async fn count(&self, key: &str, window_secs: u64, now_secs: u64) -> Result<u64, StoreError> {
        let secs = window_secs.max(1);
        Ok(self.lock().counters.get(&(key.to_owned(), secs, now_secs / secs)).copied().unwrap_or(0))
    }
}

#[async_trait]
impl BillingStore for MemoryStore {
    async fn account(&self, team: &TeamId) -> Result<Option<BillingAccount>, StoreError> {
        Ok(self.lock().accounts.get(team).cloned())
    }

    async fn accounts(&self) -> Result<Vec<BillingAccount>, StoreError> {
        Ok(self.lock().accounts.values().cloned().collect())
    }

    async fn usage(&self, team: &TeamId, period: &str) -> Result<u64, StoreError> {
        Ok(self.lock().usage.get(&(team.clone(), period.to_owned())).copied().unwrap_or(0))
    }

    async fn claim_notice(&self, team: &TeamId, period: &str, notice: Notice) -> Result<bool, StoreError> {
        Ok(self.lock().notices.insert((team.clone(), period.to_owned(), notice)))
    }

    async fn create_order(&self, order: &Order) -> Result<bool, StoreError> {
        let mut s = self.lock();
        if s.orders.contains_key(&order.id) {
            return Ok(false);
        }
        s.orders.insert(order.id.clone(), order.clone());
        Ok(true)
    }

    async fn order(&self, id: &str) -> Result<Option<Order>, StoreError> {
        Ok(self.lock().orders.get(id).cloned())
    }

    async fn orders(&self, team: &TeamId, limit: usize) -> Result<Vec<Order>, StoreError> {
        let s = self.lock();
        let mut out: Vec<Order> = s.orders.values().filter(|o| &o.team_id == team).cloned().collect();
        out.sort_by(|a, b| (&b.created_at, &b.id).cmp(&(&a.created_at, &a.id)));
        out.truncate(limit);
        Ok(out)
    }

    async fn open_orders(&self) -> Result<Vec<Order>, StoreError> {
        Ok(self.lock().orders.values().filter(|o| o.state.is_open()).cloned().collect())
    }

    async fn update_order(&self, next: &Order) -> Result<(), StoreError> {
        let mut s = self.lock();
        if s.orders.get(&next.id).map(|o| o.version + 1) != Some(next.version) {
            return Err(StoreError::Stale(format!("order {}", next.id)));
        }
        s.orders.insert(next.id.clone(), next.clone());
        Ok(())
    }

    async fn settle(&self, order: &Order, account: &BillingAccount) -> Result<(), StoreError> {
        let mut s = self.lock();
        if s.orders.get(&order.id).map(|o| o.version + 1) != Some(order.version) {
            return Err(StoreError::Stale(format!("order {}", order.id)));
        }
        let stored = s.accounts.get(&account.team_id).map_or(0, |a| a.version);
        if stored + 1 != account.version {
            return Err(StoreError::Stale(format!("billing account of team {}", account.team_id)));
        }
        s.orders.insert(order.id.clone(), order.clone());
        s.accounts.insert(account.team_id.clone(), account.clone());
        Ok(())
    }
}

#[async_trait]
impl domain::ports::ChatThreads for MemoryStore {
    async fn thread(&self, team: &TeamId, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.lock().threads.get(&(team.clone(), key.to_owned())).cloned())
    }

    async fn claim_thread(&self, team: &TeamId, key: &str, value: &str) -> Result<bool, StoreError> {
        let mut s = self.lock();
        let k = (team.clone(), key.to_owned());
        if s.threads.contains_key(&k) {
            return Ok(false);
        }
        s.threads.insert(k, value.to_owned());
        Ok(true)
    }
}
