//! Intake of PagerDuty Generic Webhooks v3 (design §4): verify the signature over the raw body, validate,
//! dedupe, store, enqueue, answer 202. No cluster or LLM call ever happens here.
//!
//! Answers: 202 accepted (also for duplicates, unsupported event types and our own echoes, which PagerDuty must
//! not retry), 400 malformed, 401 bad or missing signature, 413 too large, 503 for our own transient faults (so
//! PagerDuty retries). Every error body is `{"error": {"code": "...", "message": "..."}}`.

use std::collections::BTreeMap;

use domain::billing::{Metered, Period};
use domain::ids::{CorrelationId, IncidentId};
use domain::incident::{Actor, AlertSource, AuditEvent, Incident};
use domain::ports::{Retryable, SecretsError};
use domain::state::{IgnoreReason, State};
use domain::{Envelope, StageMessage, TeamId};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::IntakeDeps as Deps;

/// PagerDuty guarantees delivery up to 55 KB and drops bodies over 256 KB; we accept up to the latter.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Prefix of every note the agent writes, so its echoes are recognised.
pub const NOTE_PREFIX: &str = "[DreamOps]";

pub const SIGNATURE_HEADER: &str = "x-pagerduty-signature";
pub const WEBHOOK_ID_HEADER: &str = "x-webhook-id";

/// What the transport hands the intake.
#[derive(Debug, Clone, Copy)]
pub struct WebhookRequest<'a> {
    pub team: &'a str,
    pub signature: Option<&'a str>,
    pub webhook_id: Option<&'a str>,
    pub body: &'a [u8],
}

/// The HTTP answer, independent of the HTTP library.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub(crate) fn error(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self { status, body: json!({"error": {"code": code, "message": message.into()}}) }
    }
    pub(crate) fn accepted(status: &str, extra: Value) -> Self {
        let mut body = json!({"status": status});
        if let (Some(b), Value::Object(e)) = (body.as_object_mut(), extra) {
            b.extend(e);
        }
        Self { status: 202, body }
    }
}

