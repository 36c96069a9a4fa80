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
