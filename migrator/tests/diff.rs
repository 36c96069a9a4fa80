//! `migrate diff` and `migrate --dry-run` end to end: against an output folder, against a cluster
//! (the Kubernetes API test double of `tests/support/kube_api.rs`, reached by a real `kube`
//! client through a generated kubeconfig; and a real cluster when KUBECONFIG names one), the
//! in-process rendering compared with `helm template`, and the HTML report in headless Chromium.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use e2e::kube_api::KubeApi;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use migrator::diff::{self, render};
use migrator::emit::{self, SecretMode};
use migrator::load::{self, Dialect};
use migrator::model::Stack;
use serde_json::Value;

/// The secret value of the test stack: it must never be printed.
const SECRET: &str = "s3cr3t-value-do-not-print";
const CHANGED_SECRET: &str = "an0ther-s3cret-never-shown";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn voting_app() -> Option<PathBuf> {
    let p = repo().join("../shared/fixtures/stacks/example-voting-app");
    if p.join("docker-stack.yml").exists() {
        Some(std::fs::canonicalize(&p).unwrap_or(p))
    } else {
        println!("skipping: ../shared/fixtures/stacks is absent");
        None
    }
}

/// A copy of a stack folder in `into`, so a test can edit it.
fn copy_dir(from: &Path, into: &Path) -> PathBuf {
    std::fs::create_dir_all(into).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let p = e.expect("entry").path();
        let to = into.join(p.file_name().expect("name"));
        if p.is_dir() {
            copy_dir(&p, &to);
        } else {
            std::fs::copy(&p, &to).expect("copy");
        }
    }
    into.to_path_buf()
}

