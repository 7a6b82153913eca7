//! The team store and the rate counters on the same DynamoDB table (item layout in `dynamo.rs`). Replacing writes
//! are transactions whose first item is conditional on the version read, with the audit event in the same
//! transaction, so a change and its record are never split.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ReturnValue, TransactWriteItem, Update};
use domain::ports::{Page, RateCounter, StoreError, TeamStore};
use domain::{ApiKey, ControlEvent, Team, TeamId};

use crate::dynamo::{DynamoStore, Item, first_condition_failed, json, millis, n, parse, put, s, text, unavailable};

const GSI_TEAM: &str = "gsi1";

fn team_item(t: &Team) -> Result<Item, StoreError> {
    Ok(Item::from([
        ("pk".into(), s(format!("TEAM#{}", t.id))),
        ("sk".into(), s("META")),
        ("body".into(), s(json(t)?)),
        ("version".into(), n(t.version)),
        ("gsi1pk".into(), s("TEAMS")),
        ("gsi1sk".into(), s(t.id.to_string())),
    ]))
}

fn key_scope(team: Option<&TeamId>) -> String {
    team.map_or_else(|| "*".to_owned(), |t| t.to_string())
}

fn key_item(k: &ApiKey) -> Result<Item, StoreError> {
    Ok(Item::from([
        ("pk".into(), s(format!("KEY#{}", k.hash))),
        ("sk".into(), s("KEY")),
        ("body".into(), s(json(k)?)),
        ("gsi1pk".into(), s(format!("KEYS#{}", key_scope(k.team.as_ref())))),
        ("gsi1sk".into(), s(format!("{}#{}", k.created_at, k.id))),
    ]))
}

fn event_item(e: &ControlEvent) -> Result<Item, StoreError> {
    Ok(Item::from([
        ("pk".into(), s(format!("AUDIT#{}", e.team))),
        ("sk".into(), s(format!("{:016}#{}", millis(&e.at), e.id))),
        ("body".into(), s(json(e)?)),
    ]))
}

impl DynamoStore {
    async fn transact(&self, items: Vec<TransactWriteItem>, what: &str, stale: &str) -> Result<bool, StoreError> {
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(true),
            Err(e) if first_condition_failed(&e) => {
                if stale.is_empty() {
                    Ok(false)
                } else {
                    Err(StoreError::Stale(stale.to_owned()))
                }
            }
            Err(e) => Err(unavailable(what, e)),
        }
    }
}

#[async_trait]
impl TeamStore for DynamoStore {
    async fn create_team(&self, team: &Team, event: &ControlEvent) -> Result<bool, StoreError> {
        let items = vec![
            put(&self.table, team_item(team)?, Some(("attribute_not_exists(pk)", Item::new())))?,
            put(&self.table, event_item(event)?, None)?,
        ];
        self.transact(items, "dynamodb create team", "").await
    }

    async fn team(&self, id: &TeamId) -> Result<Option<Team>, StoreError> {
        self.get_item(format!("TEAM#{id}"), "META").await?.as_ref().map(parse).transpose()
    }

    async fn teams(&self) -> Result<Vec<Team>, StoreError> {
        let items = self
            .query_all("dynamodb list teams", || {
                self.client
                    .query()
                    .table_name(&self.table)
                    .index_name(GSI_TEAM)
                    .key_condition_expression("gsi1pk = :teams")
                    .expression_attribute_values(":teams", s("TEAMS"))
            })
            .await?;
        items.iter().map(parse).collect()
    }

    async fn update_team(&self, prev_version: u64, next: &Team, event: &ControlEvent) -> Result<(), StoreError> {
        if next.version != prev_version + 1 {
            return Err(StoreError::Corrupt("a team update must bump the version by one".into()));
        }
        let condition = Item::from([("#version".into(), s("")), (":version".into(), n(prev_version))]);
        let items = vec![
            put(&self.table, team_item(next)?, Some(("attribute_exists(pk) AND #version = :version", condition)))?,
            put(&self.table, event_item(event)?, None)?,
        ];
        self.transact(items, "dynamodb update team", &format!("team {}", next.id)).await.map(|_| ())
    }

    async fn create_key(&self, key: &ApiKey, event: &ControlEvent) -> Result<(), StoreError> {
        let items = vec![
            put(&self.table, key_item(key)?, Some(("attribute_not_exists(pk)", Item::new())))?,
            put(&self.table, event_item(event)?, None)?,
        ];
        self.transact(items, "dynamodb create api key", &format!("api key {}", key.id)).await.map(|_| ())
    }

