//! The in-memory registry: legacy leases, mesh instances, status overrides, the delta queue,
//! eviction and self-preservation, following Netflix `AbstractInstanceRegistry` semantics.

use super::clock::Clock;
use super::instance::{ActionType, Application, Applications, Instance, Status};
use super::lease::Lease;
use crate::metrics::{Gauges, Metrics, inc};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Window over which heartbeats are counted for self-preservation (`MeasuredRate` of 1 min).
const RENEWAL_WINDOW_MS: u64 = 60_000;

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
    renewals: VecDeque<u64>,
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
        st.renewals.push_back(now);
        let cutoff = now.saturating_sub(RENEWAL_WINDOW_MS);
        while st.renewals.front().is_some_and(|t| *t < cutoff) {
            st.renewals.pop_front();
        }
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
        let cutoff = now.saturating_sub(RENEWAL_WINDOW_MS);
        while st.renewals.front().is_some_and(|t| *t < cutoff) {
            st.renewals.pop_front();
        }
        let expected = total(&st.legacy) as f64;
        let per_min = 60.0 / self.settings.expected_renewal_interval_secs.max(1) as f64;
        // `updateRenewsPerMinThreshold`: truncated like Java's `(int)` cast.
        let threshold = (expected * per_min * self.settings.renewal_percent_threshold) as u64;
        threshold > 0 && st.renewals.len() as u64 > threshold
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
        let full = Applications::new(1, Self::all_apps(&st));
        let apps = Applications {
            version: st.delta_version,
            hashcode: full.hashcode,
            applications,
        };
        (self.generation(), apps)
    }

    /// `GET apps/{APP}`.
    pub fn application(&self, app: &str) -> (u64, Option<Application>) {
        let st = self.lock();
        let found = Self::all_apps(&st).into_iter().find(|a| a.name == app);
        (self.generation(), found)
    }

    /// `GET vips/{vip}` (`secure = false`) or `GET svips/{svip}`; `None` when nothing matches.
    pub fn by_vip(&self, vip: &str, secure: bool) -> (u64, Option<Applications>) {
        let st = self.lock();
        let apps: Vec<Application> = Self::all_apps(&st)
            .into_iter()
            .filter_map(|mut a| {
                a.instances.retain(|i| {
                    if secure {
                        i.has_secure_vip(vip)
                    } else {
                        i.has_vip(vip)
                    }
                });
                (!a.instances.is_empty()).then_some(a)
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
            renewals_last_minute: st.renewals.len() as u64,
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
