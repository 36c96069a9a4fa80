//! The in-memory registry: legacy leases, mesh instances, status overrides, the delta queue,
//! eviction and self-preservation, following Netflix `AbstractInstanceRegistry` semantics.

use super::clock::Clock;
use super::instance::{
    ActionType, Application, Applications, Instance, Status, reconcile_hashcode,
};
use super::lease::Lease;
use crate::metrics::{Gauges, Metrics, inc};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Most changes kept for `apps/delta`, whatever the retention window.
const MAX_DELTA_ENTRIES: usize = 50_000;

/// Heartbeats of the last 60 s in one-second buckets (Java's `MeasuredRate` of one minute):
/// constant memory however many heartbeats arrive.
#[derive(Debug)]
struct RenewalWindow {
    buckets: [u64; 60],
    second: u64,
}

impl Default for RenewalWindow {
    fn default() -> Self {
        Self {
            buckets: [0; 60],
            second: 0,
        }
    }
}

impl RenewalWindow {
    fn roll(&mut self, now_ms: u64) {
        let second = now_ms / 1000;
        if second <= self.second {
            return;
        }
        let gap = (second - self.second).min(60);
        for k in 1..=gap {
            self.buckets[((self.second + k) % 60) as usize] = 0;
        }
        self.second = second;
    }

    fn record(&mut self, now_ms: u64) {
        self.roll(now_ms);
        self.buckets[(self.second % 60) as usize] += 1;
    }

    fn count(&mut self, now_ms: u64) -> u64 {
        self.roll(now_ms);
        self.buckets.iter().sum()
    }
}

/// Registry behaviour knobs (see `bridge::config::EurekaConfig` for units and defaults).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Block eviction while fewer heartbeats arrive than expected.
    pub self_preservation: bool,
    /// Fraction of expected heartbeats below which self-preservation engages; also bounds how
    /// much of the registry one eviction run may remove (`1 - threshold`).
    pub renewal_percent_threshold: f64,
    /// Heartbeat interval the server assumes for every client, seconds.
    pub expected_renewal_interval_secs: u64,
    /// How long changes stay in the delta queue, milliseconds.
    pub delta_retention_ms: u64,
    /// Answer 404 to a heartbeat whose `lastDirtyTimestamp` is newer than the stored one.
    pub sync_when_timestamp_differs: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            self_preservation: true,
            renewal_percent_threshold: 0.85,
            expected_renewal_interval_secs: 30,
            delta_retention_ms: 180_000,
            sync_when_timestamp_differs: true,
        }
    }
}

/// Query parameters of a heartbeat that change its outcome.
#[derive(Debug, Clone, Copy, Default)]
pub struct RenewRequest {
    /// `lastDirtyTimestamp=` from the client.
    pub last_dirty: Option<u64>,
    /// `overriddenstatus=` (used only on replicated heartbeats, like the Java server).
    pub overridden_status: Option<Status>,
    /// `x-netflix-discovery-replication: true`.
    pub replication: bool,
}

/// Result of a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Renewal {
    /// 200.
    Renewed,
    /// 404: unknown instance, status UNKNOWN, or the client's info is newer: re-register.
    NotFound,
    /// 409 with the stored instance: a replica is behind this server.
    Conflict(Box<Instance>),
}

/// Where an instance in the registry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Registered by a legacy Eureka client.
    Legacy,
    /// A mesh service shown to legacy clients.
    Mesh,
}

/// One row of the admin `/registry` dump (no metadata values: they may hold credentials).
#[derive(Debug, Clone, Serialize)]
pub struct DumpEntry {
    /// Upper-cased app.
    pub app: String,
    /// Instance id.
    pub id: String,
    /// Origin.
    pub origin: Origin,
    /// Current status.
    pub status: &'static str,
    /// Overridden status.
    pub overridden_status: &'static str,
    /// Host name.
    pub host_name: String,
    /// IP address.
    pub ip_addr: String,
    /// Port, if enabled.
    pub port: Option<u16>,
    /// Secure port, if enabled.
    pub secure_port: Option<u16>,
    /// VIP address.
    pub vip_address: Option<String>,
    /// Secure VIP address.
    pub secure_vip_address: Option<String>,
    /// Metadata keys.
    pub metadata_keys: Vec<String>,
    /// Registration time, epoch ms (legacy only).
    pub registered_at: Option<u64>,
    /// Last heartbeat, epoch ms (legacy only).
    pub last_renewal_at: Option<u64>,
    /// When the lease runs out without a heartbeat, epoch ms (legacy only).
    pub expires_at: Option<u64>,
}

#[derive(Debug, Default)]
struct State {
    legacy: BTreeMap<String, BTreeMap<String, Lease>>,
    mesh: BTreeMap<String, BTreeMap<String, Instance>>,
    overrides: HashMap<String, Status>,
    recent: VecDeque<(u64, Instance)>,
    renewals: RenewalWindow,
    delta_version: u64,
    rng: u64,
}

