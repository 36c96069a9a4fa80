//! The reflectors: one watcher per kind in [`super::rbac::TABLE`] and per watched namespace (one
//! cluster-wide watcher when none are listed), each feeding an in-memory store.

use std::fmt::Debug;

use futures_util::StreamExt as _;
use futures_util::stream::{BoxStream, SelectAll};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, watcher};
use serde::de::DeserializeOwned;

use super::rbac::{self, Access};
use crate::Error;

/// The verbs a kube-runtime watcher calls (an initial list, then watch).
pub const WATCHER_VERBS: &[&str] = &["list", "watch"];

/// What one watch stream reports to the sync loop.
#[derive(Debug)]
pub enum Event {
    /// Stream `n` finished a full list (first or after a re-list).
    InitDone(usize),
    /// An object was added, changed or deleted.
    Changed,
    /// A watch or list call failed (retried with backoff).
    Failed(String),
}

/// The stores and the merged event stream.
pub struct Watched {
    /// Service stores, one per watcher.
    pub services: Vec<Store<Service>>,
    /// EndpointSlice stores, one per watcher.
    pub slices: Vec<Store<EndpointSlice>>,
    /// Every watcher's events.
    pub events: SelectAll<BoxStream<'static, Event>>,
    /// How many watchers there are.
    pub streams: usize,
}

/// Checks that `K` is the resource `access` names and that a watcher only needs its verbs, so the
/// table the chart's RBAC is tested against is the one the code uses.
fn check<K: kube::Resource<DynamicType = ()>>(access: &Access) -> Result<(), Error> {
    let ok = K::group(&()) == access.group
        && K::version(&()) == access.version
        && K::kind(&()) == access.kind
        && K::plural(&()) == access.resource
        && access.verbs == WATCHER_VERBS;
    if ok {
        Ok(())
    } else {
        Err(Error::Discovery {
            reason: format!(
                "internal: rbac table row {} does not match the watcher of {}",
                access.resource,
                K::kind(&())
            ),
        })
    }
}

fn reflect<K>(
    access: &Access,
    client: &kube::Client,
    namespace: Option<&str>,
    labels: Option<&str>,
    n: usize,
) -> Result<(Store<K>, BoxStream<'static, Event>), Error>
where
    K: kube::Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
{
    check::<K>(access)?;
    let api: Api<K> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut config = watcher::Config::default();
    if let Some(l) = labels {
        config = config.labels(l);
    }
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(api, config).default_backoff())
        .map(move |ev| match ev {
            Ok(watcher::Event::InitDone) => Event::InitDone(n),
            Ok(_) => Event::Changed,
            Err(e) => Event::Failed(e.to_string()),
        })
        .boxed();
    Ok((reader, stream))
}

impl Watched {
    /// Starts the watchers (they run as the returned stream is polled). The label selector
    /// applies to Services only; slices are matched to them by name.
    pub fn start(
        client: &kube::Client,
        namespaces: &[String],
        labels: Option<&str>,
    ) -> Result<Self, Error> {
        let scopes: Vec<Option<&str>> = if namespaces.is_empty() {
            vec![None]
        } else {
            namespaces.iter().map(|n| Some(n.as_str())).collect()
        };
        let mut events = SelectAll::new();
        let mut services = Vec::new();
        let mut slices = Vec::new();
        let mut n = 0;
        for ns in scopes {
            let (store, stream) = reflect::<Service>(&rbac::SERVICES, client, ns, labels, n)?;
            services.push(store);
            events.push(stream);
            n += 1;
            let (store, stream) =
                reflect::<EndpointSlice>(&rbac::ENDPOINT_SLICES, client, ns, None, n)?;
            slices.push(store);
            events.push(stream);
            n += 1;
        }
        Ok(Self {
            services,
            slices,
            events,
            streams: n,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The discovery rows of the RBAC table are the watchers the code starts, with the watcher's
    /// verbs; the store's rows are checked in `store.rs`.
    #[test]
    fn the_rbac_table_is_what_the_watchers_call() {
        assert!(check::<Service>(&rbac::SERVICES).is_ok());
        assert!(check::<EndpointSlice>(&rbac::ENDPOINT_SLICES).is_ok());
        assert!(check::<Service>(&rbac::ENDPOINT_SLICES).is_err());
        assert_eq!(
            rbac::TABLE,
            &[
                rbac::SERVICES,
                rbac::ENDPOINT_SLICES,
                rbac::WORKLOAD_ENTRIES,
                rbac::SERVICE_ENTRIES,
            ]
        );
    }
}
