//! The incident store on one DynamoDB table (single-table design).
//!
//! | item | pk | sk | notes |
//! |---|---|---|---|
//! | incident | `INC#<id>` | `META` | `body` (JSON), `version`, `state`; GSI1 `TEAM#<team>` / `<created ms, 16 digits>#<id>`; GSI2 `ACTIVE` / `<id>` while not terminal (sparse) |
//! | audit event | `INC#<id>` | `EVT#<version, 10 digits>#<n, 4 digits>` | `body` (JSON), in commit order |
//! | external id | `EXT#<team>#<external id>` | `EXT` | `incident_id` |
//! | delivery key | `DLV#<team>#<key>` | `DLV` | `expires_at` (TTL, epoch seconds) |
//! | action taken or in flight | `ACTED#<team>` | `<applied ms (or, in flight, moved ms), 16 digits>#<incident id>#<action id, or state-version>` | `incident_id`, `expires_at` (TTL: 31 days, past the longest recurrence window) |
//! | runbook entry | `RUNBOOK#<team>` | `<learned_at>#<incident id>` | `body` (JSON) |
//! | team | `TEAM#<team>` | `META` | `body` (JSON), `version`; GSI1 `TEAMS` / `<team>` |
//! | API key | `KEY#<sha-256 hex>` | `KEY` | `body` (JSON); GSI1 `KEYS#<team, or * for operator keys>` / `<created>#<id>` |
//! | team audit event | `AUDIT#<team>` | `<at ms, 16 digits>#<event id>` | `body` (JSON) |
//! | rate counter | `RL#<key>` | `<window secs>#<window number>` | `n` (atomic `ADD`), `expires_at` (TTL) |
//! | usage | `USAGE#<team>` | `<period>` | `alerts` (atomic `ADD` in the incident create's transaction) |
//! | notice made | `NOTICE#<team>#<period>#<notice>` | `NOTICE` | (conditional put: once) |
//! | billing account | `BILLING#<team>` | `ACCOUNT` | `body` (JSON), `version`; GSI1 `ACCOUNTS` / `<team>` |
//! | payment order | `ORDER#<merchant order id>` | `ORDER` | `body` (JSON), `version`; GSI1 `ORDERS#<team>` / `<created ms>#<id>`; GSI2 `OPEN_ORDERS` / `<id>` while open (sparse) |
//!
//! Creates and commits are transactions whose first item is conditional (`attribute_not_exists(pk)`, or version
//! and state equal to what the caller read), so exactly one of several racing writers wins; the audit events of
//! a transition are written in the same transaction.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, Put, ScalarAttributeType, TimeToLiveSpecification, TransactWriteItem,
};
use domain::incident::{AuditEvent, Incident};
use domain::ports::{IncidentStore, Page, StoreError};
use domain::{IncidentId, TeamId};
use pipeline::runbook::{RunbookEntry, RunbookStore};

use crate::describe;

/// Delivery keys are kept this long (PagerDuty retries for far less).
const DELIVERY_TTL_SECS: i64 = 7 * 24 * 3600;
const GSI_TEAM: &str = "gsi1";
const GSI_ACTIVE: &str = "gsi2";

pub(crate) type Item = HashMap<String, AttributeValue>;

/// The DynamoDB incident and runbook store.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    pub(crate) client: Client,
    pub(crate) table: String,
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn text<'a>(item: &'a Item, key: &str) -> Option<&'a str> {
    item.get(key).and_then(|v| v.as_s().ok()).map(String::as_str)
}

pub(crate) fn unavailable<E: std::error::Error>(what: &str, e: E) -> StoreError {
    StoreError::Unavailable(describe(what, e))
}

pub(crate) fn millis(rfc3339: &str) -> u64 {
    rfc3339.parse::<jiff::Timestamp>().map(|t| t.as_millisecond().max(0) as u64).unwrap_or(0)
}

/// Applied-action index items outlive the longest recurrence window a team may set (30 days).
const ACTED_TTL_SECS: i64 = 31 * 86_400;

fn inc_pk(id: &IncidentId) -> String {
    format!("INC#{id}")
}

fn team_sort_key(i: &Incident) -> String {
    format!("{:016}#{}", millis(&i.created_at), i.id)
}

pub(crate) fn json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn parse<T: serde::de::DeserializeOwned>(item: &Item) -> Result<T, StoreError> {
    let body = text(item, "body").ok_or_else(|| StoreError::Corrupt("item without a body".into()))?;
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(format!("unreadable item: {e}")))
}