/// The registry. Cheap to share behind an `Arc`; all methods take `&self`.
#[derive(Debug)]
pub struct Registry {
    state: Mutex<State>,
    clock: Arc<dyn Clock>,
    settings: Settings,
    generation: AtomicU64,
    metrics: Arc<Metrics>,
}

/// `FirstMatchWinsCompositeRule(DownOrStartingRule, OverrideExistsRule, LeaseExistsRule)` with
/// `AlwaysMatchInstanceStatusRule` as fallback: the status an instance really gets.
fn resolve_status(
    reported: Status,
    existing: Option<Status>,
    override_: Option<Status>,
    replication: bool,
) -> Status {
    // DOWN/STARTING/UNKNOWN from the client are believed; UP/OUT_OF_SERVICE need confirming.
    if !matches!(reported, Status::Up | Status::OutOfService) {
        return reported;
    }
    if let Some(o) = override_ {
        return o;
    }
    if !replication && let Some(e @ (Status::Up | Status::OutOfService)) = existing {
        return e;
    }
    reported
}

fn total(legacy: &BTreeMap<String, BTreeMap<String, Lease>>) -> usize {
    legacy.values().map(BTreeMap::len).sum()
}

impl Registry {
    /// An empty registry.
    pub fn new(settings: Settings, clock: Arc<dyn Clock>, metrics: Arc<Metrics>) -> Self {
        let rng = clock.now_millis() | 1;
        Self {
            state: Mutex::new(State {
                rng,
                // Full fetches carry `versions__delta` 1. py-eureka-client skips a delta whose
                // version and hash equal what it holds, so the first delta must not be 1 too, or
                // a change that keeps the hash (one UP instance replaced by another) is missed.
                delta_version: 1,
                ..State::default()
            }),
            clock,
            settings,
            generation: AtomicU64::new(1),
            metrics,
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The shared metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The clock the registry runs on.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Increases on every change visible to clients; cached payloads built at an older
    /// generation are stale.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent maps (every update is a single
        // insert/remove), so keep serving rather than poisoning every later request.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, st: &mut State, now: u64, snapshot: Instance) {
        st.recent.push_back((now, snapshot));
        self.prune_recent(st, now);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn prune_recent(&self, st: &mut State, now: u64) {
        let cutoff = now.saturating_sub(self.settings.delta_retention_ms);
        while st.recent.front().is_some_and(|(t, _)| *t < cutoff) {
            st.recent.pop_front();
        }
        // A re-registration flood must not grow memory without bound. Dropping the oldest
        // changes is safe: a client that misses one sees a hash mismatch and fetches in full.
        while st.recent.len() > MAX_DELTA_ENTRIES {
            st.recent.pop_front();
        }
    }

    /// Registers (or re-registers) an instance. The caller has validated required fields.
    pub fn register(&self, instance: Instance, replication: bool) {
        let now = self.clock.now_millis();
        let mut st = self.lock();
        self.register_locked(&mut st, instance, replication, now);
    }

    fn register_locked(&self, st: &mut State, instance: Instance, replication: bool, now: u64) {
        let app = instance.app.clone();
        let id = instance.id().to_owned();
        let existing = st.legacy.get(&app).and_then(|m| m.get(&id)).cloned();
        let mut registrant = instance;
        if registrant.last_dirty_timestamp == 0 {
            // Java's InstanceInfo stamps "now" when the client sent none (eureka-js-client).
            registrant.last_dirty_timestamp = now;
        }
        if let Some(ex) = &existing {
            // A strictly newer stored copy wins; on a tie the client's copy is taken.
            if ex.instance.last_dirty_timestamp > registrant.last_dirty_timestamp {
                tracing::warn!(app = %app, id = %id, "stored instance is newer than the registration; keeping it");
                registrant = ex.instance.clone();
            }
        }
        let mut lease = Lease::new(registrant, now);
        if let Some(ex) = &existing {
            lease.service_up = ex.service_up;
        }
        let sent_override = lease.instance.overridden_status;
        if sent_override != Status::Unknown {
            st.overrides.entry(id.clone()).or_insert(sent_override);
        }
        let override_ = st.overrides.get(&id).copied();
        if let Some(o) = override_ {
            lease.instance.overridden_status = o;
        }
        let status = resolve_status(
            lease.instance.status,
            existing.as_ref().map(|e| e.instance.status),
            override_,
            replication,
        );
        lease.instance.status = status;
        if status == Status::Up {
            lease.service_up(now);
        }
        lease.instance.action_type = Some(ActionType::Added);
        lease.instance.last_updated_timestamp = now;
        let snapshot = lease.decorated();
        st.legacy
            .entry(app.clone())
            .or_default()
            .insert(id.clone(), lease);
        self.record(st, now, snapshot);
        inc(&self.metrics.registrations);
        tracing::info!(app = %app, id = %id, status = status.as_str(), "registered");
    }

    /// A heartbeat (`PUT apps/{APP}/{id}`), as `InstanceResource.renewLease` answers it.
    pub fn renew(&self, app: &str, id: &str, req: RenewRequest) -> Renewal {
        let now = self.clock.now_millis();
        inc(&self.metrics.renewals);
        let mut guard = self.lock();
        let st = &mut *guard;
        let Some(lease) = st.legacy.get_mut(app).and_then(|m| m.get_mut(id)) else {
            inc(&self.metrics.renewals_not_found);
            return Renewal::NotFound;
        };
        let override_ = st.overrides.get(id).copied();
        let status = resolve_status(
            lease.instance.status,
            Some(lease.instance.status),
            override_,
            req.replication,
        );
        if status == Status::Unknown {
            // Typically after an override was deleted without a fallback status: make the
            // client re-register so it states its real status.
            inc(&self.metrics.renewals_not_found);
            return Renewal::NotFound;
        }
        let mut changed = None;
        if status != lease.instance.status {
            lease.instance.status = status;
            lease.instance.action_type = Some(ActionType::Modified);
            lease.instance.last_updated_timestamp = now;
            changed = Some(lease.decorated());
        }
        lease.renew(now);
        let stored_dirty = lease.instance.last_dirty_timestamp;
        let mut outcome = Renewal::Renewed;
        if let Some(client_dirty) = req.last_dirty
            && self.settings.sync_when_timestamp_differs
        {
            if client_dirty > stored_dirty {
                if req.replication
                    && let Some(o) = req.overridden_status.filter(|o| *o != Status::Unknown)
                {
                    lease.instance.overridden_status = o;
                    st.overrides.insert(id.to_owned(), o);
                }
                inc(&self.metrics.renewals_not_found);
                outcome = Renewal::NotFound;
            } else if stored_dirty > client_dirty && req.replication {
                outcome = Renewal::Conflict(Box::new(lease.decorated()));
            }
        }
        st.renewals.record(now);
        if let Some(snapshot) = changed {
            self.record(st, now, snapshot);
        }
        outcome
    }

    /// Cancels a lease (`DELETE apps/{APP}/{id}`); false if unknown.
    pub fn cancel(&self, app: &str, id: &str) -> bool {
        let now = self.clock.now_millis();
        let mut st = self.lock();
        let done = self.cancel_locked(&mut st, app, id, now);
        if done {
            inc(&self.metrics.cancels);
            tracing::info!(app = %app, id = %id, "cancelled");
        }
        done
    }

    fn cancel_locked(&self, st: &mut State, app: &str, id: &str, now: u64) -> bool {
        let removed = st.legacy.get_mut(app).and_then(|m| m.remove(id));
        if st.legacy.get(app).is_some_and(BTreeMap::is_empty) {
            st.legacy.remove(app);
        }
        st.overrides.remove(id);
        let Some(mut lease) = removed else {
            return false;
        };
        lease.cancel(now);
        lease.instance.action_type = Some(ActionType::Deleted);
        lease.instance.last_updated_timestamp = now;
        let snapshot = lease.decorated();
        self.record(st, now, snapshot);
        true
    }

    fn expiration_enabled_locked(&self, st: &mut State, now: u64) -> bool {
        if !self.settings.self_preservation {
            return true;
        }
        let expected = total(&st.legacy) as f64;
        let per_min = 60.0 / self.settings.expected_renewal_interval_secs.max(1) as f64;
        // `updateRenewsPerMinThreshold`: truncated like Java's `(int)` cast.
        let threshold = (expected * per_min * self.settings.renewal_percent_threshold) as u64;
        threshold > 0 && st.renewals.count(now) > threshold
    }

    /// Whether expired leases may be evicted now (false while self-preservation holds).
    pub fn lease_expiration_enabled(&self) -> bool {
        let now = self.clock.now_millis();
        let mut st = self.lock();
        self.expiration_enabled_locked(&mut st, now)
    }

    fn visible<'a>(
        &self,
        st: &'a mut State,
        app: &str,
        id: &str,
        now: u64,
    ) -> Option<&'a mut Lease> {
        let enabled = self.expiration_enabled_locked(st, now);
        st.legacy
            .get_mut(app)
            .and_then(|m| m.get_mut(id))
            .filter(|l| !enabled || !l.is_expired(now))
    }