/// Hex HMAC-SHA256 of `body` under `secret`, as PagerDuty computes it (`v1=` entries).
pub fn sign(secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so construction cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Checks `X-PagerDuty-Signature` (comma-separated `v1=<hex>` entries) against every secret, in constant time.
pub fn verify_signature(header: &str, secrets: &[domain::ports::Secret], body: &[u8]) -> bool {
    let candidates: Vec<Vec<u8>> = header
        .split(',')
        .filter_map(|e| e.trim().strip_prefix("v1="))
        .filter_map(|h| hex::decode(h.trim()).ok())
        .collect();
    let mut ok = false;
    for s in secrets {
        let mut mac = match Hmac::<Sha256>::new_from_slice(s.expose().as_bytes()) {
            Ok(m) => m,
            Err(_) => continue,
        };
        mac.update(body);
        let expected = mac.finalize().into_bytes();
        for c in &candidates {
            // `ct_eq` is constant time for equal lengths; a length mismatch reveals nothing secret.
            ok |= bool::from(expected.as_slice().ct_eq(c.as_slice()));
        }
    }
    ok
}

// A correctly signed PagerDuty delivery is read leniently: PagerDuty drops a webhook that is answered 4xx, so a
// strict parser would lose real pages over a field the agent does not need. Only the event type and the
// incident id are required; every other field is taken when it has a usable form (a number sent as a string, an
// integer where text was expected) and ignored when it does not (null, an object, an array). Text is kept as sent,
// bidi and control characters included: it is data, rendered safely wherever it is shown.

#[derive(Debug)]
struct Event {
    id: String,
    event_type: String,
    occurred_at: Option<String>,
    agent: Option<Reference>,
    data: Data,
}

#[derive(Debug, Clone)]
struct Reference {
    id: Option<String>,
    summary: Option<String>,
}

/// `event.data`: the fields of the incident (or the note) the agent reads; every other field is skipped unread.
#[derive(Debug, Default)]
struct Data {
    id: Scalar,
    number: Scalar,
    title: Scalar,
    urgency: Scalar,
    html_url: Scalar,
    created_at: Scalar,
    service: Option<Reference>,
    /// An `incident.annotated` note's text.
    content: Scalar,
}

#[derive(Debug)]
struct IncidentData {
    id: String,
    number: Option<u64>,
    title: Option<String>,
    urgency: Option<String>,
    html_url: Option<String>,
    created_at: Option<String>,
    service: Option<Reference>,
}

/// One field's value as the lenient reader keeps it: a string, a number (in its JSON form), a boolean, or nothing
/// (absent, null, an object or an array, which are skipped).
#[derive(Debug, Default)]
enum Scalar {
    #[default]
    None,
    Str(String),
    Number(serde_json::Number),
    Bool(bool),
}

impl Scalar {
    /// As text: strings as they are (empty is absent), numbers and booleans in their JSON form.
    fn text(&self) -> Option<String> {
        match self {
            Self::Str(s) if !s.is_empty() => Some(s.clone()),
            Self::Number(n) => Some(n.to_string()),
            Self::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// A non-negative integer, sent as a number or as a string of digits.
    fn count(&self) -> Option<u64> {
        match self {
            Self::Number(n) => n.as_u64(),
            Self::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }
}

// The delivery is read straight into these fields rather than into a `serde_json::Value` tree (which allocated a
// map node per object and a string per field of the whole body, most of it never read): values of fields the
// agent does not read are skipped as they are parsed. It accepts what the tree did: any JSON type anywhere (a
// field of an unusable type reads as absent), and a repeated key keeps its last value, as the tree's map did.

/// One JSON value as the lenient reader reads it: an object field by field into `T`, anything else as a [`Scalar`]
/// (arrays are skipped and read as [`Scalar::None`]).
enum Json<T> {
    Object(T),
    Scalar(Scalar),
}

impl<T> Json<T> {
    /// The object, or `None` for any other JSON value.
    fn object(self) -> Option<T> {
        match self {
            Self::Object(t) => Some(t),
            Self::Scalar(_) => None,
        }
    }
}

/// A type read from a JSON object's fields.
trait Fields: Default {
    /// Reads the value of `key` from `map` (with `next_value`), or skips it.
    fn field<'de, A: serde::de::MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error>;
}

fn skip<'de, A: serde::de::MapAccess<'de>>(map: &mut A) -> Result<(), A::Error> {
    map.next_value::<serde::de::IgnoredAny>().map(drop)
}

/// An object none of whose fields is read.
#[derive(Default)]
struct Skipped;

impl Fields for Skipped {
    fn field<'de, A: serde::de::MapAccess<'de>>(&mut self, _: &str, map: &mut A) -> Result<(), A::Error> {
        skip(map)
    }
}

impl<'de, T: Fields> serde::Deserialize<'de> for Json<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<T>(std::marker::PhantomData<T>);
        impl<'de, T: Fields> serde::de::Visitor<'de> for Visit<T> {
            type Value = Json<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = T::default();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    out.field(&key, &mut map)?;
                }
                Ok(Json::Object(out))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Json::Scalar(Scalar::None))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Json::Scalar(Scalar::Str(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Json::Scalar(Scalar::Str(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Json::Scalar(Scalar::Number(v.into())))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Json::Scalar(Scalar::Number(v.into())))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Json::Scalar(serde_json::Number::from_f64(v).map_or(Scalar::None, Scalar::Number)))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Json::Scalar(Scalar::Bool(v)))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Json::Scalar(Scalar::None))
            }
        }
        d.deserialize_any(Visit(std::marker::PhantomData))
    }
}

impl<'de> serde::Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Json::<Skipped>::deserialize(d)? {
            Json::Scalar(s) => s,
            Json::Object(Skipped) => Scalar::None,
        })
    }
}

