//! Picking a legacy instance for the gRPC lane: the app's UP instances from the bridge's own
//! registry, round-robin or fewest calls in flight, with instances that failed too often in a
//! row ejected for a while.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::eureka::Registry;
use crate::eureka::instance::Status;

/// One instance to call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `host:port`.
    pub authority: String,
    /// The Eureka instance id, for logs.
    pub instance_id: String,
}

/// An app's endpoints and the registry generation they were read at.
type Listed = (u64, Arc<Vec<Endpoint>>);

#[derive(Debug, Default)]
struct Health {
    failures: u32,
    ejected_until: Option<Instant>,
    active: usize,
}

/// How the next instance is chosen among the usable ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// In turn.
    #[default]
    RoundRobin,
    /// The one with the fewest calls in flight (ties in turn): slow instances get less.
    LeastRequests,
}

/// A call in flight on an instance; dropping it ends the call for [`Policy::LeastRequests`].
#[derive(Debug)]
pub struct Active<'a> {
    balancer: &'a Balancer,
    authority: String,
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        if let Ok(mut h) = self.balancer.health.lock()
            && let Some(s) = h.get_mut(&self.authority)
        {
            s.active = s.active.saturating_sub(1);
        }
    }
}

/// Round-robin over UP instances with outlier ejection.
#[derive(Debug)]
pub struct Balancer {
    registry: Arc<Registry>,
    next: AtomicUsize,
    health: Mutex<HashMap<String, Health>>,
    /// Endpoints per app at a registry generation: heartbeats do not change the generation, so
    /// a busy lane does not copy every instance record per call.
    endpoints: Mutex<HashMap<String, Listed>>,
    eject_after: u32,
    eject_for: Duration,
    policy: Policy,
}

impl Balancer {
    /// A balancer over `registry`; `eject_after` consecutive failures eject an instance for
    /// `eject_for`.
    pub fn new(registry: Arc<Registry>, eject_after: u32, eject_for: Duration) -> Self {
        Self::with_policy(registry, eject_after, eject_for, Policy::RoundRobin)
    }

    /// [`Balancer::new`] with a choice of [`Policy`].
    pub fn with_policy(
        registry: Arc<Registry>,
        eject_after: u32,
        eject_for: Duration,
        policy: Policy,
    ) -> Self {
        Self {
            registry,
            next: AtomicUsize::new(0),
            health: Mutex::new(HashMap::new()),
            endpoints: Mutex::new(HashMap::new()),
            eject_after: eject_after.max(1),
            eject_for,
            policy,
        }
    }

    /// The UP instances of `app` (upper-cased, as Eureka keys apps), as `host:port`.
    pub fn instances(&self, app: &str) -> Arc<Vec<Endpoint>> {
        // Read before the instances: a change in between only makes the next call refresh.
        let generation = self.registry.generation();
        if let Ok(cache) = self.endpoints.lock()
            && let Some((g, list)) = cache.get(app)
            && *g == generation
        {
            return Arc::clone(list);
        }
        let list = Arc::new(self.load(app));
        if let Ok(mut cache) = self.endpoints.lock() {
            cache.insert(app.to_owned(), (generation, Arc::clone(&list)));
        }
        list
    }

