//! Response cache for the bulk reads (`apps`, `apps/delta`, `apps/{APP}`, `vips`, `svips`), per
//! format, plain and gzipped (the gzipped body is made from the cached plain one, like the Java
//! server's `CacheValue`), with at most one reader rendering a given body at a time.
//!
//! Unlike the Java server's 30 s read-only cache, an entry is never served after the registry
//! changed: entries remember the registry generation they were built at. The TTL only bounds how
//! stale the `leaseInfo` timestamps inside may get (heartbeats do not invalidate, as in Java).
//!
//! Misses are single-flight per key (view × format × gzip): the first reader to miss renders, the
//! others do not render the same body again (a 10k-instance registry is ~10 MB of JSON; 64 readers
//! rendering and gzipping it at once took p99 from ~35 ms to ~400–900 ms). What the others do
//! depends on why the entry is unusable:
//!
//! - **the registry changed** (or nothing is cached yet): they wait for the render. Serving the
//!   previous body would show a client the registry from before its own registration, which Java's
//!   read-only cache does for up to 30 s and this bridge promises not to do.
//! - **only the TTL ran out** (same registry generation): they keep getting the previous body until
//!   the new one is ready, like Java's timer-refreshed read-only cache. Such an entry differs from a
//!   fresh render only in the lease timestamps the TTL exists to refresh, so waiting would buy
//!   nothing but the stampede's latency; the bound becomes the TTL plus one render.
//!
//! No lock is held while rendering; waiters sleep on a `tokio::sync::watch` channel, and a render
//! whose reader went away (client disconnect, panic) closes its channel so a waiter takes over.

use super::clock::Clock;
use super::instance::Applications;
use super::registry::Registry;
use super::{wire, xml};
use crate::metrics::{Metrics, inc};
use bytes::Bytes;
use flate2::write::GzEncoder;
use std::collections::HashMap;
use std::future::Future;
use std::io::Write as _;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::watch;

/// Entries kept before those of older registry generations are swept.
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

/// One cached body: view, format, and whether it is the gzipped one.
type Key = (View, Format, bool);

/// What one render produced.
#[derive(Debug, Clone)]
struct Rendered {
    /// Registry generation of the snapshot the body was built from.
    generation: u64,
    /// When that snapshot was taken (epoch ms); a gzipped body inherits its plain body's.
    created: u64,
    /// `None`: the view answers 404 (not cached, but handed to the readers waiting for it).
    body: Option<Bytes>,
}

/// A render in progress: `Some` once done; closed without a value if its reader went away.
type Flight = watch::Receiver<Option<Rendered>>;

#[derive(Debug, Default)]
struct Slot {
    /// The newest body rendered for this key (never a 404).
    entry: Option<Rendered>,
    flight: Option<Flight>,
}

/// What a reader does after looking at its slot (decided under the lock, done outside it).
enum Step {
    Hit(Rendered),
    Stale(Rendered),
    Wait(Flight),
    Render(watch::Sender<Option<Rendered>>, Flight),
}

