//! Process-wide counters and the request latency histogram, rendered in the Prometheus text
//! exposition format (version 0.0.4) by hand: a few atomics do not need a metrics framework.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// What a Eureka API request did, the label of the latency histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Any GET (full, delta, app, instance, VIP).
    Fetch,
    /// POST register.
    Register,
    /// PUT heartbeat.
    Heartbeat,
    /// DELETE cancel.
    Cancel,
    /// PUT/DELETE status override, PUT metadata.
    Admin,
    /// Anything else (unknown routes, other methods).
    Other,
}

impl Op {
    /// Every operation, in rendering order.
    pub const ALL: [Op; 6] = [
        Op::Fetch,
        Op::Register,
        Op::Heartbeat,
        Op::Cancel,
        Op::Admin,
        Op::Other,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Fetch => "fetch",
            Op::Register => "register",
            Op::Heartbeat => "heartbeat",
            Op::Cancel => "cancel",
            Op::Admin => "admin",
            Op::Other => "other",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A cumulative histogram of request durations.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Number of observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// Counters shared by the Eureka API, the registry and the admin listener.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Successful registrations (including re-registrations and metadata updates).
    pub registrations: AtomicU64,
    /// Heartbeats received.
    pub renewals: AtomicU64,
    /// Heartbeats answered 404 (unknown instance, or client newer than the registry).
    pub renewals_not_found: AtomicU64,
    /// Successful cancels.
    pub cancels: AtomicU64,
    /// Leases removed by the eviction task.
    pub evictions: AtomicU64,
    /// Response cache hits.
    pub cache_hits: AtomicU64,
    /// Response cache misses (payload generated).
    pub cache_misses: AtomicU64,
    /// Cache hits that served a body past its TTL while another reader re-rendered it
    /// (stale-while-revalidate; never a body from before a registry change).
    pub cache_stale: AtomicU64,
    /// Readers that waited for another reader's render of the same body (single-flight).
    pub cache_waits: AtomicU64,
    /// Requests rejected by authentication.
    pub auth_rejections: AtomicU64,
    /// Eureka API requests being handled right now.
    pub in_flight: AtomicU64,
    /// Eureka API request latency, one histogram per [`Op`] (indexed by `Op as usize`).
    pub request_latency: [Histogram; 6],
}

/// Point-in-time values the registry reports when metrics are scraped.
#[derive(Debug, Default, Clone, Copy)]
pub struct Gauges {
    /// Instances registered by legacy clients.
    pub legacy_instances: u64,
    /// Synthetic instances for mesh services.
    pub mesh_instances: u64,
    /// Heartbeats seen in the last 60 s.
    pub renewals_last_minute: u64,
    /// Whether self-preservation currently blocks eviction.
    pub self_preservation_active: bool,
}

/// Increments a counter by one.
pub fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

fn counter(out: &mut String, name: &str, help: &str, c: &AtomicU64) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} counter");
    let _ = writeln!(out, "{name} {}", c.load(Ordering::Relaxed));
}