    /// Sets a status override (`PUT …/status?value=`); false if the instance is unknown.
    pub fn set_status(&self, app: &str, id: &str, status: Status, last_dirty: Option<u64>) -> bool {
        let now = self.clock.now_millis();
        let mut guard = self.lock();
        let st = &mut *guard;
        let Some(lease) = self.visible(st, app, id, now) else {
            return false;
        };
        lease.renew(now);
        if lease.instance.status == status {
            return true;
        }
        if status == Status::Up {
            lease.service_up(now);
        }
        lease.instance.overridden_status = status;
        lease.instance.status = status;
        if let Some(d) = last_dirty.filter(|d| *d > lease.instance.last_dirty_timestamp) {
            lease.instance.last_dirty_timestamp = d;
        }
        lease.instance.action_type = Some(ActionType::Modified);
        lease.instance.last_updated_timestamp = now;
        let snapshot = lease.decorated();
        st.overrides.insert(id.to_owned(), status);
        self.record(st, now, snapshot);
        tracing::info!(app = %app, id = %id, status = status.as_str(), "status overridden");
        true
    }

    /// Removes a status override (`DELETE …/status`), setting `fallback` as the status.
    pub fn delete_status_override(
        &self,
        app: &str,
        id: &str,
        fallback: Status,
        last_dirty: Option<u64>,
    ) -> bool {
        let now = self.clock.now_millis();
        let mut guard = self.lock();
        let st = &mut *guard;
        if self.visible(st, app, id, now).is_none() {
            return false;
        }
        let had_override = st.overrides.remove(id).is_some();
        let Some(lease) = st.legacy.get_mut(app).and_then(|m| m.get_mut(id)) else {
            return false;
        };
        lease.renew(now);
        if had_override {
            lease.instance.overridden_status = Status::Unknown;
            lease.instance.status = fallback;
            if let Some(d) = last_dirty.filter(|d| *d > lease.instance.last_dirty_timestamp) {
                lease.instance.last_dirty_timestamp = d;
            }
            lease.instance.action_type = Some(ActionType::Modified);
            lease.instance.last_updated_timestamp = now;
            let snapshot = lease.decorated();
            self.record(st, now, snapshot);
        }
        true
    }

