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
        {
            let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(e) = entries.get_mut(&key)
                && e.generation == generation
                && (self.ttl_ms == 0 || now.saturating_sub(e.created) < self.ttl_ms)
            {
                inc(&registry.metrics().cache_hits);
                return Some(if gzip_it {
                    e.gzipped.get_or_insert_with(|| gzip(&e.plain)).clone()
                } else {
                    e.plain.clone()
                });
            }
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
