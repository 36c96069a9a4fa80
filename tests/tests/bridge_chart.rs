//! The bridge's Helm chart (`charts/bridge/`): `helm lint --strict`, `helm template` with the
//! default values and with variants, kubernetes-validate --strict for 1.30 and 1.37, the Istio
//! objects against the CRDs' openAPIV3Schema (`../shared/schemas/istio-crds.gen.yaml`), the RBAC
//! rules against the table of calls in `bridge/src/discovery/rbac.rs`, and the rendered bridge
//! config against the bridge's own config loader.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use bridge::discovery::rbac;
use e2e::{repo_root, shared_dir, tool};
use serde_json::Value;

mod istio_common;
use istio_common::{check_istio, docs};

fn chart() -> PathBuf {
    repo_root().join("charts/bridge")
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// helm template with `--set` pairs; `None` when helm is missing outside tests/run.
fn render(sets: &[&str]) -> Option<String> {
    let helm = tool("helm")?;
    let mut cmd = Command::new(helm);
    cmd.args(["template", "legacy", "--namespace", "mesh-ingress"])
        .arg(chart());
    for s in sets {
        cmd.args(["--set", s]);
    }
    Some(run(&mut cmd, &format!("helm template {sets:?}")))
}

fn kind<'a>(objs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objs.iter().filter(|o| o["kind"] == kind).collect()
}

fn one<'a>(objs: &'a [Value], k: &str) -> &'a Value {
    let found = kind(objs, k);
    assert_eq!(found.len(), 1, "exactly one {k}");
    found[0]
}

const VARIANTS: &[&[&str]] = &[
    &[],
    &[
        "discovery.namespaces={shop,billing}",
        "discovery.labelSelector=meshmove.io/expose=true",
        "autoscaling.enabled=true",
        "podAntiAffinity=hard",
        "istio.gateway.create=false",
        "istio.gateway.existing=istio-system/shared-gw",
        "auth.existingSecret=bridge-auth",
        "auth.bearerTokenKey=token",
        "mapping.services[0].swarm_name=orders",
        "mapping.services[0].kubernetes_host=orders.shop.svc.cluster.local",
        "mapping.services[0].eureka_app=ORDERS",
        "mapping.services[0].vip_address=orders",
        "mapping.services[0].ports={9090}",
    ],
    &[
        "discovery.enabled=false",
        "istio.enabled=false",
        "ports.grpc=0",
        "store.kind=memory",
    ],
];

#[test]
fn lint_render_and_validate_for_1_30_and_1_37() {
    let (Some(helm), Some(validate)) = (tool("helm"), tool("kubernetes-validate")) else {
        println!("skipped: helm or kubernetes-validate not on PATH (tests/run installs them)");
        return;
    };
    run(
        Command::new(&helm).args(["lint", "--strict"]).arg(chart()),
        "helm lint --strict",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    for (n, sets) in VARIANTS.iter().enumerate() {
        let rendered = render(sets).expect("helm");
        let file = dir.path().join(format!("variant-{n}.yaml"));
        std::fs::write(&file, &rendered).expect("write");
        for version in ["1.30.0", "1.37.0"] {
            let out = run(
                Command::new(&validate)
                    .args(["--strict", "--quiet", "-k", version])
                    .arg(&file),
                &format!("kubernetes-validate {version} variant {n}"),
            );
            // Only the Istio kinds have no Kubernetes schema; they are checked against the CRDs.
            for line in out.lines().filter(|l| !l.trim().is_empty()) {
                assert!(
                    line.contains("networking.istio.io"),
                    "variant {n}, {version}: {line}"
                );
            }
        }
    }
    // The schema rejects what the chart cannot deploy.
    let out = Command::new(&helm)
        .args(["template", "x"])
        .arg(chart())
        .args(["--set", "replicaCount=1"])
        .output()
        .expect("helm");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("replicaCount"));
}

