//! The billing store and metered incident creates on the same DynamoDB table (item layout in `dynamo.rs`).
//!
//! The usage counter of (team, period) is an `ADD` in the same `TransactWriteItems` as the incident's
//! conditional put, conditioned on the count being under the plan's limit: concurrent deliveries can never exceed
//! it, and a redelivery (the incident exists) cancels the whole transaction, so it never counts twice.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use domain::TeamId;
use domain::billing::{BillingAccount, Meter, Metered, Notice, Order};
use domain::incident::{AuditEvent, Incident};
use domain::ports::{BillingStore, StoreError};

use crate::dynamo::{DynamoStore, Item, json, millis, n, parse, put, s, unavailable};

const GSI_TEAM: &str = "gsi1";
const GSI_ACTIVE: &str = "gsi2";

fn usage_key(team: &TeamId, period: &str) -> (String, String) {
    (format!("USAGE#{team}"), period.to_owned())
}

fn account_item(a: &BillingAccount) -> Result<Item, StoreError> {
    Ok(Item::from([
        ("pk".into(), s(format!("BILLING#{}", a.team_id))),
        ("sk".into(), s("ACCOUNT")),
        ("body".into(), s(json(a)?)),
        ("version".into(), n(a.version)),
        ("gsi1pk".into(), s("ACCOUNTS")),
        ("gsi1sk".into(), s(a.team_id.to_string())),
    ]))
}

fn order_item(o: &Order) -> Result<Item, StoreError> {
    let mut item = Item::from([
        ("pk".into(), s(format!("ORDER#{}", o.id))),
        ("sk".into(), s("ORDER")),
        ("body".into(), s(json(o)?)),
        ("version".into(), n(o.version)),
        ("gsi1pk".into(), s(format!("ORDERS#{}", o.team_id))),
        ("gsi1sk".into(), s(format!("{:016}#{}", millis(&o.created_at), o.id))),
    ]);
    // Open orders are in a sparse index, so the daily reconciliation reads only them.
    if o.state.is_open() {
        item.insert("gsi2pk".into(), s("OPEN_ORDERS"));
        item.insert("gsi2sk".into(), s(o.id.clone()));
    }
    Ok(item)
}

fn versioned(version: u64) -> (&'static str, Item) {
    if version == 0 {
        ("attribute_not_exists(pk)", Item::new())
    } else {
        (
            "attribute_exists(pk) AND #version = :version",
            Item::from([("#version".into(), s("")), (":version".into(), n(version))]),
        )
    }
}

/// The version an order replacement must find stored.
fn replaced_version(next: &Order) -> Result<u64, StoreError> {
    match next.version {
        0 | 1 => Err(StoreError::Corrupt(format!("order {} replaced without a version bump", next.id))),
        v => Ok(v - 1),
    }
}

/// The cancellation reason codes of a cancelled transaction, in item order.
fn cancellation_codes(
    e: &aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError>,
) -> Option<Vec<String>> {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    match e.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(t)) => {
            Some(t.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None").to_owned()).collect())
        }
        _ => None,
    }
}

impl DynamoStore {
    /// See `IncidentStore::create_metered`.
    pub(crate) async fn create_metered_items(
        &self,
        mut items: Vec<TransactWriteItem>,
        team: &TeamId,
        meter: &Meter,
    ) -> Result<Metered, StoreError> {
        let (pk, sk) = usage_key(team, &meter.period);
        let mut update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .update_expression("ADD alerts :one")
            .expression_attribute_values(":one", n(1));
        if let Some(limit) = meter.limit {
            // `ADD` on a missing attribute starts from 0, so a new period passes the condition.
            update = update
                .condition_expression("attribute_not_exists(alerts) OR alerts < :limit")
                .expression_attribute_values(":limit", n(limit));
        }
        let update = update.build().map_err(|e| StoreError::Corrupt(e.to_string()))?;
        items.push(TransactWriteItem::builder().update(update).build());
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(Metered::Created),
            Err(e) => match cancellation_codes(&e) {
                Some(codes) if codes.first().map(String::as_str) == Some("ConditionalCheckFailed") => {
                    Ok(Metered::Exists)
                }
                Some(codes) if codes.last().map(String::as_str) == Some("ConditionalCheckFailed") => {
                    Ok(Metered::OverQuota)
                }
                _ => Err(unavailable("dynamodb metered create", e)),
            },
        }
    }

    async fn conditional_put(
        &self,
        items: Vec<TransactWriteItem>,
        what: &str,
        stale: String,
    ) -> Result<(), StoreError> {
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(()),
            Err(e) if cancellation_codes(&e).is_some_and(|c| c.iter().any(|c| c == "ConditionalCheckFailed")) => {
                Err(StoreError::Stale(stale))
            }
            Err(e) => Err(unavailable(what, e)),
        }
    }
}

