//! What keeps a dashboard current: the incident event stream (Server-Sent Events, where the host can stream)
//! and the weekly insight (outcomes and time to resolve).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::Response;
use domain::ports::IncidentStore;
use domain::{Incident, State, TeamId};
use serde::Serialize;

use crate::Control;
use crate::error::ApiError;
use crate::routes::{Call, Reply};
use crate::views::IncidentSummary;

/// The newest incidents the stream compares on each look (older ones rarely change; a change to one is still
/// seen by the list, which the client reloads on `ready`).
const WATCHED: usize = 100;
/// A comment line this often keeps proxies from closing an idle stream.
const KEEPALIVE: Duration = Duration::from_secs(15);
/// A stream ends after this long; the client reconnects, which authenticates its credential again (so a revoked
/// or expired session key stops receiving).
const MAX_STREAM: Duration = Duration::from_secs(600);

struct Watch {
    store: Arc<dyn IncidentStore>,
    team: TeamId,
    /// Incident id → the version last sent (or seen at the start).
    seen: HashMap<String, u64>,
    interval: Duration,
    started: Instant,
    last_sent: Instant,
    first: bool,
    closing: Arc<std::sync::atomic::AtomicBool>,
}

fn event(name: &str, id: Option<&str>, data: &str) -> String {
    let mut s = format!("event: {name}\n");
    if let Some(id) = id {
        s.push_str(&format!("id: {id}\n"));
    }
    // JSON has no raw newlines, but one `data:` line per line keeps the framing right whatever is sent.
    for line in data.lines() {
        s.push_str(&format!("data: {line}\n"));
    }
    s.push('\n');
    s
}

impl Watch {
    async fn look(&mut self) -> Result<Vec<Incident>, domain::ports::StoreError> {
        let page = self.store.list(&self.team, WATCHED, None).await?;
        let mut changed = Vec::new();
        for i in page.items {
            let key = i.id.to_string();
            if self.seen.get(&key) != Some(&i.version) {
                self.seen.insert(key, i.version);
                changed.push(i);
            }
        }
        if self.seen.len() > 4 * WATCHED {
            self.seen.clear();
        }
        Ok(changed)
    }

    /// The next chunk of the stream, or `None` when it ends.
    async fn next(&mut self) -> Option<Bytes> {
        if self.first {
            self.first = false;
            // The baseline: what exists now is what the client's list shows; only changes are sent after it.
            if let Err(e) = self.look().await {
                tracing::warn!(error = %e, "The incident stream could not read the store.");
            }
            self.last_sent = Instant::now();
            return Some(Bytes::from(format!("retry: 2000\n\n{}", event("ready", None, "{}"))));
        }
        loop {
            if self.started.elapsed() >= MAX_STREAM || self.closing.load(std::sync::atomic::Ordering::Relaxed) {
                return None;
            }
            tokio::time::sleep(self.interval).await;
            let mut out = String::new();
            match self.look().await {
                Ok(changed) => {
                    // Oldest change first, so a client applying them in order ends with the newest state.
                    for i in changed.iter().rev() {
                        let summary = IncidentSummary::from(i);
                        let Ok(data) = serde_json::to_string(&summary) else { continue };
                        out.push_str(&event("incident", Some(&format!("{}:{}", i.id, i.version)), &data));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "The incident stream could not read the store."),
            }
            if out.is_empty() && self.last_sent.elapsed() >= KEEPALIVE {
                out.push_str(": keep-alive\n\n");
            }
            if !out.is_empty() {
                self.last_sent = Instant::now();
                return Some(Bytes::from(out));
            }
        }
    }
}

pub(crate) async fn stream(c: &Control, call: Call) -> Result<Reply, ApiError> {
    let team = call.team()?.id.clone();
    let Some(interval) = c.config.stream_interval else {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "streaming_unavailable",
            format!(
                "this host cannot stream answers (API Gateway buffers them): poll GET /v1/teams/{team}/incidents \
                 with If-None-Match"
            ),
        ));
    };
    let watch = Watch {
        store: c.incidents.clone(),
        team,
        seen: HashMap::new(),
        interval,
        started: Instant::now(),
        last_sent: Instant::now(),
        first: true,
        closing: c.closing.clone(),
    };
    let chunks = futures_util::stream::unfold(watch, |mut w| async move {
        w.next().await.map(|b| (Ok::<Bytes, std::convert::Infallible>(b), w))
    });
    let resp = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header("x-accel-buffering", "no")
        .body(Body::from_stream(chunks))
        .map_err(|e| ApiError::unavailable("build the stream", e))?;
    let mut reply = Reply::ok(&serde_json::json!({}))?;
    reply.raw = Some(resp);
    Ok(reply)
}