fn migrate(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_migrate"));
    cmd.args(args)
        .env_remove("RUST_LOG")
        .env_remove("KUBECONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run migrate")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", text(&o.stdout), text(&o.stderr)))
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The voting app with the vote service's replica count changed from 2 to 5.
fn voting_app_with_replicas(dir: &Path) -> Option<PathBuf> {
    let src = voting_app()?;
    let copy = copy_dir(&src, &dir.join("changed"));
    let file = copy.join("docker-stack.yml");
    let t = std::fs::read_to_string(&file).expect("read");
    let vote = t.find("  vote:").expect("vote service");
    let at = vote + t[vote..].find("replicas: 2").expect("vote replicas");
    let changed = format!("{}replicas: 5{}", &t[..at], &t[at + "replicas: 2".len()..]);
    std::fs::write(&file, changed).expect("write");
    Some(file)
}

/// The voting app without its worker service.
fn voting_app_without_worker(dir: &Path) -> Option<PathBuf> {
    let src = voting_app()?;
    let copy = copy_dir(&src, &dir.join("no-worker"));
    let file = copy.join("docker-stack.yml");
    let t = std::fs::read_to_string(&file).expect("read");
    // Drop the lines from `  worker:` to the next service (two-space indent) or top-level key.
    let mut inside = false;
    let mut kept = Vec::new();
    for line in t.lines() {
        let indent = line.len() - line.trim_start().len();
        if line == "  worker:" {
            inside = true;
            continue;
        }
        if inside && !line.trim().is_empty() && indent <= 2 {
            inside = false;
        }
        if !inside {
            kept.push(line);
        }
    }
    let without = kept.join("\n") + "\n";
    assert!(!without.contains("  worker:"), "{without}");
    std::fs::write(&file, without).expect("write");
    Some(file)
}

#[test]
fn unchanged_stack_has_no_differences() {
    let Some(app) = voting_app() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("chart");
    let stack = app.join("docker-stack.yml");
    let o = migrate(&[s(&stack), "-o", s(&out)], &[]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = migrate(&["diff", s(&stack), "--against", s(&out)], &[]);
    assert_no_differences(&o);
    let t = text(&o.stdout);
    assert!(t.contains("ledger: ") && t.contains("needs-input"), "{t}");
}

#[test]
fn changed_replicas_are_exactly_one_field() {
    let Some(app) = voting_app() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("chart");
    let stack = app.join("docker-stack.yml");
    assert!(migrate(&[s(&stack), "-o", s(&out)], &[]).status.success());
    let changed = voting_app_with_replicas(dir.path()).expect("copy");
    let o = migrate(
        &[
            "diff",
            s(&changed),
            "--name",
            "example-voting-app",
            "--against",
            s(&out),
            "--format",
            "json",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let r = json(&o);
    assert_eq!(r["objects"], serde_json::json!([]), "no template changes");
    let values = r["files"]
        .as_array()
        .expect("files")
        .iter()
        .find(|f| f["path"] == "values.yaml")
        .expect("values.yaml differs");
    assert_eq!(
        values["fields"],
        serde_json::json!([{"path": "services.vote.replicas", "before": "2", "after": "5"}])
    );
    // --dry-run prints the same report against --out.
    let o = migrate(
        &[
            s(&changed),
            "--name",
            "example-voting-app",
            "--dry-run",
            "-o",
            s(&out),
            "--format",
            "json",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(json(&o)["files"], r["files"]);
}

#[test]
fn removed_service_objects_are_listed_as_removed() {
    let Some(app) = voting_app() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("chart");
    assert!(
        migrate(&[s(&app.join("docker-stack.yml")), "-o", s(&out)], &[])
            .status
            .success()
    );
    let smaller = voting_app_without_worker(dir.path()).expect("copy");
    let o = migrate(
        &[
            "diff",
            s(&smaller),
            "--name",
            "example-voting-app",
            "--against",
            s(&out),
            "--format",
            "json",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let r = json(&o);
    let removed: Vec<(String, String)> = r["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .filter(|o| o["change"] == "removed")
        .map(|o| {
            (
                o["key"]["kind"].as_str().unwrap_or("").to_string(),
                o["key"]["name"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(
        removed.contains(&("Deployment".into(), "worker".into())),
        "{removed:?}"
    );
    assert!(
        r["objects"]
            .as_array()
            .expect("objects")
            .iter()
            .filter(|o| o["change"] == "removed")
            .all(|o| o["service"] == "worker"),
        "only the worker's objects are removed: {removed:?}"
    );
    let t = text(
        &migrate(
            &[
                "diff",
                s(&smaller),
                "--name",
                "example-voting-app",
                "--against",
                s(&out),
            ],
            &[],
        )
        .stdout,
    );
    assert!(
        t.contains("=== service worker") && t.contains("removed apps/v1 Deployment"),
        "{t}"
    );
}

/// The test stack of tests/fixtures/chart with another secret value.
fn stack_with_changed_secret(dir: &Path) -> PathBuf {
    let copy = copy_dir(
        &repo().join("tests/fixtures/chart/stack"),
        &dir.join("changed-secret"),
    );
    std::fs::write(copy.join("db_password.txt"), format!("{CHANGED_SECRET}\n")).expect("write");
    copy.join("docker-stack.yml")
}

fn needles() -> Vec<String> {
    use base64::Engine as _;
    let b64 = |t: &str| base64::engine::general_purpose::STANDARD.encode(t);
    let mut n = Vec::new();
    for v in [SECRET, CHANGED_SECRET] {
        n.push(v.to_string());
        n.push(b64(v));
        n.push(b64(&format!("{v}\n")));
    }
    n
}

#[test]
fn changed_secret_shows_keys_and_digests_never_values() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("chart");
    let stack = repo().join("tests/fixtures/chart/stack/docker-stack.yml");
    assert!(migrate(&[s(&stack), "-o", s(&out)], &[]).status.success());
    let changed = stack_with_changed_secret(dir.path());
    for format in ["text", "json", "markdown", "html"] {
        let o = migrate(
            &[
                "diff",
                s(&changed),
                "--name",
                "stack",
                "--against",
                s(&out),
                "--format",
                format,
            ],
            &[],
        );
        assert_eq!(o.status.code(), Some(2), "{format}: {}", text(&o.stderr));
        let printed = format!("{}{}", text(&o.stdout), text(&o.stderr));
        for n in needles() {
            assert!(!printed.contains(&n), "{format} printed a secret value");
        }
        assert!(
            printed.contains("db_password"),
            "{format}: the changed key is named"
        );
        assert!(
            printed.contains("redacted sha256:"),
            "{format}: digests are shown"
        );
    }
    let r = json(&migrate(
        &[
            "diff",
            s(&changed),
            "--name",
            "stack",
            "--against",
            s(&out),
            "--format",
            "json",
        ],
        &[],
    ));
    let secret = r["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .find(|o| o["key"]["kind"] == "Secret")
        .expect("the Secret changed");
    assert_eq!(secret["change"], "changed");
    let fields = secret["fields"].as_array().expect("fields");
    assert_eq!(fields.len(), 1, "{fields:?}");
    assert_eq!(fields[0]["path"], "data.db_password");
    assert_ne!(fields[0]["before"], fields[0]["after"]);
}

// ── against a cluster: the Kubernetes API test double ──

/// The chart's default-rendered objects, as `migrate diff --against cluster` renders them.
fn rendered(stack: &Path, name: &str, namespace: &str) -> Vec<Value> {
    let loaded = load::load(&load::Options {
        files: vec![stack.to_path_buf()],
        dialect: Dialect::Swarm,
        env: BTreeMap::new(),
    })
    .expect("load");
    let st = Stack::from_loaded(&loaded).expect("model");
    let opts = emit::Options {
        name: name.to_string(),
        namespace: None,
        kube_version: (1, 33),
        secrets: SecretMode::Inline,
        stage: None,
    };
    let (out, trees) = emit::chart_with_trees(&st, &opts).expect("emit");
    let release = render::Release {
        name: name.to_string(),
        namespace: namespace.to_string(),
    };
    render::objects(&out.bundle, &trees, &release)
        .expect("render")
        .into_iter()
        .map(|r| r.object)
        .collect()
}

async fn client(api: &KubeApi, dir: &Path) -> kube::Client {
    let path = api.kubeconfig(dir, "shop").expect("kubeconfig");
    diff::cluster::connect(&diff::cluster::Target {
        kubeconfig: Some(path),
        context: None,
    })
    .await
    .expect("connect")
    .client
}

/// Installs objects the way `helm install` does: server-side apply of each one, with the
/// annotations Helm adds to mark the release's objects.
async fn apply(client: &kube::Client, objects: &[Value]) {
    for o in objects {
        let mut o = o.clone();
        let ns = o["metadata"]["namespace"]
            .as_str()
            .unwrap_or("shop")
            .to_string();
        let release = o["metadata"]["labels"]["app.kubernetes.io/instance"].clone();
        if let Some(meta) = o["metadata"].as_object_mut() {
            let annotations = meta
                .entry("annotations")
                .or_insert_with(|| serde_json::json!({}));
            annotations["meta.helm.sh/release-name"] = release;
            annotations["meta.helm.sh/release-namespace"] = Value::String(ns);
        }
        let o = &o;
        let api_version = o["apiVersion"].as_str().expect("apiVersion");
        let (g, v) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = kube::api::GroupVersionKind::gvk(g, v, o["kind"].as_str().expect("kind"));
        let (ar, _) = kube::discovery::pinned_kind(client, &gvk)
            .await
            .expect("discovery");
        let ns = o["metadata"]["namespace"].as_str().unwrap_or("shop");
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
        let name = o["metadata"]["name"].as_str().expect("name");
        api.patch(name, &PatchParams::apply("helm").force(), &Patch::Apply(o))
            .await
            .expect("apply");
    }
}

/// Changes a live object in namespace `shop` (a merge patch), as drift does.
async fn drift(
    c: &kube::Client,
    (group, version, kind): (&str, &str, &str),
    name: &str,
    patch: Value,
) {
    let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
    let (ar, _) = kube::discovery::pinned_kind(c, &gvk)
        .await
        .expect("discovery");
    let api: Api<DynamicObject> = Api::namespaced_with(c.clone(), "shop", &ar);
    api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .expect("patch");
}

/// A diff that exits 0 and says so.
fn assert_no_differences(o: &Output) {
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    assert!(
        text(&o.stdout).contains("no differences"),
        "{}",
        text(&o.stdout)
    );
}

fn cluster_diff(stack: &Path, name: &str, kubeconfig: &Path, format: &str) -> Output {
    migrate(
        &[
            "diff",
            s(stack),
            "--name",
            name,
            "--against",
            "cluster",
            "--format",
            format,
        ],
        &[("KUBECONFIG", kubeconfig)],
    )
}

#[tokio::test]
async fn cluster_with_server_fields_and_defaults_shows_no_false_differences() {
    let Some(app) = voting_app() else { return };
    let stack = app.join("docker-stack.yml");
    let dir = tempfile::tempdir().expect("tmp");
    let api = KubeApi::start().expect("test double");
    let kc = api.kubeconfig(dir.path(), "shop").expect("kubeconfig");
    let c = client(&api, dir.path()).await;
    let objects = rendered(&stack, "example-voting-app", "shop");
    assert!(objects.len() >= 8, "{}", objects.len());
    apply(&c, &objects).await;
    // The double filled what a server fills: the comparison must see through it.
    let vote = api
        .object("apps/v1", "deployments", "shop", "vote")
        .expect("stored");
    for p in [
        "/metadata/uid",
        "/metadata/managedFields",
        "/status",
        "/spec/revisionHistoryLimit",
        "/spec/template/spec/dnsPolicy",
    ] {
        assert!(vote.pointer(p).is_some(), "the double fills {p}");
    }
    let writes_before = api.requests().iter().filter(|(m, _)| m != "GET").count();
    assert_no_differences(&cluster_diff(&stack, "example-voting-app", &kc, "text"));
    let writes_after = api.requests().iter().filter(|(m, _)| m != "GET").count();
    assert_eq!(
        writes_before, writes_after,
        "migrate diff never writes to the cluster"
    );

    // Drift in one field: exactly that field, exit 2.
    let replicas = serde_json::json!({"spec": {"replicas": 3}});
    drift(&c, ("apps", "v1", "Deployment"), "vote", replicas).await;
    let o = cluster_diff(&stack, "example-voting-app", &kc, "text");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    // Shown with --nocapture; docs/diff.md quotes it.
    println!("{}", text(&o.stdout));
    let o = cluster_diff(&stack, "example-voting-app", &kc, "json");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let r = json(&o);
    let objects = r["objects"].as_array().expect("objects");
    assert_eq!(objects.len(), 1, "{objects:?}");
    assert_eq!(objects[0]["key"]["name"], "vote");
    assert_eq!(
        objects[0]["fields"],
        serde_json::json!([{"path": "spec.replicas", "before": "3", "after": "2"}])
    );
}

/// `--istio` against a cluster: the Istio objects installed from `helm template` of the chart
/// `migrate --istio` writes compare equal to the in-process rendering; drift in a
/// VirtualService shows as that field.
#[tokio::test]
async fn cluster_diff_covers_the_istio_objects() {
    let Some(helm) = e2e::tool("helm") else {
        println!("skipping: helm is not on PATH (tests/run installs it)");
        return;
    };
    let stack = repo().join("tests/fixtures/istio/shop/docker-stack.yml");
    let dir = tempfile::tempdir().expect("tmp");
    let chart = dir.path().join("chart");
    let o = migrate(
        &["--istio", "--name", "shop", "-o", s(&chart), s(&stack)],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let o = Command::new(&helm)
        .args(["template", "shop", s(&chart), "--namespace", "shop"])
        .output()
        .expect("helm");
    assert!(o.status.success(), "helm template: {}", text(&o.stderr));
    let objects = diff::object::parse_yaml_docs(&text(&o.stdout), "helm output").expect("yaml");
    let kinds: Vec<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
    for k in ["VirtualService", "DestinationRule", "Gateway"] {
        assert!(kinds.contains(&k), "the chart has a {k}: {kinds:?}");
    }
    let api = KubeApi::start().expect("test double");
    let kc = api.kubeconfig(dir.path(), "shop").expect("kubeconfig");
    let c = client(&api, dir.path()).await;
    apply(&c, &objects).await;
    let diff_istio = |format: &str| {
        migrate(
            &[
                "diff",
                s(&stack),
                "--istio",
                "--name",
                "shop",
                "--against",
                "cluster",
                "--format",
                format,
            ],
            &[("KUBECONFIG", kc.as_path())],
        )
    };
    assert_no_differences(&diff_istio("text"));
    // Drift in a VirtualService: exactly that field, exit 2.
    let vs = objects
        .iter()
        .find(|o| o["kind"] == "VirtualService")
        .expect("a VirtualService");
    let name = vs["metadata"]["name"].as_str().expect("name");
    let hosts = serde_json::json!({"spec": {"hosts": ["drifted.example.com"]}});
    drift(
        &c,
        ("networking.istio.io", "v1", "VirtualService"),
        name,
        hosts,
    )
    .await;
    let o = diff_istio("json");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let r = json(&o);
    let changed = r["objects"].as_array().expect("objects");
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(changed[0]["key"]["kind"], "VirtualService");
    assert_eq!(changed[0]["key"]["name"], name);
    let paths: Vec<&str> = changed[0]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert!(
        paths.iter().all(|p| p.starts_with("spec.hosts")),
        "{paths:?}"
    );
}

#[tokio::test]
async fn cluster_objects_of_a_removed_service_are_removed_and_missing_ones_added() {
    let Some(app) = voting_app() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let api = KubeApi::start().expect("test double");
    let kc = api.kubeconfig(dir.path(), "shop").expect("kubeconfig");
    let c = client(&api, dir.path()).await;
    let all = rendered(&app.join("docker-stack.yml"), "example-voting-app", "shop");
    // The cluster runs the full stack except the vote Service.
    let installed: Vec<Value> = all
        .iter()
        .filter(|o| !(o["kind"] == "Service" && o["metadata"]["name"] == "vote"))
        .cloned()
        .collect();
    apply(&c, &installed).await;
    let smaller = voting_app_without_worker(dir.path()).expect("copy");
    let o = cluster_diff(&smaller, "example-voting-app", &kc, "json");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let r = json(&o);
    let by = |change: &str| -> Vec<String> {
        r["objects"]
            .as_array()
            .expect("objects")
            .iter()
            .filter(|o| o["change"] == change)
            .map(|o| {
                format!(
                    "{} {}",
                    o["key"]["kind"].as_str().unwrap_or(""),
                    o["key"]["name"].as_str().unwrap_or("")
                )
            })
            .collect()
    };
    assert!(
        by("removed").contains(&"Deployment worker".to_string()),
        "{:?}",
        by("removed")
    );
    assert_eq!(by("added"), ["Service vote"]);
    assert_eq!(by("changed"), Vec::<String>::new());
}

#[tokio::test]
async fn cluster_secret_change_is_key_level_without_values() {
    let dir = tempfile::tempdir().expect("tmp");
    let api = KubeApi::start().expect("test double");
    let kc = api.kubeconfig(dir.path(), "shop").expect("kubeconfig");
    let c = client(&api, dir.path()).await;
    let stack = repo().join("tests/fixtures/chart/stack/docker-stack.yml");
    apply(&c, &rendered(&stack, "stack", "shop")).await;
    assert_no_differences(&cluster_diff(&stack, "stack", &kc, "text"));
    let changed = stack_with_changed_secret(dir.path());
    for format in ["text", "json", "markdown", "html"] {
        let o = cluster_diff(&changed, "stack", &kc, format);
        assert_eq!(o.status.code(), Some(2), "{format}: {}", text(&o.stderr));
        let printed = format!("{}{}", text(&o.stdout), text(&o.stderr));
        for n in needles() {
            assert!(!printed.contains(&n), "{format} printed a secret value");
        }
        assert!(
            printed.contains("db_password") && printed.contains("redacted sha256:"),
            "{format}"
        );
    }
    let r = json(&cluster_diff(&changed, "stack", &kc, "json"));
    let secret = r["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .find(|o| o["key"]["kind"] == "Secret")
        .expect("Secret");
    let paths: Vec<&str> = secret["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert_eq!(paths, ["data.db_password"]);
}

#[tokio::test]
async fn forbidden_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tmp");
    let api = KubeApi::start().expect("test double");
    let kc = api.kubeconfig(dir.path(), "shop").expect("kubeconfig");
    api.deny("get", "secrets");
    let stack = repo().join("tests/fixtures/chart/stack/docker-stack.yml");
    let o = cluster_diff(&stack, "stack", &kc, "text");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    let err = text(&o.stderr);
    assert!(err.contains("403 Forbidden"), "{err}");
    assert!(err.contains("`get` permission on `secrets`"), "{err}");
    assert!(
        err.contains("secrets/db-password") && err.contains("namespace shop"),
        "{err}"
    );
    assert!(o.stdout.is_empty(), "no partial report");
}

#[tokio::test]
async fn uninstalled_crd_kinds_are_noted_and_added() {
    let dir = tempfile::tempdir().expect("tmp");
    let resources = e2e::kube_api::default_resources()
        .into_iter()
        .filter(|r| r.group != "external-secrets.io")
        .collect();
    let api = KubeApi::start_with(resources).expect("test double");
    let kc = api.kubeconfig(dir.path(), "shop").expect("kubeconfig");
    let stack = repo().join("tests/fixtures/chart/stack/docker-stack.yml");
    let o = migrate(
        &[
            "diff",
            s(&stack),
            "--name",
            "stack",
            "--secrets",
            "external-secrets",
            "--against",
            "cluster",
            "--format",
            "json",
        ],
        &[("KUBECONFIG", &kc)],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let r = json(&o);
    assert!(
        r["notes"][0]
            .as_str()
            .unwrap_or("")
            .contains("external-secrets.io/v1beta1 ExternalSecret"),
        "{r}"
    );
    assert!(
        r["objects"]
            .as_array()
            .expect("objects")
            .iter()
            .any(|o| o["key"]["kind"] == "ExternalSecret" && o["change"] == "added")
    );
}

/// Against a real cluster (run with `cargo test -p migrator --test diff -- --ignored` when
/// KUBECONFIG names one): the report is produced and only GET requests are needed.
#[test]
#[ignore = "needs cluster"]
fn real_cluster_report() {
    let Some(kc) = std::env::var_os("KUBECONFIG").map(PathBuf::from) else {
        println!("skipping: KUBECONFIG is not set");
        return;
    };
    let Some(app) = voting_app() else { return };
    let o = cluster_diff(
        &app.join("docker-stack.yml"),
        "example-voting-app",
        &kc,
        "json",
    );
    assert!(
        matches!(o.status.code(), Some(0 | 2)),
        "{}",
        text(&o.stderr)
    );
    let r = json(&o);
    assert!(r["against"].as_str().unwrap_or("").starts_with("cluster "));
}

// ── the in-process rendering equals `helm template` ──

fn sorted_objects(mut v: Vec<Value>) -> Vec<Value> {
    let mut v: Vec<Value> = v.drain(..).map(|o| diff::object::sorted(&o)).collect();
    v.sort_by_key(|o| {
        diff::object::key_of(o)
            .map(|k| k.to_string())
            .unwrap_or_default()
    });
    v
}

#[test]
fn default_rendering_equals_helm_template() {
    let Some(helm) = e2e::tool("helm") else {
        println!("skipping: helm is not on PATH (tests/run installs it)");
        return;
    };
    let mut stacks: Vec<(PathBuf, String)> = vec![
        (
            repo().join("tests/fixtures/chart/stack/docker-stack.yml"),
            "stack".into(),
        ),
        // Traefik routes and every `x-istio` setting (fault, retries, lanes, pools, outliers).
        (
            repo().join("tests/fixtures/istio/shop/docker-stack.yml"),
            "istio-shop".into(),
        ),
    ];
    if let Some(app) = voting_app() {
        let shared = app.parent().expect("stacks").to_path_buf();
        for e in std::fs::read_dir(&shared).expect("stacks") {
            let d = e.expect("entry").path();
            for f in [
                "docker-stack.yml",
                "docker-compose.yml",
                "docker-compose.yaml",
                "compose.yaml",
            ] {
                if d.join(f).exists() {
                    stacks.push((
                        d.join(f),
                        d.file_name().expect("name").to_string_lossy().into_owned(),
                    ));
                    break;
                }
            }
        }
    }
    let dir = tempfile::tempdir().expect("tmp");
    let mut compared = 0;
    for (stack, label) in stacks {
        let Ok(loaded) = load::load(&load::Options {
            files: vec![stack.clone()],
            dialect: Dialect::Swarm,
            env: BTreeMap::new(),
        }) else {
            continue;
        };
        let Ok(st) = Stack::from_loaded(&loaded) else {
            continue;
        };
        // Both secret modes, a namespaceOverride (`--namespace`) that wins over the release's,
        // a partial migration (`--only` the first service: the bridge's mapping ConfigMap), and
        // the Istio objects with every option on (and with only `--istio`).
        let partial = migrator::mesh::Options {
            only: st.services.keys().take(1).cloned().collect(),
            ..Default::default()
        };
        let istio = migrator::mesh::Options {
            istio: true,
            ..Default::default()
        };
        let istio_all = migrator::mesh::Options {
            istio: true,
            ingress: true,
            mtls: migrator::emit::istio::Mtls::Strict,
            outlier: true,
            only: st.services.keys().take(2).cloned().collect(),
            lanes: vec!["canary".into(), "blue".into()],
            lane_header: Some("x-env-lane".into()),
            ..Default::default()
        };
        for (secrets, namespace, mesh) in [
            (SecretMode::Inline, None, None),
            (SecretMode::ExternalSecrets, None, None),
            (SecretMode::Inline, Some("payments".to_string()), None),
            (SecretMode::Inline, None, Some(&partial)),
            (SecretMode::Inline, None, Some(&istio)),
            (
                SecretMode::Inline,
                Some("payments".to_string()),
                Some(&istio_all),
            ),
        ] {
            let opts = emit::Options {
                name: emit::chart_name(None, &st, Some(&stack)),
                namespace: namespace.clone(),
                kube_version: (1, 33),
                secrets,
                stage: None,
            };
            let generated = match mesh {
                None => emit::chart_with_trees(&st, &opts),
                Some(mesh) => {
                    let mut ledger = migrator::report::Ledger::from_loaded(&loaded);
                    migrator::mesh::chart_with_trees(&st, &opts, mesh, &mut ledger, true)
                }
            };
            let Ok((out, trees)) = generated else {
                continue;
            };
            let chart = dir.path().join(format!(
                "{label}-{secrets:?}-{}-{}",
                namespace.is_some(),
                mesh.map_or(0, |m| 1 + usize::from(m.istio) + usize::from(m.ingress))
            ));
            out.bundle.write(&chart, false).expect("write");
            let release = render::Release {
                name: "rel".into(),
                namespace: "shop".into(),
            };
            let ours = render::objects(&out.bundle, &trees, &release)
                .unwrap_or_else(|e| panic!("{label}: {e}"));
            let o = Command::new(&helm)
                .args(["template", "rel", s(&chart), "--namespace", "shop"])
                .output()
                .expect("helm");
            assert!(
                o.status.success(),
                "{label}: helm template: {}",
                text(&o.stderr)
            );
            let theirs =
                diff::object::parse_yaml_docs(&text(&o.stdout), "helm output").expect("yaml");
            let ours = sorted_objects(ours.into_iter().map(|r| r.object).collect());
            let theirs = sorted_objects(theirs);
            assert_eq!(ours.len(), theirs.len(), "{label}: object count");
            for (a, b) in ours.iter().zip(&theirs) {
                pretty_assertions::assert_eq!(a, b, "{label} {secrets:?} mesh: {mesh:?}");
            }
            compared += 1;
        }
    }
    assert!(compared >= 10, "most fixtures compared: {compared}");
}

// ── the HTML report in headless Chromium ──

fn chromium() -> Option<PathBuf> {
    let p = PathBuf::from("/usr/bin/chromium");
    if p.exists() {
        return Some(p);
    }
    assert!(
        !e2e::under_tests_run(),
        "/usr/bin/chromium is missing although tests/run installs it"
    );
    println!(
        "skipping: /usr/bin/chromium is not installed (tests/run installs the Debian package)"
    );
    None
}

/// Runs Chromium headless with `args` and a fresh profile; kills it by PID after `limit`.
fn run_chromium(bin: &Path, profile: &Path, args: &[String], limit: std::time::Duration) -> Output {
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start chromium");
    let start = std::time::Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if start.elapsed() > limit {
            // Stop it by its PID (Child::kill), then reap it.
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.wait_with_output().expect("output")
}

#[test]
fn html_report_renders_in_headless_chromium() {
    let Some(app) = voting_app() else { return };
    let Some(bin) = chromium() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("chart");
    assert!(
        migrate(&[s(&app.join("docker-stack.yml")), "-o", s(&out)], &[])
            .status
            .success()
    );
    // The worker service removed and the vote replicas changed: removed objects and changed files.
    let changed = voting_app_without_worker(dir.path()).expect("copy");
    let t = std::fs::read_to_string(&changed).expect("read");
    let vote = t.find("  vote:").expect("vote");
    let at = vote + t[vote..].find("replicas: 2").expect("replicas");
    std::fs::write(
        &changed,
        format!("{}replicas: 3{}", &t[..at], &t[at + 11..]),
    )
    .expect("write");
    let o = migrate(
        &[
            "diff",
            s(&changed),
            "--name",
            "example-voting-app",
            "--against",
            s(&out),
            "--format",
            "json",
        ],
        &[],
    );
    let counts = json(&o)["summary"].clone();
    let o = migrate(
        &[
            "diff",
            s(&changed),
            "--name",
            "example-voting-app",
            "--against",
            s(&out),
            "--format",
            "html",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let html = text(&o.stdout);
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external assets"
    );
    let page = dir.path().join("report.html");
    std::fs::write(&page, &html).expect("write");
    let url = format!("file://{}", page.display());
    let limit = std::time::Duration::from_secs(90);
    let dom = run_chromium(
        &bin,
        &dir.path().join("profile-dom"),
        &["--dump-dom".into(), url.clone()],
        limit,
    );
    let dom_text = text(&dom.stdout);
    for (id, key) in [
        ("count-added", "added"),
        ("count-removed", "removed"),
        ("count-changed", "changed"),
        ("count-unchanged", "unchanged"),
    ] {
        let want = format!("id=\"{id}\">{}<", counts[key]);
        assert!(
            dom_text.contains(&want),
            "{want} in the rendered DOM:\n{dom_text}"
        );
    }
    assert!(
        dom_text.contains("services.vote.replicas"),
        "the changed field is shown"
    );
    assert!(counts["removed"].as_u64() >= Some(2), "{counts}");
    let shot = dir.path().join("report.png");
    run_chromium(
        &bin,
        &dir.path().join("profile-shot"),
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1200,1600".into(),
            url,
        ],
        limit,
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a real screenshot: {} bytes",
        png.len()
    );
    println!("screenshot: {}", shot.display());
    if let Some(keep) = std::env::var_os("MESHMOVE_DIFF_SCREENSHOT") {
        std::fs::copy(&shot, keep).expect("copy screenshot");
    }
}
