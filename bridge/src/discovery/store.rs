//! The registry store on Kubernetes (`store.kind: kubernetes`): legacy registrations are kept
//! in Istio `WorkloadEntry` objects so every replica serves the same registry and the mesh can
//! reach legacy instances.
//!
//! Every `store.sync_interval_ms` each replica reconciles its in-memory registry with the
//! WorkloadEntries it watches (a reflector), against what it last synced per entry:
//! - a local registration or change (status, metadata) is written (server-side apply with the
//!   field manager `meshmove-bridge`); a local cancel or eviction deletes the entry;
//! - an entry written by another replica is imported (registered as a replicated registration),
//!   a changed one re-imported, a deleted one cancelled here;
//! - heartbeats stay in memory; a replica writes the lease annotation when its last local renewal
//!   is at least `store.lease_write_interval` seconds newer than the last written one, and takes
//!   newer leases written by others as renewals;
//! - any replica deletes an entry whose lease expired (its `leaseInfo.durationInSecs` after the
//!   last written renewal); deletes carry the resourceVersion they saw as a precondition.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, Preconditions,
};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, watcher};
use serde_json::{Value, json};
use tokio::sync::watch as signal;
use tokio::task::JoinHandle;

use super::config::StoreConfig;
use super::expose::Mapped;
use super::rbac;
use crate::Error;
use crate::eureka::Registry;
use crate::eureka::instance::Instance;
use crate::eureka::registry::{Origin, RenewRequest};
use crate::eureka::wire;

/// Field manager of every apply.
pub const FIELD_MANAGER: &str = "meshmove-bridge";
/// Label on every entry the bridge manages (the watch selects on it).
pub const MANAGED_LABEL: &str = "meshmove.io/registry";
/// Annotation holding the Eureka instance (its JSON wire form).
pub const INSTANCE_ANNOTATION: &str = "meshmove.io/eureka-instance";
/// Annotation holding the last written renewal, milliseconds since the epoch.
pub const LEASE_ANNOTATION: &str = "meshmove.io/lease-renewed";

/// The verbs the store calls on WorkloadEntries: list + watch (the reflector), patch
/// (server-side apply), delete.
pub const STORE_VERBS: &[&str] = &["delete", "list", "patch", "watch"];

/// The verbs the store calls on ServiceEntries: patch (server-side apply), delete, and list (at
/// start, to find the ones left by replicas for apps that are gone).
pub const SERVICE_ENTRY_VERBS: &[&str] = &["delete", "list", "patch"];

/// The WorkloadEntry resource (`networking.istio.io/v1`), from the RBAC table.
pub fn workload_entries() -> ApiResource {
    resource(&rbac::WORKLOAD_ENTRIES)
}

/// The ServiceEntry resource (`networking.istio.io/v1`), from the RBAC table.
pub fn service_entries() -> ApiResource {
    resource(&rbac::SERVICE_ENTRIES)
}

fn resource(a: &rbac::Access) -> ApiResource {
    ApiResource {
        group: a.group.into(),
        version: a.version.into(),
        api_version: format!("{}/{}", a.group, a.version),
        kind: a.kind.into(),
        plural: a.resource.into(),
    }
}

/// The entry name of an instance: DNS-1123, stable, unique per (app, id).
pub fn entry_name(app: &str, id: &str) -> String {
    // FNV-1a over app and id: stable across replicas and releases.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in app.bytes().chain([0]).chain(id.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut prefix: String = app
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    prefix = prefix.trim_matches('-').to_owned();
    if prefix.is_empty() {
        prefix = "app".into();
    }
    format!("{prefix}-{h:016x}")
}

/// What decides whether an instance changed: its wire form without server timestamps.
fn content(i: &Instance) -> String {
    let mut c = i.clone();
    c.lease = None;
    c.action_type = None;
    c.last_updated_timestamp = 0;
    String::from_utf8_lossy(&wire::instance_to_json(&c)).into_owned()
}

fn renewed(i: &Instance) -> u64 {
    i.lease.map_or(0, |l| l.last_renewal_timestamp)
}

fn lease_ms(i: &Instance) -> u64 {
    u64::from(i.lease.map_or(90, |l| l.duration_secs.max(1))) * 1000
}

