//! Request counts and latencies of the API by route template, method and status, in the Prometheus text format
//! (`GET /metrics` on `serve`). Labels never carry a team, an id or a path: only the declared route templates.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Debug, Default, Clone)]
struct Series {
    count: u64,
    sum: f64,
    buckets: [u64; BUCKETS.len()],
}

/// The API's request metrics.
#[derive(Debug, Default)]
pub struct HttpMetrics {
    /// (route, method, status) → requests.
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// (route, method) → latency histogram.
    latency: Mutex<BTreeMap<(String, String), Series>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Escapes a label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl HttpMetrics {
    pub fn record(&self, route: &str, method: &str, status: u16, took: Duration) {
        *lock(&self.requests).entry((route.to_owned(), method.to_owned(), status)).or_insert(0) += 1;
        let secs = took.as_secs_f64();
        let mut latency = lock(&self.latency);
        let s = latency.entry((route.to_owned(), method.to_owned())).or_default();
        s.count += 1;
        s.sum += secs;
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                s.buckets[i] += 1;
            }
        }
    }

    /// The metrics in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP dreamops_http_requests_total Control API requests by route, method and status.\n");
        out.push_str("# TYPE dreamops_http_requests_total counter\n");
        for ((route, method, status), n) in lock(&self.requests).iter() {
            let _ = writeln!(
                out,
                "dreamops_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}",
                label(route)
            );
        }
        out.push_str("# HELP dreamops_http_request_duration_seconds Control API latency by route and method.\n");
        out.push_str("# TYPE dreamops_http_request_duration_seconds histogram\n");
        for ((route, method), s) in lock(&self.latency).iter() {
            let l = format!("route=\"{}\",method=\"{method}\"", label(route));
            for (i, le) in BUCKETS.iter().enumerate() {
                let _ =
                    writeln!(out, "dreamops_http_request_duration_seconds_bucket{{{l},le=\"{le}\"}} {}", s.buckets[i]);
            }
            let _ = writeln!(out, "dreamops_http_request_duration_seconds_bucket{{{l},le=\"+Inf\"}} {}", s.count);
            let _ = writeln!(out, "dreamops_http_request_duration_seconds_sum{{{l}}} {}", s.sum);
            let _ = writeln!(out, "dreamops_http_request_duration_seconds_count{{{l}}} {}", s.count);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = HttpMetrics::default();
        m.record("/v1/teams/{team}", "GET", 200, Duration::from_millis(3));
        m.record("/v1/teams/{team}", "GET", 200, Duration::from_millis(30));
        m.record("/v1/teams/{team}", "GET", 404, Duration::from_millis(1));
        let text = m.render();
        assert!(
            text.contains("dreamops_http_requests_total{route=\"/v1/teams/{team}\",method=\"GET\",status=\"200\"} 2")
        );
        assert!(text.contains("status=\"404\"} 1"));
        assert!(text.contains("le=\"0.005\"} 2"), "{text}");
        assert!(text.contains("le=\"0.05\"} 3"), "{text}");
        assert!(text.contains("le=\"+Inf\"} 3"));
        assert!(
            text.contains("dreamops_http_request_duration_seconds_count{route=\"/v1/teams/{team}\",method=\"GET\"} 3")
        );
    }
}
