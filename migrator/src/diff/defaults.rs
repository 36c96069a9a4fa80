//! Fields the Kubernetes API server fills in when the applied object leaves them out (defaults
//! and allocated values). A live field the chart does not set is not a difference when it holds
//! the default listed here (or, for allocated fields such as `clusterIP`, any value).

use serde_json::{Value, json};

/// What a defaulted field holds.
enum Default {
    /// Exactly this value.
    Is(Value),
    /// Anything: the server allocates or computes it (a cluster IP, a bound volume name).
    Any,
    /// `imagePullPolicy`: `Always` for `:latest` or no tag, else `IfNotPresent`.
    PullPolicy,
}

/// Fields of a pod spec, relative to the pod template's `spec`.
fn pod_rules() -> Vec<(String, Default)> {
    let fixed = [
        ("restartPolicy", Default::Is(json!("Always"))),
        ("dnsPolicy", Default::Is(json!("ClusterFirst"))),
        ("schedulerName", Default::Is(json!("default-scheduler"))),
        ("terminationGracePeriodSeconds", Default::Is(json!(30))),
        ("enableServiceLinks", Default::Is(json!(true))),
        ("volumes[].configMap.defaultMode", Default::Is(json!(420))),
        ("volumes[].secret.defaultMode", Default::Is(json!(420))),
    ];
    let mut r: Vec<(String, Default)> =
        fixed.into_iter().map(|(p, d)| (p.to_string(), d)).collect();
    for c in ["containers[]", "initContainers[]"] {
        for (f, d) in [
            (
                "terminationMessagePath",
                Default::Is(json!("/dev/termination-log")),
            ),
            ("terminationMessagePolicy", Default::Is(json!("File"))),
            ("imagePullPolicy", Default::PullPolicy),
            ("ports[].protocol", Default::Is(json!("TCP"))),
        ] {
            r.push((format!("{c}.{f}"), d));
        }
        for p in ["readinessProbe", "livenessProbe", "startupProbe"] {
            for (f, d) in [
                ("timeoutSeconds", json!(1)),
                ("periodSeconds", json!(10)),
                ("successThreshold", json!(1)),
                ("failureThreshold", json!(3)),
                ("httpGet.scheme", json!("HTTP")),
            ] {
                r.push((format!("{c}.{p}.{f}"), Default::Is(d)));
            }
        }
    }
    r
}

/// The rules of one kind, as full paths.
fn rules(kind: &str) -> Vec<(String, Default)> {
    let mut out: Vec<(String, Default)> = Vec::new();
    let mut add = |p: &str, d: Default| out.push((p.to_string(), d));
    let pod = |prefix: &str, out: &mut Vec<(String, Default)>, job: bool| {
        for (p, d) in pod_rules() {
            if job && p == "restartPolicy" {
                continue;
            }
            out.push((format!("{prefix}.{p}"), d));
        }
        out.push((format!("{prefix}.securityContext"), Default::Is(json!({}))));
    };
    match kind {
        "Deployment" => {
            add("spec.replicas", Default::Is(json!(1)));
            add("spec.revisionHistoryLimit", Default::Is(json!(10)));
            add("spec.progressDeadlineSeconds", Default::Is(json!(600)));
            add("spec.strategy.type", Default::Is(json!("RollingUpdate")));
            add(
                "spec.strategy.rollingUpdate.maxSurge",
                Default::Is(json!("25%")),
            );
            add(
                "spec.strategy.rollingUpdate.maxUnavailable",
                Default::Is(json!("25%")),
            );
            pod("spec.template.spec", &mut out, false);
        }
        "StatefulSet" => {
            add("spec.replicas", Default::Is(json!(1)));
            add("spec.revisionHistoryLimit", Default::Is(json!(10)));
            add(
                "spec.podManagementPolicy",
                Default::Is(json!("OrderedReady")),
            );
            add(
                "spec.updateStrategy.type",
                Default::Is(json!("RollingUpdate")),
            );
            add(
                "spec.updateStrategy.rollingUpdate.partition",
                Default::Is(json!(0)),
            );
            add(
                "spec.persistentVolumeClaimRetentionPolicy.whenDeleted",
                Default::Is(json!("Retain")),
            );
            add(
                "spec.persistentVolumeClaimRetentionPolicy.whenScaled",
                Default::Is(json!("Retain")),
            );
            add(
                "spec.volumeClaimTemplates[].spec.volumeMode",
                Default::Is(json!("Filesystem")),
            );
            add("spec.volumeClaimTemplates[].apiVersion", Default::Any);
            add("spec.volumeClaimTemplates[].kind", Default::Any);
            add("spec.volumeClaimTemplates[].status", Default::Any);
            pod("spec.template.spec", &mut out, false);
        }
        "DaemonSet" => {
            add("spec.revisionHistoryLimit", Default::Is(json!(10)));
            add(
                "spec.updateStrategy.type",
                Default::Is(json!("RollingUpdate")),
            );
            add(
                "spec.updateStrategy.rollingUpdate.maxUnavailable",
                Default::Is(json!(1)),
            );
            add(
                "spec.updateStrategy.rollingUpdate.maxSurge",
                Default::Is(json!(0)),
            );
            pod("spec.template.spec", &mut out, false);
        }
        "Job" => {
            add("spec.backoffLimit", Default::Is(json!(6)));
            add("spec.completionMode", Default::Is(json!("NonIndexed")));
            add("spec.suspend", Default::Is(json!(false)));
            add("spec.parallelism", Default::Is(json!(1)));
            add("spec.completions", Default::Is(json!(1)));
            add("spec.manualSelector", Default::Is(json!(false)));
            add(
                "spec.podReplacementPolicy",
                Default::Is(json!("TerminatingOrFailed")),
            );
            // The Job controller's own selector and the labels it adds to the pod template.
            add("spec.selector", Default::Any);
            for l in [
                "controller-uid",
                "job-name",
                "batch.kubernetes.io/controller-uid",
                "batch.kubernetes.io/job-name",
            ] {
                out.push((format!("spec.template.metadata.labels.{l}"), Default::Any));
            }
            pod("spec.template.spec", &mut out, true);
        }
        "Service" => {
            for p in [
                "spec.clusterIP",
                "spec.clusterIPs",
                "spec.ipFamilies",
                "spec.ipFamilyPolicy",
                "spec.ports[].targetPort",
                "spec.ports[].nodePort",
            ] {
                add(p, Default::Any);
            }
            add("spec.sessionAffinity", Default::Is(json!("None")));
            add("spec.externalTrafficPolicy", Default::Is(json!("Cluster")));
            add(
                "spec.allocateLoadBalancerNodePorts",
                Default::Is(json!(true)),
            );
            add("spec.internalTrafficPolicy", Default::Is(json!("Cluster")));
            add("spec.ports[].protocol", Default::Is(json!("TCP")));
        }
        "PersistentVolumeClaim" => {
            add("spec.volumeMode", Default::Is(json!("Filesystem")));
            // The cluster's default StorageClass and the bound volume.
            add("spec.storageClassName", Default::Any);
            add("spec.volumeName", Default::Any);
            add("metadata.finalizers", Default::Any);
        }
        "NetworkPolicy" => add("spec.policyTypes", Default::Any),
        "Secret" => add("type", Default::Is(json!("Opaque"))),
        _ => {}
    }
    out.push((
        "spec.template.metadata.creationTimestamp".into(),
        Default::Any,
    ));
    out
}