fn meta_item(i: &Incident) -> Result<Item, StoreError> {
    let mut item = Item::from([
        ("pk".into(), s(inc_pk(&i.id))),
        ("sk".into(), s("META")),
        ("body".into(), s(json(i)?)),
        ("version".into(), n(i.version)),
        ("state".into(), s(json(&i.state)?)),
        ("team".into(), s(i.team_id.to_string())),
        ("gsi1pk".into(), s(format!("TEAM#{}", i.team_id))),
        ("gsi1sk".into(), s(team_sort_key(i))),
    ]);
    if !i.state.is_terminal() {
        item.insert("gsi2pk".into(), s("ACTIVE"));
        item.insert("gsi2sk".into(), s(i.id.to_string()));
    }
    Ok(item)
}

fn event_items(id: &IncidentId, version: u64, events: &[AuditEvent]) -> Result<Vec<Item>, StoreError> {
    events
        .iter()
        .enumerate()
        .map(|(k, e)| {
            Ok(Item::from([
                ("pk".into(), s(inc_pk(id))),
                ("sk".into(), s(format!("EVT#{version:010}#{k:04}"))),
                ("body".into(), s(json(e)?)),
            ]))
        })
        .collect()
}

pub(crate) fn put(table: &str, item: Item, condition: Option<(&str, Item)>) -> Result<TransactWriteItem, StoreError> {
    let mut p = Put::builder().table_name(table).set_item(Some(item));
    if let Some((expr, values)) = condition {
        p = p.condition_expression(expr);
        for (k, v) in values {
            if let Some(name) = k.strip_prefix('#') {
                p = p.expression_attribute_names(k.clone(), name.to_owned());
            } else {
                p = p.expression_attribute_values(k, v);
            }
        }
    }
    let p = p.build().map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(TransactWriteItem::builder().put(p).build())
}

/// Whether a transaction was cancelled because its first (conditional) item failed.
pub(crate) fn first_condition_failed(
    e: &aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError>,
) -> bool {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    match e.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(t)) => {
            t.cancellation_reasons().first().is_some_and(|r| r.code() == Some("ConditionalCheckFailed"))
        }
        _ => false,
    }
}

impl DynamoStore {
    /// The items of an incident create: the conditional incident put first, its first event, its external id.
    pub(crate) fn create_items(
        &self,
        incident: &Incident,
        event: &AuditEvent,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let mut items = vec![put(&self.table, meta_item(incident)?, Some(("attribute_not_exists(pk)", Item::new())))?];
        for e in event_items(&incident.id, incident.version, std::slice::from_ref(event))? {
            items.push(put(&self.table, e, None)?);
        }
        let ext = Item::from([
            ("pk".into(), s(format!("EXT#{}#{}", incident.team_id, incident.source.external_id()))),
            ("sk".into(), s("EXT")),
            ("incident_id".into(), s(incident.id.to_string())),
        ]);
        items.push(put(&self.table, ext, None)?);
        Ok(items)
    }

    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    pub(crate) async fn get_item(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable("dynamodb get", e))?;
        Ok(out.item)
    }
}

impl DynamoStore {
    /// Every item a query returns, following `LastEvaluatedKey` across pages. `build` sets the query's table,
    /// index and key condition; `what` names the call in errors.
    pub(crate) async fn query_all(
        &self,
        what: &str,
        build: impl Fn() -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    ) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = build().set_exclusive_start_key(start.take()).send().await.map_err(|e| unavailable(what, e))?;
            out.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }
}

/// Parses a listing cursor (the GSI sort key of the last item returned).
fn parse_cursor(c: &str) -> Result<(String, IncidentId), StoreError> {
    let bad = || StoreError::Corrupt(format!("bad cursor {c:?}"));
    let (ms, id) = c.split_once('#').ok_or_else(bad)?;
    if ms.len() != 16 || !ms.bytes().all(|b| b.is_ascii_digit()) || id.is_empty() {
        return Err(bad());
    }
    Ok((c.to_owned(), IncidentId::from_string(id)))
}