/// The WorkloadEntry for an instance, with its lease.
fn entry(i: &Instance, namespace: &str, lease: u64) -> Value {
    let name = entry_name(&i.app, i.id());
    let mut labels = serde_json::Map::new();
    labels.insert(MANAGED_LABEL.into(), json!("eureka"));
    labels.insert("app".into(), json!(dns_label(&i.app)));
    for (k, v) in &i.metadata {
        let ok_key = !k.is_empty() && k.len() <= 63 && k.chars().all(label_char);
        let ok_value = v.len() <= 63 && v.chars().all(label_char);
        if ok_key && ok_value && k != "app" && k != MANAGED_LABEL {
            labels.insert(k.clone(), json!(v));
        }
    }
    let mut ports = serde_json::Map::new();
    if i.port.enabled {
        ports.insert("http".into(), json!(i.port.port));
    }
    if i.secure_port.enabled {
        ports.insert("https".into(), json!(i.secure_port.port));
    }
    json!({
        "apiVersion": workload_entries().api_version,
        "kind": "WorkloadEntry",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": {
                INSTANCE_ANNOTATION: String::from_utf8_lossy(&wire::instance_to_json(i)),
                LEASE_ANNOTATION: lease.to_string(),
            },
        },
        "spec": {"address": i.ip_addr, "ports": ports, "labels": {"app": dns_label(&i.app)}},
    })
}

fn label_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

fn dns_label(app: &str) -> String {
    let s: String = app
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(63)
        .collect();
    s.trim_matches('-').to_owned()
}

/// A remote entry, decoded.
struct Remote {
    instance: Instance,
    lease: u64,
    resource_version: Option<String>,
}

fn decode(o: &DynamicObject) -> Option<Remote> {
    let ann = o.metadata.annotations.as_ref()?;
    let instance = wire::parse_instance(ann.get(INSTANCE_ANNOTATION)?.as_bytes()).ok()?;
    let lease = ann.get(LEASE_ANNOTATION)?.parse().ok()?;
    Some(Remote {
        instance,
        lease,
        resource_version: o.metadata.resource_version.clone(),
    })
}

/// What this replica last agreed with the API on, per entry.
#[derive(Debug, Clone)]
struct Synced {
    content: String,
    lease_written: u64,
    /// Seen in the watched entries since it was last written (so its absence means deleted).
    seen: bool,
}

/// The ServiceEntry name of a legacy app.
pub fn service_entry_name(app: &str) -> String {
    format!(
        "{}-legacy",
        dns_label(app).chars().take(50).collect::<String>()
    )
}

/// The hosts of a legacy app's ServiceEntry: the mapping file's `kubernetes_host` of a
/// `services[]` entry with this `eureka_app` (a service being moved keeps its mesh name), else
/// `{app}.{namespace}.legacy`.
pub fn service_entry_hosts(app: &str, namespace: &str, mapped: &[Mapped]) -> Vec<String> {
    let hosts: Vec<String> = mapped
        .iter()
        .filter(|m| m.app.eq_ignore_ascii_case(app))
        .map(|m| m.host.clone())
        .collect();
    if hosts.is_empty() {
        vec![format!("{}.{namespace}.legacy", dns_label(app))]
    } else {
        hosts
    }
}

/// The ServiceEntry of a legacy app: MESH_INTERNAL, STATIC resolution, selecting its
/// WorkloadEntries by their `app` label, one port per port name its instances use.
fn service_entry(app: &str, namespace: &str, mapped: &[Mapped], ports: &[(String, u16)]) -> Value {
    let ports: Vec<Value> = ports
        .iter()
        .map(|(name, n)| {
            json!({"number": n, "name": format!("{name}-{n}"),
                   "protocol": if name == "https" { "HTTPS" } else { "HTTP" },
                   "targetPort": n})
        })
        .collect();
    json!({
        "apiVersion": service_entries().api_version,
        "kind": "ServiceEntry",
        "metadata": {
            "name": service_entry_name(app),
            "namespace": namespace,
            "labels": {MANAGED_LABEL: "eureka"},
        },
        "spec": {
            "hosts": service_entry_hosts(app, namespace, mapped),
            "location": "MESH_INTERNAL",
            "resolution": "STATIC",
            "ports": ports,
            "workloadSelector": {"labels": {"app": dns_label(app)}},
        },
    })
}

/// The store task's handles.
pub struct KubeStore {
    api: Api<DynamicObject>,
    service_entries: Api<DynamicObject>,
    store: Store<DynamicObject>,
    config: StoreConfig,
    mapped: Vec<Mapped>,
}