#[test]
fn deployment_is_highly_available_and_probed_on_the_admin_port() {
    let Some(text) = render(&[]) else {
        println!("skipped: helm not on PATH (tests/run installs it)");
        return;
    };
    let objs = docs(&text);
    let dep = one(&objs, "Deployment");
    assert!(dep["spec"]["replicas"].as_i64().expect("replicas") >= 2);
    let pod = &dep["spec"]["template"]["spec"];
    let anti = &pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        [0]["podAffinityTerm"];
    assert_eq!(anti["topologyKey"], "kubernetes.io/hostname");
    assert_eq!(
        anti["labelSelector"]["matchLabels"],
        dep["spec"]["selector"]["matchLabels"]
    );
    let c = &pod["containers"][0];
    let admin = c["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .find(|p| p["name"] == "http-admin")
        .expect("admin port");
    assert_eq!(admin["containerPort"], 9901);
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/ready");
    assert_eq!(c["readinessProbe"]["httpGet"]["port"], "http-admin");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/live");
    let pdb = one(&objs, "PodDisruptionBudget");
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"],
        dep["spec"]["selector"]["matchLabels"]
    );
    assert!(kind(&objs, "HorizontalPodAutoscaler").is_empty());
    let svc = one(&objs, "Service");
    assert_eq!(
        svc["spec"]["selector"],
        dep["spec"]["selector"]["matchLabels"]
    );
    assert_eq!(
        pod["serviceAccountName"],
        one(&objs, "ServiceAccount")["metadata"]["name"]
    );

    let hpa = render(&["autoscaling.enabled=true"]).expect("helm");
    let objs = docs(&hpa);
    assert!(one(&objs, "Deployment")["spec"].get("replicas").is_none());
    assert_eq!(
        one(&objs, "HorizontalPodAutoscaler")["spec"]["minReplicas"],
        2
    );
}

/// The rendered `bridge.yaml` loads and validates with the bridge's own config code, and its
/// listen addresses match the container ports the probes use.
#[test]
fn rendered_config_is_accepted_by_the_bridge() {
    for sets in VARIANTS {
        let Some(text) = render(sets) else {
            println!("skipped: helm not on PATH (tests/run installs it)");
            return;
        };
        let objs = docs(&text);
        let cm = one(&objs, "ConfigMap");
        let yaml = cm["data"]["bridge.yaml"].as_str().expect("bridge.yaml");
        let config = bridge::config::Config::from_yaml_str(yaml)
            .unwrap_or_else(|e| panic!("{sets:?}: {e}\n{yaml}"));
        config
            .validate()
            .unwrap_or_else(|e| panic!("{sets:?}: {e}\n{yaml}"));
        assert_eq!(config.admin.listen.port(), 9901);
        assert_eq!(config.eureka.listen.port(), 8761);
        use bridge::discovery::config::StoreKind;
        if sets.contains(&"store.kind=memory") {
            assert_eq!(config.store.kind, StoreKind::Memory);
        } else {
            assert_eq!(config.store.kind, StoreKind::Kubernetes);
            assert_eq!(config.store.namespace, "mesh-ingress");
            assert_eq!(config.store.lease_write_interval, 30);
        }
        if let Some(mapping) = cm["data"]["mapping.yaml"].as_str() {
            mappings::parse_yaml(mapping).unwrap_or_else(|e| panic!("{sets:?}: mapping: {e}"));
            assert_eq!(
                config.discovery.mapping_file.as_deref(),
                Some(Path::new("/etc/bridge/mapping.yaml"))
            );
        }
        // Credentials come from a Secret, never from the ConfigMap.
        assert!(!yaml.contains("password"), "{yaml}");
    }
}

#[test]
fn istio_objects_match_the_crd_schemas() {
    let Some(shared) = shared_dir() else {
        println!("skipped: ../shared is absent");
        return;
    };
    let crd_text = std::fs::read_to_string(shared.join("schemas/istio-crds.gen.yaml"))
        .expect("istio-crds.gen.yaml");
    let crds = docs(&crd_text);
    let mut seen = BTreeSet::new();
    for sets in VARIANTS {
        let Some(text) = render(sets) else {
            println!("skipped: helm not on PATH (tests/run installs it)");
            return;
        };
        for obj in docs(&text) {
            if obj["apiVersion"]
                .as_str()
                .is_some_and(|a| a.starts_with("networking.istio.io/"))
            {
                check_istio(&obj, &crds).unwrap_or_else(|e| panic!("{sets:?}: {e}"));
                seen.insert(obj["kind"].as_str().unwrap_or_default().to_owned());
            }
        }
    }
    assert_eq!(
        seen,
        BTreeSet::from(["Gateway".to_owned(), "VirtualService".to_owned()])
    );

    // The check can fail: a server without a port number and a route with a wrong type.
    let objs = docs(&render(&[]).expect("helm"));
    let mut gw = one(&objs, "Gateway").clone();
    gw["spec"]["servers"][0]["port"]["number"] = Value::String("eighty".into());
    assert!(check_istio(&gw, &crds).is_err());
    let mut vs = one(&objs, "VirtualService").clone();
    vs["spec"]["http"][0]["route"] = Value::String("bridge".into());
    assert!(check_istio(&vs, &crds).is_err());

    // Routing: legacy hosts through the gateway, /eureka/ to the Eureka port, the rest to the lane.
    let vs = one(&objs, "VirtualService");
    assert_eq!(
        vs["spec"]["hosts"],
        serde_json::json!(["bridge.legacy.example"])
    );
    assert_eq!(
        vs["spec"]["gateways"][0],
        one(&objs, "Gateway")["metadata"]["name"]
    );
    assert_eq!(
        vs["spec"]["http"][0]["match"][0]["uri"]["prefix"],
        "/eureka/"
    );
    assert_eq!(
        vs["spec"]["http"][0]["route"][0]["destination"]["port"]["number"],
        8761
    );
    assert_eq!(
        vs["spec"]["http"][1]["route"][0]["destination"]["port"]["number"],
        8080
    );
}

