//! Team settings and service maps read from the team store, cached for a short time so a stage does not read
//! the store for every message. A change made through the control API reaches every stage within the TTL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use domain::ports::{StoreError, TeamStore};
use domain::{ServiceTarget, Team, TeamId, TeamSettings};

use crate::TeamDirectory;

/// How long a team read from the store is reused by the stages.
pub const SETTINGS_TTL: Duration = Duration::from_secs(30);

type Cached = HashMap<TeamId, (Instant, Option<Team>)>;

/// A [`TeamDirectory`] over the team store. Teams that are not in the store get `fallback` settings and no
/// service map.
pub struct StoreTeams {
    store: Arc<dyn TeamStore>,
    fallback: TeamSettings,
    ttl: Duration,
    cache: Mutex<Cached>,
}

impl std::fmt::Debug for StoreTeams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreTeams").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

impl StoreTeams {
    pub fn new(store: Arc<dyn TeamStore>, fallback: TeamSettings, ttl: Duration) -> Self {
        Self { store, fallback, ttl, cache: Mutex::default() }
    }

    async fn team(&self, id: &TeamId) -> Result<Option<Team>, StoreError> {
        if let Some((at, t)) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(id)
            && at.elapsed() < self.ttl
        {
            return Ok(t.clone());
        }
        let team = self.store.team(id).await?;
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).insert(id.clone(), (Instant::now(), team.clone()));
        Ok(team)
    }

    /// Drops the cached copy of a team (the local control API calls this after a change it made itself).
    pub fn forget(&self, id: &TeamId) {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }
}

#[async_trait]
impl TeamDirectory for StoreTeams {
    async fn settings(&self, team: &TeamId) -> Result<TeamSettings, StoreError> {
        Ok(self.team(team).await?.map_or_else(|| self.fallback.clone(), |t| t.settings))
    }

    async fn service_target(&self, team: &TeamId, service: &str) -> Result<Option<ServiceTarget>, StoreError> {
        Ok(self.team(team).await?.and_then(|t| t.services.get(service).cloned()))
    }

    async fn services(&self, team: &TeamId) -> Result<std::collections::BTreeMap<String, ServiceTarget>, StoreError> {
        Ok(self.team(team).await?.map(|t| t.services).unwrap_or_default())
    }

    async fn integration_options(
        &self,
        team: &TeamId,
        name: &str,
    ) -> Result<std::collections::BTreeMap<String, String>, StoreError> {
        Ok(self.team(team).await?.and_then(|t| t.integrations.get(name).map(|m| m.options.clone())).unwrap_or_default())
    }
}
