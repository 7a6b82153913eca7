//! Test helpers for the AWS adapters: an adapter kept together with its moto server.
#![allow(clippy::unwrap_used, dead_code)]

use domain::ports::StoreError;
pub use fakes::moto::Moto;

/// An adapter together with the moto server it talks to, so the server lives exactly as long as the adapter.
pub struct Kept<T> {
    pub inner: T,
    pub moto: Moto,
}

#[async_trait::async_trait]
impl<T: domain::ports::IncidentStore> domain::ports::IncidentStore for Kept<T> {
    async fn record_delivery(&self, team: &domain::TeamId, key: &str) -> Result<bool, domain::ports::StoreError> {
        self.inner.record_delivery(team, key).await
    }
    async fn create(
        &self,
        incident: &domain::Incident,
        event: &domain::AuditEvent,
    ) -> Result<bool, domain::ports::StoreError> {
        self.inner.create(incident, event).await
    }
    async fn create_metered(
        &self,
        incident: &domain::Incident,
        event: &domain::AuditEvent,
        meter: &domain::billing::Meter,
    ) -> Result<domain::billing::Metered, domain::ports::StoreError> {
        self.inner.create_metered(incident, event, meter).await
    }
    async fn get(&self, id: &domain::IncidentId) -> Result<Option<domain::Incident>, domain::ports::StoreError> {
        self.inner.get(id).await
    }
    async fn commit(
        &self,
        prev: &domain::Incident,
        next: &domain::Incident,
        events: &[domain::AuditEvent],
    ) -> Result<(), domain::ports::StoreError> {
        self.inner.commit(prev, next, events).await
    }
    async fn list(
        &self,
        team: &domain::TeamId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<domain::ports::Page<domain::Incident>, domain::ports::StoreError> {
        self.inner.list(team, limit, cursor).await
    }
    async fn timeline(&self, id: &domain::IncidentId) -> Result<Vec<domain::AuditEvent>, domain::ports::StoreError> {
        self.inner.timeline(id).await
    }
    async fn acted_since(
        &self,
        team: &domain::TeamId,
        since_ms: u64,
        limit: usize,
    ) -> Result<Vec<domain::Incident>, domain::ports::StoreError> {
        self.inner.acted_since(team, since_ms, limit).await
    }
    async fn list_active(&self) -> Result<Vec<domain::Incident>, domain::ports::StoreError> {
        self.inner.list_active().await
    }
    async fn find_by_external_id(
        &self,
        team: &domain::TeamId,
        external_id: &str,
    ) -> Result<Option<domain::IncidentId>, domain::ports::StoreError> {
        self.inner.find_by_external_id(team, external_id).await
    }
}

#[async_trait::async_trait]
impl<T: domain::ports::Secrets> domain::ports::Secrets for Kept<T> {
    async fn team_secret(
        &self,
        team: &domain::TeamId,
        name: domain::ports::SecretName,
    ) -> Result<Vec<domain::ports::Secret>, domain::ports::SecretsError> {
        self.inner.team_secret(team, name).await
    }

