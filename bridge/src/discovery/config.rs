//! The `discovery:` section of the bridge config: which Kubernetes Services become Eureka apps.

use std::path::PathBuf;

use serde::Deserialize;

use crate::Error;

/// Annotation on a Service naming the Eureka app it is shown as (`ORDERS`).
pub const APP_ANNOTATION: &str = "meshmove.io/eureka-app";
/// Optional annotation with the VIP address (Spring name); default the app lower-cased.
pub const VIP_ANNOTATION: &str = "meshmove.io/eureka-vip";

/// `discovery:` section. Default: off (the bridge runs without a cluster).
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct DiscoveryConfig {
    /// Watch Services and EndpointSlices through the in-cluster (or kubeconfig) client.
    /// Default false.
    pub enabled: bool,
    /// Namespaces to watch; empty = every namespace. Default: empty.
    pub namespaces: Vec<String>,
    /// Label selector on Services (`key=value,key2`). Default: none.
    pub label_selector: Option<String>,
    /// Mapping file (docs/mapping.md): its `services[]` with a `kubernetes_host` and an
    /// `eureka_app` are exposed even without the annotation. Default: none.
    pub mapping_file: Option<PathBuf>,
    /// Kubeconfig file to use instead of the in-cluster service account (`KUBECONFIG` and
    /// `~/.kube/config` are tried when neither is there). Default: none.
    pub kubeconfig: Option<PathBuf>,
}

/// Where legacy registrations live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// In this process only (each replica has its own).
    #[default]
    Memory,
    /// Istio WorkloadEntries in `store.namespace`, shared by every replica.
    Kubernetes,
}

impl std::str::FromStr for StoreKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "memory" => Ok(Self::Memory),
            "kubernetes" => Ok(Self::Kubernetes),
            other => Err(format!(
                "unknown store {other:?}: expected memory or kubernetes"
            )),
        }
    }
}

/// `store:` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `memory` or `kubernetes`. Default `memory`.
    pub kind: StoreKind,
    /// Namespace of the WorkloadEntries (the bridge's own). Default `default`.
    pub namespace: String,
    /// Least time between two lease writes for one instance, seconds. Default 30.
    pub lease_write_interval: u64,
    /// How often a replica reconciles its registry with the API, milliseconds. Default 250.
    pub sync_interval_ms: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            kind: StoreKind::Memory,
            namespace: "default".into(),
            lease_write_interval: 30,
            sync_interval_ms: 250,
        }
    }
}

impl StoreConfig {
    /// Checks the section.
    pub fn validate(&self) -> Result<(), Error> {
        if self.kind == StoreKind::Kubernetes && self.namespace.trim().is_empty() {
            return Err(Error::invalid("store.namespace", "must not be empty"));
        }
        if self.lease_write_interval == 0 {
            return Err(Error::invalid(
                "store.lease_write_interval",
                "must be at least 1 second",
            ));
        }
        if self.sync_interval_ms == 0 {
            return Err(Error::invalid(
                "store.sync_interval_ms",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

impl DiscoveryConfig {
    /// Checks the section; `enabled: false` accepts anything parseable.
    pub fn validate(&self) -> Result<(), Error> {
        if !self.enabled {
            return Ok(());
        }
        for (i, ns) in self.namespaces.iter().enumerate() {
            let ok = !ns.is_empty()
                && ns.len() <= 63
                && ns
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !ns.starts_with('-')
                && !ns.ends_with('-');
            if !ok {
                return Err(Error::invalid(
                    format!("discovery.namespaces[{i}]"),
                    "must be a Kubernetes namespace name (lower-case letters, digits, '-')",
                ));
            }
        }
        if let Some(sel) = &self.label_selector
            && sel.trim().is_empty()
        {
            return Err(Error::invalid(
                "discovery.label_selector",
                "must not be empty; leave it out to select every Service",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::StoreKind;
    use crate::config::Config;

    fn sample(key: &str) -> &'static str {
        match key {
            "BRIDGE_DISCOVERY_ENABLED" => "true",
            "BRIDGE_DISCOVERY_NAMESPACES" => "shop, billing",
            "BRIDGE_DISCOVERY_LABEL_SELECTOR" => "meshmove.io/expose=true",
            "BRIDGE_STORE_KIND" => "kubernetes",
            "BRIDGE_STORE_NAMESPACE" => "mesh-ingress",
            "BRIDGE_STORE_LEASE_WRITE_INTERVAL" => "15",
            _ => "/etc/bridge/file.yaml",
        }
    }

    /// Every `BRIDGE_DISCOVERY_*` and `BRIDGE_STORE_*` key docs/bridge.md mentions is accepted and
    /// lands in its section.
    #[test]
    fn documented_discovery_overrides_are_accepted() {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/bridge.md");
        let text = std::fs::read_to_string(&docs).expect("docs/bridge.md");
        let mut keys: Vec<&str> = text
            .split(|c: char| !(c.is_ascii_uppercase() || c == '_'))
            .filter(|w| w.starts_with("BRIDGE_DISCOVERY_") || w.starts_with("BRIDGE_STORE_"))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), 8, "{keys:?}");
        let mut c = Config::default();
        for key in keys {
            c.apply_env([(key.to_owned(), sample(key).to_owned())])
                .unwrap_or_else(|e| panic!("{key}: {e}"));
        }
        let d = &c.discovery;
        assert!(d.enabled);
        assert_eq!(d.namespaces, ["shop", "billing"]);
        assert_eq!(d.label_selector.as_deref(), Some("meshmove.io/expose=true"));
        assert!(d.mapping_file.is_some() && d.kubeconfig.is_some());
        assert_eq!(c.store.kind, StoreKind::Kubernetes);
        assert_eq!(c.store.namespace, "mesh-ingress");
        assert_eq!(c.store.lease_write_interval, 15);
        c.validate().expect("valid");
    }

    #[test]
    fn bad_namespaces_and_empty_selectors_are_refused() {
        let mut c = Config::default();
        c.discovery.enabled = true;
        c.discovery.namespaces = vec!["Shop".into()];
        let e = c.validate().expect_err("upper case");
        assert!(e.to_string().contains("discovery.namespaces[0]"), "{e}");
        c.discovery.namespaces = vec!["shop".into()];
        c.discovery.label_selector = Some(" ".into());
        let e = c.validate().expect_err("empty selector");
        assert!(e.to_string().contains("discovery.label_selector"), "{e}");
    }
}