/// Removes from `live` the fields `desired` leaves out whose live value is the API default, and
/// maps or lists left empty by that.
pub fn prune(desired: &Value, live: &mut Value) {
    let kind = desired.get("kind").and_then(Value::as_str).unwrap_or("");
    let rules = rules(kind);
    let mut path = String::new();
    walk(&rules, &mut path, Some(desired), live);
}

/// Walks `live` beside `desired`; returns whether `live` became removable (all of it default and
/// `desired` absent).
fn walk(
    rules: &[(String, Default)],
    path: &mut String,
    desired: Option<&Value>,
    live: &mut Value,
) -> bool {
    match live {
        Value::Object(m) => {
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&k);
                let d = desired.and_then(|d| d.get(&k));
                let remove = match m.get_mut(&k) {
                    Some(v) => {
                        if d.is_none() && matches_rule(rules, path, v, desired) {
                            true
                        } else {
                            walk(rules, path, d, v)
                        }
                    }
                    None => false,
                };
                if remove {
                    m.remove(&k);
                }
                path.truncate(len);
            }
            desired.is_none() && m.is_empty()
        }
        Value::Array(items) => {
            let by_name = |v: &Value| v.get("name").and_then(Value::as_str).map(str::to_string);
            let len = path.len();
            path.push_str("[]");
            for (i, item) in items.iter_mut().enumerate() {
                let d = desired
                    .and_then(Value::as_array)
                    .and_then(|ds| match by_name(item) {
                        Some(n) => ds.iter().find(|x| by_name(x).as_deref() == Some(&n)),
                        None => ds.get(i),
                    });
                walk(rules, path, d, item);
            }
            path.truncate(len);
            false
        }
        _ => false,
    }
}

fn matches_rule(
    rules: &[(String, Default)],
    path: &str,
    v: &Value,
    parent: Option<&Value>,
) -> bool {
    rules.iter().any(|(p, d)| {
        p == path
            && match d {
                Default::Any => true,
                Default::Is(x) => x == v,
                Default::PullPolicy => {
                    let image = parent
                        .and_then(|c| c.get("image"))
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    let last = image.rsplit('/').next().unwrap_or(image);
                    let untagged = !last.contains(':') && !image.contains('@');
                    let want = if untagged || image.ends_with(":latest") {
                        "Always"
                    } else {
                        "IfNotPresent"
                    };
                    v == want
                }
            }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_pruned_but_other_values_stay() {
        let desired = json!({"kind": "Deployment", "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x:1"}]}}}});
        let mut live = json!({"kind": "Deployment", "spec": {"replicas": 1, "revisionHistoryLimit": 5,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {"metadata": {"creationTimestamp": null}, "spec": {"dnsPolicy": "ClusterFirst", "securityContext": {},
            "containers": [{"name": "a", "image": "x:1", "imagePullPolicy": "IfNotPresent", "terminationMessagePath": "/dev/termination-log"}]}}}});
        prune(&desired, &mut live);
        assert_eq!(
            live,
            json!({"kind": "Deployment", "spec": {"revisionHistoryLimit": 5, "template": {"spec": {"containers": [{"name": "a", "image": "x:1"}]}}}})
        );
    }
}