    /// Merges metadata and re-registers (`PUT …/metadata?k=v`); false if the instance is unknown.
    pub fn update_metadata(&self, app: &str, id: &str, pairs: Vec<(String, String)>) -> bool {
        let now = self.clock.now_millis();
        let mut guard = self.lock();
        let st = &mut *guard;
        let Some(lease) = self.visible(st, app, id, now) else {
            return false;
        };
        let mut instance = lease.instance.clone();
        for (k, v) in pairs {
            instance.metadata.insert(k, v);
        }
        self.register_locked(st, instance, false, now);
        true
    }

    /// One run of the eviction task. Returns how many leases were evicted.
    pub fn evict(&self) -> usize {
        let now = self.clock.now_millis();
        let mut guard = self.lock();
        let st = &mut *guard;
        if !self.expiration_enabled_locked(st, now) {
            tracing::debug!("lease expiration disabled (self-preservation)");
            return 0;
        }
        let mut expired: Vec<(String, String)> = st
            .legacy
            .iter()
            .flat_map(|(app, m)| {
                m.iter()
                    .filter(|(_, l)| l.is_expired(now))
                    .map(move |(id, _)| (app.clone(), id.clone()))
            })
            .collect();
        // Never wipe out more than (1 - threshold) of the registry in one run, so a clock jump
        // or a network partition cannot empty it before self-preservation notices.
        let size = total(&st.legacy);
        let keep = (size as f64 * self.settings.renewal_percent_threshold) as usize;
        let limit = size.saturating_sub(keep);
        let to_evict = expired.len().min(limit);
        // Random pick (partial Fisher-Yates) so one app is not emptied before the others.
        for i in 0..to_evict {
            let j = i + (next_random(&mut st.rng) % (expired.len() - i) as u64) as usize;
            expired.swap(i, j);
        }
        for (app, id) in expired.into_iter().take(to_evict) {
            if self.cancel_locked(st, &app, &id, now) {
                inc(&self.metrics.evictions);
                tracing::warn!(app = %app, id = %id, "lease expired; evicted");
            }
        }
        to_evict
    }