/// The body: `{"event": {...}}`.
#[derive(Default)]
struct Body {
    event: Option<RawEvent>,
}

#[derive(Default)]
struct RawEvent {
    id: Scalar,
    event_type: Scalar,
    occurred_at: Scalar,
    agent: Option<Reference>,
    data: Data,
}

/// A `{id, summary}` reference; a bare string is taken as the id.
#[derive(Default)]
struct RawReference {
    id: Scalar,
    summary: Scalar,
}

/// Reads a reference field: an object, or a bare (non-empty) string taken as the id; anything else is absent.
fn reference<'de, A: serde::de::MapAccess<'de>>(map: &mut A) -> Result<Option<Reference>, A::Error> {
    Ok(match map.next_value::<Json<RawReference>>()? {
        Json::Object(r) => Some(Reference { id: r.id.text(), summary: r.summary.text() }),
        Json::Scalar(Scalar::Str(id)) if !id.is_empty() => Some(Reference { id: Some(id), summary: None }),
        Json::Scalar(_) => None,
    })
}

impl Fields for RawReference {
    fn field<'de, A: serde::de::MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
        match key {
            "id" => self.id = map.next_value()?,
            "summary" => self.summary = map.next_value()?,
            _ => skip(map)?,
        }
        Ok(())
    }
}

impl Fields for Body {
    fn field<'de, A: serde::de::MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
        match key {
            "event" => self.event = map.next_value::<Json<RawEvent>>()?.object(),
            _ => skip(map)?,
        }
        Ok(())
    }
}

impl Fields for RawEvent {
    fn field<'de, A: serde::de::MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
        match key {
            "id" => self.id = map.next_value()?,
            "event_type" => self.event_type = map.next_value()?,
            "occurred_at" => self.occurred_at = map.next_value()?,
            "agent" => self.agent = reference(map)?,
            "data" => self.data = map.next_value::<Json<Data>>()?.object().unwrap_or_default(),
            _ => skip(map)?,
        }
        Ok(())
    }
}

impl Fields for Data {
    fn field<'de, A: serde::de::MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
        match key {
            "id" => self.id = map.next_value()?,
            "number" => self.number = map.next_value()?,
            "title" => self.title = map.next_value()?,
            "urgency" => self.urgency = map.next_value()?,
            "html_url" => self.html_url = map.next_value()?,
            "created_at" => self.created_at = map.next_value()?,
            "service" => self.service = reference(map)?,
            "content" => self.content = map.next_value()?,
            _ => skip(map)?,
        }
        Ok(())
    }
}

/// Event types are short ASCII words separated by dots (`incident.triggered`).
fn valid_event_type(t: &str) -> bool {
    !t.is_empty() && t.len() <= 100 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
}

fn parse_event(body: &[u8]) -> Result<Event, Reply> {
    let body: Json<Body> = serde_json::from_slice(body)
        .map_err(|e| Reply::error(400, "malformed_json", format!("body is not a PagerDuty v3 webhook: {e}")))?;
    let Some(ev) = body.object().and_then(|b| b.event) else {
        return Err(Reply::error(400, "malformed_json", "body is not a PagerDuty v3 webhook: no `event` object"));
    };
    let Some(event_type) = ev.event_type.as_str().filter(|t| valid_event_type(t)) else {
        return Err(Reply::error(400, "malformed_json", "event.event_type is missing or not an event type"));
    };
    Ok(Event {
        id: ev.id.text().unwrap_or_default(),
        event_type: event_type.to_owned(),
        occurred_at: ev.occurred_at.text(),
        agent: ev.agent,
        data: ev.data,
    })
}

/// The incident id of a triggering delivery: derived from the team and `X-Webhook-Id`, so a redelivery maps to
/// the same incident and the conditional create dedupes it atomically.
pub fn incident_id_for(team: &TeamId, webhook_id: &str) -> IncidentId {
    let digest = Sha256::digest(format!("{team}/{webhook_id}").as_bytes());
    IncidentId::from_string(format!("inc_{}", &hex::encode(digest)[..32]))
}