/// The cache.
#[derive(Debug)]
pub struct Cache {
    slots: Mutex<HashMap<Key, Slot>>,
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
            slots: Mutex::new(HashMap::new()),
            ttl_ms: ttl_secs.saturating_mul(1000),
            clock,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Slot>> {
        // Every update of the map is a single insert or field store, so a panic elsewhere
        // cannot leave it inconsistent.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops every cached body. Renders in flight still store theirs; their generation keeps
    /// them from being served once the registry moved on.
    pub fn clear(&self) {
        self.lock().retain(|_, s| s.flight.is_some());
    }

    /// The body for `view` in `format` (gzipped if asked), or `None` when the view is empty in a
    /// way the API answers with 404 (unknown app, unused VIP).
    pub async fn get(
        &self,
        registry: &Registry,
        view: &View,
        format: Format,
        gzip_it: bool,
    ) -> Option<Bytes> {
        let render = || std::future::ready(self.render(registry, view, format));
        self.body(
            registry.metrics(),
            registry.generation(),
            view,
            format,
            gzip_it,
            render,
        )
        .await
        .body
    }

    /// Renders `view` from the registry (the expensive part a miss pays).
    fn render(&self, registry: &Registry, view: &View, format: Format) -> Rendered {
        inc(&registry.metrics().cache_misses);
        let created = self.clock.now_millis();
        let (generation, body) = match view {
            View::Full => {
                let (g, apps) = registry.applications();
                (g, Some(render_apps(&apps, format)))
            }
            View::Delta => {
                let (g, apps) = registry.delta();
                (g, Some(render_apps(&apps, format)))
            }
            View::App(name) => {
                let (g, app) = registry.application(name);
                let body = app.map(|app| match format {
                    Format::Json => wire::application_to_json(&app),
                    Format::Xml => xml::application_to_xml(&app),
                });
                (g, body)
            }
            View::Vip(vip) | View::Svip(vip) => {
                let (g, apps) = registry.by_vip(vip, matches!(view, View::Svip(_)));
                (g, apps.map(|apps| render_apps(&apps, format)))
            }
        };
        Rendered {
            generation,
            created,
            body: body.map(Bytes::from),
        }
    }

    /// The plain or gzipped body for a reader that must see registry generation `wanted` or
    /// newer; `render_plain` builds the plain body when this reader is the one to render it.
    async fn body<F, Fut>(
        &self,
        metrics: &Metrics,
        wanted: u64,
        view: &View,
        format: Format,
        gzip_it: bool,
        render_plain: F,
    ) -> Rendered
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Rendered>,
    {
        let plain_key = (view.clone(), format, false);
        if !gzip_it {
            return self
                .lookup(metrics, &plain_key, wanted, true, render_plain)
                .await;
        }
        let gzip_key = (view.clone(), format, true);
        self.lookup(metrics, &gzip_key, wanted, true, || async {
            // Gzip a plain body that is fresh, waiting for its refresh if one runs, rather than a
            // stale one: a gzipped copy of a stale body would itself be stale on arrival.
            let plain = self
                .lookup(metrics, &plain_key, wanted, false, render_plain)
                .await;
            Rendered {
                body: plain.body.map(|b| gzip(&b)),
                ..plain
            }
        })
        .await
    }

    fn fresh(&self, e: &Rendered, now: u64) -> bool {
        self.ttl_ms == 0 || now.saturating_sub(e.created) < self.ttl_ms
    }

    /// The single-flight core: a fresh entry, else the previous body while another reader
    /// refreshes it (only when `allow_stale` and the TTL alone expired it), else the result of
    /// the render in flight, else this reader's own `render`. Counts one hit per reader served
    /// without rendering; `render` counts the misses.
    async fn lookup<F, Fut>(
        &self,
        metrics: &Metrics,
        key: &Key,
        wanted: u64,
        allow_stale: bool,
        render: F,
    ) -> Rendered
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Rendered>,
    {
        loop {
            let now = self.clock.now_millis();
            let step = {
                let mut slots = self.lock();
                let slot = slots.entry(key.clone()).or_default();
                if slot
                    .flight
                    .as_ref()
                    .is_some_and(|f| f.has_changed().is_err())
                {
                    // Its reader was dropped mid-render (client gone) or panicked.
                    slot.flight = None;
                }
                let current = slot.entry.as_ref().filter(|e| e.generation >= wanted);
                match (current, &slot.flight) {
                    (Some(e), _) if self.fresh(e, now) => Step::Hit(e.clone()),
                    (Some(e), Some(_)) if allow_stale => Step::Stale(e.clone()),
                    (_, Some(f)) => Step::Wait(f.clone()),
                    (_, None) => {
                        let (tx, rx) = watch::channel(None);
                        slot.flight = Some(rx.clone());
                        Step::Render(tx, rx)
                    }
                }
            };
            match step {
                Step::Hit(e) => {
                    inc(&metrics.cache_hits);
                    return e;
                }
                Step::Stale(e) => {
                    inc(&metrics.cache_hits);
                    inc(&metrics.cache_stale);
                    return e;
                }
                Step::Wait(mut flight) => {
                    inc(&metrics.cache_waits);
                    let done = flight
                        .wait_for(Option::is_some)
                        .await
                        .ok()
                        .and_then(|r| r.clone());
                    // A render that started before the registry reached `wanted` may not show
                    // what this reader must see; look again (and render if nobody does).
                    if let Some(r) = done.filter(|r| r.generation >= wanted) {
                        inc(&metrics.cache_hits);
                        return r;
                    }
                }
                Step::Render(tx, mine) => {
                    let rendered = render().await;
                    self.publish(key, &mine, &rendered);
                    // Nobody may be waiting; that is fine.
                    let _ = tx.send(Some(rendered.clone()));
                    return rendered;
                }
            }
        }
    }

    /// Stores a render (unless a newer one is there) and ends its flight.
    fn publish(&self, key: &Key, mine: &Flight, rendered: &Rendered) {
        let mut slots = self.lock();
        if slots.len() >= SWEEP_AT {
            let g = rendered.generation;
            slots.retain(|_, s| {
                s.flight.is_some() || s.entry.as_ref().is_some_and(|e| e.generation >= g)
            });
        }
        let slot = slots.entry(key.clone()).or_default();
        if slot.flight.as_ref().is_some_and(|f| f.same_channel(mine)) {
            slot.flight = None;
        }
        // A render of an older generation, or a 404, must not replace what is there: the
        // generation stored with each entry is what keeps an invalidated render from being
        // served as fresh.
        if rendered.body.is_some()
            && slot.entry.as_ref().is_none_or(|e| {
                (e.generation, e.created) <= (rendered.generation, rendered.created)
            })
        {
            slot.entry = Some(rendered.clone());
        }
        if slot.entry.is_none() && slot.flight.is_none() {
            // Unknown app names must not pile up empty slots.
            slots.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eureka::clock::ManualClock;
    use crate::eureka::registry::Settings;
    use std::io::Read as _;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::time::Duration;

    fn gunzip(b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(b)
            .read_to_end(&mut out)
            .expect("gunzip");
        out
    }

    /// An injected render: counts its calls and finishes only once its gate opens.
    struct Renders {
        count: AtomicUsize,
        gate: watch::Sender<bool>,
    }

    impl Renders {
        fn new(open: bool) -> Arc<Self> {
            Arc::new(Self {
                count: AtomicUsize::new(0),
                gate: watch::channel(open).0,
            })
        }

        async fn render(&self, generation: u64, created: u64, body: &'static str) -> Rendered {
            self.count.fetch_add(1, Ordering::SeqCst);
            let mut gate = self.gate.subscribe();
            gate.wait_for(|open| *open).await.expect("gate");
            Rendered {
                generation,
                created,
                body: Some(Bytes::from_static(body.as_bytes())),
            }
        }

        fn count(&self) -> usize {
            self.count.load(Ordering::SeqCst)
        }

        fn open(&self) {
            self.gate.send_replace(true);
        }
    }

    /// Waits (bounded, no fixed sleep) until `cond` holds.
    async fn until(what: &str, cond: impl Fn() -> bool) {
        for _ in 0..5_000 {
            if cond() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("timed out waiting until {what}");
    }

    fn load(c: &AtomicU64) -> u64 {
        c.load(Ordering::SeqCst)
    }

    fn body(r: &Rendered) -> &[u8] {
        r.body.as_deref().expect("a body")
    }

    struct Fixture {
        clock: Arc<ManualClock>,
        cache: Arc<Cache>,
        metrics: Arc<Metrics>,
    }

    fn fixture() -> Fixture {
        let clock = Arc::new(ManualClock::new(1_000));
        Fixture {
            cache: Arc::new(Cache::new(30, clock.clone())),
            clock,
            metrics: Arc::new(Metrics::default()),
        }
    }

    const FULL_JSON: Key = (View::Full, Format::Json, false);

    /// Spawns one reader of `key` wanting `wanted`, rendering with `renders` if it has to.
    fn reader(
        f: &Fixture,
        wanted: u64,
        renders: &Arc<Renders>,
        rendered: (u64, &'static str),
    ) -> tokio::task::JoinHandle<Rendered> {
        let (cache, metrics, renders) = (f.cache.clone(), f.metrics.clone(), renders.clone());
        let created = f.clock.now_millis();
        tokio::spawn(async move {
            cache
                .lookup(&metrics, &FULL_JSON, wanted, true, || {
                    renders.render(rendered.0, created, rendered.1)
                })
                .await
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_misses_render_once() {
        let f = fixture();
        let renders = Renders::new(false);
        const N: usize = 32;
        let readers: Vec<_> = (0..N).map(|_| reader(&f, 1, &renders, (1, "v1"))).collect();
        until("all but one reader wait", || {
            load(&f.metrics.cache_waits) == N as u64 - 1
        })
        .await;
        assert_eq!(renders.count(), 1);
        renders.open();
        for r in readers {
            assert_eq!(body(&r.await.expect("reader")), b"v1");
        }
        assert_eq!(renders.count(), 1, "one render for {N} concurrent misses");
        assert_eq!(load(&f.metrics.cache_hits), N as u64 - 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_gzip_misses_render_and_gzip_once() {
        let f = fixture();
        let renders = Renders::new(false);
        const N: usize = 16;
        let readers: Vec<_> = (0..N)
            .map(|_| {
                let (cache, metrics, renders) =
                    (f.cache.clone(), f.metrics.clone(), renders.clone());
                tokio::spawn(async move {
                    cache
                        .body(&metrics, 1, &View::Full, Format::Json, true, || {
                            renders.render(1, 1_000, "plain body")
                        })
                        .await
                })
            })
            .collect();
        until("all but one gzip reader wait", || {
            load(&f.metrics.cache_waits) == N as u64 - 1
        })
        .await;
        renders.open();
        let mut bodies = Vec::new();
        for r in readers {
            bodies.push(r.await.expect("reader").body.expect("gzipped"));
        }
        assert_eq!(renders.count(), 1);
        assert_eq!(gunzip(&bodies[0]), b"plain body");
        assert!(
            bodies.iter().all(|b| b.as_ptr() == bodies[0].as_ptr()),
            "every reader got the one gzipped copy"
        );
        // The plain body the gzip was made from is cached too.
        let plain = f
            .cache
            .body(&f.metrics, 1, &View::Full, Format::Json, false, || async {
                unreachable!("plain body is cached")
            })
            .await;
        assert_eq!(body(&plain), b"plain body");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn invalidation_during_a_render_is_not_cached_as_fresh() {
        let f = fixture();
        let old = Renders::new(false);
        // A takes its snapshot at generation 1 and renders slowly.
        let a = reader(&f, 1, &old, (1, "old"));
        until("A renders", || old.count() == 1).await;
        // B arrived before the change: the render in flight answers it.
        let b = reader(&f, 1, &old, (1, "unexpected"));
        until("B waits", || load(&f.metrics.cache_waits) == 1).await;
        // The registry changes (generation 2); C arrives after that and must not get "old".
        let new = Renders::new(true);
        let c = reader(&f, 2, &new, (2, "new"));
        until("C waits", || load(&f.metrics.cache_waits) == 2).await;
        old.open();
        assert_eq!(body(&a.await.expect("A")), b"old");
        assert_eq!(body(&b.await.expect("B")), b"old");
        assert_eq!(body(&c.await.expect("C")), b"new", "C re-rendered");
        assert_eq!((old.count(), new.count()), (1, 1));
        // The stored entry is the newer render, and a later reader of generation 2 hits it.
        let never = Renders::new(true);
        let d = reader(&f, 2, &never, (2, "unexpected"));
        assert_eq!(body(&d.await.expect("D")), b"new");
        assert_eq!(never.count(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn an_older_render_finishing_late_does_not_replace_a_newer_entry() {
        let f = fixture();
        let old = Renders::new(false);
        let a = reader(&f, 1, &old, (1, "old"));
        until("A renders", || old.count() == 1).await;
        // Forget A's flight, so that a second render (of a newer generation) runs beside it.
        f.cache.lock().entry(FULL_JSON).or_default().flight = None;
        let new = Renders::new(true);
        assert_eq!(
            body(&reader(&f, 2, &new, (2, "new")).await.expect("B")),
            b"new"
        );
        old.open();
        assert_eq!(body(&a.await.expect("A")), b"old");
        let never = Renders::new(true);
        assert_eq!(
            body(&reader(&f, 2, &never, (2, "x")).await.expect("C")),
            b"new"
        );
        assert_eq!(never.count(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn ttl_expiry_serves_the_previous_body_while_one_reader_refreshes() {
        let f = fixture();
        let first = Renders::new(true);
        assert_eq!(
            body(&reader(&f, 1, &first, (1, "v1")).await.expect("prime")),
            b"v1"
        );
        f.clock.advance_secs(30);
        // A finds the entry past its TTL and refreshes it, slowly.
        let refresh = Renders::new(false);
        let a = reader(&f, 1, &refresh, (1, "v2"));
        until("A refreshes", || refresh.count() == 1).await;
        // B, same generation, gets the previous body at once instead of waiting.
        let never = Renders::new(true);
        let b = reader(&f, 1, &never, (1, "unexpected"));
        let b = tokio::time::timeout(Duration::from_secs(5), b)
            .await
            .expect("B is not kept waiting");
        assert_eq!(body(&b.expect("B")), b"v1");
        assert_eq!(load(&f.metrics.cache_stale), 1);
        // C comes after a registry change: the expired body is older than that, so C waits.
        let later = Renders::new(true);
        let c = reader(&f, 2, &later, (2, "v3"));
        until("C waits", || load(&f.metrics.cache_waits) == 1).await;
        assert!(!c.is_finished(), "no stale body across a registry change");
        refresh.open();
        assert_eq!(body(&a.await.expect("A")), b"v2");
        assert_eq!(
            body(&c.await.expect("C")),
            b"v3",
            "A's render predates the change"
        );
        assert_eq!((never.count(), load(&f.metrics.cache_stale)), (0, 1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_waiter_takes_over_when_the_rendering_reader_goes_away() {
        let f = fixture();
        let stuck = Renders::new(false);
        let a = reader(&f, 1, &stuck, (1, "never"));
        until("A renders", || stuck.count() == 1).await;
        let own = Renders::new(true);
        let b = reader(&f, 1, &own, (1, "b"));
        until("B waits", || load(&f.metrics.cache_waits) == 1).await;
        a.abort();
        let b = tokio::time::timeout(Duration::from_secs(5), b)
            .await
            .expect("B is not left waiting");
        assert_eq!(body(&b.expect("B")), b"b");
        assert_eq!(own.count(), 1);
    }

    #[tokio::test]
    async fn plain_then_gzip_share_one_render_and_ttl_expires_it() {
        let clock = Arc::new(ManualClock::new(1_000));
        let registry = Registry::new(
            Settings::default(),
            clock.clone(),
            Arc::new(Metrics::default()),
        );
        let cache = Cache::new(30, clock.clone());
        let plain = cache
            .get(&registry, &View::Full, Format::Json, false)
            .await
            .expect("full view");
        let gz1 = cache
            .get(&registry, &View::Full, Format::Json, true)
            .await
            .expect("full view");
        let gz2 = cache
            .get(&registry, &View::Full, Format::Json, true)
            .await
            .expect("full view");
        assert_eq!(gunzip(&gz1), plain.to_vec());
        assert_eq!(gz1, gz2);
        let m = registry.metrics();
        assert_eq!(m.cache_misses.load(Ordering::Relaxed), 1);
        assert_eq!(m.cache_hits.load(Ordering::Relaxed), 2);
        clock.advance_secs(30);
        cache.get(&registry, &View::Full, Format::Json, false).await;
        assert_eq!(
            m.cache_misses.load(Ordering::Relaxed),
            2,
            "older than the TTL"
        );
        for _ in 0..2 {
            assert!(
                cache
                    .get(&registry, &View::App("NOPE".into()), Format::Xml, false)
                    .await
                    .is_none()
            );
        }
        assert!(
            cache.lock().keys().all(|k| k.0 == View::Full),
            "no slot kept for a 404"
        );
    }
}
