//! Counters for `GET /metrics`, in the Prometheus text exposition format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency histogram's buckets, seconds.
pub const LATENCY_BUCKETS_S: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// What the server counts.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Requests by route and status code.
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    /// Cumulative counts per bucket (the last is `+Inf`).
    buckets: [AtomicU64; LATENCY_BUCKETS_S.len() + 1],
    latency_sum_ns: AtomicU64,
    latency_count: AtomicU64,
    /// Observation rows acted on.
    pub actions: AtomicU64,
    pub reloads: AtomicU64,
    pub reload_failures: AtomicU64,
    pub sessions_expired: AtomicU64,
}

impl Metrics {
    /// Records one finished request.
    pub fn record(&self, route: &'static str, status: u16, took: Duration) {
        *self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((route, status))
            .or_insert(0) += 1;
        let s = took.as_secs_f64();
        let bucket = LATENCY_BUCKETS_S
            .iter()
            .position(|&b| s <= b)
            .unwrap_or(LATENCY_BUCKETS_S.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_ns
            .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
        self.latency_count.fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition text, with the gauges given by the caller.
    pub fn render(&self, sessions: usize, model_version: u64, model_env_steps: u64) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP hlynr_requests_total HTTP requests by route and status.\n\
             # TYPE hlynr_requests_total counter"
        );
        for ((route, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "hlynr_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP hlynr_request_duration_seconds Time from request to response.\n\
             # TYPE hlynr_request_duration_seconds histogram"
        );
        let mut cumulative = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            cumulative += b.load(Ordering::Relaxed);
            let le = LATENCY_BUCKETS_S
                .get(i)
                .map_or_else(|| "+Inf".to_string(), |v| v.to_string());
            let _ = writeln!(
                out,
                "hlynr_request_duration_seconds_bucket{{le=\"{le}\"}} {cumulative}"
            );
        }
        let sum = self.latency_sum_ns.load(Ordering::Relaxed) as f64 * 1e-9;
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(out, "hlynr_request_duration_seconds_sum {sum}");
        let _ = writeln!(out, "hlynr_request_duration_seconds_count {count}");
        for (name, kind, help, value) in [
            (
                "hlynr_actions_total",
                "counter",
                "Observation rows acted on.",
                self.actions.load(Ordering::Relaxed),
            ),
            (
                "hlynr_model_reloads_total",
                "counter",
                "Models reloaded after best/ changed.",
                self.reloads.load(Ordering::Relaxed),
            ),
            (
                "hlynr_model_reload_failures_total",
                "counter",
                "Reloads that failed (the old model kept serving).",
                self.reload_failures.load(Ordering::Relaxed),
            ),
            (
                "hlynr_sessions_expired_total",
                "counter",
                "Sessions ended for being idle.",
                self.sessions_expired.load(Ordering::Relaxed),
            ),
            ("hlynr_sessions", "gauge", "Open sessions.", sessions as u64),
            (
                "hlynr_model_version",
                "gauge",
                "Version of the model serving (1 at start, +1 per reload).",
                model_version,
            ),
            (
                "hlynr_model_env_steps",
                "gauge",
                "Env steps of the checkpoint serving.",
                model_env_steps,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_and_counts_every_request() {
        let m = Metrics::default();
        m.record("/v1/act", 200, Duration::from_micros(80));
        m.record("/v1/act", 200, Duration::from_micros(700));
        m.record("/v1/act", 400, Duration::from_secs(3));
        let text = m.render(2, 1, 5);
        assert!(text.contains("hlynr_requests_total{route=\"/v1/act\",status=\"200\"} 2"));
        assert!(text.contains("hlynr_request_duration_seconds_bucket{le=\"0.0001\"} 1"));
        assert!(text.contains("hlynr_request_duration_seconds_bucket{le=\"0.001\"} 2"));
        assert!(text.contains("hlynr_request_duration_seconds_bucket{le=\"1\"} 2"));
        assert!(text.contains("hlynr_request_duration_seconds_bucket{le=\"+Inf\"} 3"));
        assert!(text.contains("hlynr_request_duration_seconds_count 3"));
        assert!(text.contains("hlynr_sessions 2"));
    }
}