pub(crate) fn unavailable(what: &str, e: impl std::fmt::Display) -> Reply {
    tracing::warn!(error = %e, "Intake could not {what}; asking the sender to retry.");
    Reply::error(503, "unavailable", format!("temporarily unable to {what}; retry later"))
}

/// The checks every webhook passes first: the body fits (413) and the team in the path is a valid id (404).
pub(crate) fn admit(deps: &Deps, team: &str, body: &[u8]) -> Result<TeamId, Reply> {
    if body.len() > deps.config.max_body_bytes {
        return Err(Reply::error(
            413,
            "payload_too_large",
            format!("body of {} bytes exceeds {} bytes", body.len(), deps.config.max_body_bytes),
        ));
    }
    TeamId::parse(team).map_err(|e| Reply::error(404, "unknown_team", e.to_string()))
}

/// Handles one PagerDuty v3 delivery.
pub async fn pagerduty(deps: &Deps, req: WebhookRequest<'_>) -> Reply {
    let team = match admit(deps, req.team, req.body) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let Some(signature) = req.signature.filter(|s| !s.trim().is_empty()) else {
        return Reply::error(401, "missing_signature", "X-PagerDuty-Signature header is required");
    };
    let secrets = match deps.secrets.pagerduty_signing_secrets(&team).await {
        Ok(s) if !s.is_empty() => s,
        Ok(_) | Err(SecretsError::Missing(_)) => {
            return Reply::error(
                401,
                "no_signing_secret",
                format!("no PagerDuty signing secret is configured for team {team}"),
            );
        }
        Err(e) => return unavailable("read the signing secret", e),
    };
    if !verify_signature(signature, &secrets, req.body) {
        return Reply::error(401, "bad_signature", "no v1 signature matches the body");
    }
    let Some(webhook_id) = req.webhook_id.filter(|w| !w.is_empty() && w.len() <= 128) else {
        return Reply::error(400, "missing_webhook_id", "X-Webhook-Id header is required (1-128 characters)");
    };
    let ev = match parse_event(req.body) {
        Ok(ev) => ev,
        Err(r) => return r,
    };
    if let Some(bot) = &deps.config.pagerduty_bot_user_id
        && ev.agent.as_ref().and_then(|a| a.id.as_deref()) == Some(bot.as_str())
    {
        return Reply::accepted("ignored", json!({"reason": "own_echo"}));
    }
    match ev.event_type.as_str() {
        "incident.triggered" | "incident.reopened" => trigger(deps, &team, webhook_id, &ev).await,
        "incident.acknowledged" | "incident.resolved" => human_update(deps, &team, webhook_id, &ev).await,
        "incident.annotated" => {
            let content = ev.data.content.as_str().unwrap_or_default();
            if content.starts_with(NOTE_PREFIX) {
                Reply::accepted("ignored", json!({"reason": "own_echo"}))
            } else {
                Reply::accepted("ignored", json!({"reason": "unsupported_event_type", "event_type": ev.event_type}))
            }
        }
        other => Reply::accepted("ignored", json!({"reason": "unsupported_event_type", "event_type": other})),
    }
}

fn incident_data(ev: &Event) -> Result<IncidentData, Reply> {
    let d = &ev.data;
    let Some(id) = d.id.text().filter(|id| id.len() <= 200) else {
        return Err(Reply::error(
            400,
            "invalid_event",
            "event.data.id (the PagerDuty incident id) is missing or invalid",
        ));
    };
    Ok(IncidentData {
        id,
        number: d.number.count(),
        title: d.title.text(),
        urgency: d.urgency.text(),
        html_url: d.html_url.text(),
        created_at: d.created_at.text(),
        service: d.service.clone(),
    })
}