#[async_trait]
impl IncidentStore for DynamoStore {
    async fn record_delivery(&self, team: &TeamId, key: &str) -> Result<bool, StoreError> {
        use aws_sdk_dynamodb::operation::put_item::PutItemError;
        let expires = jiff::Timestamp::now().as_second() + DELIVERY_TTL_SECS;
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("DLV#{team}#{key}")))
            .item("sk", s("DLV"))
            .item("expires_at", n(expires))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.as_service_error(), Some(PutItemError::ConditionalCheckFailedException(_))) => {
                Ok(false)
            }
            Err(e) => Err(unavailable("dynamodb put delivery key", e)),
        }
    }

    async fn create(&self, incident: &Incident, event: &AuditEvent) -> Result<bool, StoreError> {
        let items = self.create_items(incident, event)?;
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(true),
            Err(e) if first_condition_failed(&e) => Ok(false),
            Err(e) => Err(unavailable("dynamodb create", e)),
        }
    }

    async fn create_metered(
        &self,
        incident: &Incident,
        event: &AuditEvent,
        meter: &domain::billing::Meter,
    ) -> Result<domain::billing::Metered, StoreError> {
        crate::billing::create_metered(self, incident, event, meter).await
    }

    async fn get(&self, id: &IncidentId) -> Result<Option<Incident>, StoreError> {
        self.get_item(inc_pk(id), "META").await?.as_ref().map(parse).transpose()
    }

    async fn commit(&self, prev: &Incident, next: &Incident, events: &[AuditEvent]) -> Result<(), StoreError> {
        if next.version != prev.version + 1 || next.id != prev.id {
            return Err(StoreError::Corrupt("commit must bump the version of the same incident by one".into()));
        }
        let condition = Item::from([
            ("#version".into(), s("")),
            ("#state".into(), s("")),
            (":version".into(), n(prev.version)),
            (":state".into(), s(json(&prev.state)?)),
        ]);
        let mut items = vec![put(
            &self.table,
            meta_item(next)?,
            Some(("attribute_exists(pk) AND #version = :version AND #state = :state", condition)),
        )?];
        for e in event_items(&next.id, next.version, events)? {
            items.push(put(&self.table, e, None)?);
        }
        for (ms, action) in next.action_index_added(prev) {
            let item = Item::from([
                ("pk".into(), s(format!("ACTED#{}", next.team_id))),
                ("sk".into(), s(format!("{ms:016}#{}#{action}", next.id))),
                ("incident_id".into(), s(next.id.to_string())),
                ("expires_at".into(), n((ms / 1000) as i64 + ACTED_TTL_SECS)),
            ]);
            items.push(put(&self.table, item, None)?);
        }
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(()),
            Err(e) if first_condition_failed(&e) => match self.get_item(inc_pk(&prev.id), "META").await? {
                None => Err(StoreError::NotFound(prev.id.clone())),
                Some(_) => Err(StoreError::Conflict(prev.id.clone())),
            },
            Err(e) => Err(unavailable("dynamodb commit", e)),
        }
    }

    async fn list(&self, team: &TeamId, limit: usize, cursor: Option<&str>) -> Result<Page<Incident>, StoreError> {
        let limit = limit.clamp(1, 1000);
        let start = cursor.map(parse_cursor).transpose()?;
        let mut q = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI_TEAM)
            .key_condition_expression("gsi1pk = :team")
            .expression_attribute_values(":team", s(format!("TEAM#{team}")))
            .scan_index_forward(false)
            .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX));
        if let Some((sort_key, id)) = start {
            q = q.set_exclusive_start_key(Some(Item::from([
                ("gsi1pk".into(), s(format!("TEAM#{team}"))),
                ("gsi1sk".into(), s(sort_key)),
                ("pk".into(), s(inc_pk(&id))),
                ("sk".into(), s("META")),
            ])));
        }
        let out = q.send().await.map_err(|e| unavailable("dynamodb list", e))?;
        let rows = out.items.unwrap_or_default();
        let items: Vec<Incident> = rows.iter().take(limit).map(parse).collect::<Result<_, _>>()?;
        let next = (rows.len() > limit).then(|| items.last().map(team_sort_key)).flatten();
        Ok(Page { items, next })
    }

    async fn acted_since(&self, team: &TeamId, since_ms: u64, limit: usize) -> Result<Vec<Incident>, StoreError> {
        let rows = self
            .query_all("dynamodb acted since", || {
                self.client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :pk AND sk >= :since")
                    .expression_attribute_values(":pk", s(format!("ACTED#{team}")))
                    .expression_attribute_values(":since", s(format!("{since_ms:016}")))
                    .scan_index_forward(false)
            })
            .await?;
        let mut ids: Vec<IncidentId> = Vec::new();
        for id in rows.iter().filter_map(|r| text(r, "incident_id")).map(IncidentId::from_string) {
            if ids.len() < limit && !ids.contains(&id) {
                ids.push(id);
            }
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(i) = self.get(&id).await? {
                out.push(i);
            }
        }
        Ok(out)
    }

    async fn timeline(&self, id: &IncidentId) -> Result<Vec<AuditEvent>, StoreError> {
        let items = self
            .query_all("dynamodb timeline", || {
                self.client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :pk AND begins_with(sk, :evt)")
                    .expression_attribute_values(":pk", s(inc_pk(id)))
                    .expression_attribute_values(":evt", s("EVT#"))
                    .consistent_read(true)
            })
            .await?;
        items.iter().map(parse).collect()
    }

    async fn list_active(&self) -> Result<Vec<Incident>, StoreError> {
        let items = self
            .query_all("dynamodb list active", || {
                self.client
                    .query()
                    .table_name(&self.table)
                    .index_name(GSI_ACTIVE)
                    .key_condition_expression("gsi2pk = :active")
                    .expression_attribute_values(":active", s("ACTIVE"))
            })
            .await?;
        let all: Vec<Incident> = items.iter().map(parse).collect::<Result<_, _>>()?;
        // The index is eventually consistent: drop anything that has ended since.
        Ok(all.into_iter().filter(|i| !i.state.is_terminal()).collect())
    }

    async fn find_by_external_id(&self, team: &TeamId, external_id: &str) -> Result<Option<IncidentId>, StoreError> {
        let item = self.get_item(format!("EXT#{team}#{external_id}"), "EXT").await?;
        Ok(item.as_ref().and_then(|i| text(i, "incident_id")).map(IncidentId::from_string))
    }
}