    fn load(&self, app: &str) -> Vec<Endpoint> {
        let (_, found) = self.registry.application(&app.to_ascii_uppercase());
        let mut out: Vec<Endpoint> = found
            .map(|a| a.instances)
            .unwrap_or_default()
            .into_iter()
            .filter(|i| i.status == Status::Up && i.port.enabled && i.port.port != 0)
            .map(|i| {
                let host = if i.ip_addr.is_empty() {
                    i.host_name.clone()
                } else {
                    i.ip_addr.clone()
                };
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host
                };
                Endpoint {
                    authority: format!("{host}:{}", i.port.port),
                    instance_id: i.id().to_owned(),
                }
            })
            .collect();
        // A stable order keeps the round-robin fair while the registry reorders.
        out.sort_by(|a, b| a.authority.cmp(&b.authority));
        out
    }

    /// The next instance of `app`, skipping `tried` ones and ejected ones. When every instance
    /// is ejected, ejection is ignored (Envoy's panic threshold): some traffic beats none.
    pub fn pick(&self, app: &str, tried: &[String]) -> Option<Endpoint> {
        let listed = self.instances(app);
        let all: Vec<&Endpoint> = listed
            .iter()
            .filter(|e| !tried.contains(&e.authority))
            .collect();
        if all.is_empty() {
            return None;
        }
        let now = Instant::now();
        let healthy: Vec<&Endpoint> = match self.health.lock() {
            Ok(h) => all
                .iter()
                .copied()
                .filter(|e| {
                    h.get(&e.authority)
                        .and_then(|s| s.ejected_until)
                        .is_none_or(|t| t <= now)
                })
                .collect(),
            Err(_) => all.clone(),
        };
        let pool = if healthy.is_empty() { all } else { healthy };
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let chosen: Option<&Endpoint> = match self.policy {
            Policy::RoundRobin => pool.get(n % pool.len()).copied(),
            Policy::LeastRequests => {
                let h = self.health.lock().ok();
                let active = |e: &Endpoint| {
                    h.as_ref()
                        .and_then(|h| h.get(&e.authority).map(|s| s.active))
                        .unwrap_or(0)
                };
                // Scanning from the round-robin position spreads ties (`min_by_key` keeps the
                // first of equals).
                (0..pool.len())
                    .map(|i| pool[(n + i) % pool.len()])
                    .min_by_key(|e| active(e))
            }
        };
        chosen.cloned()
    }

    /// Marks a call as started on `authority` until the returned guard is dropped.
    pub fn begin(&self, authority: &str) -> Active<'_> {
        if let Ok(mut h) = self.health.lock() {
            h.entry(authority.to_owned()).or_default().active += 1;
        }
        Active {
            balancer: self,
            authority: authority.to_owned(),
        }
    }

    /// Records an outcome: a success clears the failure count, a failure (5xx or no connection)
    /// counts towards ejection.
    pub fn record(&self, authority: &str, ok: bool) {
        let Ok(mut h) = self.health.lock() else {
            return;
        };
        let s = h.entry(authority.to_owned()).or_default();
        if ok {
            s.failures = 0;
            s.ejected_until = None;
            return;
        }
        s.failures = s.failures.saturating_add(1);
        if s.failures >= self.eject_after {
            tracing::warn!(
                instance = authority,
                failures = s.failures,
                "legacy instance ejected"
            );
            s.ejected_until = Some(Instant::now() + self.eject_for);
            s.failures = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eureka::instance::{Instance, Port};
    use crate::eureka::{Settings, SystemClock};
    use crate::metrics::Metrics;

    fn registry(ports: &[u16]) -> Arc<Registry> {
        let r = Arc::new(Registry::new(
            Settings::default(),
            Arc::new(SystemClock),
            Arc::new(Metrics::default()),
        ));
        for p in ports {
            r.register(
                Instance {
                    instance_id: Some(format!("legacy:{p}")),
                    host_name: "localhost".into(),
                    app: "LEGACY".into(),
                    ip_addr: "127.0.0.1".into(),
                    status: Status::Up,
                    port: Port {
                        port: *p,
                        enabled: true,
                    },
                    ..Instance::default()
                },
                false,
            );
        }
        r
    }

    #[test]
    fn round_robin_and_ejection() {
        let reg = registry(&[1001, 1002]);
        let b = Balancer::new(reg.clone(), 2, Duration::from_secs(60));
        let picks: Vec<String> = (0..4)
            .filter_map(|_| b.pick("legacy", &[]))
            .map(|e| e.authority)
            .collect();
        assert_eq!(picks[0], picks[2]);
        assert_ne!(picks[0], picks[1]);
        b.record("127.0.0.1:1001", false);
        b.record("127.0.0.1:1001", false);
        for _ in 0..4 {
            assert_eq!(
                b.pick("legacy", &[]).map(|e| e.authority).as_deref(),
                Some("127.0.0.1:1002")
            );
        }
        // Every instance ejected: traffic goes to all again rather than nowhere.
        b.record("127.0.0.1:1002", false);
        b.record("127.0.0.1:1002", false);
        assert!(b.pick("legacy", &[]).is_some());
        assert!(
            b.pick(
                "legacy",
                &["127.0.0.1:1001".into(), "127.0.0.1:1002".into()]
            )
            .is_none()
        );
        assert!(b.pick("nobody", &[]).is_none());
        // A registry change is seen at once, although endpoints are cached.
        assert!(reg.cancel("LEGACY", "legacy:1002"));
        assert_eq!(b.instances("legacy").len(), 1);
    }

    #[test]
    fn least_requests_avoids_busy_instances() {
        let b = Balancer::with_policy(
            registry(&[1001, 1002]),
            5,
            Duration::from_secs(60),
            Policy::LeastRequests,
        );
        let busy = b.begin("127.0.0.1:1001");
        for _ in 0..4 {
            assert_eq!(
                b.pick("legacy", &[]).map(|e| e.authority).as_deref(),
                Some("127.0.0.1:1002")
            );
        }
        drop(busy);
        let picks: Vec<String> = (0..4)
            .filter_map(|_| b.pick("legacy", &[]))
            .map(|e| e.authority)
            .collect();
        assert!(picks.contains(&"127.0.0.1:1001".to_owned()), "{picks:?}");
        assert!(picks.contains(&"127.0.0.1:1002".to_owned()), "{picks:?}");
    }
}