async fn trigger(deps: &Deps, team: &TeamId, webhook_id: &str, ev: &Event) -> Reply {
    let data = match incident_data(ev) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let id = incident_id_for(team, webhook_id);
    let now = deps.clock.now().to_string();
    let correlation_id = CorrelationId::generate();
    let urgency = data.urgency.clone().unwrap_or_else(|| "high".into());
    let alert = domain::Alert {
        title: data.title.clone().unwrap_or_default(),
        service: data.service.as_ref().and_then(|s| s.summary.clone()).unwrap_or_default(),
        severity: if urgency == "high" { "critical".into() } else { "warning".into() },
        urgency,
        source_system: "pagerduty".into(),
        alertname: None,
        details: data.title.clone().unwrap_or_default(),
        labels: BTreeMap::new(),
        fired_at: ev.occurred_at.clone().or(data.created_at.clone()).unwrap_or_else(|| now.clone()),
    };
    let incident = Incident {
        id: id.clone(),
        team_id: team.clone(),
        correlation_id: correlation_id.clone(),
        state: State::Received,
        version: 1,
        created_at: now.clone(),
        updated_at: now.clone(),
        source: AlertSource::PagerDuty {
            incident_id: data.id.clone(),
            incident_number: data.number,
            html_url: data.html_url.clone(),
            service_id: data.service.as_ref().and_then(|s| s.id.clone()),
            webhook_id: webhook_id.to_owned(),
            event_id: ev.id.clone(),
        },
        alert,
        workload: None,
        diagnosis: None,
        decision: None,
        actions: Vec::new(),
        verification: None,
        fingerprint: None,
        outcome: None,
    };
    let event = AuditEvent {
        incident_id: id.clone(),
        at: now,
        actor: Actor::Source("pagerduty".into()),
        stage: "intake".into(),
        from: None,
        to: Some(State::Received),
        what: format!("{} for PagerDuty incident {} ({})", ev.event_type, data.id, incident.alert.title),
        why: format!("webhook {webhook_id} verified"),
        correlation_id,
    };
    open(deps, incident, &event).await
}

/// Stores a new incident with its first audit event (the conditional create dedupes redeliveries atomically) and
/// queues its analysis; answers `accepted`, or `duplicate` for an incident that exists already. With metering on,
/// the create also counts one alert of the team's period; over the limit the incident is stored ignored
/// (`quota_exceeded`), the team is told once per period, and the sender still gets 202.
pub(crate) async fn open(deps: &Deps, incident: Incident, event: &AuditEvent) -> Reply {
    let (id, team) = (incident.id.clone(), incident.team_id.clone());
    let created = match &deps.metering {
        None => deps.store.create(&incident, event).await,
        Some(m) => {
            let (period, meter) = match m.meter(&team, deps.clock.now()).await {
                Ok(p) => p,
                Err(e) => return unavailable("read the team's plan", e),
            };
            match deps.store.create_metered(&incident, event, &meter).await {
                Ok(Metered::Created) => Ok(true),
                Ok(Metered::Exists) => Ok(false),
                Ok(Metered::OverQuota) => return over_quota(deps, incident, event, &period).await,
                Err(e) => Err(e),
            }
        }
    };
    let created = match created {
        Ok(c) => c,
        Err(e) if e.is_retryable() => return unavailable("store the incident", e),
        Err(e) => return Reply::error(500, "store_error", e.to_string()),
    };
    let stored = if created {
        incident
    } else {
        match deps.store.get(&id).await {
            Ok(Some(i)) => i,
            Ok(None) => return unavailable("read the incident", "vanished"),
            Err(e) => return unavailable("read the incident", e),
        }
    };
    // A redelivery of a delivery whose enqueue failed re-enqueues; analysis (and the quota notice) is idempotent.
    let next = match stored.state {
        _ if created => Some(StageMessage::Analyze),
        State::Received => Some(StageMessage::Analyze),
        State::Ignored(IgnoreReason::QuotaExceeded) => Some(StageMessage::QuotaExceeded),
        _ => None,
    };
    if let Some(body) = next {
        let msg = Envelope::new(id.clone(), team.clone(), stored.correlation_id.clone(), body);
        if let Err(e) = deps.queue.send(&msg, std::time::Duration::ZERO).await {
            return unavailable("enqueue the analysis", e);
        }
    }
    if created {
        tracing::info!(incident_id = %id, team_id = %team, source = %stored.alert.source_system, "Incident received.");
        Reply::accepted("accepted", json!({"incident_id": id}))
    } else {
        Reply::accepted("duplicate", json!({"incident_id": id}))
    }
}