/// One week of incidents (weeks start on Monday, UTC).
#[derive(Debug, Default, Clone, Serialize, schemars::JsonSchema)]
pub struct Week {
    /// The Monday the week starts on (`YYYY-MM-DD`, UTC).
    pub start: String,
    pub opened: u64,
    /// Fixed and verified by the agent, or found healthy.
    pub resolved: u64,
    pub escalated: u64,
    /// The fix did not hold and was undone.
    pub rolled_back: u64,
    pub failed: u64,
    /// Duplicates, echoes, over quota, resolved before the agent acted.
    pub ignored: u64,
    /// Still being worked on.
    pub open: u64,
    /// Median and mean seconds from the alert to the verified resolution, over the week's resolved incidents.
    pub mttr_median_secs: Option<f64>,
    pub mttr_mean_secs: Option<f64>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Insight {
    /// Oldest week first.
    pub weeks: Vec<Week>,
    /// Incidents by state over the whole range.
    pub totals: BTreeMap<String, u64>,
    /// Whether the range held more incidents than one answer examines (the oldest weeks are then partial).
    pub truncated: bool,
}

/// Incidents examined at most for one insight answer.
const INSIGHT_SCAN: usize = 20_000;

fn monday(t: jiff::Timestamp) -> jiff::civil::Date {
    let d = t.to_zoned(jiff::tz::TimeZone::UTC).date();
    let back = i64::from(d.weekday().to_monday_zero_offset());
    d.checked_sub(jiff::Span::new().days(back)).unwrap_or(d)
}

fn bucket(state: State) -> &'static str {
    match state {
        State::Resolved => "resolved",
        State::Escalated => "escalated",
        State::RolledBack => "rolled_back",
        State::Failed => "failed",
        State::Ignored(_) => "ignored",
        _ => "open",
    }
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

pub(crate) async fn insight(c: &Control, call: Call) -> Result<Reply, ApiError> {
    let team = call.team()?.id.clone();
    let weeks: i64 =
        match call.query.get("weeks") {
            None => 12,
            Some(w) => w.parse::<i64>().ok().filter(|n| (1..=52).contains(n)).ok_or_else(|| {
                ApiError::bad_request("invalid_query", format!("weeks {w:?} is not between 1 and 52"))
            })?,
        };
    let now = c.clock.now();
    let this_week = monday(now);
    let first = this_week.checked_sub(jiff::Span::new().weeks(weeks - 1)).unwrap_or(this_week);
    let mut rows: BTreeMap<jiff::civil::Date, (Week, Vec<f64>)> = BTreeMap::new();
    let mut d = first;
    while d <= this_week {
        rows.insert(d, (Week { start: d.to_string(), ..Week::default() }, Vec::new()));
        d = d.checked_add(jiff::Span::new().weeks(1)).unwrap_or(this_week.tomorrow().unwrap_or(this_week));
    }
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    let (mut cursor, mut scanned, mut truncated) = (None::<String>, 0usize, false);
    'pages: loop {
        let page =
            c.incidents.list(&team, 200, cursor.as_deref()).await.map_err(|e| ApiError::store("list incidents", e))?;
        for i in &page.items {
            scanned += 1;
            let Ok(created) = i.created_at.parse::<jiff::Timestamp>() else { continue };
            let week = monday(created);
            if week < first {
                break 'pages;
            }
            let Some((row, times)) = rows.get_mut(&week) else { continue };
            let b = bucket(i.state);
            *totals.entry(b.to_owned()).or_default() += 1;
            row.opened += 1;
            match b {
                "resolved" => row.resolved += 1,
                "escalated" => row.escalated += 1,
                "rolled_back" => row.rolled_back += 1,
                "failed" => row.failed += 1,
                "ignored" => row.ignored += 1,
                _ => row.open += 1,
            }
            // A resolved incident is terminal: its last update is when the resolution was recorded.
            if b == "resolved"
                && let Ok(done) = i.updated_at.parse::<jiff::Timestamp>()
            {
                let secs = done.duration_since(created).as_secs_f64();
                if secs >= 0.0 {
                    times.push(secs);
                }
            }
        }
        if scanned >= INSIGHT_SCAN {
            truncated = page.next.is_some();
            break;
        }
        match page.next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    let weeks = rows
        .into_values()
        .map(|(mut w, mut times)| {
            w.mttr_mean_secs = (!times.is_empty()).then(|| times.iter().sum::<f64>() / times.len() as f64);
            w.mttr_median_secs = median(&mut times);
            w
        })
        .collect();
    Reply::ok(&Insight { weeks, totals, truncated })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_start_on_monday_in_utc() {
        let t: jiff::Timestamp = "2026-12-03T23:30:00Z".parse().unwrap(); // a Thursday
        assert_eq!(monday(t).to_string(), "2026-11-30");
        let m: jiff::Timestamp = "2026-11-30T00:00:00Z".parse().unwrap();
        assert_eq!(monday(m).to_string(), "2026-11-30");
        let s: jiff::Timestamp = "2026-11-29T23:59:59Z".parse().unwrap(); // Sunday
        assert_eq!(monday(s).to_string(), "2026-11-23");
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    #[test]
    fn events_are_framed_per_line() {
        assert_eq!(event("incident", Some("i:2"), "{\"a\":1}"), "event: incident\nid: i:2\ndata: {\"a\":1}\n\n");
        assert_eq!(event("x", None, "a\nb"), "event: x\ndata: a\ndata: b\n\n");
    }
}