    fn all_apps(st: &State) -> Vec<Application> {
        let mut by_app: BTreeMap<&str, Vec<Instance>> = BTreeMap::new();
        for (app, leases) in &st.legacy {
            by_app
                .entry(app)
                .or_default()
                .extend(leases.values().map(Lease::decorated));
        }
        for (app, instances) in &st.mesh {
            by_app
                .entry(app)
                .or_default()
                .extend(instances.values().cloned());
        }
        by_app
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(name, instances)| Application {
                name: name.to_owned(),
                instances,
            })
            .collect()
    }

    fn full_hashcode(st: &State) -> String {
        let legacy = st
            .legacy
            .values()
            .flat_map(|m| m.values())
            .map(|l| &l.instance);
        let mesh = st.mesh.values().flat_map(|m| m.values());
        reconcile_hashcode(legacy.chain(mesh))
    }

    /// `GET apps`: every instance; `versions__delta` is 1 like the Java server's full fetch.
    /// Returns the generation the view was taken at.
    pub fn applications(&self) -> (u64, Applications) {
        let st = self.lock();
        (self.generation(), Applications::new(1, Self::all_apps(&st)))
    }

    /// `GET apps/delta`: the changes of the retention window, with the full registry's hash.
    pub fn delta(&self) -> (u64, Applications) {
        let now = self.clock.now_millis();
        let mut st = self.lock();
        self.prune_recent(&mut st, now);
        st.delta_version += 1;
        let mut order: Vec<String> = Vec::new();
        let mut by_app: HashMap<String, Vec<Instance>> = HashMap::new();
        for (_, i) in &st.recent {
            if !by_app.contains_key(&i.app) {
                order.push(i.app.clone());
            }
            by_app.entry(i.app.clone()).or_default().push(i.clone());
        }
        let applications = order
            .into_iter()
            .map(|name| {
                let instances = by_app.remove(&name).unwrap_or_default();
                Application { name, instances }
            })
            .collect();
        let apps = Applications {
            version: st.delta_version,
            hashcode: Self::full_hashcode(&st),
            applications,
        };
        (self.generation(), apps)
    }

    /// `GET apps/{APP}`.
    pub fn application(&self, app: &str) -> (u64, Option<Application>) {
        let st = self.lock();
        let mut instances: Vec<Instance> = st
            .legacy
            .get(app)
            .map(|m| m.values().map(Lease::decorated).collect())
            .unwrap_or_default();
        if let Some(m) = st.mesh.get(app) {
            instances.extend(m.values().cloned());
        }
        let found = (!instances.is_empty()).then(|| Application {
            name: app.to_owned(),
            instances,
        });
        (self.generation(), found)
    }

    /// `GET vips/{vip}` (`secure = false`) or `GET svips/{svip}`; `None` when nothing matches.
    pub fn by_vip(&self, vip: &str, secure: bool) -> (u64, Option<Applications>) {
        let st = self.lock();
        let matches = |i: &Instance| {
            if secure {
                i.has_secure_vip(vip)
            } else {
                i.has_vip(vip)
            }
        };
        let mut by_app: BTreeMap<&str, Vec<Instance>> = BTreeMap::new();
        for (app, leases) in &st.legacy {
            let hits = leases.values().filter(|l| matches(&l.instance));
            by_app
                .entry(app)
                .or_default()
                .extend(hits.map(Lease::decorated));
        }
        for (app, instances) in &st.mesh {
            let hits = instances.values().filter(|i| matches(i));
            by_app.entry(app).or_default().extend(hits.cloned());
        }
        let apps: Vec<Application> = by_app
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(name, instances)| Application {
                name: name.to_owned(),
                instances,
            })
            .collect();
        let found = (!apps.is_empty()).then(|| Applications::new(1, apps));
        (self.generation(), found)
    }

    /// `GET apps/{APP}/{id}`: hidden once expired unless self-preservation holds.
    pub fn instance(&self, app: &str, id: &str) -> Option<Instance> {
        let now = self.clock.now_millis();
        let mut st = self.lock();
        if let Some(l) = self.visible(&mut st, app, id, now) {
            return Some(l.decorated());
        }
        st.mesh.get(app).and_then(|m| m.get(id)).cloned()
    }

    /// `GET instances/{id}`: the first match across apps.
    pub fn instance_by_id(&self, id: &str) -> Option<Instance> {
        let apps: Vec<String> = {
            let st = self.lock();
            st.legacy.keys().chain(st.mesh.keys()).cloned().collect()
        };
        apps.iter().find_map(|app| self.instance(app, id))
    }

    /// Replaces the mesh view with `instances`, recording ADDED/MODIFIED/DELETED for what changed.
    pub fn sync_mesh(&self, instances: Vec<Instance>) {
        let now = self.clock.now_millis();
        let mut guard = self.lock();
        let st = &mut *guard;
        let mut next: BTreeMap<String, BTreeMap<String, Instance>> = BTreeMap::new();
        for i in instances {
            next.entry(i.app.clone())
                .or_default()
                .insert(i.id().to_owned(), i);
        }
        let mut changes = Vec::new();
        for (app, old) in &st.mesh {
            for (id, i) in old {
                if !next.get(app).is_some_and(|m| m.contains_key(id)) {
                    let mut gone = i.clone();
                    gone.action_type = Some(ActionType::Deleted);
                    gone.last_updated_timestamp = now;
                    changes.push(gone);
                }
            }
        }
        for (app, m) in &mut next {
            for (id, i) in m.iter_mut() {
                let old = st.mesh.get(app).and_then(|o| o.get(id));
                match old {
                    Some(o) if same_content(o, i) => *i = o.clone(),
                    _ => {
                        i.action_type = Some(if old.is_some() {
                            ActionType::Modified
                        } else {
                            ActionType::Added
                        });
                        i.last_updated_timestamp = now;
                        changes.push(i.clone());
                    }
                }
            }
        }
        st.mesh = next;
        for c in changes {
            self.record(st, now, c);
        }
    }

    /// Values for the metrics gauges.
    pub fn gauges(&self) -> Gauges {
        let now = self.clock.now_millis();
        let mut st = self.lock();
        let enabled = self.expiration_enabled_locked(&mut st, now);
        Gauges {
            legacy_instances: total(&st.legacy) as u64,
            mesh_instances: st.mesh.values().map(BTreeMap::len).sum::<usize>() as u64,
            renewals_last_minute: st.renewals.count(now),
            self_preservation_active: self.settings.self_preservation && !enabled,
        }
    }

    /// Every instance for the admin dump.
    pub fn dump(&self) -> Vec<DumpEntry> {
        let st = self.lock();
        let entry = |i: &Instance, origin: Origin, lease: Option<&Lease>| DumpEntry {
            app: i.app.clone(),
            id: i.id().to_owned(),
            origin,
            status: i.status.as_str(),
            overridden_status: i.overridden_status.as_str(),
            host_name: i.host_name.clone(),
            ip_addr: i.ip_addr.clone(),
            port: i.port.enabled.then_some(i.port.port),
            secure_port: i.secure_port.enabled.then_some(i.secure_port.port),
            vip_address: i.vip_address.clone(),
            secure_vip_address: i.secure_vip_address.clone(),
            metadata_keys: i.metadata.keys().cloned().collect(),
            registered_at: lease.map(|l| l.registration),
            last_renewal_at: lease.map(|l| l.last_renewal),
            expires_at: lease.map(|l| l.last_renewal.saturating_add(l.duration_ms)),
        };
        let mut out: Vec<DumpEntry> = st
            .legacy
            .values()
            .flat_map(|m| m.values())
            .map(|l| entry(&l.instance, Origin::Legacy, Some(l)))
            .collect();
        out.extend(
            st.mesh
                .values()
                .flat_map(|m| m.values())
                .map(|i| entry(i, Origin::Mesh, None)),
        );
        out
    }
}

