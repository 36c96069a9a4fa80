//! `migrate --istio`, partial migration, lanes and the mapping file: every Istio object the chart
//! renders validates against the `openAPIV3Schema` of its kind and version in
//! `../shared/schemas/istio-crds.gen.yaml` (with unknown fields refused, as `kubectl
//! --validate=strict` does), the charts pass `helm lint --strict`, `helm template` and
//! kubernetes-validate; golden snapshots of the voting app with `--only vote` and with lanes; the
//! partial migration of the voting app; errors and determinism.

mod common;
use common::{migrate, repo, run, text, tool};

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use migrator::emit::{self, Bundle, SecretMode};
use migrator::load::{self, Dialect};
use migrator::mesh;
use migrator::model::Stack;
use migrator::report::{Ledger, Status};

fn shop() -> PathBuf {
    repo().join("tests/fixtures/istio/shop/docker-stack.yml")
}

fn shared() -> Option<PathBuf> {
    let p = repo().join("../shared");
    p.join("fixtures/stacks/manifest.json")
        .exists()
        .then_some(p)
}

fn voting(shared: &Path) -> PathBuf {
    shared.join("fixtures/stacks/example-voting-app/docker-stack.yml")
}

fn load_stack(file: &Path) -> (Ledger, Stack) {
    let loaded = load::load(&load::Options {
        files: vec![file.to_path_buf()],
        dialect: Dialect::Swarm,
        env: BTreeMap::new(),
    })
    .expect("loads");
    let stack = Stack::from_loaded(&loaded).expect("model");
    (Ledger::from_loaded(&loaded), stack)
}

fn emit_options(stack: &Stack, file: &Path) -> emit::Options {
    emit::Options {
        name: emit::chart_name(None, stack, Some(file)),
        namespace: None,
        kube_version: (1, 33),
        secrets: SecretMode::Inline,
        stage: None,
    }
}

fn chart(file: &Path, opts: &mesh::Options) -> (Ledger, Bundle) {
    let (mut ledger, stack) = load_stack(file);
    let out = mesh::chart(&stack, &emit_options(&stack, file), opts, &mut ledger).expect("chart");
    (ledger, out.bundle)
}

/// The objects and values of a bundle as one reviewable text.
fn render_objects(bundle: &Bundle) -> String {
    let mut out = String::new();
    for (path, file) in &bundle.files {
        if matches!(
            path.to_str(),
            Some("values.schema.json" | "README.md" | "templates/_helpers.tpl" | ".helmignore")
        ) {
            continue;
        }
        out.push_str(&format!("=== {} ({:04o})\n", path.display(), file.mode));
        out.push_str(&String::from_utf8_lossy(&file.bytes));
    }
    out
}

// ── YAML → JSON, CRD schemas ──

fn json_of(y: &yaml_rust2::Yaml) -> serde_json::Value {
    use yaml_rust2::Yaml as Y;
    match y {
        Y::Real(r) => serde_json::from_str(r).unwrap_or(serde_json::Value::Null),
        Y::Integer(i) => serde_json::Value::from(*i),
        Y::String(s) => serde_json::Value::from(s.clone()),
        Y::Boolean(b) => serde_json::Value::from(*b),
        Y::Array(a) => serde_json::Value::Array(a.iter().map(json_of).collect()),
        Y::Hash(h) => serde_json::Value::Object(
            h.iter()
                .map(|(k, v)| (k.as_str().unwrap_or_default().to_string(), json_of(v)))
                .collect(),
        ),
        _ => serde_json::Value::Null,
    }
}

fn docs(text: &str) -> Vec<serde_json::Value> {
    yaml_rust2::YamlLoader::load_from_str(text)
        .expect("rendered YAML parses")
        .iter()
        .map(json_of)
        .filter(|d| !d.is_null())
        .collect()
}