fn gauge(out: &mut String, name: &str, help: &str, labels: &[(&str, u64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    for (label, v) in labels {
        if label.is_empty() {
            let _ = writeln!(out, "{name} {v}");
        } else {
            let _ = writeln!(out, "{name}{{{label}}} {v}");
        }
    }
}

impl Metrics {
    /// Records the latency of one request.
    pub fn observe_request(&self, op: Op, d: Duration) {
        self.request_latency[op.index()].observe(d);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self, g: Gauges) -> String {
        let mut out = String::new();
        counter(
            &mut out,
            "bridge_eureka_registrations_total",
            "Eureka registrations accepted.",
            &self.registrations,
        );
        counter(
            &mut out,
            "bridge_eureka_renewals_total",
            "Eureka heartbeats received.",
            &self.renewals,
        );
        counter(
            &mut out,
            "bridge_eureka_renewals_not_found_total",
            "Eureka heartbeats answered 404.",
            &self.renewals_not_found,
        );
        counter(
            &mut out,
            "bridge_eureka_cancels_total",
            "Eureka cancels accepted.",
            &self.cancels,
        );
        counter(
            &mut out,
            "bridge_eureka_evictions_total",
            "Leases evicted after expiry.",
            &self.evictions,
        );
        counter(
            &mut out,
            "bridge_eureka_cache_hits_total",
            "Response cache hits.",
            &self.cache_hits,
        );
        counter(
            &mut out,
            "bridge_eureka_cache_misses_total",
            "Response cache misses.",
            &self.cache_misses,
        );
        counter(
            &mut out,
            "bridge_eureka_cache_stale_total",
            "Cache hits served past the TTL while one reader re-renders the body.",
            &self.cache_stale,
        );
        counter(
            &mut out,
            "bridge_eureka_cache_waits_total",
            "Readers that waited for another reader's render of the same body.",
            &self.cache_waits,
        );
        counter(
            &mut out,
            "bridge_eureka_auth_rejections_total",
            "Requests rejected with 401.",
            &self.auth_rejections,
        );
        gauge(
            &mut out,
            "bridge_eureka_instances",
            "Instances in the registry by source.",
            &[
                ("source=\"legacy\"", g.legacy_instances),
                ("source=\"mesh\"", g.mesh_instances),
            ],
        );
        gauge(
            &mut out,
            "bridge_eureka_requests_in_flight",
            "Eureka API requests being handled.",
            &[("", self.in_flight.load(Ordering::Relaxed))],
        );
        gauge(
            &mut out,
            "bridge_eureka_renewals_last_minute",
            "Heartbeats in the last 60 s.",
            &[("", g.renewals_last_minute)],
        );
        gauge(
            &mut out,
            "bridge_eureka_self_preservation_active",
            "1 while self-preservation blocks eviction.",
            &[("", u64::from(g.self_preservation_active))],
        );
        let name = "bridge_eureka_request_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Eureka API request latency by operation."
        );
        let _ = writeln!(out, "# TYPE {name} histogram");
        for op in Op::ALL {
            let h = &self.request_latency[op.index()];
            let op = op.as_str();
            for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&h.buckets) {
                let _ = writeln!(
                    out,
                    "{name}_bucket{{op=\"{op}\",le=\"{bound}\"}} {}",
                    bucket.load(Ordering::Relaxed)
                );
            }
            let count = h.count.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{op=\"{op}\",le=\"+Inf\"}} {count}");
            let sum = h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(out, "{name}_sum{{op=\"{op}\"}} {sum}");
            let _ = writeln!(out, "{name}_count{{op=\"{op}\"}} {count}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let m = Metrics::default();
        m.observe_request(Op::Fetch, Duration::from_micros(700));
        m.observe_request(Op::Fetch, Duration::from_secs(2));
        m.observe_request(Op::Heartbeat, Duration::from_micros(100));
        inc(&m.registrations);
        let text = m.render(Gauges::default());
        assert!(text.contains("bridge_eureka_registrations_total 1\n"));
        let has = |line: &str| assert!(text.contains(&format!("{line}\n")), "{line}\n{text}");
        has("bridge_eureka_request_duration_seconds_bucket{op=\"fetch\",le=\"0.001\"} 1");
        has("bridge_eureka_request_duration_seconds_bucket{op=\"fetch\",le=\"5\"} 2");
        has("bridge_eureka_request_duration_seconds_bucket{op=\"fetch\",le=\"+Inf\"} 2");
        has("bridge_eureka_request_duration_seconds_count{op=\"fetch\"} 2");
        has("bridge_eureka_request_duration_seconds_count{op=\"heartbeat\"} 1");
        has("bridge_eureka_request_duration_seconds_count{op=\"cancel\"} 0");
    }
}
