//! DestinationRule per service: sticky sessions (Traefik) → consistent hashing on a cookie,
//! `x-istio.connectionPool` → connection-pool limits, the health check → outlier detection (opt-in),
//! lanes → subsets by the `lane` pod label.

use crate::emit::Cx;
use crate::emit::istio::extension::{Extension, istio_duration};
use crate::emit::istio::traefik::Sticky;
use crate::emit::istio::{LANE_LABEL, NETWORKING, STABLE, resource};
use crate::emit::yaml::Yaml;
use crate::model::Service;
use crate::model::unit::format_duration;
use crate::report::Status;

/// Swarm's health-check defaults (docker/cli): interval 30s, 3 retries.
const SWARM_INTERVAL_S: u64 = 30;
const SWARM_RETRIES: u64 = 3;

/// The DestinationRule of a service.
pub(crate) fn object(
    cx: &mut Cx<'_>,
    svc: &Service,
    name: &str,
    ext: &Extension,
    sticky: Option<&Sticky>,
) -> Yaml {
    let dr_name = cx.name("destinationrule", name);
    let mut policy = Vec::new();
    if let Some(s) = sticky {
        policy.push((
            "loadBalancer".to_string(),
            Yaml::map([(
                "consistentHash",
                Yaml::map([(
                    "httpCookie",
                    Yaml::map([("name", Yaml::str(&s.cookie)), ("ttl", Yaml::str("0s"))]),
                )]),
            )]),
        ));
    }
    if let Some(p) = &ext.connection_pool {
        let mut tcp = Vec::new();
        if let Some(v) = p.max_connections {
            tcp.push(("maxConnections".to_string(), Yaml::uint(u64::from(v))));
        }
        if let Some(v) = &p.connect_timeout {
            tcp.push(("connectTimeout".to_string(), Yaml::Str(istio_duration(v))));
        }
        let mut http = Vec::new();
        for (k, v) in [
            ("http1MaxPendingRequests", p.http1_max_pending_requests),
            ("http2MaxRequests", p.http2_max_requests),
            ("maxRequestsPerConnection", p.max_requests_per_connection),
            ("maxRetries", p.max_retries),
        ] {
            if let Some(v) = v {
                http.push((k.to_string(), Yaml::uint(u64::from(v))));
            }
        }
        if let Some(v) = &p.idle_timeout {
            http.push(("idleTimeout".to_string(), Yaml::Str(istio_duration(v))));
        }
        let mut pool = Vec::new();
        if !tcp.is_empty() {
            pool.push(("tcp".to_string(), Yaml::Map(tcp)));
        }
        if !http.is_empty() {
            pool.push(("http".to_string(), Yaml::Map(http)));
        }
        if !pool.is_empty() {
            policy.push(("connectionPool".into(), Yaml::Map(pool)));
        }
    }
    if (cx.plan.outlier || ext.outlier_detection == Some(true))
        && let Some(o) = outlier(cx, svc)
    {
        policy.push(("outlierDetection".into(), o));
    }
    let mut spec = vec![("host".to_string(), Yaml::str(name))];
    if !policy.is_empty() {
        spec.push(("trafficPolicy".into(), Yaml::Map(policy)));
    }
    let lanes = crate::emit::istio::lanes_for(cx, &svc.name);
    if !lanes.is_empty() {
        let subset = |l: &str| {
            Yaml::map([
                ("name", Yaml::str(l)),
                ("labels", Yaml::map([(LANE_LABEL, Yaml::str(l))])),
            ])
        };
        let mut subsets = vec![subset(STABLE)];
        subsets.extend(lanes.iter().map(|l| subset(l)));
        spec.push(("subsets".into(), Yaml::Seq(subsets)));
    }
    resource(
        cx,
        NETWORKING,
        "DestinationRule",
        &dr_name,
        Some(name),
        Yaml::Map(spec),
    )
}

/// Outlier detection from the health check: a pod is ejected after as many consecutive 5xx (or
/// gateway errors) as the health check's retries, checked at its interval, for one interval.
fn outlier(cx: &mut Cx<'_>, svc: &Service) -> Option<Yaml> {
    let h = svc.healthcheck.as_ref().filter(|h| {
        let disabled = h.disable.as_ref().is_some_and(|d| d.value);
        let none = h
            .test
            .as_ref()
            .is_some_and(|t| t.value.first().is_some_and(|c| c == "NONE"));
        !(disabled || none)
    });
    let Some(h) = h else {
        if let Some(src) = &svc.source {
            cx.find(
                &crate::model::SourceKey::new(src.mark.clone(), format!("{}.healthcheck", src.path)),
                Some(&svc.name),
                Status::Approximated,
                "DestinationRule outlierDetection (Swarm defaults)",
                "outlier detection is on but the service has no health check: 3 consecutive errors eject a pod for 30s",
            );
        }
        return Some(policy(SWARM_RETRIES, SWARM_INTERVAL_S));
    };
    let retries = h.retries.as_ref().map_or(SWARM_RETRIES, |r| r.value.max(1));
    let interval = h
        .interval
        .as_ref()
        .map_or(SWARM_INTERVAL_S, |i| i.value.as_secs().max(1));
    if let Some(src) = &h.source {
        cx.find(
            src,
            Some(&svc.name),
            Status::Converted,
            "probes + DestinationRule trafficPolicy.outlierDetection",
            format!(
                "also outlier detection: {retries} consecutive errors eject a pod for {}",
                format_duration(std::time::Duration::from_secs(interval))
            ),
        );
    }
    Some(policy(retries, interval))
}

fn policy(errors: u64, interval_s: u64) -> Yaml {
    Yaml::map([
        ("consecutive5xxErrors", Yaml::uint(errors)),
        ("interval", Yaml::str(format!("{interval_s}s"))),
        ("baseEjectionTime", Yaml::str(format!("{interval_s}s"))),
        ("maxEjectionPercent", Yaml::uint(50)),
    ])
}