#[async_trait]
impl RunbookStore for DynamoStore {
    async fn add(&self, entry: &RunbookEntry) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("RUNBOOK#{}", entry.team_id)))
            .item("sk", s(format!("{}#{}", entry.learned_at, entry.incident_id)))
            .item("body", s(json(entry)?))
            .send()
            .await
            .map_err(|e| unavailable("dynamodb put runbook entry", e))?;
        Ok(())
    }

    async fn list(&self, team: &TeamId) -> Result<Vec<RunbookEntry>, StoreError> {
        let items = self
            .query_all("dynamodb runbook", || {
                self.client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :pk")
                    .expression_attribute_values(":pk", s(format!("RUNBOOK#{team}")))
            })
            .await?;
        items.iter().map(parse).collect()
    }
}

/// Creates the table as `infra/` declares it (keys, both GSIs, TTL on `expires_at`), for tests and local use.
pub async fn create_table(client: &Client, table: &str) -> Result<(), String> {
    let attr =
        |name: &str| AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build();
    let key = |name: &str, t: KeyType| KeySchemaElement::builder().attribute_name(name).key_type(t).build();
    let gsi = |name: &str, pk: &str, sk: &str| -> Result<GlobalSecondaryIndex, String> {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key(pk, KeyType::Hash).map_err(|e| e.to_string())?)
            .key_schema(key(sk, KeyType::Range).map_err(|e| e.to_string())?)
            .projection(Projection::builder().projection_type(ProjectionType::All).build())
            .build()
            .map_err(|e| e.to_string())
    };
    let mut req = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash).map_err(|e| e.to_string())?)
        .key_schema(key("sk", KeyType::Range).map_err(|e| e.to_string())?)
        .global_secondary_indexes(gsi(GSI_TEAM, "gsi1pk", "gsi1sk")?)
        .global_secondary_indexes(gsi(GSI_ACTIVE, "gsi2pk", "gsi2sk")?);
    for a in ["pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk"] {
        req = req.attribute_definitions(attr(a).map_err(|e| e.to_string())?);
    }
    req.send().await.map_err(|e| describe("create table", e))?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name("expires_at")
                .enabled(true)
                .build()
                .map_err(|e| e.to_string())?,
        )
        .send()
        .await
        .map_err(|e| describe("enable ttl", e))?;
    Ok(())
}

/// How long a chat message reference is kept: long after any incident could still change.
const CHAT_THREAD_TTL_SECS: i64 = 90 * 24 * 3600;

#[async_trait]
impl domain::ports::ChatThreads for DynamoStore {
    async fn thread(&self, team: &TeamId, key: &str) -> Result<Option<String>, StoreError> {
        let item = self.get_item(format!("CHAT#{team}#{key}"), "CHAT").await?;
        Ok(item.and_then(|i| i.get("value").and_then(|v| v.as_s().ok()).cloned()))
    }

    async fn claim_thread(&self, team: &TeamId, key: &str, value: &str) -> Result<bool, StoreError> {
        use aws_sdk_dynamodb::operation::put_item::PutItemError;
        let expires = jiff::Timestamp::now().as_second() + CHAT_THREAD_TTL_SECS;
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("CHAT#{team}#{key}")))
            .item("sk", s("CHAT"))
            .item("value", s(value))
            .item("expires_at", n(expires))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.as_service_error(), Some(PutItemError::ConditionalCheckFailedException(_))) => {
                Ok(false)
            }
            Err(e) => Err(unavailable("dynamodb put chat thread", e)),
        }
    }
}