impl std::fmt::Debug for KubeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeStore")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl KubeStore {
    /// The store in `config.namespace`, watched through `client`.
    pub fn new(
        client: &kube::Client,
        config: &StoreConfig,
        mapped: Vec<Mapped>,
    ) -> (Self, impl futures_util::Stream<Item = ()> + Send + 'static) {
        let ar = workload_entries();
        let service_entries =
            Api::namespaced_with(client.clone(), &config.namespace, &service_entries());
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &config.namespace, &ar);
        let writer = reflector::store::Writer::new(ar.clone());
        let reader = writer.as_reader();
        let stream = reflector::reflector(
            writer,
            watcher(
                api.clone(),
                watcher::Config::default().labels(&format!("{MANAGED_LABEL}=eureka")),
            )
            .default_backoff(),
        )
        .map(|ev| {
            if let Err(e) = ev {
                tracing::warn!(error = %e, "registry store watch failed; retrying with backoff");
            }
        });
        (
            Self {
                api,
                service_entries,
                store: reader,
                config: config.clone(),
                mapped,
            },
            stream,
        )
    }

    /// Runs the reconcile loop until `stop`. `ready` turns true after the first round that
    /// succeeds entirely: the registry holds what the API holds, this replica's ServiceEntries
    /// are applied, and ServiceEntries left for apps that are gone are deleted.
    pub fn spawn(
        self,
        registry: Arc<Registry>,
        events: impl futures_util::Stream<Item = ()> + Send + 'static,
        ready: Arc<std::sync::atomic::AtomicBool>,
        mut stop: signal::Receiver<bool>,
    ) -> JoinHandle<Result<(), Error>> {
        tokio::spawn(async move {
            let mut events = Box::pin(events);
            // The watch runs beside the loop; the loop reads its store.
            let (done_tx, mut done_rx) = signal::channel(false);
            let driver = tokio::spawn(async move {
                while events.next().await.is_some() {
                    if *done_rx.borrow_and_update() {
                        break;
                    }
                }
            });
            let _ = self.store.wait_until_ready().await;
            let mut synced: BTreeMap<String, Synced> = BTreeMap::new();
            let mut entries: BTreeMap<String, Value> = BTreeMap::new();
            // ServiceEntries found at start that may be left over (listed once), until handled.
            let mut leftovers: Option<Vec<(String, String)>> = None;
            let mut tick =
                tokio::time::interval(Duration::from_millis(self.config.sync_interval_ms.max(10)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        let mut ok = true;
                        if let Err(e) = self.reconcile(&registry, &mut synced).await {
                            tracing::warn!(error = %e, "registry store sync failed; retrying");
                            ok = false;
                        }
                        if let Err(e) = self.service_entries(&registry, &mut entries).await {
                            tracing::warn!(error = %e, "service entry sync failed; retrying");
                            ok = false;
                        }
                        if ok && let Err(e) = self.leftovers(&entries, &mut leftovers).await {
                            tracing::warn!(error = %e, "removing ServiceEntries of gone apps failed; retrying");
                            ok = false;
                        }
                        if ok && !ready.swap(true, std::sync::atomic::Ordering::SeqCst) {
                            tracing::info!("registry store: first round done");
                        }
                    }
                    _ = stop.changed() => break,
                }
            }
            let _ = done_tx.send(true);
            driver.abort();
            Ok(())
        })
    }

    async fn apply(&self, i: &Instance, lease: u64) -> Result<(), kube::Error> {
        let name = entry_name(&i.app, i.id());
        let obj = entry(i, &self.config.namespace, lease);
        self.api
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(obj),
            )
            .await
            .map(|_| ())
    }

    /// Keeps one ServiceEntry per legacy app with instances (as this replica sees them), applied
    /// when it changes and deleted when the app is gone.
    async fn service_entries(
        &self,
        registry: &Registry,
        applied: &mut BTreeMap<String, Value>,
    ) -> Result<(), kube::Error> {
        let mut ports: BTreeMap<String, std::collections::BTreeSet<(String, u16)>> =
            BTreeMap::new();
        for d in registry.dump() {
            if d.origin != Origin::Legacy {
                continue;
            }
            let p = ports.entry(d.app.clone()).or_default();
            if let Some(n) = d.port {
                p.insert(("http".into(), n));
            }
            if let Some(n) = d.secure_port {
                p.insert(("https".into(), n));
            }
        }
        for (app, p) in &ports {
            let p: Vec<(String, u16)> = p.iter().cloned().collect();
            let want = service_entry(app, &self.config.namespace, &self.mapped, &p);
            if applied.get(app) != Some(&want) {
                self.service_entries
                    .patch(
                        &service_entry_name(app),
                        &PatchParams::apply(FIELD_MANAGER).force(),
                        &Patch::Apply(&want),
                    )
                    .await?;
                applied.insert(app.clone(), want);
            }
        }
        let gone: Vec<String> = applied
            .keys()
            .filter(|a| !ports.contains_key(*a))
            .cloned()
            .collect();
        for app in gone {
            match self
                .service_entries
                .delete(&service_entry_name(&app), &DeleteParams::default())
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
            applied.remove(&app);
        }
        Ok(())
    }

    /// Deletes the ServiceEntries this store writes (by their label) that no app needs any more:
    /// left by a replica that stopped after the app's last instance went. Listed once at start;
    /// one is deleted only when no WorkloadEntry selects it, asked of the API (not this replica's
    /// cache, which may lag behind another replica that just registered the app).
    async fn leftovers(
        &self,
        applied: &BTreeMap<String, Value>,
        pending: &mut Option<Vec<(String, String)>>,
    ) -> Result<(), kube::Error> {
        if pending.is_none() {
            let listed = self
                .service_entries
                .list(&ListParams::default().labels(&format!("{MANAGED_LABEL}=eureka")))
                .await?;
            let found = listed
                .items
                .iter()
                .filter_map(|se| {
                    let name = se.metadata.name.clone()?;
                    let app = se.data["spec"]["workloadSelector"]["labels"]["app"]
                        .as_str()?
                        .to_string();
                    Some((name, app))
                })
                .collect();
            *pending = Some(found);
        }
        let Some(list) = pending.as_mut() else {
            return Ok(());
        };
        let mine: std::collections::BTreeSet<String> =
            applied.keys().map(|a| service_entry_name(a)).collect();
        while let Some((name, app)) = list.last().cloned() {
            if !mine.contains(&name) {
                let selected = self
                    .api
                    .list(&ListParams::default().labels(&format!("app={app}")).limit(1))
                    .await?;
                if selected.items.is_empty() {
                    match self
                        .service_entries
                        .delete(&name, &DeleteParams::default())
                        .await
                    {
                        Ok(_) => {
                            tracing::info!(service_entry = %name, "deleted: its app has no instances")
                        }
                        Err(kube::Error::Api(e)) if e.code == 404 => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            list.pop();
        }
        Ok(())
    }

    async fn delete(&self, name: &str, rv: Option<String>) -> Result<(), kube::Error> {
        let dp = DeleteParams {
            preconditions: Some(Preconditions {
                resource_version: rv,
                uid: None,
            }),
            ..DeleteParams::default()
        };
        match self.api.delete(name, &dp).await {
            Ok(_) => Ok(()),
            // Already gone, or changed since we looked (the next round decides again).
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn reconcile(
        &self,
        registry: &Registry,
        synced: &mut BTreeMap<String, Synced>,
    ) -> Result<(), kube::Error> {
        let now = registry.clock().now_millis();
        let interval_ms = self.config.lease_write_interval.saturating_mul(1000);
        let mut local: BTreeMap<String, Instance> = BTreeMap::new();
        for d in registry.dump() {
            if d.origin == Origin::Legacy
                && let Some(i) = registry.instance(&d.app, &d.id)
            {
                local.insert(entry_name(&i.app, i.id()), i);
            }
        }
        let mut remote: BTreeMap<String, Remote> = BTreeMap::new();
        for o in self.store.state() {
            if let (Some(name), Some(r)) = (o.metadata.name.clone(), decode(&o)) {
                remote.insert(name, r);
            }
        }
        // Expired leases: any replica deletes them.
        for (name, r) in &remote {
            if r.lease.saturating_add(lease_ms(&r.instance)) < now {
                tracing::info!(app = %r.instance.app, id = %r.instance.id(), "registry store: lease expired; deleting");
                self.delete(name, r.resource_version.clone()).await?;
                registry.cancel(&r.instance.app, r.instance.id());
                synced.remove(name);
                local.remove(name);
            }
        }
        let names: Vec<String> = local
            .keys()
            .chain(remote.keys())
            .chain(synced.keys())
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        for name in names {
            let l = local.get(&name);
            let r = remote.get(&name);
            let s = synced.get_mut(&name);
            match (l, r, s) {
                // Local only and new, or changed here: write it.
                (Some(i), None, None) => {
                    self.apply(i, renewed(i)).await?;
                    synced.insert(name, synced_of(i, renewed(i), false));
                }
                // Written by us before, now gone from the API: cancelled or evicted elsewhere.
                (Some(i), None, Some(s)) => {
                    if s.seen {
                        registry.cancel(&i.app, i.id());
                        synced.remove(&name);
                    } else if content(i) != s.content || renewed(i) >= s.lease_written + interval_ms
                    {
                        self.apply(i, renewed(i)).await?;
                        *s = synced_of(i, renewed(i), false);
                    }
                }
                // Only in the API: another replica's registration; import it.
                (None, Some(r), None) => {
                    registry.register(r.instance.clone(), true);
                    let after = registry
                        .instance(&r.instance.app, r.instance.id())
                        .map_or(r.lease, |i| renewed(&i));
                    synced.insert(name, synced_of(&r.instance, after.max(r.lease), true));
                }
                // Gone here (cancel or local eviction) after we synced it: delete it, unless
                // another replica renewed or changed it since (then it lives on: take it back).
                (None, Some(r), Some(s)) => {
                    if r.lease > s.lease_written || content(&r.instance) != s.content {
                        registry.register(r.instance.clone(), true);
                        let after = registry
                            .instance(&r.instance.app, r.instance.id())
                            .map_or(r.lease, |i| renewed(&i));
                        synced.insert(name, synced_of(&r.instance, after.max(r.lease), true));
                    } else {
                        self.delete(&name, r.resource_version.clone()).await?;
                        synced.remove(&name);
                    }
                }
                (None, None, Some(_)) => {
                    synced.remove(&name);
                }
                (Some(i), Some(r), s) => {
                    let mut s = s
                        .cloned()
                        .unwrap_or_else(|| synced_of(&r.instance, r.lease, true));
                    s.seen = true;
                    let here = content(i);
                    let there = content(&r.instance);
                    if here != s.content {
                        // Changed here: write (newest local state wins over an older remote one).
                        self.apply(i, renewed(i).max(r.lease)).await?;
                        s.content = here;
                        s.lease_written = renewed(i).max(r.lease);
                    } else if there != s.content {
                        // Changed elsewhere: take it.
                        registry.register(r.instance.clone(), true);
                        s.content = there;
                    }
                    if r.lease > s.lease_written || r.lease > renewed(i) {
                        // Someone else got a heartbeat: renew here without writing back.
                        if r.lease > renewed(i) {
                            registry.renew(
                                &i.app,
                                i.id(),
                                RenewRequest {
                                    last_dirty: None,
                                    overridden_status: None,
                                    replication: true,
                                },
                            );
                        }
                        let now_renewed = registry
                            .instance(&i.app, i.id())
                            .map_or(r.lease, |x| renewed(&x));
                        s.lease_written = s.lease_written.max(r.lease).max(now_renewed);
                    } else if renewed(i) >= s.lease_written.saturating_add(interval_ms) {
                        self.apply(i, renewed(i)).await?;
                        s.lease_written = renewed(i);
                    }
                    synced.insert(name, s);
                }
                (None, None, None) => {}
            }
        }
        Ok(())
    }
}

fn synced_of(i: &Instance, lease: u64, seen: bool) -> Synced {
    Synced {
        content: content(i),
        lease_written: lease,
        seen,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rbac_row_is_what_the_store_calls() {
        assert_eq!(rbac::WORKLOAD_ENTRIES.verbs, STORE_VERBS);
        assert_eq!(rbac::SERVICE_ENTRIES.verbs, SERVICE_ENTRY_VERBS);
        assert_eq!(service_entries().plural, "serviceentries");
        let ar = workload_entries();
        assert_eq!(ar.api_version, "networking.istio.io/v1");
        assert_eq!(ar.plural, "workloadentries");
    }

    #[test]
    fn service_entry_hosts_come_from_the_mapping_file() {
        let mapped = vec![Mapped {
            host: "orders.shop.svc.cluster.local".into(),
            app: "ORDERS".into(),
            vip: String::new(),
        }];
        assert_eq!(
            service_entry_hosts("orders", "ing", &mapped),
            ["orders.shop.svc.cluster.local"]
        );
        assert_eq!(
            service_entry_hosts("LEGACY-ORDERS", "ing", &mapped),
            ["legacy-orders.ing.legacy"]
        );
        let se = service_entry("LEGACY-ORDERS", "ing", &[], &[("http".into(), 7001)]);
        assert_eq!(se["spec"]["location"], "MESH_INTERNAL");
        assert_eq!(
            se["spec"]["workloadSelector"]["labels"]["app"],
            "legacy-orders"
        );
        assert_eq!(se["spec"]["ports"][0]["number"], 7001);
    }

    #[test]
    fn entry_names_are_dns_labels_and_stable() {
        let a = entry_name("LEGACY-ORDERS", "10.0.0.7:legacy-orders:8080");
        assert_eq!(
            a,
            entry_name("LEGACY-ORDERS", "10.0.0.7:legacy-orders:8080")
        );
        assert_ne!(
            a,
            entry_name("LEGACY-ORDERS", "10.0.0.8:legacy-orders:8080")
        );
        assert!(a.starts_with("legacy-orders-"));
        assert!(a.len() <= 63);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
        assert!(entry_name("__", "x").starts_with("app-"));
    }
}