/// Kubernetes refuses unknown fields with strict field validation; the CRD schemas leave
/// `additionalProperties` open, so it is closed here for every object schema that lists its
/// properties and does not preserve unknown fields.
fn strict(schema: &mut serde_json::Value) {
    match schema {
        serde_json::Value::Object(o) => {
            if o.contains_key("properties")
                && !o.contains_key("additionalProperties")
                && !o.contains_key("x-kubernetes-preserve-unknown-fields")
            {
                o.insert("additionalProperties".into(), false.into());
            }
            for v in o.values_mut() {
                strict(v);
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(strict),
        _ => {}
    }
}

/// Validators by (apiVersion, kind) for every version of every CRD in the shared file.
struct Crds(BTreeMap<(String, String), jsonschema::Validator>);

impl Crds {
    fn load(shared: &Path) -> Self {
        let text = std::fs::read_to_string(shared.join("schemas/istio-crds.gen.yaml"))
            .expect("istio-crds.gen.yaml");
        let mut out = BTreeMap::new();
        for crd in docs(&text) {
            let group = crd["spec"]["group"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let kind = crd["spec"]["names"]["kind"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            for v in crd["spec"]["versions"].as_array().into_iter().flatten() {
                let mut schema = v["schema"]["openAPIV3Schema"].clone();
                if let Some(spec) = schema.pointer_mut("/properties/spec") {
                    strict(spec);
                }
                let validator = jsonschema::validator_for(&schema).expect("CRD schema compiles");
                let version = v["name"].as_str().unwrap_or_default();
                out.insert((format!("{group}/{version}"), kind.clone()), validator);
            }
        }
        Crds(out)
    }

    /// The schema errors of one object (None when its kind is not an Istio CRD).
    fn errors(&self, obj: &serde_json::Value) -> Option<Vec<String>> {
        let api = obj["apiVersion"].as_str()?.to_string();
        let kind = obj["kind"].as_str()?.to_string();
        let v = self.0.get(&(api, kind))?;
        Some(
            v.iter_errors(obj)
                .map(|e| format!("{}: {e}", e.instance_path()))
                .collect(),
        )
    }
}

/// lint, template, kubernetes-validate, and the CRD schema of every Istio object. Returns the
/// rendered objects.
fn check(chart: &Path, label: &str, crds: &Crds) -> Option<Vec<serde_json::Value>> {
    let helm = tool("helm")?;
    let validate = tool("kubernetes-validate")?;
    run(
        Command::new(&helm).args(["lint", "--strict"]).arg(chart),
        &format!("{label}: helm lint --strict"),
    );
    let rendered = run(
        Command::new(&helm)
            .args([
                "template",
                "release",
                "--api-versions",
                "networking.istio.io/v1",
                "--api-versions",
                "security.istio.io/v1",
            ])
            .arg(chart),
        &format!("{label}: helm template"),
    );
    let file = chart.with_extension("rendered.yaml");
    std::fs::write(&file, &rendered).expect("write");
    let objects = docs(&rendered);
    // kubernetes-validate has no Istio schemas (it only warns); those are checked below.
    common::kubernetes_validate(&validate, &file, label, "istio.io/v1");
    let mut istio = 0;
    for o in &objects {
        let api = o["apiVersion"].as_str().unwrap_or_default();
        if !api.contains("istio.io") {
            continue;
        }
        let errors = crds
            .errors(o)
            .unwrap_or_else(|| panic!("{label}: no CRD schema for {api} {}", o["kind"]));
        assert!(
            errors.is_empty(),
            "{label}: {} {} does not validate: {errors:#?}",
            o["kind"],
            o["metadata"]["name"]
        );
        istio += 1;
    }
    assert!(istio > 0, "{label}: no Istio object rendered");
    if let Some(report) = node_validate(&file) {
        assert_eq!(
            report["errors"],
            serde_json::json!([]),
            "{label}: @kubernetes-models/istio"
        );
        assert_eq!(
            report["validated"], istio,
            "{label}: every Istio object validated by node"
        );
    }
    Some(objects)
}

/// The second opinion: `tests/node/istio_validate.js` (@kubernetes-models/istio, ajv). None when
/// node or the node modules are missing outside `tests/run`.
fn node_validate(file: &Path) -> Option<serde_json::Value> {
    let node = tool("node")?;
    let dir = repo().join("tests/node");
    if !dir.join("node_modules/@kubernetes-models/istio").is_dir() {
        assert!(
            std::env::var_os("MESHMOVE_TESTS_RUN").is_none(),
            "tests/node/node_modules is missing although tests/run installs it"
        );
        println!("skipping the @kubernetes-models/istio check: run `npm ci` in tests/node");
        return None;
    }
    let out = Command::new(node)
        .arg("istio_validate.js")
        .arg(file)
        .current_dir(&dir)
        .output()
        .expect("run node");
    let line = text(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(line.trim())
        .unwrap_or_else(|e| panic!("istio_validate.js: {e}: {line} {}", text(&out.stderr)));
    assert_eq!(
        out.status.success(),
        report["errors"] == serde_json::json!([]),
        "exit status follows the errors"
    );
    Some(report)
}

fn find<'a>(objs: &'a [serde_json::Value], kind: &str, name: &str) -> &'a serde_json::Value {
    objs.iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

#[test]
fn every_istio_object_validates_against_its_crd_and_the_charts_pass_helm() {
    let Some(shared) = shared() else {
        println!("skipping: ../shared is absent");
        return;
    };
    let crds = Crds::load(&shared);
    let dir = tempfile::tempdir().expect("tmp");
    let vote = voting(&shared);
    let shop = shop();
    let cases: Vec<(&str, Vec<&str>)> = vec![
        (
            "shop-all",
            vec![
                shop.to_str().expect("utf-8"),
                "--istio",
                "--ingress",
                "istio",
                "--mtls",
                "strict",
                "--outlier-detection",
                "--lanes",
                "dev",
            ],
        ),
        (
            "shop-partial",
            vec![
                shop.to_str().expect("utf-8"),
                "--mesh",
                "istio",
                "--except",
                "cart,db",
                "--legacy-endpoint",
                "cart=10.1.0.7:7000",
                "--legacy-endpoint",
                "cart=10.1.0.8:7000",
                "--legacy-endpoint",
                "db=db.swarm.internal:5432",
            ],
        ),
        (
            "shop-partial-dns",
            vec![
                shop.to_str().expect("utf-8"),
                "--istio",
                "--except",
                "cart,db",
            ],
        ),
        (
            "voting-partial-lanes",
            vec![
                vote.to_str().expect("utf-8"),
                "--istio",
                "--only",
                "vote,result",
                "--legacy-endpoint",
                "redis=10.0.0.5:6379",
                "--legacy-endpoint",
                "db=[fd00::5]:5432",
                "--lanes",
                "dev,gray",
            ],
        ),
        (
            "voting-ingress",
            vec![
                vote.to_str().expect("utf-8"),
                "--istio",
                "--ingress",
                "istio",
            ],
        ),
    ];
    let mut kinds = BTreeSet::new();
    for (label, args) in &cases {
        let out = dir.path().join(label);
        let mut a = args.clone();
        a.extend(["-o", out.to_str().expect("utf-8")]);
        let o = migrate(&a, dir.path());
        assert_eq!(o.status.code(), Some(0), "{label}: {}", text(&o.stderr));
        let Some(objects) = check(&out, label, &crds) else {
            return;
        };
        for o in &objects {
            kinds.insert(o["kind"].as_str().unwrap_or_default().to_string());
        }
        match *label {
            "shop-all" => {
                shop_routes(&objects);
                // The node check is not vacuous either.
                let rendered =
                    std::fs::read_to_string(out.with_extension("rendered.yaml")).expect("rendered");
                assert!(rendered.contains("redirectCode: 301"));
                let bad = dir.path().join("bad.yaml");
                std::fs::write(
                    &bad,
                    rendered.replace("redirectCode: 301", "redirectCode: \"permanent\""),
                )
                .expect("write");
                if let Some(report) = node_validate(&bad) {
                    assert!(
                        report["errors"].to_string().contains("redirectCode"),
                        "{report}"
                    );
                }
            }
            "shop-partial-dns" => {
                // `cart` is named by api (depends_on, CART_URL) on its declared port 7000 but
                // has no address: its name is resolved through DNS. `db` has no port: none.
                let cart = find(&objects, "ServiceEntry", "cart");
                assert_eq!(cart["spec"]["resolution"], "DNS");
                assert_eq!(cart["spec"]["ports"][0]["number"], 7000);
                assert!(cart["spec"].get("endpoints").is_none());
                assert!(
                    !objects
                        .iter()
                        .any(|o| o["kind"] == "ServiceEntry" && o["metadata"]["name"] == "db")
                );
            }
            "voting-ingress" => {
                let gw = find(&objects, "Gateway", "vote-gateway");
                assert_eq!(gw["spec"]["servers"][0]["port"]["number"], 8080);
                let vs = find(&objects, "VirtualService", "vote-ingress");
                assert_eq!(vs["spec"]["hosts"], serde_json::json!(["*"]));
                assert_eq!(
                    vs["spec"]["http"][0]["route"][0]["destination"]["port"]["number"],
                    80
                );
            }
            _ => {}
        }
    }
    for k in [
        "Gateway",
        "VirtualService",
        "DestinationRule",
        "PeerAuthentication",
        "ServiceEntry",
        "WorkloadEntry",
    ] {
        assert!(
            kinds.contains(k),
            "no {k} was rendered and checked: {kinds:?}"
        );
    }

    // The validator is not vacuous: a wrong type and an unknown field are refused.
    let mut bad = serde_json::json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "x"},
        "spec": {"hosts": ["x"], "http": [{"route": [{"destination": {"host": "x"}, "weight": "heavy"}]}]}
    });
    assert!(!crds.errors(&bad).expect("known kind").is_empty());
    bad["spec"]["http"][0]["route"][0]["weight"] = 100.into();
    assert!(crds.errors(&bad).expect("known kind").is_empty());
    bad["spec"]["http"][0]["retry"] = serde_json::json!({"attempts": 3});
    assert!(!crds.errors(&bad).expect("known kind").is_empty());
}

#[test]
fn every_shared_fixture_passes_with_istio_on() {
    let Some(shared) = shared() else {
        println!("skipping: ../shared is absent");
        return;
    };
    let crds = Crds::load(&shared);
    let dir = tempfile::tempdir().expect("tmp");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(shared.join("fixtures/stacks/manifest.json")).expect("manifest"),
    )
    .expect("manifest JSON");
    let mut checked = 0;
    for entry in manifest.as_array().expect("a list") {
        let local = entry["local"].as_str().expect("local");
        let file = shared.join("fixtures/stacks").join(local);
        let label = local.replace('/', "__");
        let out = dir.path().join(&label);
        let o = migrate(
            &[
                file.to_str().expect("utf-8"),
                "--istio",
                "--ingress",
                "istio",
                "--lanes",
                "dev",
                "--outlier-detection",
                "--mtls",
                "permissive",
                "-o",
                out.to_str().expect("utf-8"),
            ],
            dir.path(),
        );
        if o.status.code() == Some(1) && !out.exists() {
            // The loader refuses it (as the plain chart test reports); nothing to check.
            println!("skip {local}: {}", text(&o.stderr).trim());
            continue;
        }
        assert_eq!(o.status.code(), Some(0), "{local}: {}", text(&o.stderr));
        if check(&out, local, &crds).is_none() {
            return;
        }
        checked += 1;
    }
    assert!(
        checked >= 15,
        "most shared fixtures convert with Istio on: {checked}"
    );
}