type Grant = (String, String, String);

fn granted(rules: &Value) -> BTreeSet<Grant> {
    let mut out = BTreeSet::new();
    for rule in rules.as_array().expect("rules") {
        for g in rule["apiGroups"].as_array().expect("apiGroups") {
            for r in rule["resources"].as_array().expect("resources") {
                for v in rule["verbs"].as_array().expect("verbs") {
                    out.insert((
                        g.as_str().expect("group").to_owned(),
                        r.as_str().expect("resource").to_owned(),
                        v.as_str().expect("verb").to_owned(),
                    ));
                }
            }
        }
    }
    out
}

fn called(scope: rbac::Scope) -> BTreeSet<Grant> {
    rbac::TABLE
        .iter()
        .filter(|a| a.scope == scope)
        .flat_map(|a| {
            a.verbs
                .iter()
                .map(|v| (a.group.to_owned(), a.resource.to_owned(), (*v).to_owned()))
        })
        .collect()
}

/// The Role in the release namespace (the registry store's) and the others.
fn split_roles(objs: &[Value]) -> (Vec<&Value>, Vec<&Value>) {
    kind(objs, "Role")
        .into_iter()
        .partition(|r| r["metadata"]["namespace"] == "mesh-ingress")
}

#[test]
fn rbac_grants_exactly_the_calls_in_the_code() {
    let Some(text) = render(&[]) else {
        println!("skipped: helm not on PATH (tests/run installs it)");
        return;
    };
    let watched = called(rbac::Scope::Watched);
    let store = called(rbac::Scope::Store);
    assert!(!watched.is_empty() && !store.is_empty());
    // Every namespace watched: one ClusterRole for discovery; the store's Role in the release
    // namespace; together exactly the table.
    let objs = docs(&text);
    let role = one(&objs, "ClusterRole");
    assert_eq!(granted(&role["rules"]), watched);
    let binding = one(&objs, "ClusterRoleBinding");
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    let sa = one(&objs, "ServiceAccount")["metadata"]["name"].clone();
    assert_eq!(binding["subjects"][0]["name"], sa);
    let (own, others) = split_roles(&objs);
    assert!(others.is_empty());
    assert_eq!(own.len(), 1);
    assert_eq!(granted(&own[0]["rules"]), store);
    let mut all = granted(&role["rules"]);
    all.extend(granted(&own[0]["rules"]));
    assert_eq!(
        all,
        called(rbac::Scope::Watched)
            .union(&store)
            .cloned()
            .collect()
    );
    for b in kind(&objs, "RoleBinding") {
        assert_eq!(b["subjects"][0]["name"], sa);
        assert_eq!(b["roleRef"]["name"], own[0]["metadata"]["name"]);
    }

    // Listed namespaces: a Role and RoleBinding in each, nothing cluster-wide.
    let objs = docs(&render(&["discovery.namespaces={shop,billing}"]).expect("helm"));
    assert!(kind(&objs, "ClusterRole").is_empty());
    let (own, roles) = split_roles(&objs);
    assert_eq!(granted(&own[0]["rules"]), store);
    let namespaces: BTreeSet<_> = roles
        .iter()
        .map(|r| r["metadata"]["namespace"].as_str().expect("ns"))
        .collect();
    assert_eq!(namespaces, BTreeSet::from(["shop", "billing"]));
    for r in roles {
        assert_eq!(granted(&r["rules"]), watched);
    }
    assert_eq!(kind(&objs, "RoleBinding").len(), 3);

    // No discovery and the memory store: no API access at all.
    let objs = docs(&render(&["discovery.enabled=false", "store.kind=memory"]).expect("helm"));
    assert!(kind(&objs, "ClusterRole").is_empty() && kind(&objs, "Role").is_empty());
    assert!(kind(&objs, "RoleBinding").is_empty());
}
