//! Test helpers for the AWS adapters: an adapter kept together with its moto server.
#![allow(clippy::unwrap_used, dead_code)]

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

/// A DynamoDB store on a fresh table of a fresh moto server.
pub async fn dynamo_store() -> Kept<aws::DynamoStore> {
    let moto = Moto::start().await;
    let client = aws::dynamodb::Client::new(&aws::local_config(&moto.url).await);
    aws::create_table(&client, "dreamops").await.unwrap();
    Kept { inner: aws::DynamoStore::new(client, "dreamops"), moto }
}