/// Helper for the incident store: the items of an incident create plus the usage update.
pub(crate) async fn create_metered(
    store: &DynamoStore,
    incident: &Incident,
    event: &AuditEvent,
    meter: &Meter,
) -> Result<Metered, StoreError> {
    let items = store.create_items(incident, event)?;
    store.create_metered_items(items, &incident.team_id, meter).await
}

#[async_trait]
impl BillingStore for DynamoStore {
    async fn account(&self, team: &TeamId) -> Result<Option<BillingAccount>, StoreError> {
        self.get_item(format!("BILLING#{team}"), "ACCOUNT").await?.as_ref().map(parse).transpose()
    }

    async fn accounts(&self) -> Result<Vec<BillingAccount>, StoreError> {
        let items = self
            .query_all("dynamodb list billing accounts", || {
                self.client
                    .query()
                    .table_name(&self.table)
                    .index_name(GSI_TEAM)
                    .key_condition_expression("gsi1pk = :accounts")
                    .expression_attribute_values(":accounts", s("ACCOUNTS"))
            })
            .await?;
        items.iter().map(parse).collect()
    }

    async fn usage(&self, team: &TeamId, period: &str) -> Result<u64, StoreError> {
        let (pk, sk) = usage_key(team, period);
        let item = self.get_item(pk, &sk).await?;
        Ok(item
            .as_ref()
            .and_then(|i| i.get("alerts"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    async fn claim_notice(&self, team: &TeamId, period: &str, notice: Notice) -> Result<bool, StoreError> {
        use aws_sdk_dynamodb::operation::put_item::PutItemError;
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("NOTICE#{team}#{period}#{}", notice.as_str())))
            .item("sk", s("NOTICE"))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.as_service_error(), Some(PutItemError::ConditionalCheckFailedException(_))) => {
                Ok(false)
            }
            Err(e) => Err(unavailable("dynamodb claim notice", e)),
        }
    }

    async fn create_order(&self, order: &Order) -> Result<bool, StoreError> {
        let items = vec![put(&self.table, order_item(order)?, Some(versioned(0)))?];
        match self.conditional_put(items, "dynamodb create order", String::new()).await {
            Ok(()) => Ok(true),
            Err(StoreError::Stale(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn order(&self, id: &str) -> Result<Option<Order>, StoreError> {
        self.get_item(format!("ORDER#{id}"), "ORDER").await?.as_ref().map(parse).transpose()
    }

    async fn orders(&self, team: &TeamId, limit: usize) -> Result<Vec<Order>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI_TEAM)
            .key_condition_expression("gsi1pk = :orders")
            .expression_attribute_values(":orders", s(format!("ORDERS#{team}")))
            .scan_index_forward(false)
            .limit(i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000))
            .send()
            .await
            .map_err(|e| unavailable("dynamodb list orders", e))?;
        out.items.unwrap_or_default().iter().map(parse).collect()
    }

    async fn open_orders(&self) -> Result<Vec<Order>, StoreError> {
        let items = self
            .query_all("dynamodb list open orders", || {
                self.client
                    .query()
                    .table_name(&self.table)
                    .index_name(GSI_ACTIVE)
                    .key_condition_expression("gsi2pk = :open")
                    .expression_attribute_values(":open", s("OPEN_ORDERS"))
            })
            .await?;
        let all: Vec<Order> = items.iter().map(parse).collect::<Result<_, _>>()?;
        // The index is eventually consistent: drop anything closed since.
        Ok(all.into_iter().filter(|o| o.state.is_open()).collect())
    }

    async fn update_order(&self, next: &Order) -> Result<(), StoreError> {
        let items = vec![put(&self.table, order_item(next)?, Some(versioned(replaced_version(next)?)))?];
        self.conditional_put(items, "dynamodb update order", format!("order {}", next.id)).await
    }

    async fn settle(&self, order: &Order, account: &BillingAccount) -> Result<(), StoreError> {
        let items = vec![
            put(&self.table, order_item(order)?, Some(versioned(replaced_version(order)?)))?,
            put(&self.table, account_item(account)?, Some(versioned(account.version.saturating_sub(1))))?,
        ];
        self.conditional_put(items, "dynamodb settle order", format!("order {} or its team's account", order.id)).await
    }
}