/// Stores an incident that arrived with the period's alerts used up, closed as `quota_exceeded` (not counted),
/// and queues the notice that tells the team.
async fn over_quota(deps: &Deps, mut incident: Incident, event: &AuditEvent, period: &Period) -> Reply {
    let (id, team) = (incident.id.clone(), incident.team_id.clone());
    let outcome = crate::quota::blocked_outcome(&team, period);
    incident.state = State::Ignored(IgnoreReason::QuotaExceeded);
    incident.outcome = Some(outcome.clone());
    let event = AuditEvent { to: Some(incident.state), why: format!("{}; {outcome}", event.why), ..event.clone() };
    match deps.store.create(&incident, &event).await {
        Ok(true) => {}
        // A concurrent delivery of the same alert stored it first (counted, if the limit was raised meanwhile).
        Ok(false) => return Reply::accepted("duplicate", json!({"incident_id": id})),
        Err(e) if e.is_retryable() => return unavailable("store the incident", e),
        Err(e) => return Reply::error(500, "store_error", e.to_string()),
    }
    let msg = Envelope::new(id.clone(), team.clone(), incident.correlation_id.clone(), StageMessage::QuotaExceeded);
    if let Err(e) = deps.queue.send(&msg, std::time::Duration::ZERO).await {
        return unavailable("enqueue the quota notice", e);
    }
    tracing::info!(incident_id = %id, team_id = %team, period = %period.key, "Alert over quota; not handled.");
    Reply::accepted("ignored", json!({"reason": "quota_exceeded", "incident_id": id}))
}

async fn human_update(deps: &Deps, team: &TeamId, webhook_id: &str, ev: &Event) -> Reply {
    let data = match incident_data(ev) {
        Ok(d) => d,
        Err(r) => return r,
    };
    match deps.store.record_delivery(team, webhook_id).await {
        Ok(true) => {}
        Ok(false) => return Reply::accepted("duplicate", json!({})),
        Err(e) => return unavailable("record the delivery", e),
    }
    let id = match deps.store.find_by_external_id(team, &data.id).await {
        Ok(Some(id)) => id,
        Ok(None) => return Reply::accepted("ignored", json!({"reason": "unknown_incident"})),
        Err(e) => return unavailable("find the incident", e),
    };
    let who = ev.agent.as_ref().and_then(|a| a.summary.clone()).unwrap_or_else(|| "someone".into());
    // A page resolved after the agent handed it over: the follow-up (its issue, its chat message) is queued.
    if ev.event_type == "incident.resolved"
        && let Ok(Some(inc)) = deps.store.get(&id).await
        && matches!(inc.state, State::Escalated | State::Failed | State::RolledBack)
    {
        let msg = Envelope::new(
            id.clone(),
            team.clone(),
            inc.correlation_id.clone(),
            StageMessage::ResolvedByHuman { by: who.clone() },
        );
        if let Err(e) = deps.queue.send(&msg, std::time::Duration::ZERO).await {
            return unavailable("queue the follow-up", e);
        }
    }
    update_incident(deps, id, &Actor::Human(who.clone()), |rec| {
        let cancels = ev.event_type == "incident.resolved"
            && matches!(rec.next.state, State::Received | State::Analyzing | State::AwaitingApproval);
        let to = State::Ignored(IgnoreReason::ResolvedByHuman);
        if cancels && rec.transition(to, format!("resolved in PagerDuty by {who}"), "pending work cancelled").is_ok() {
            rec.next.outcome = Some(format!("resolved by {who} before the agent acted"));
        } else if cancels {
            rec.note(format!("resolved in PagerDuty by {who}"), "nothing pending to cancel");
        } else {
            rec.note(format!("{} in PagerDuty by {who}", ev.event_type.trim_start_matches("incident.")), "recorded");
        }
    })
    .await
}