/// The shop's Traefik labels, as rendered.
fn shop_routes(objs: &[serde_json::Value]) {
    let web = find(objs, "VirtualService", "web-ingress");
    assert_eq!(
        web["spec"]["hosts"],
        serde_json::json!(["shop.example.com"])
    );
    assert_eq!(web["spec"]["gateways"], serde_json::json!(["web-gateway"]));
    let stable = web["spec"]["http"]
        .as_array()
        .expect("routes")
        .iter()
        .find(|r| r["name"] == "web")
        .expect("web route");
    assert_eq!(
        stable["match"],
        serde_json::json!([{"uri": {"prefix": "/shop"}}, {"uri": {"exact": "/healthz"}}])
    );
    assert_eq!(stable["timeout"], "5s");
    assert_eq!(stable["retries"]["attempts"], 2);
    assert!(
        stable.get("fault").is_none(),
        "fault injection is off by default"
    );
    let api = find(objs, "VirtualService", "api-ingress");
    let routes = api["spec"]["http"].as_array().expect("routes");
    let names: Vec<&str> = routes.iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(
        names,
        ["api-dev", "api-canary", "api", "api-http"],
        "admin (basicauth) and search (HostRegexp) are not routed"
    );
    let api_route = &routes[2];
    assert_eq!(api_route["match"][0]["port"], 443);
    assert_eq!(
        api_route["rewrite"]["uriRegexRewrite"],
        serde_json::json!({"match": "^/api/?", "rewrite": "/"})
    );
    assert_eq!(
        api_route["headers"]["request"]["set"]["x-forwarded-proto"],
        "https"
    );
    assert_eq!(api_route["route"][0]["destination"]["subset"], "stable");
    assert_eq!(
        routes[1]["match"][0]["headers"]["x-shop-lane"]["exact"],
        "canary"
    );
    assert_eq!(
        routes[1]["match"][1]["headers"]["rpc-persist-lane"]["exact"],
        "canary"
    );
    assert_eq!(
        routes[3]["redirect"],
        serde_json::json!({"scheme": "https", "redirectCode": 301})
    );
    let gw = find(objs, "Gateway", "api-gateway");
    assert_eq!(
        gw["spec"]["servers"][1]["tls"]["credentialName"],
        "shop-tls"
    );
    assert_eq!(gw["spec"]["selector"]["istio"], "ingressgateway");
    let dr = find(objs, "DestinationRule", "api");
    assert_eq!(
        dr["spec"]["trafficPolicy"]["loadBalancer"]["consistentHash"]["httpCookie"]["name"],
        "shop_session"
    );
    let subsets: Vec<&str> = dr["spec"]["subsets"]
        .as_array()
        .expect("subsets")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(
        subsets,
        ["stable", "dev", "canary"],
        "--lanes, then x-istio.lanes"
    );
    let web_dr = find(objs, "DestinationRule", "web");
    assert_eq!(
        web_dr["spec"]["trafficPolicy"]["outlierDetection"]["consecutive5xxErrors"], 5,
        "from healthcheck.retries"
    );
    assert_eq!(
        web_dr["spec"]["trafficPolicy"]["outlierDetection"]["interval"],
        "10s"
    );
    assert_eq!(
        web_dr["spec"]["trafficPolicy"]["connectionPool"]["tcp"]["maxConnections"],
        100
    );
    let legacy = find(objs, "VirtualService", "legacy-ingress");
    assert_eq!(
        legacy["spec"]["hosts"],
        serde_json::json!(["old.example.com"])
    );
    let pa = find(objs, "PeerAuthentication", "secure-mtls");
    assert_eq!(pa["spec"]["mtls"]["mode"], "STRICT");
    assert_eq!(
        pa["spec"]["selector"]["matchLabels"]["network.meshmove.io/secure"],
        "true"
    );
    assert_eq!(
        find(objs, "PeerAuthentication", "default")["spec"]["mtls"]["mode"],
        "STRICT"
    );
    // Lane Deployments: the stable one and one per lane, told apart by the lane label.
    let api_dev = find(objs, "Deployment", "api-dev");
    assert_eq!(api_dev["spec"]["selector"]["matchLabels"]["lane"], "dev");
    assert_eq!(
        api_dev["spec"]["template"]["metadata"]["labels"]["version"],
        "dev"
    );
    let api = find(objs, "Deployment", "api");
    assert_eq!(api["spec"]["selector"]["matchLabels"]["lane"], "stable");
    let svc = find(objs, "Service", "api");
    assert!(
        svc["spec"]["selector"].get("lane").is_none(),
        "the Service selects every lane"
    );
}

