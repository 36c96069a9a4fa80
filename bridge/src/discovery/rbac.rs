//! The one table of Kubernetes API calls the bridge makes. The discovery watchers take their
//! resource and verbs from here ([`Access::verbs`] is what they call), and the chart's
//! Role/ClusterRole must grant exactly this (a test renders the chart and compares).

/// Where a rule applies: in each watched namespace (a Role there, or a ClusterRole when every
/// namespace is watched).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The namespaces listed in `discovery.namespaces` (all when empty).
    Watched,
    /// The registry store's namespace (`store.namespace`), with `store.kind: kubernetes` only.
    Store,
}

/// One API resource and the verbs the bridge calls on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// API group (`""` = core).
    pub group: &'static str,
    /// API version the client uses.
    pub version: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Plural resource name (what RBAC rules name).
    pub resource: &'static str,
    /// Verbs, sorted.
    pub verbs: &'static [&'static str],
    /// Where.
    pub scope: Scope,
}

/// Services: read for the `meshmove.io/eureka-app` annotation and ports (a reflector: list +
/// watch).
pub const SERVICES: Access = Access {
    group: "",
    version: "v1",
    kind: "Service",
    resource: "services",
    verbs: &["list", "watch"],
    scope: Scope::Watched,
};

/// EndpointSlices: read to know whether a service has ready endpoints (a reflector).
pub const ENDPOINT_SLICES: Access = Access {
    group: "discovery.k8s.io",
    version: "v1",
    kind: "EndpointSlice",
    resource: "endpointslices",
    verbs: &["list", "watch"],
    scope: Scope::Watched,
};

/// WorkloadEntries: the registry store on Kubernetes (a reflector: list + watch; server-side
/// apply: patch; delete of cancelled and expired entries).
pub const WORKLOAD_ENTRIES: Access = Access {
    group: "networking.istio.io",
    version: "v1",
    kind: "WorkloadEntry",
    resource: "workloadentries",
    verbs: &["delete", "list", "patch", "watch"],
    scope: Scope::Store,
};

/// ServiceEntries: one per legacy app of the store, grouping its WorkloadEntries (server-side
/// apply: patch; delete when the app has no instance left).
pub const SERVICE_ENTRIES: Access = Access {
    group: "networking.istio.io",
    version: "v1",
    kind: "ServiceEntry",
    resource: "serviceentries",
    verbs: &["delete", "list", "patch"],
    scope: Scope::Store,
};

/// Every call the bridge makes, one row per resource.
pub const TABLE: &[Access] = &[SERVICES, ENDPOINT_SLICES, WORKLOAD_ENTRIES, SERVICE_ENTRIES];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_are_sorted_and_resources_unique() {
        for a in TABLE {
            let mut v = a.verbs.to_vec();
            v.sort_unstable();
            v.dedup();
            assert_eq!(v, a.verbs, "{}", a.resource);
        }
        let mut names: Vec<_> = TABLE.iter().map(|a| (a.group, a.resource)).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TABLE.len());
    }
}