/// Applies `change` (by `actor`) to the latest version of an incident and commits it, re-reading a few times when
/// a stage moved the incident meanwhile.
pub(crate) async fn update_incident(
    deps: &Deps,
    id: IncidentId,
    actor: &Actor,
    change: impl Fn(&mut crate::Recorder<'_>),
) -> Reply {
    for _ in 0..3 {
        let inc = match deps.store.get(&id).await {
            Ok(Some(i)) => i,
            Ok(None) => return Reply::accepted("ignored", json!({"reason": "unknown_incident"})),
            Err(e) => return unavailable("read the incident", e),
        };
        let mut rec = crate::Recorder::new(inc, "intake").by(actor.clone());
        change(&mut rec);
        match rec.commit_to(deps.store.as_ref(), deps.clock.as_ref()).await {
            Ok(Some(_)) => return Reply::accepted("accepted", json!({"incident_id": id})),
            Ok(None) => continue,
            Err(e) => return unavailable("update the incident", e),
        }
    }
    unavailable("update the incident", "concurrent updates")
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::ports::Secret;

    #[test]
    fn signatures_accept_any_matching_v1_entry() {
        let body = br#"{"event":{}}"#;
        let good = sign("s3cret", body);
        let secrets = [Secret::new("s3cret")];
        assert!(verify_signature(&format!("v1={good}"), &secrets, body));
        assert!(verify_signature(&format!("v1=deadbeef, v1={good}"), &secrets, body), "rotation: several entries");
        assert!(verify_signature(&format!("v0=zz,v1={good}"), &secrets, body), "other versions ignored");
        assert!(!verify_signature(&format!("v1={good}"), &secrets, b"{\"event\":{} }"), "byte-exact body");
        assert!(!verify_signature(&format!("v2={good}"), &secrets, body));
        assert!(!verify_signature("v1=", &secrets, body));
        assert!(!verify_signature(&good, &secrets, body), "prefix required");
        let rotated = [Secret::new("old"), Secret::new("s3cret")];
        assert!(verify_signature(&format!("v1={good}"), &rotated, body), "any configured secret");
    }

    #[test]
    fn incident_ids_are_stable_per_delivery() {
        let t = TeamId::parse("payments").unwrap();
        assert_eq!(incident_id_for(&t, "w1"), incident_id_for(&t, "w1"));
        assert_ne!(incident_id_for(&t, "w1"), incident_id_for(&t, "w2"));
        assert_ne!(incident_id_for(&t, "w1"), incident_id_for(&TeamId::parse("other").unwrap(), "w1"));
    }

    fn parsed(body: &str) -> Result<(Event, IncidentData), String> {
        let ev = parse_event(body.as_bytes()).map_err(|r| r.body["error"]["code"].to_string())?;
        let data = incident_data(&ev).map_err(|r| r.body["error"]["code"].to_string())?;
        Ok((ev, data))
    }

    #[test]
    fn the_event_is_read_leniently_field_by_field() {
        // Numbers as text, text as numbers, references as bare ids, unusable types read as absent.
        let (ev, d) = parsed(
            r#"{"x":[1,{"y":null}],"event":{"id":42,"event_type":"incident.triggered","occurred_at":null,
                "agent":"PBOT","client":{"a":[[]]},
                "data":{"id":"Q1","number":"7","title":12.5,"urgency":true,"html_url":{"u":1},"created_at":[],
                        "service":{"id":9,"summary":"web","extra":{"deep":[1,2,3]}},"assignees":[{"id":"U"}]}}}"#,
        )
        .unwrap();
        assert_eq!((ev.id.as_str(), ev.event_type.as_str(), ev.occurred_at), ("42", "incident.triggered", None));
        let agent = ev.agent.unwrap();
        assert_eq!((agent.id.as_deref(), agent.summary), (Some("PBOT"), None));
        assert_eq!((d.id.as_str(), d.number), ("Q1", Some(7)));
        assert_eq!((d.title.as_deref(), d.urgency.as_deref()), (Some("12.5"), Some("true")));
        assert_eq!((d.html_url, d.created_at), (None, None));
        let service = d.service.unwrap();
        assert_eq!((service.id.as_deref(), service.summary.as_deref()), (Some("9"), Some("web")));

        // A repeated key keeps its last value (as a JSON object map does), at every level.
        let (ev, d) = parsed(
            r#"{"event":{"event_type":"incident.acknowledged","event_type":"incident.resolved",
                "data":{"id":"A","id":"B","service":"S1","service":["x"]}}}"#,
        )
        .unwrap();
        assert_eq!((ev.event_type.as_str(), d.id.as_str()), ("incident.resolved", "B"));
        assert!(d.service.is_none(), "the last `service` was an array");

        // Text is kept as sent: escapes decoded, bidi and control characters included.
        let (_, d) =
            parsed(r#"{"event":{"event_type":"incident.triggered","data":{"id":"Q\u202e1","title":"a\tb\u0000"}}}"#)
                .unwrap();
        assert_eq!((d.id.as_str(), d.title.as_deref()), ("Q\u{202e}1", Some("a\tb\u{0}")));

        // An annotation's text is read only when it is text.
        let ev =
            parse_event(br#"{"event":{"event_type":"incident.annotated","data":{"content":"[DreamOps] x"}}}"#).unwrap();
        assert_eq!(ev.data.content.as_str(), Some("[DreamOps] x"));
        let ev = parse_event(br#"{"event":{"event_type":"incident.annotated","data":{"content":5}}}"#).unwrap();
        assert_eq!(ev.data.content.as_str(), None);
    }

    #[test]
    fn only_the_event_type_and_the_incident_id_are_required() {
        let malformed = "\"malformed_json\"";
        for body in ["", "[]", "null", "\"event\"", "{}", r#"{"event":[]}"#, r#"{"event":"incident.triggered"}"#] {
            assert_eq!(parsed(body).err().as_deref(), Some(malformed), "{body}");
        }
        for body in [
            r#"{"event":{"data":{"id":"Q"}}}"#,
            r#"{"event":{"event_type":7,"data":{"id":"Q"}}}"#,
            r#"{"event":{"event_type":"incident triggered","data":{"id":"Q"}}}"#,
            r#"{"event":{"event_type":"incident.triggered","data":{"id":"Q"}} "#,
            r#"{"event":{"event_type":"incident.triggered","data":{"id":"Q"}}} trailing"#,
        ] {
            assert_eq!(parsed(body).err().as_deref(), Some(malformed), "{body}");
        }
        let invalid = "\"invalid_event\"";
        for data in ["", r#","data":null"#, r#","data":{"id":null}"#, r#","data":{"id":""}"#, r#","data":{"id":{}}"#] {
            let body = format!(r#"{{"event":{{"event_type":"incident.triggered"{data}}}}}"#);
            assert_eq!(parsed(&body).err().as_deref(), Some(invalid), "{body}");
        }
        let long =
            format!(r#"{{"event":{{"event_type":"incident.triggered","data":{{"id":"{}"}}}}}}"#, "Q".repeat(201));
        assert_eq!(parsed(&long).err().as_deref(), Some(invalid));
    }
}