#[test]
fn partial_migration_of_the_voting_app() {
    let Some(shared) = shared() else {
        println!("skipping: ../shared is absent");
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let vote = voting(&shared);
    let out = dir.path().join("chart");
    let o = migrate(
        &[
            vote.to_str().expect("utf-8"),
            "--istio",
            "--only",
            "vote,result",
            "--legacy-endpoint",
            "redis=10.0.0.5:6379",
            "--legacy-endpoint",
            "db=db.swarm.internal:5432",
            "--format",
            "json",
            "-o",
            out.to_str().expect("utf-8"),
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let partial: Vec<&serde_json::Value> = report["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["rule"] == "partial")
        .collect();
    let of = |svc: &str, path: &str| {
        partial
            .iter()
            .find(|e| e["service"] == svc && e["source"]["path"] == path)
            .unwrap_or_else(|| panic!("no partial entry {svc} {path}: {partial:#?}"))
    };
    assert_eq!(of("vote", "services.vote")["target"], "moved to Kubernetes");
    assert_eq!(
        of("result", "services.result")["target"],
        "moved to Kubernetes"
    );
    assert_eq!(
        of("redis", "services.redis")["target"],
        "stays on Swarm; ServiceEntry redis"
    );
    assert_eq!(of("db", "services.db")["status"], "converted");
    assert_eq!(of("worker", "services.worker")["status"], "needs-input");
    let net = of("vote", "services.vote.networks.frontend");
    assert!(
        net["reason"].as_str().unwrap_or_default().contains("redis"),
        "{net}"
    );
    // Keys of services left on Swarm are not listed one by one.
    assert!(
        report["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .all(|e| e["service"] != "worker" || e["rule"] == "partial")
    );

    let files: BTreeSet<String> = walk(&out)
        .iter()
        .map(|p| p.strip_prefix(&out).expect("inside").display().to_string())
        .collect();
    for gone in ["worker", "redis-deployment", "db-deployment", "visualizer"] {
        assert!(!files.iter().any(|f| f.contains(gone)), "{gone}: {files:?}");
    }
    let Some(helm) = tool("helm") else {
        return;
    };
    let rendered = run(
        Command::new(helm).args(["template", "release"]).arg(&out),
        "helm template",
    );
    let objs = docs(&rendered);
    let redis = find(&objs, "ServiceEntry", "redis");
    assert_eq!(redis["spec"]["hosts"], serde_json::json!(["redis"]));
    assert_eq!(redis["spec"]["ports"][0]["number"], 6379);
    assert_eq!(redis["spec"]["resolution"], "STATIC");
    let we = find(&objs, "WorkloadEntry", "redis-legacy-1");
    assert_eq!(we["spec"]["address"], "10.0.0.5");
    assert_eq!(we["spec"]["ports"]["tcp-6379"], 6379);
    assert_eq!(
        we["spec"]["labels"], redis["spec"]["workloadSelector"]["labels"],
        "the ServiceEntry selects the WorkloadEntry"
    );
    let db = find(&objs, "ServiceEntry", "db");
    assert_eq!(db["spec"]["hosts"], serde_json::json!(["db"]));
    assert_eq!(db["spec"]["resolution"], "DNS");
    assert_eq!(db["spec"]["endpoints"][0]["address"], "db.swarm.internal");
    assert_eq!(db["spec"]["endpoints"][0]["ports"]["tcp-5432"], 5432);
    let deployments: BTreeSet<&str> = objs
        .iter()
        .filter(|o| o["kind"] == "Deployment")
        .filter_map(|o| o["metadata"]["name"].as_str())
        .collect();
    assert_eq!(deployments, BTreeSet::from(["result", "vote"]));

    // The mapping file lists exactly the moved services, and parses with the bridge's parser.
    let cm = objs
        .iter()
        .find(|o| {
            o["kind"] == "ConfigMap"
                && o["metadata"]["labels"]["app.kubernetes.io/component"] == "bridge-mapping"
        })
        .expect("mapping ConfigMap");
    let mapping = mappings::parse_yaml(cm["data"]["mapping.yaml"].as_str().expect("mapping.yaml"))
        .expect("the mapping file is valid");
    let moved: Vec<&str> = mapping
        .services
        .iter()
        .map(|s| s.swarm_name.as_str())
        .collect();
    assert_eq!(moved, ["result", "vote"]);
    let vote_entry = &mapping.services[1];
    assert_eq!(vote_entry.kubernetes_host, "vote.default.svc.cluster.local");
    assert_eq!(vote_entry.ports, [80]);
    assert_eq!(vote_entry.eureka_app, "VOTE");
    assert_eq!(vote_entry.vip_address, "vote");
    let left: Vec<(&str, &[String])> = mapping
        .on_swarm
        .iter()
        .map(|o| (o.swarm_name.as_str(), o.endpoints.as_slice()))
        .collect();
    assert_eq!(
        left,
        [
            ("db", &["db.swarm.internal:5432".to_string()][..]),
            ("redis", &["10.0.0.5:6379".to_string()][..])
        ]
    );

    // The same endpoints from a mapping file (`--mapping`) give the same ServiceEntries.
    let file = dir.path().join("mapping.yaml");
    std::fs::write(
        &file,
        "on_swarm:\n  - swarm_name: redis\n    endpoints: [\"10.0.0.5:6379\"]\n  - swarm_name: db\n    endpoints: [\"db.swarm.internal:5432\"]\n  - swarm_name: elsewhere\n    endpoints: [\"10.9.9.9:1\"]\n",
    )
    .expect("write");
    let again = dir.path().join("again");
    let o = migrate(
        &[
            vote.to_str().expect("utf-8"),
            "--istio",
            "--only",
            "vote,result",
            "--mapping",
            file.to_str().expect("utf-8"),
            "-o",
            again.to_str().expect("utf-8"),
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    for f in [
        "templates/istio/legacy-redis.yaml",
        "templates/istio/legacy-db.yaml",
    ] {
        assert_eq!(
            std::fs::read(out.join(f)).ok(),
            std::fs::read(again.join(f)).ok(),
            "{f}"
        );
    }
}

#[test]
fn voting_app_snapshots_with_only_vote_and_with_lanes() {
    let Some(shared) = shared() else {
        println!("skipping: ../shared is absent");
        return;
    };
    let vote = voting(&shared);
    let (ledger, only) = chart(
        &vote,
        &mesh::Options {
            istio: true,
            only: vec!["vote".into()],
            legacy_endpoints: vec![(
                "redis".into(),
                migrator::emit::istio::Endpoint {
                    host: "10.0.0.5".into(),
                    port: 6379,
                },
            )],
            ..mesh::Options::default()
        },
    );
    insta::assert_snapshot!("voting_only_vote", render_objects(&only));
    insta::assert_snapshot!("voting_only_vote_ledger", ledger.to_text());
    let (_, lanes) = chart(
        &vote,
        &mesh::Options {
            istio: true,
            lanes: vec!["dev".into(), "gray".into()],
            ..mesh::Options::default()
        },
    );
    insta::assert_snapshot!("voting_lanes", render_objects(&lanes));
}

#[test]
fn istio_off_leaves_the_chart_as_it_was() {
    let file = shop();
    let (mut ledger, stack) = load_stack(&file);
    let opts = emit_options(&stack, &file);
    let plain = emit::chart(&stack, &opts).expect("chart").bundle;
    let via_mesh = mesh::chart(&stack, &opts, &mesh::Options::default(), &mut ledger)
        .expect("chart")
        .bundle;
    assert_eq!(plain, via_mesh);
    assert!(!plain.files.keys().any(|p| p.starts_with("templates/istio")));
    let enc = ledger
        .entries
        .iter()
        .find(|e| e.source.path == "networks.secure.driver_opts")
        .expect("encrypted entry");
    assert_eq!(enc.status, Status::Dropped);
    assert!(enc.reason.contains("--istio"), "{}", enc.reason);
    let x = ledger
        .entries
        .iter()
        .find(|e| e.source.path == "services.web.x-istio")
        .expect("x-istio entry");
    assert_eq!(x.status, Status::Dropped);
    assert!(x.reason.contains("--istio"), "{}", x.reason);
    let (ledger, _) = chart(
        &file,
        &mesh::Options {
            istio: true,
            ..mesh::Options::default()
        },
    );
    let enc = ledger
        .entries
        .iter()
        .find(|e| e.source.path == "networks.secure.driver_opts.encrypted")
        .expect("encrypted finding");
    assert_eq!(enc.status, Status::Converted);
    assert!(
        enc.target.contains("PeerAuthentication secure-mtls"),
        "{}",
        enc.target
    );
}

#[test]
fn traefik_labels_are_accounted_for_in_the_ledger() {
    let (ledger, _) = chart(
        &shop(),
        &mesh::Options {
            istio: true,
            ..mesh::Options::default()
        },
    );
    let status = |label: &str| {
        let path = format!("services.api.deploy.labels.{label}");
        ledger
            .entries
            .iter()
            .filter(|e| e.source.path == path)
            .map(|e| e.status)
            .collect::<Vec<_>>()
    };
    for (label, want) in [
        ("traefik.http.routers.api.rule", Status::Converted),
        (
            "traefik.http.routers.api.tls.certresolver",
            Status::NeedsInput,
        ),
        (
            "traefik.http.middlewares.admin-auth.basicauth.users",
            Status::NeedsInput,
        ),
        ("traefik.http.routers.search.rule", Status::NeedsInput),
        (
            "traefik.http.middlewares.api-strip.stripprefix.prefixes",
            Status::Converted,
        ),
        (
            "traefik.http.services.api.loadbalancer.sticky.cookie.name",
            Status::Converted,
        ),
    ] {
        assert!(
            status(label).contains(&want),
            "{label}: {:?}",
            status(label)
        );
    }
    // The basic-auth hash is never copied into the ledger.
    assert!(!ledger.to_text().contains("not-a-real-hash"));
    let x = ledger
        .entries
        .iter()
        .find(|e| e.source.path == "services.web.x-istio")
        .expect("x-istio entry");
    assert_eq!(x.status, Status::Converted);
}

#[test]
fn mesh_errors_are_clear_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().expect("tmp");
    let shop = shop();
    let s = shop.to_str().expect("utf-8");
    for (args, code, says) in [
        (vec![s, "--lanes", "dev"], 64, "--lanes needs --istio"),
        (vec![s, "--istio", "--lanes", "Dev"], 64, "not a lane name"),
        (
            vec![s, "--istio", "--lanes", "stable"],
            64,
            "not a lane name",
        ),
        (
            vec![s, "--istio", "--lane-header", "X-Lane"],
            64,
            "lowercase",
        ),
        (vec![s, "--ingress", "istio"], 64, "needs --istio"),
        (
            vec![s, "--istio", "--legacy-endpoint", "db"],
            64,
            "NAME=HOST:PORT",
        ),
        (
            vec![s, "--istio", "--legacy-endpoint", "db=h:99999"],
            64,
            "not a port",
        ),
        (
            vec![s, "--only", "nosuch"],
            1,
            "--only: the stack has no service 'nosuch'; its services are: api, cart, db, legacy, web",
        ),
        (
            vec![s, "--except", "api,cart,db,legacy,web"],
            1,
            "no service is left to migrate",
        ),
        (
            vec![
                s,
                "--istio",
                "--only",
                "web",
                "--legacy-endpoint",
                "web=10.0.0.1:80",
            ],
            1,
            "'web' is migrated",
        ),
        (
            vec![s, "--istio", "--legacy-endpoint", "nosuch=10.0.0.1:80"],
            1,
            "no service 'nosuch'",
        ),
    ] {
        let mut a = args.clone();
        a.extend(["-o", "out"]);
        let o = migrate(&a, dir.path());
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(
            !dir.path().join("out").exists(),
            "{args:?}: no partial output"
        );
    }
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "version: \"3.9\"\nservices:\n  web:\n    image: nginx\n    x-istio:\n      retries:\n        attempts: many\n",
    )
    .expect("write");
    let o = migrate(
        &[bad.to_str().expect("utf-8"), "--istio", "-o", "out"],
        dir.path(),
    );
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("bad.yml:5:5: services.web.x-istio.retries.attempts:"),
        "{err}"
    );
    assert!(!dir.path().join("out").exists());
    let mapping = dir.path().join("m.yaml");
    std::fs::write(
        &mapping,
        "on_swarm:\n  - swarm_name: db\n    endpoints: [db]\n",
    )
    .expect("write");
    let o = migrate(
        &[
            s,
            "--istio",
            "--only",
            "web",
            "--mapping",
            mapping.to_str().expect("utf-8"),
            "-o",
            "out",
        ],
        dir.path(),
    );
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("m.yaml") && err.contains("is not host:port"),
        "{err}"
    );
    let help = text(&migrate(&["--help"], dir.path()).stdout);
    for flag in [
        "--istio",
        "--mesh",
        "--ingress",
        "--only",
        "--except",
        "--legacy-endpoint",
        "--lanes",
        "--lane-header",
        "--mtls",
        "--mapping",
        "--outlier-detection",
    ] {
        assert!(help.contains(flag), "--help lists {flag}");
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn istio_output_is_byte_identical_across_runs() {
    let dir = tempfile::tempdir().expect("tmp");
    let shop = shop();
    for out in ["a", "b"] {
        let o = migrate(
            &[
                shop.to_str().expect("utf-8"),
                "--istio",
                "--ingress",
                "istio",
                "--lanes",
                "dev,gray",
                "--except",
                "db",
                "--legacy-endpoint",
                "db=10.0.0.9:5432",
                "-o",
                out,
            ],
            dir.path(),
        );
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    }
    let a = walk(&dir.path().join("a"));
    let b = walk(&dir.path().join("b"));
    assert_eq!(a.len(), b.len());
    for (fa, fb) in a.iter().zip(&b) {
        assert!(
            std::fs::read(fa).ok() == std::fs::read(fb).ok(),
            "{}",
            fa.display()
        );
    }
}
