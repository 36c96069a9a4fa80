//! Response cache for the bulk reads (`apps`, `apps/delta`, `apps/{APP}`, `vips`, `svips`), per
//! format, with the gzipped body kept beside the plain one like the Java server's `CacheValue`.
//!
//! Unlike the Java server's 30 s read-only cache, an entry is never served after the registry
//! changed: entries remember the registry generation they were built at. The TTL only bounds how
//! stale the `leaseInfo` timestamps inside may get (heartbeats do not invalidate, as in Java).

use super::clock::Clock;
use super::instance::Applications;
use super::registry::Registry;
use super::{wire, xml};
use crate::metrics::inc;
use bytes::Bytes;
use flate2::write::GzEncoder;
use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

/// Entries kept before stale ones are swept.
const SWEEP_AT: usize = 1024;

/// Which bulk read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum View {
    /// `GET apps`.
    Full,
    /// `GET apps/delta`.
    Delta,
    /// `GET apps/{APP}` (upper-cased).
    App(String),
    /// `GET vips/{vip}`.
    Vip(String),
    /// `GET svips/{svip}`.
    Svip(String),
}

/// Response body format, chosen by `Accept` containing `json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `application/json`.
    Json,
    /// `application/xml` (the default: py-eureka-client sends no `Accept`).
    Xml,
}

#[derive(Debug, Clone)]
struct Entry {
    generation: u64,
    created: u64,
    plain: Bytes,
    gzipped: Option<Bytes>,
}

/// The cache.
#[derive(Debug)]
pub struct Cache {
    entries: Mutex<HashMap<(View, Format), Entry>>,
    ttl_ms: u64,
    clock: Arc<dyn Clock>,
}

fn render_apps(apps: &Applications, format: Format) -> Vec<u8> {
    match format {
        Format::Json => wire::applications_to_json(apps),
        Format::Xml => xml::applications_to_xml(apps),
    }
}

/// Gzips a body.
pub fn gzip(body: &[u8]) -> Bytes {
    let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(body);
    Bytes::from(enc.finish().unwrap_or_default())
}

impl Cache {
    /// A cache whose entries live at most `ttl_secs` (0: until the registry changes).
    pub fn new(ttl_secs: u64, clock: Arc<dyn Clock>) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            ttl_ms: ttl_secs.saturating_mul(1000),
            clock,
        }
    }

    /// Drops every entry.
    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// The body for `view` in `format` (gzipped if asked), or `None` when the view is empty in a
    /// way the API answers with 404 (unknown app, unused VIP).
    pub fn get(
        &self,
        registry: &Registry,
        view: &View,
        format: Format,
        gzip_it: bool,
    ) -> Option<Bytes> {
        let now = self.clock.now_millis();
        let generation = registry.generation();
        let key = (view.clone(), format);
        let hit = {
            let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            entries
                .get(&key)
                .filter(|e| {
                    e.generation == generation
                        && (self.ttl_ms == 0 || now.saturating_sub(e.created) < self.ttl_ms)
                })
                .cloned()
        };
        if let Some(e) = hit {
            inc(&registry.metrics().cache_hits);
            if !gzip_it {
                return Some(e.plain);
            }
            if let Some(gz) = e.gzipped {
                return Some(gz);
            }
            // Compress outside the lock (a 10k-instance registry is megabytes), then keep it
            // for the next gzip reader if the entry is still the same one.
            let gz = gzip(&e.plain);
            let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(current) = entries.get_mut(&key)
                && current.generation == e.generation
                && current.created == e.created
            {
                current.gzipped = Some(gz.clone());
            }
            return Some(gz);
        }
        inc(&registry.metrics().cache_misses);
        let (built_at, plain) = match view {
            View::Full => {
                let (g, apps) = registry.applications();
                (g, render_apps(&apps, format))
            }
            View::Delta => {
                let (g, apps) = registry.delta();
                (g, render_apps(&apps, format))
            }
            View::App(name) => {
                let (g, app) = registry.application(name);
                let app = app?;
                let body = match format {
                    Format::Json => wire::application_to_json(&app),
                    Format::Xml => xml::application_to_xml(&app),
                };
                (g, body)
            }
            View::Vip(vip) | View::Svip(vip) => {
                let (g, apps) = registry.by_vip(vip, matches!(view, View::Svip(_)));
                (g, render_apps(&apps?, format))
            }
        };
        let plain = Bytes::from(plain);
        let gzipped = gzip_it.then(|| gzip(&plain));
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= SWEEP_AT {
            let current = registry.generation();
            entries.retain(|_, e| e.generation == current);
        }
        entries.insert(
            key,
            Entry {
                generation: built_at,
                created: now,
                plain: plain.clone(),
                gzipped: gzipped.clone(),
            },
        );
        Some(gzipped.unwrap_or(plain))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eureka::clock::ManualClock;
    use crate::eureka::registry::Settings;
    use crate::metrics::Metrics;
    use std::io::Read as _;
    use std::sync::atomic::Ordering;

    fn gunzip(b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(b)
            .read_to_end(&mut out)
            .expect("gunzip");
        out
    }

    #[test]
    fn plain_then_gzip_share_one_entry_and_ttl_expires_it() {
        let clock = Arc::new(ManualClock::new(1_000));
        let registry = Registry::new(
            Settings::default(),
            clock.clone(),
            Arc::new(Metrics::default()),
        );
        let cache = Cache::new(30, clock.clone());
        let plain = cache
            .get(&registry, &View::Full, Format::Json, false)
            .expect("full view");
        let gz1 = cache
            .get(&registry, &View::Full, Format::Json, true)
            .expect("full view");
        let gz2 = cache
            .get(&registry, &View::Full, Format::Json, true)
            .expect("full view");
        assert_eq!(gunzip(&gz1), plain.to_vec());
        assert_eq!(gz1, gz2);
        let m = registry.metrics();
        assert_eq!(m.cache_misses.load(Ordering::Relaxed), 1);
        assert_eq!(m.cache_hits.load(Ordering::Relaxed), 2);
        clock.advance_secs(30);
        cache.get(&registry, &View::Full, Format::Json, false);
        assert_eq!(
            m.cache_misses.load(Ordering::Relaxed),
            2,
            "older than the TTL"
        );
        assert!(
            cache
                .get(&registry, &View::App("NOPE".into()), Format::Xml, false)
                .is_none()
        );
    }
}