fn same_content(a: &Instance, b: &Instance) -> bool {
    let strip = |i: &Instance| Instance {
        action_type: None,
        last_updated_timestamp: 0,
        lease: None,
        ..i.clone()
    };
    strip(a) == strip(b)
}

/// xorshift64: enough randomness to spread evictions, without a dependency.
fn next_random(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eureka::clock::ManualClock;
    use crate::eureka::instance::{DataCenter, LeaseInfo, Port};

    const T0: u64 = 1_700_000_000_000;

    fn setup(self_preservation: bool) -> (Arc<ManualClock>, Registry) {
        let clock = Arc::new(ManualClock::new(T0));
        let settings = Settings {
            self_preservation,
            ..Settings::default()
        };
        let reg = Registry::new(settings, clock.clone(), Arc::new(Metrics::default()));
        (clock, reg)
    }

    fn inst(app: &str, id: &str, duration_secs: u32) -> Instance {
        Instance {
            instance_id: Some(id.to_owned()),
            host_name: "h".into(),
            app: app.to_owned(),
            ip_addr: "127.0.0.1".into(),
            status: Status::Up,
            port: Port {
                port: 80,
                enabled: true,
            },
            data_center: Some(DataCenter::default()),
            lease: Some(LeaseInfo {
                duration_secs,
                ..LeaseInfo::default()
            }),
            vip_address: Some(app.to_ascii_lowercase()),
            last_dirty_timestamp: T0,
            ..Instance::default()
        }
    }

    fn count(reg: &Registry) -> usize {
        reg.applications()
            .1
            .applications
            .iter()
            .map(|a| a.instances.len())
            .sum()
    }

    #[test]
    fn lease_expires_after_its_duration() {
        let (clock, reg) = setup(false);
        reg.register(inst("A", "a1", 10), false);
        clock.advance_secs(10);
        assert_eq!(reg.evict(), 0, "still inside the lease");
        assert!(reg.instance("A", "a1").is_some());
        clock.advance(1);
        assert!(
            reg.instance("A", "a1").is_none(),
            "expired leases are hidden from instance GETs"
        );
        assert_eq!(reg.evict(), 1);
        assert_eq!(count(&reg), 0);
        assert_eq!(
            reg.renew("A", "a1", RenewRequest::default()),
            Renewal::NotFound
        );
        assert_eq!(reg.metrics().evictions.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn renewal_extends_the_lease() {
        let (clock, reg) = setup(false);
        reg.register(inst("A", "a1", 10), false);
        clock.advance_secs(8);
        assert_eq!(
            reg.renew("A", "a1", RenewRequest::default()),
            Renewal::Renewed
        );
        clock.advance_secs(8);
        assert_eq!(reg.evict(), 0);
        clock.advance_secs(3);
        assert_eq!(reg.evict(), 1);
    }

    #[test]
    fn eviction_removes_at_most_fifteen_percent_per_run() {
        let (clock, reg) = setup(false);
        for n in 0..20 {
            reg.register(inst("A", &format!("a{n}"), 30), false);
        }
        clock.advance_secs(31);
        // 20 - floor(20 * 0.85) = 3, then 17 - floor(14.45) = 3, …
        assert_eq!(reg.evict(), 3);
        assert_eq!(count(&reg), 17);
        assert_eq!(reg.evict(), 3);
        assert_eq!(count(&reg), 14);
    }

    #[test]
    fn self_preservation_blocks_eviction_without_heartbeats() {
        let (clock, reg) = setup(true);
        for n in 0..10 {
            reg.register(inst("A", &format!("a{n}"), 30), false);
        }
        clock.advance_secs(120);
        assert!(!reg.lease_expiration_enabled());
        assert!(reg.gauges().self_preservation_active);
        assert_eq!(reg.evict(), 0);
        assert_eq!(count(&reg), 10);
    }

    #[test]
    fn self_preservation_lets_eviction_run_while_heartbeats_arrive() {
        let (clock, reg) = setup(true);
        for n in 0..10 {
            reg.register(inst("A", &format!("a{n}"), 30), false);
        }
        clock.advance_secs(31);
        // Expected 10 clients × 2/min × 0.85 = 17; 9 clients renewing twice = 18 > 17.
        for _ in 0..2 {
            for n in 0..9 {
                assert_eq!(
                    reg.renew("A", &format!("a{n}"), RenewRequest::default()),
                    Renewal::Renewed
                );
            }
        }
        assert!(reg.lease_expiration_enabled());
        assert_eq!(reg.evict(), 1);
        assert!(reg.instance("A", "a9").is_none());
        // A minute later the heartbeats have left the window: preservation again.
        clock.advance_secs(61);
        assert!(!reg.lease_expiration_enabled());
        assert_eq!(reg.evict(), 0);
    }

    #[test]
    fn renewal_window_counts_the_last_sixty_seconds() {
        let mut w = RenewalWindow::default();
        w.record(T0);
        w.record(T0 + 500);
        w.record(T0 + 30_000);
        assert_eq!(w.count(T0 + 30_000), 3);
        assert_eq!(w.count(T0 + 59_999), 3);
        assert_eq!(w.count(T0 + 60_000), 1, "second T0 has left the window");
        assert_eq!(w.count(T0 + 10_000_000), 0, "a long gap clears everything");
        w.record(T0);
        assert_eq!(
            w.count(T0),
            1,
            "a clock step back counts into the current second"
        );
    }

    #[test]
    fn delta_lists_changes_with_the_full_hash_and_ages_out() {
        let (clock, reg) = setup(true);
        reg.register(inst("A", "a1", 90), false);
        reg.register(inst("B", "b1", 90), false);
        reg.register(inst("B", "b2", 90), false);
        assert!(reg.cancel("A", "a1"));
        assert!(reg.set_status("B", "b1", Status::OutOfService, None));
        let (_, delta) = reg.delta();
        let seen: Vec<(String, String, Option<ActionType>, Status)> = delta
            .applications
            .iter()
            .flat_map(|a| a.instances.iter())
            .map(|i| (i.app.clone(), i.id().to_owned(), i.action_type, i.status))
            .collect();
        assert_eq!(
            seen,
            [
                ("A".into(), "a1".into(), Some(ActionType::Added), Status::Up),
                (
                    "A".into(),
                    "a1".into(),
                    Some(ActionType::Deleted),
                    Status::Up
                ),
                ("B".into(), "b1".into(), Some(ActionType::Added), Status::Up),
                ("B".into(), "b2".into(), Some(ActionType::Added), Status::Up),
                (
                    "B".into(),
                    "b1".into(),
                    Some(ActionType::Modified),
                    Status::OutOfService
                ),
            ]
        );
        // The hash covers the whole registry, not the delta.
        assert_eq!(delta.hashcode, "OUT_OF_SERVICE_1_UP_1_");
        assert_eq!(reg.applications().1.hashcode, "OUT_OF_SERVICE_1_UP_1_");
        assert!(delta.version > 1, "never the full fetch's version");
        let (_, again) = reg.delta();
        assert!(
            again.version > delta.version,
            "versions__delta moves on every build"
        );
        clock.advance_secs(181);
        let (_, aged) = reg.delta();
        assert!(aged.applications.is_empty());
        assert_eq!(aged.hashcode, "OUT_OF_SERVICE_1_UP_1_");
    }

    #[test]
    fn heartbeat_dirty_timestamp_rules() {
        let (_clock, reg) = setup(true);
        reg.register(inst("A", "a1", 90), false);
        let with = |d: u64, replication: bool| RenewRequest {
            last_dirty: Some(d),
            replication,
            ..RenewRequest::default()
        };
        assert_eq!(reg.renew("A", "a1", with(T0, false)), Renewal::Renewed);
        // Client changed something the registry has not seen: make it re-register.
        assert_eq!(reg.renew("A", "a1", with(T0 + 1, false)), Renewal::NotFound);
        assert_eq!(reg.renew("A", "a1", with(T0 - 1, false)), Renewal::Renewed);
        assert!(matches!(
            reg.renew("A", "a1", with(T0 - 1, true)),
            Renewal::Conflict(_)
        ));
        assert_eq!(
            reg.renew("A", "nope", RenewRequest::default()),
            Renewal::NotFound
        );
    }

    #[test]
    fn newer_stored_copy_survives_an_older_registration() {
        let (_clock, reg) = setup(true);
        let mut newer = inst("A", "a1", 90);
        newer.last_dirty_timestamp = T0 + 10;
        newer.home_page_url = Some("new".into());
        reg.register(newer, false);
        let mut older = inst("A", "a1", 90);
        older.home_page_url = Some("old".into());
        reg.register(older, false);
        let got = reg.instance("A", "a1").expect("registered");
        assert_eq!(got.home_page_url.as_deref(), Some("new"));
    }

    #[test]
    fn overrides_follow_the_java_rules() {
        let (_clock, reg) = setup(true);
        reg.register(inst("A", "a1", 90), false);
        assert!(reg.set_status("A", "a1", Status::OutOfService, None));
        // The client re-registers UP: the override wins.
        reg.register(inst("A", "a1", 90), false);
        let got = reg.instance("A", "a1").expect("registered");
        assert_eq!(
            (got.status, got.overridden_status),
            (Status::OutOfService, Status::OutOfService)
        );
        // DOWN from the client is always believed.
        let mut down = inst("A", "a1", 90);
        down.status = Status::Down;
        reg.register(down, false);
        assert_eq!(
            reg.instance("A", "a1").map(|i| i.status),
            Some(Status::Down)
        );
        // Removing the override without a fallback leaves UNKNOWN: the next heartbeat asks
        // the client to re-register.
        reg.register(inst("A", "a1", 90), false);
        assert!(reg.delete_status_override("A", "a1", Status::Unknown, None));
        assert_eq!(
            reg.instance("A", "a1").map(|i| i.status),
            Some(Status::Unknown)
        );
        assert_eq!(
            reg.renew("A", "a1", RenewRequest::default()),
            Renewal::NotFound
        );
        reg.register(inst("A", "a1", 90), false);
        assert_eq!(reg.instance("A", "a1").map(|i| i.status), Some(Status::Up));
        assert!(!reg.set_status("A", "zz", Status::Up, None));
    }

    #[test]
    fn metadata_update_re_registers() {
        let (_clock, reg) = setup(true);
        reg.register(inst("A", "a1", 90), false);
        assert!(reg.update_metadata("A", "a1", vec![("k".into(), "v".into())]));
        let got = reg.instance("A", "a1").expect("registered");
        assert_eq!(got.metadata.get("k").map(String::as_str), Some("v"));
        assert!(!reg.update_metadata("A", "zz", vec![]));
    }

    #[test]
    fn mesh_sync_records_added_modified_deleted() {
        let (_clock, reg) = setup(true);
        let a = inst("MESH-A", "m1", 90);
        let b = inst("MESH-B", "m2", 90);
        reg.sync_mesh(vec![a.clone(), b.clone()]);
        let generation = reg.generation();
        reg.sync_mesh(vec![a.clone(), b.clone()]);
        assert_eq!(reg.generation(), generation, "no change, no new generation");
        let mut a2 = a.clone();
        a2.port.port = 81;
        reg.sync_mesh(vec![a2]);
        let (_, delta) = reg.delta();
        let actions: Vec<_> = delta
            .applications
            .iter()
            .flat_map(|app| app.instances.iter().map(|i| (i.app.clone(), i.action_type)))
            .collect();
        assert_eq!(
            actions,
            [
                ("MESH-A".to_owned(), Some(ActionType::Added)),
                ("MESH-A".to_owned(), Some(ActionType::Modified)),
                ("MESH-B".to_owned(), Some(ActionType::Added)),
                ("MESH-B".to_owned(), Some(ActionType::Deleted)),
            ]
        );
        assert_eq!(count(&reg), 1);
        assert!(reg.by_vip("mesh-a", false).1.is_some());
        assert!(reg.by_vip("mesh-b", false).1.is_none());
        assert_eq!(reg.instance_by_id("m1").map(|i| i.port.port), Some(81));
    }
}