    async fn deployment_secret(
        &self,
        name: domain::ports::SecretName,
    ) -> Result<Vec<domain::ports::Secret>, domain::ports::SecretsError> {
        self.inner.deployment_secret(name).await
    }
}

/// A DynamoDB store on a fresh table of a fresh moto that answers one request at a time: the suites race
/// transactions, which moto's threaded server does not isolate (see `Moto::start_serialized`).
pub async fn serialized_dynamo_store() -> Kept<aws::DynamoStore> {
    let moto = Moto::start_serialized().await;
    let client = aws::dynamodb::Client::new(&aws::local_config(&moto.url).await);
    aws::create_table(&client, "dreamops").await.unwrap();
    Kept { inner: aws::DynamoStore::new(client, "dreamops"), moto }
}

#[async_trait::async_trait]
impl<T: domain::ports::TeamStore> domain::ports::TeamStore for Kept<T> {
    async fn create_team(&self, team: &domain::Team, event: &domain::ControlEvent) -> Result<bool, StoreError> {
        self.inner.create_team(team, event).await
    }
    async fn team(&self, id: &domain::TeamId) -> Result<Option<domain::Team>, StoreError> {
        self.inner.team(id).await
    }
    async fn teams(&self) -> Result<Vec<domain::Team>, StoreError> {
        self.inner.teams().await
    }
    async fn update_team(
        &self,
        prev: u64,
        next: &domain::Team,
        event: &domain::ControlEvent,
    ) -> Result<(), StoreError> {
        self.inner.update_team(prev, next, event).await
    }
    async fn create_key(&self, key: &domain::ApiKey, event: &domain::ControlEvent) -> Result<(), StoreError> {
        self.inner.create_key(key, event).await
    }
    async fn key_by_hash(&self, hash: &str) -> Result<Option<domain::ApiKey>, StoreError> {
        self.inner.key_by_hash(hash).await
    }
    async fn keys(&self, team: Option<&domain::TeamId>) -> Result<Vec<domain::ApiKey>, StoreError> {
        self.inner.keys(team).await
    }
    async fn revoke_key(
        &self,
        team: Option<&domain::TeamId>,
        id: &str,
        at: &str,
        event: &domain::ControlEvent,
    ) -> Result<Option<domain::ApiKey>, StoreError> {
        self.inner.revoke_key(team, id, at, event).await
    }
    async fn touch_key(&self, hash: &str, at: &str) -> Result<(), StoreError> {
        self.inner.touch_key(hash, at).await
    }
    async fn record(&self, event: &domain::ControlEvent) -> Result<(), StoreError> {
        self.inner.record(event).await
    }
    async fn audit(
        &self,
        team: &domain::TeamId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<domain::ports::Page<domain::ControlEvent>, StoreError> {
        self.inner.audit(team, limit, cursor).await
    }
}

#[async_trait::async_trait]
impl<T: domain::ports::RateCounter> domain::ports::RateCounter for Kept<T> {
    async fn hit(&self, key: &str, window_secs: u64, now_secs: u64) -> Result<u64, StoreError> {
        self.inner.hit(key, window_secs, now_secs).await
    }
    async fn count(&self, key: &str, window_secs: u64, now_secs: u64) -> Result<u64, StoreError> {
        self.inner.count(key, window_secs, now_secs).await
    }
}

#[async_trait::async_trait]
impl<T: domain::ports::SecretsAdmin> domain::ports::SecretsAdmin for Kept<T> {
    async fn update_team_secrets(
        &self,
        team: &domain::TeamId,
        changes: &[(domain::ports::SecretName, Option<Vec<domain::ports::Secret>>)],
    ) -> Result<(), domain::ports::SecretsError> {
        self.inner.update_team_secrets(team, changes).await
    }
}

#[async_trait::async_trait]
impl<T: domain::ports::BillingStore> domain::ports::BillingStore for Kept<T> {
    async fn account(&self, team: &domain::TeamId) -> Result<Option<domain::billing::BillingAccount>, StoreError> {
        self.inner.account(team).await
    }
    async fn accounts(&self) -> Result<Vec<domain::billing::BillingAccount>, StoreError> {
        self.inner.accounts().await
    }
    async fn usage(&self, team: &domain::TeamId, period: &str) -> Result<u64, StoreError> {
        self.inner.usage(team, period).await
    }
    async fn claim_notice(
        &self,
        team: &domain::TeamId,
        period: &str,
        notice: domain::billing::Notice,
    ) -> Result<bool, StoreError> {
        self.inner.claim_notice(team, period, notice).await
    }
    async fn create_order(&self, order: &domain::billing::Order) -> Result<bool, StoreError> {
        self.inner.create_order(order).await
    }
    async fn order(&self, id: &str) -> Result<Option<domain::billing::Order>, StoreError> {
        self.inner.order(id).await
    }
    async fn orders(&self, team: &domain::TeamId, limit: usize) -> Result<Vec<domain::billing::Order>, StoreError> {
        self.inner.orders(team, limit).await
    }
    async fn open_orders(&self) -> Result<Vec<domain::billing::Order>, StoreError> {
        self.inner.open_orders().await
    }
    async fn update_order(&self, next: &domain::billing::Order) -> Result<(), StoreError> {
        self.inner.update_order(next).await
    }
    async fn settle(
        &self,
        order: &domain::billing::Order,
        account: &domain::billing::BillingAccount,
    ) -> Result<(), StoreError> {
        self.inner.settle(order, account).await
    }
}