    async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
        self.get_item(format!("KEY#{hash}"), "KEY").await?.as_ref().map(parse).transpose()
    }

    async fn keys(&self, team: Option<&TeamId>) -> Result<Vec<ApiKey>, StoreError> {
        let scope = format!("KEYS#{}", key_scope(team));
        let items = self
            .query_all("dynamodb list api keys", || {
                self.client
                    .query()
                    .table_name(&self.table)
                    .index_name(GSI_TEAM)
                    .key_condition_expression("gsi1pk = :scope")
                    .expression_attribute_values(":scope", s(scope.clone()))
            })
            .await?;
        // The index is eventually consistent: each key is read back from its item.
        let mut out = Vec::new();
        for item in &items {
            let listed: ApiKey = parse(item)?;
            if let Some(k) = self.key_by_hash(&listed.hash).await? {
                out.push(k);
            }
        }
        Ok(out)
    }

    async fn revoke_key(
        &self,
        team: Option<&TeamId>,
        id: &str,
        at: &str,
        event: &ControlEvent,
    ) -> Result<Option<ApiKey>, StoreError> {
        let Some(mut key) = self.keys(team).await?.into_iter().find(|k| k.id == id) else {
            return Ok(None);
        };
        if key.revoked_at.is_none() {
            key.revoked_at = Some(at.to_owned());
        }
        let update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(format!("KEY#{}", key.hash)))
            .key("sk", s("KEY"))
            .update_expression("SET body = :body")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":body", s(json(&key)?))
            .build()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let items =
            vec![TransactWriteItem::builder().update(update).build(), put(&self.table, event_item(event)?, None)?];
        if self.transact(items, "dynamodb revoke api key", "").await? { Ok(Some(key)) } else { Ok(None) }
    }

    async fn touch_key(&self, hash: &str, at: &str) -> Result<(), StoreError> {
        let Some(item) = self.get_item(format!("KEY#{hash}"), "KEY").await? else {
            return Ok(());
        };
        let mut key: ApiKey = parse(&item)?;
        key.last_used_at = Some(at.to_owned());
        let body = text(&item, "body").unwrap_or_default().to_owned();
        // Conditional on the body read, so a concurrent revocation is never overwritten by a stale copy.
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("KEY#{hash}")))
            .key("sk", s("KEY"))
            .update_expression("SET body = :body")
            .condition_expression("body = :prev")
            .expression_attribute_values(":body", s(json(&key)?))
            .expression_attribute_values(":prev", s(body))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            // Changed meanwhile (revoked, or touched by another request): the last-used time is best effort.
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => Ok(()),
            Err(e) => Err(unavailable("dynamodb touch api key", e)),
        }
    }

    async fn record(&self, event: &ControlEvent) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(event_item(event)?))
            .send()
            .await
            .map_err(|e| unavailable("dynamodb put audit event", e))?;
        Ok(())
    }

    async fn audit(&self, team: &TeamId, limit: usize, cursor: Option<&str>) -> Result<Page<ControlEvent>, StoreError> {
        let limit = limit.clamp(1, 1000);
        let pk = format!("AUDIT#{team}");
        let mut q = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(pk.clone()))
            .scan_index_forward(false)
            .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX));
        if let Some(c) = cursor {
            let (ms, id) = c.split_once('#').ok_or_else(|| StoreError::Corrupt(format!("bad cursor {c:?}")))?;
            if ms.len() != 16 || !ms.bytes().all(|b| b.is_ascii_digit()) || id.is_empty() {
                return Err(StoreError::Corrupt(format!("bad cursor {c:?}")));
            }
            q = q.set_exclusive_start_key(Some(Item::from([("pk".into(), s(pk)), ("sk".into(), s(c))])));
        }
        let out = q.send().await.map_err(|e| unavailable("dynamodb audit", e))?;
        let rows = out.items.unwrap_or_default();
        let items: Vec<ControlEvent> = rows.iter().take(limit).map(parse).collect::<Result<_, _>>()?;
        let next =
            (rows.len() > limit).then(|| rows.get(limit - 1).and_then(|r| text(r, "sk")).map(str::to_owned)).flatten();
        Ok(Page { items, next })
    }
}

#[async_trait]
impl RateCounter for DynamoStore {
    async fn hit(&self, key: &str, window_secs: u64, now_secs: u64) -> Result<u64, StoreError> {
        let secs = window_secs.max(1);
        let window = now_secs / secs;
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("RL#{key}")))
            .key("sk", s(format!("{secs}#{window}")))
            .update_expression("ADD #n :one SET expires_at = if_not_exists(expires_at, :exp)")
            .expression_attribute_names("#n", "n")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":exp", n((window + 2) * secs))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| unavailable("dynamodb rate counter", e))?;
        Ok(out
            .attributes
            .as_ref()
            .and_then(|a| a.get("n"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(1))
    }

    async fn count(&self, key: &str, window_secs: u64, now_secs: u64) -> Result<u64, StoreError> {
        let secs = window_secs.max(1);
        let item = self.get_item(format!("RL#{key}"), &format!("{secs}#{}", now_secs / secs)).await?;
        Ok(item.as_ref().and_then(|i| i.get("n")).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(0))
    }
}
