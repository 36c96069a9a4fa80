//! The chart `migrate` writes: every shared fixture the loader accepts converts, passes
//! `helm lint --strict`, renders with `helm template` and validates strictly against Kubernetes
//! 1.30 and 1.37; golden snapshots of each chart; and one test per mistake kompose makes
//! (migration-semantics.md §1), each asserting that we do it right.

mod common;
use common::{migrate, repo, run, text, tool};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use migrator::emit::{self, Bundle, SecretMode};
use migrator::load::{self, Dialect};
use migrator::model::Stack;
use migrator::report::{Ledger, Status};

/// The secret value of the test stack: it must never be printed.
const SECRET: &str = "s3cr3t-value-do-not-print";

fn stack_file() -> PathBuf {
    repo().join("tests/fixtures/chart/stack/docker-stack.yml")
}

fn shared_stacks() -> Option<PathBuf> {
    let p = repo().join("../shared/fixtures/stacks");
    p.join("manifest.json").exists().then_some(p)
}

/// helm lint --strict, helm template, and kubernetes-validate --strict (one process per version
/// over the whole rendered stream). Returns the rendered manifests when the tools are there.
fn check_chart(chart: &Path, label: &str) -> Option<String> {
    let helm = tool("helm")?;
    let validate = tool("kubernetes-validate")?;
    run(
        Command::new(&helm).args(["lint", "--strict"]).arg(chart),
        &format!("{label}: helm lint --strict"),
    );
    let rendered = run(
        Command::new(&helm).args(["template", "release"]).arg(chart),
        &format!("{label}: helm template"),
    );
    let file = chart.with_extension("rendered.yaml");
    std::fs::write(&file, &rendered).expect("write rendered");
    // Only CRD kinds (ExternalSecret) may lack a schema.
    common::kubernetes_validate(&validate, &file, label, "ExternalSecret");
    Some(rendered)
}

fn load_stack(files: &[PathBuf]) -> Result<(load::Loaded, Stack), migrator::Error> {
    let loaded = load::load(&load::Options {
        files: files.to_vec(),
        dialect: Dialect::Swarm,
        env: BTreeMap::new(),
    })?;
    let stack = Stack::from_loaded(&loaded)?;
    Ok((loaded, stack))
}

fn options(stack: &Stack, first: &Path, secrets: SecretMode) -> emit::Options {
    emit::Options {
        name: emit::chart_name(None, stack, Some(first)),
        namespace: None,
        kube_version: (1, 33),
        secrets,
        stage: None,
    }
}

/// The bundle as one reviewable text: each file under a header with its mode; secret material
/// redacted and carried files (`files/`, the user's content) as their size and digest.
fn render(bundle: &Bundle) -> String {
    render_files(bundle, |_| true)
}

/// The objects and values only: the schema, README and helpers follow from them and are
/// reviewed once, in the test stack's snapshot.
fn render_objects(bundle: &Bundle) -> String {
    render_files(bundle, |p| {
        !matches!(
            p.to_str(),
            Some("values.schema.json" | "README.md" | "templates/_helpers.tpl" | ".helmignore")
        )
    })
}

fn render_files(bundle: &Bundle, keep: impl Fn(&Path) -> bool) -> String {
    let mut out = String::new();
    for (path, file) in bundle.files.iter().filter(|(p, _)| keep(p)) {
        out.push_str(&format!("=== {} ({:04o})\n", path.display(), file.mode));
        if file.is_secret() {
            out.push_str(&format!("{}\n", emit::redact(&file.bytes)));
        } else if path.starts_with("files") {
            out.push_str(&format!(
                "{} bytes {}\n",
                file.bytes.len(),
                emit::redact(&file.bytes)
            ));
        } else {
            out.push_str(&String::from_utf8_lossy(&file.bytes));
        }
    }
    out
}

#[test]
fn shared_fixtures_convert_lint_render_and_validate() {
    let Some(dir) = shared_stacks() else {
        println!("skipping: ../shared/fixtures/stacks is absent");
        return;
    };
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("manifest.json")).expect("manifest"),
    )
    .expect("manifest JSON");
    let work = tempfile::tempdir().expect("tmp");
    let mut converted = Vec::new();
    for entry in manifest.as_array().expect("a list") {
        let local = entry["local"].as_str().expect("local");
        let file = dir.join(local);
        let (_, stack) = match load_stack(std::slice::from_ref(&file)) {
            Ok(s) => s,
            Err(e) => {
                println!("skip {local}: the loader rejects it: {e}");
                continue;
            }
        };
        let label = local.replace('/', "__");
        let out = work.path().join(&label);
        let o = migrate(
            &[file.as_os_str(), "-o".as_ref(), out.as_os_str()],
            work.path(),
        );
        assert_eq!(
            o.status.code(),
            Some(0),
            "{local}: migrate failed:\n{}",
            text(&o.stderr)
        );
        check_chart(&out, local);
        let bundle = emit::chart(&stack, &options(&stack, &file, SecretMode::Inline))
            .expect("emit")
            .bundle;
        insta::assert_snapshot!(format!("shared__{label}"), render_objects(&bundle));
        converted.push(local.to_string());
    }
    // The two kompose files are meant to be merged: the second overrides the first's replicas.
    let pair = [
        dir.join("kompose-multiple-files/first.yaml"),
        dir.join("kompose-multiple-files/second.yaml"),
    ];
    let (_, stack) = load_stack(&pair).expect("the pair loads");
    let b = emit::chart(&stack, &options(&stack, &pair[0], SecretMode::Inline))
        .expect("emit")
        .bundle;
    let values = yaml(&text(&b.files[Path::new("values.yaml")].bytes));
    assert_eq!(values["services"]["bar"]["replicas"].as_i64(), Some(99));
    assert_eq!(values["services"]["foo"]["replicas"].as_i64(), Some(3));
    let out = work.path().join("multiple-files-merged");
    b.write(&out, false).expect("write");
    check_chart(&out, "kompose-multiple-files first + second");
    assert!(
        converted.len() >= 15,
        "most shared fixtures convert: {converted:?}"
    );
}

#[test]
fn voting_app_chart_keeps_the_swarm_settings() {
    let Some(dir) = shared_stacks() else {
        println!("skipping: ../shared/fixtures/stacks is absent");
        return;
    };
    let file = dir.join("example-voting-app/docker-stack.yml");
    let (_, stack) = load_stack(std::slice::from_ref(&file)).expect("loads");
    let b = emit::chart(&stack, &options(&stack, &file, SecretMode::Inline))
        .expect("emit")
        .bundle;
    let f = |p: &str| text(&b.files[Path::new(p)].bytes);
    let values = yaml(&f("values.yaml"));
    assert_eq!(values["services"]["vote"]["replicas"].as_i64(), Some(2));
    assert_eq!(values["services"]["worker"]["replicas"].as_i64(), Some(2));
    let vote = f("templates/vote-deployment.yaml");
    assert!(vote.contains("kind: Deployment"), "{vote}");
    assert!(
        vote.contains(
            "type: RollingUpdate\n    rollingUpdate:\n      maxSurge: 0\n      maxUnavailable: 1"
        ),
        "Swarm's default update (parallelism 1, stop-first): {vote}"
    );
    assert!(!vote.contains("restartPolicy"), "Always is the default");
    let redis = f("templates/redis-service.yaml");
    assert!(redis.contains("kind: Service") && redis.contains("name: redis"));
    assert!(
        b.files
            .contains_key(Path::new("templates/volumes/db-data-pvc.yaml"))
    );
    for net in ["frontend", "backend"] {
        assert!(
            b.files.contains_key(Path::new(&format!(
                "templates/networks/{net}-network-networkpolicy.yaml"
            ))),
            "a NetworkPolicy per overlay network"
        );
    }
}

/// docker/cli's full example uses every v3 key. `docker stack deploy` refuses it (a network it
/// does not declare, files it does not ship), so it is converted here without those checks, with
/// the missing files made up, to see every key through the chart and the tools.
#[test]
fn docker_cli_full_example_renders_every_key() {
    let Some(dir) = shared_stacks() else {
        println!("skipping: ../shared/fixtures/stacks is absent");
        return;
    };
    let work = tempfile::tempdir().expect("tmp");
    let src = dir.join("docker-cli-full-example");
    for f in ["full-example.yml", "example1.env", "example2.env"] {
        std::fs::copy(src.join(f), work.path().join(f)).expect("copy");
    }
    for f in ["config_data", "secret_data"] {
        std::fs::write(work.path().join(f), format!("{f} made up by the test\n")).expect("write");
    }
    let file = work.path().join("full-example.yml");
    let loaded = load::load(&load::Options {
        files: vec![file.clone()],
        dialect: Dialect::Swarm,
        env: BTreeMap::new(),
    })
    .expect("loads");
    let stack = Stack::from_loaded_with(&loaded, migrator::model::Checks::NONE).expect("model");
    let out = emit::chart(&stack, &options(&stack, &file, SecretMode::Inline)).expect("emit");
    let mut ledger = Ledger::from_loaded(&loaded);
    emit::refine(&mut ledger, &out.findings);
    let chart = work.path().join("chart");
    out.bundle.write(&chart, false).expect("write");
    check_chart(&chart, "docker-cli full example");
    let foo = file_text(&out.bundle, "templates/foo-deployment.yaml");
    assert!(foo.contains("kind: Deployment"), "{foo}");
    // An anonymous volume and a named one both at /var/lib/mysql: one mount, the other reported.
    assert_eq!(
        foo.matches("mountPath: /var/lib/mysql\n").count(),
        1,
        "{foo}"
    );
    assert!(ledger.entries.iter().any(|e| {
        e.source.path.starts_with("services.foo.volumes[")
            && e.status == Status::NeedsInput
            && e.reason.contains("one path")
    }));
    assert!(
        ledger
            .entries
            .iter()
            .all(|e| e.rule != "chart" || !e.reason.is_empty()),
        "every finding says why"
    );
}

fn file_text(b: &Bundle, p: &str) -> String {
    text(&b.files[Path::new(p)].bytes)
}

/// kompose's own full v3 example (deploy, healthcheck, aliases, external networks and volumes,
/// tmpfs, many keys Swarm ignores) references a network it does not declare; without the
/// reference check it converts, and the chart passes the tools.
#[test]
fn kompose_full_example_renders_without_reference_checks() {
    let Some(dir) = shared_stacks() else {
        println!("skipping: ../shared/fixtures/stacks is absent");
        return;
    };
    let file = dir.join("kompose-unused-v3/docker-compose-full-example.yaml");
    let loaded = load::load(&load::Options {
        files: vec![file.clone()],
        dialect: Dialect::Swarm,
        env: BTreeMap::new(),
    })
    .expect("loads");
    let stack = Stack::from_loaded_with(&loaded, migrator::model::Checks::NONE).expect("model");
    let out = emit::chart(&stack, &options(&stack, &file, SecretMode::Inline)).expect("emit");
    let work = tempfile::tempdir().expect("tmp");
    let chart = work.path().join("chart");
    out.bundle.write(&chart, false).expect("write");
    check_chart(&chart, "kompose full example");
    let mut ledger = Ledger::from_loaded(&loaded);
    emit::refine(&mut ledger, &out.findings);
    // The bind sources are not shipped: each is a decision, none a silent hostPath or PVC.
    let binds: Vec<_> = ledger
        .entries
        .iter()
        .filter(|e| e.rule == "services.*.volumes[]" && e.target.contains("hostPath"))
        .collect();
    assert!(!binds.is_empty());
    assert!(
        binds.iter().all(|e| e.status == Status::NeedsInput),
        "{binds:?}"
    );
}

/// The 2020 voting app sets `restart_policy: on-failure` on every service: the ones that serve
/// stay Deployments with their rolling update; the worker, which only consumes, becomes a Job
/// whose backoffLimit is max_attempts.
#[test]
fn voting_app_2020_honours_update_config_and_restart_policy() {
    let Some(dir) = shared_stacks() else {
        println!("skipping: ../shared/fixtures/stacks is absent");
        return;
    };
    let file = dir.join("example-voting-app/docker-stack.2020.yml");
    let (loaded, stack) = load_stack(std::slice::from_ref(&file)).expect("loads");
    let out = emit::chart(&stack, &options(&stack, &file, SecretMode::Inline)).expect("emit");
    let b = out.bundle;
    let f = |p: &str| text(&b.files[Path::new(p)].bytes);
    let vote = f("templates/vote-deployment.yaml");
    assert!(
        vote.contains("rollingUpdate:\n      maxSurge: 0\n      maxUnavailable: 2"),
        "parallelism 2, stop-first: {vote}"
    );
    assert_eq!(
        yaml(&f("values.yaml"))["services"]["vote"]["replicas"].as_i64(),
        Some(2)
    );
    assert!(
        f("templates/result-deployment.yaml").contains("minReadySeconds: 10"),
        "delay"
    );
    assert!(f("templates/redis-service.yaml").contains("name: redis"));
    let worker = f("templates/worker-job.yaml");
    assert!(worker.contains("restartPolicy: OnFailure") && worker.contains("backoffLimit: 3"));
    let mut ledger = Ledger::from_loaded(&loaded);
    emit::refine(&mut ledger, &out.findings);
    let e = entry(&ledger, "services.vote.deploy.restart_policy.condition");
    assert_eq!(e.status, Status::Approximated, "{e:?}");
    assert!(e.target.starts_with("Deployment"), "{e:?}");
    assert_eq!(
        entry(&ledger, "services.worker").target,
        "Job (restartPolicy OnFailure)"
    );
}

fn yaml(text: &str) -> yaml_rust2::Yaml {
    yaml_rust2::YamlLoader::load_from_str(text)
        .expect("YAML")
        .into_iter()
        .next()
        .expect("a document")
}

fn test_chart(secrets: SecretMode) -> (Ledger, Bundle) {
    let file = stack_file();
    let (loaded, stack) = load_stack(std::slice::from_ref(&file)).expect("test stack loads");
    let out = emit::chart(&stack, &options(&stack, &file, secrets)).expect("emit");
    let mut ledger = Ledger::from_loaded(&loaded);
    emit::refine(&mut ledger, &out.findings);
    (ledger, out.bundle)
}

fn entry<'a>(l: &'a Ledger, path: &str) -> &'a migrator::report::Entry {
    l.entries
        .iter()
        .find(|e| e.source.path == path)
        .unwrap_or_else(|| panic!("no ledger entry {path}"))
}

fn file(b: &Bundle, p: &str) -> String {
    text(
        &b.files
            .get(Path::new(p))
            .unwrap_or_else(|| panic!("no file {p}; files: {:?}", b.files.keys()))
            .bytes,
    )
}

#[test]
fn test_stack_snapshot_and_tools() {
    let (_, b) = test_chart(SecretMode::Inline);
    insta::assert_snapshot!("stack", render(&b));
    let dir = tempfile::tempdir().expect("tmp");
    for (mode, flag) in [("inline", "inline"), ("external", "external-secrets")] {
        let out = dir.path().join(mode);
        let o = migrate(
            &[
                stack_file().as_os_str(),
                "-o".as_ref(),
                out.as_os_str(),
                "--secrets".as_ref(),
                flag.as_ref(),
            ],
            dir.path(),
        );
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        let Some(rendered) = check_chart(&out, &format!("test stack ({flag})")) else {
            continue;
        };
        // With the default values, the rendered objects carry the stack's settings.
        let docs: Vec<yaml_rust2::Yaml> = yaml_rust2::YamlLoader::load_from_str(&rendered)
            .expect("rendered YAML")
            .into_iter()
            .filter(|d| !d.is_null())
            .collect();
        let object = |kind: &str, name: &str| {
            docs.iter()
                .find(|d| {
                    d["kind"].as_str() == Some(kind) && d["metadata"]["name"].as_str() == Some(name)
                })
                .unwrap_or_else(|| panic!("no {kind} {name} in the rendered chart"))
        };
        let web = object("Deployment", "web");
        assert_eq!(web["spec"]["replicas"].as_i64(), Some(3));
        assert_eq!(
            web["spec"]["strategy"]["rollingUpdate"]["maxSurge"].as_i64(),
            Some(2)
        );
        let checksum =
            web["spec"]["template"]["metadata"]["annotations"]["meshmove.io/content-checksum"]
                .as_str()
                .unwrap_or_default();
        assert_eq!(
            checksum.len(),
            64,
            "pods roll when a config or secret changes"
        );
        let c = &web["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["image"].as_str(), Some("nginx:1.27"));
        assert_eq!(c["resources"]["limits"]["cpu"].as_str(), Some("500m"));
        assert_eq!(c["resources"]["requests"]["memory"].as_str(), Some("128Mi"));
        assert_eq!(
            c["readinessProbe"]["exec"]["command"][0].as_str(),
            Some("sh")
        );
        assert_eq!(c["securityContext"]["runAsUser"].as_i64(), Some(101));
        let terms = &web["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"][0]["matchExpressions"];
        assert_eq!(terms.as_vec().map(Vec::len), Some(3), "three constraints");
        assert_eq!(
            object("Service", "web")["spec"]["type"].as_str(),
            Some("ClusterIP")
        );
        assert_eq!(
            object("Service", "dns")["spec"]["clusterIP"].as_str(),
            Some("None")
        );
        let db = object("Deployment", "db");
        let env = db["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_vec()
            .expect("env");
        assert!(
            env.iter().any(|e| e["name"].as_str() == Some("ONLY_DIGITS")
                && e["value"].as_str() == Some("0123")),
            "a numeric-looking value stays the string it was: {env:?}"
        );
        assert_eq!(
            object("Job", "once")["spec"]["backoffLimit"].as_i64(),
            Some(0)
        );
        if flag == "external-secrets" {
            object("ExternalSecret", "db-password");
        } else {
            object("Secret", "db-password");
        }
    }
}

/// kompose passes `test[1:]` as one argv string: `["curl -f … || exit 1"]`, which no shell runs.
#[test]
fn cmd_shell_healthcheck_runs_through_a_shell() {
    let (ledger, b) = test_chart(SecretMode::Inline);
    let values = yaml(&file(&b, "values.yaml"));
    let probes = &values["services"]["web"]["probes"];
    for p in ["readiness", "liveness", "startup"] {
        let cmd: Vec<&str> = probes[p]["exec"]["command"]
            .as_vec()
            .unwrap_or_else(|| panic!("{p} probe"))
            .iter()
            .filter_map(|c| c.as_str())
            .collect();
        assert_eq!(
            cmd,
            ["sh", "-c", "curl -f http://localhost/ || exit 1"],
            "{p}"
        );
    }
    // interval 15s, timeout 5s, retries 4; start_period 30s → 2 periods + the retries.
    assert_eq!(probes["readiness"]["periodSeconds"].as_i64(), Some(15));
    assert_eq!(probes["readiness"]["timeoutSeconds"].as_i64(), Some(5));
    assert_eq!(probes["liveness"]["failureThreshold"].as_i64(), Some(4));
    assert_eq!(probes["startup"]["failureThreshold"].as_i64(), Some(6));
    let db: Vec<&str> = values["services"]["db"]["probes"]["readiness"]["exec"]["command"]
        .as_vec()
        .expect("db probe")
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    assert_eq!(
        db,
        ["pg_isready", "-U", "postgres"],
        "CMD runs without a shell"
    );
    assert!(
        entry(&ledger, "services.web.healthcheck.test")
            .target
            .contains("[\"sh\", \"-c\"")
    );
}

/// kompose turns `restart_policy.condition: none` into a Deployment with `restartPolicy: Never`,
/// which the API server rejects, and `on-failure` into a bare Pod.
#[test]
fn tasks_that_are_not_restarted_become_jobs() {
    let (ledger, b) = test_chart(SecretMode::Inline);
    let once = file(&b, "templates/once-job.yaml");
    assert!(once.contains("kind: Job") && once.contains("restartPolicy: Never"));
    assert!(
        once.contains("backoffLimit: 0"),
        "none is never retried: {once}"
    );
    let migrate_job = file(&b, "templates/migrate-job.yaml");
    assert!(migrate_job.contains("restartPolicy: OnFailure"));
    assert!(
        migrate_job.contains("backoffLimit: 3"),
        "max_attempts: {migrate_job}"
    );
    assert!(
        !migrate_job.contains("selector:"),
        "Jobs make their own selector"
    );
    for (path, f) in &b.files {
        let t = text(&f.bytes);
        assert!(
            !(t.contains("kind: Deployment") && t.contains("restartPolicy: Never")),
            "{} is a Deployment with restartPolicy Never",
            path.display()
        );
    }
    assert!(
        !b.files
            .contains_key(Path::new("templates/once-deployment.yaml"))
    );
    assert_eq!(
        entry(&ledger, "services.once").target,
        "Job (restartPolicy Never)"
    );
    let sweeper = file(&b, "templates/sweeper-job.yaml");
    assert!(sweeper.contains("restartPolicy: OnFailure"), "{sweeper}");
    assert!(
        !sweeper.contains("backoffLimit"),
        "no max_attempts: Kubernetes' default"
    );
    let e = entry(&ledger, "services.sweeper");
    assert_eq!(
        (e.status, e.target.as_str()),
        (Status::Approximated, "Job (restartPolicy OnFailure)")
    );
    let dns = file(&b, "templates/dns-daemonset.yaml");
    assert!(dns.contains("kind: DaemonSet"), "mode global");
    // `$$(…)` in the stack is a literal `$(…)`, which Kubernetes must not expand.
    assert!(migrate_job.contains("\"$$(not-a-var)\""), "{migrate_job}");
}

/// kompose maps `endpoint_mode: vip` to a NodePort Service and ignores `dnsrr`.
#[test]
fn vip_is_cluster_ip_and_dnsrr_is_headless() {
    let (ledger, b) = test_chart(SecretMode::Inline);
    let web = file(&b, "templates/web-service.yaml");
    assert!(!web.contains("clusterIP: None"), "{web}");
    let values = yaml(&file(&b, "values.yaml"));
    assert_eq!(
        values["services"]["web"]["service"]["type"].as_str(),
        Some("ClusterIP")
    );
    let ports = values["services"]["web"]["service"]["ports"]
        .as_vec()
        .expect("ports");
    assert_eq!(ports.len(), 2, "published 80 and internal 9113");
    assert_eq!(
        ports[0]["port"].as_i64(),
        Some(80),
        "the container port, not the published one"
    );
    assert!(file(&b, "templates/dns-service.yaml").contains("clusterIP: None"));
    for (path, f) in &b.files {
        let is_object =
            path.starts_with("templates") && path.extension().is_some_and(|e| e == "yaml");
        assert!(
            !is_object || !text(&f.bytes).contains("NodePort"),
            "{} uses a NodePort",
            path.display()
        );
    }
    let published = entry(&ledger, "services.web.ports[0]");
    assert_eq!(
        published.status,
        Status::NeedsInput,
        "an ingress decision, not a silent NodePort"
    );
    assert!(file(&b, "templates/web-networkpolicy.yaml").contains("port: 80"));
}

/// kompose drops external configs with a warning and mounts a Secret nobody creates.
#[test]
fn external_configs_and_secrets_are_references_with_needs_input() {
    let (ledger, b) = test_chart(SecretMode::Inline);
    for path in ["configs.legacy", "secrets.api_token"] {
        let e = entry(&ledger, path);
        assert_eq!(e.status, Status::NeedsInput, "{path}");
        assert!(e.target.contains("values"), "{path}: {}", e.target);
    }
    let web = file(&b, "templates/web-deployment.yaml");
    assert!(web.contains("name: {{ .Values.configs.legacy.existingConfigMap | quote }}"));
    assert!(web.contains("secretName: {{ .Values.secrets.apiToken.existingSecret | quote }}"));
    assert!(
        web.contains("mountPath: /run/secrets/token"),
        "Swarm's secret path"
    );
    assert!(
        web.contains("mountPath: /legacy"),
        "Swarm's default config target"
    );
    let values = yaml(&file(&b, "values.yaml"));
    assert_eq!(
        values["configs"]["legacy"]["existingConfigMap"].as_str(),
        Some("legacy-conf")
    );
    assert_eq!(
        values["secrets"]["apiToken"]["existingSecret"].as_str(),
        Some("api-token")
    );
    // With external-secrets every secret is an ExternalSecret and no value enters the chart.
    let (_, b) = test_chart(SecretMode::ExternalSecrets);
    let es = file(&b, "templates/secrets/api-token-externalsecret.yaml");
    assert!(es.contains("kind: ExternalSecret") && es.contains("external-secrets.io/v1beta1"));
    assert!(b.files.contains_key(Path::new(
        "templates/secrets/db-password-externalsecret.yaml"
    )));
    assert!(!render_all(&b).contains(&b64(SECRET)));
}

/// Bind mounts of files next to the stack become ConfigMaps; other host paths need a decision.
#[test]
fn bind_mounts_next_to_the_stack_become_configmaps() {
    let (ledger, b) = test_chart(SecretMode::Inline);
    let cm = file(&b, "templates/db-configmap.yaml");
    assert!(
        cm.contains("name: db-files-1") && cm.contains("01-schema.sql"),
        "{cm}"
    );
    assert!(
        b.files
            .contains_key(Path::new("files/db-files-1/02-note.sql"))
    );
    assert_eq!(
        entry(&ledger, "services.db.volumes[1]").status,
        Status::Converted
    );
    assert_eq!(
        entry(&ledger, "services.db.volumes[2]").status,
        Status::NeedsInput
    );
    assert!(
        cm.contains("POSTGRES_USER: app"),
        "env_file → ConfigMap: {cm}"
    );
    let db = file(&b, "templates/db-deployment.yaml");
    assert!(
        db.contains("configMapRef:\n                name: db-env"),
        "{db}"
    );
    assert!(db.contains("claimName: db-data"));
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

fn render_all(b: &Bundle) -> String {
    b.files.values().map(|f| text(&f.bytes)).collect()
}

#[test]
fn secret_values_are_never_printed_and_files_are_owner_only() {
    let dir = tempfile::tempdir().expect("tmp");
    let stack = stack_file();
    let needles = [SECRET.to_string(), b64(SECRET), b64(&format!("{SECRET}\n"))];
    let runs: [&[&str]; 4] = [
        &["--dry-run"],
        &["--dry-run", "--format", "json"],
        &["--format", "json", "-o", "json-out"],
        &["-o", "text-out"],
    ];
    for args in runs {
        let mut all: Vec<&std::ffi::OsStr> = vec![stack.as_os_str()];
        all.extend(args.iter().map(std::ffi::OsStr::new));
        let o = migrate(&all, dir.path());
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o.stderr));
        let printed = format!("{}{}", text(&o.stdout), text(&o.stderr));
        for n in &needles {
            assert!(!printed.contains(n.as_str()), "{args:?} printed the secret");
        }
        if args.contains(&"--dry-run") {
            assert!(printed.contains("<redacted sha256:"), "{args:?}: {printed}");
        }
    }
    assert!(
        !dir.path().join("chart").exists(),
        "--dry-run writes nothing"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let out = dir.path().join("text-out");
        let mut secret_files = 0;
        for f in walk(&out) {
            let bytes = std::fs::read(&f).expect("read");
            let mode = std::fs::metadata(&f).expect("meta").permissions().mode() & 0o777;
            let t = text(&bytes);
            if needles.iter().any(|n| t.contains(n.as_str())) {
                assert_eq!(mode, 0o600, "{} holds the secret", f.display());
                secret_files += 1;
            } else {
                assert_eq!(mode, 0o644, "{}", f.display());
            }
        }
        assert_eq!(secret_files, 1, "exactly the Secret template holds it");
    }
}

/// The chart is written while it is generated (docs/adr/0011): what lands on disk is the library's
/// bundle, file by file with its mode, and the JSON listing on stdout describes those files (the
/// sizes and secret digests of the files written early are recorded as they are written).
#[test]
fn written_chart_is_the_bundle_and_the_listing_describes_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let stack = stack_file();
    let o = migrate(
        &[
            stack.as_os_str(),
            "--format".as_ref(),
            "json".as_ref(),
            "-o".as_ref(),
            "out".as_ref(),
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = dir.path().join("out");
    let (_, bundle) = test_chart(SecretMode::Inline);
    let written: Vec<PathBuf> = walk(&out)
        .into_iter()
        .map(|p| p.strip_prefix(&out).expect("inside").to_path_buf())
        .collect();
    let expected: Vec<PathBuf> = bundle.files.keys().cloned().collect();
    assert_eq!(written, expected);
    let listing: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let files = listing["files"].as_array().expect("files");
    assert_eq!(files.len(), bundle.files.len());
    let mut secrets = 0;
    for (f, (path, file)) in files.iter().zip(&bundle.files) {
        let on_disk = std::fs::read(out.join(path)).expect("read");
        assert!(
            on_disk == file.bytes,
            "{} differs from the bundle",
            path.display()
        );
        assert_eq!(f["path"], path.display().to_string());
        assert_eq!(f["bytes"], on_disk.len(), "{}", path.display());
        assert_eq!(f["mode"], format!("{:04o}", file.mode));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::metadata(out.join(path)).expect("meta");
            assert_eq!(
                meta.permissions().mode() & 0o777,
                file.mode,
                "{}",
                path.display()
            );
        }
        if file.is_secret() {
            assert_eq!(f["secret"], migrator::emit::redact(&on_disk));
            secrets += 1;
        } else {
            assert!(f.get("secret").is_none(), "{}", path.display());
        }
    }
    assert_eq!(secrets, 1, "the Secret template is listed with its digest");
}

/// Traefik basic/digest auth users (name and password hash) are credentials: Swarm keeps them in
/// labels, but the chart, the ledger, `--dry-run` and the JSON output never carry them; the
/// annotation holds the redacted digest instead.
#[test]
fn traefik_auth_users_never_reach_the_chart_or_the_output() {
    let dir = tempfile::tempdir().expect("tmp");
    let v2 = "admin:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/";
    let v1 = "ops:$apr1$Xy0aBcDe$QwErTy0123456789abcdef";
    let stack = format!(
        "version: \"3.8\"\nservices:\n  web:\n    image: nginx:1.25\n    labels:\n      traefik.frontend.auth.basic.users: \"{}\"\n    deploy:\n      labels:\n        traefik.http.routers.web.rule: Host(`web.example.com`)\n        traefik.http.routers.web.middlewares: auth\n        traefik.http.middlewares.auth.basicauth.users: \"{}\"\n        traefik.http.services.web.loadbalancer.server.port: \"80\"\n",
        v1.replace('$', "$$"),
        v2.replace('$', "$$"),
    );
    std::fs::write(dir.path().join("stack.yml"), stack).expect("write");
    let runs: [&[&str]; 3] = [
        &["stack.yml", "--istio", "-o", "chart"],
        &[
            "stack.yml",
            "--istio",
            "--format",
            "json",
            "-o",
            "chart-json",
        ],
        &["stack.yml", "--istio", "--dry-run", "-o", "none"],
    ];
    let secrets = [v1, v2, "IgXLP6ewTrSuBkTrqE8wj", "QwErTy0123456789abcdef"];
    for args in runs {
        let o = migrate(args, dir.path());
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o.stderr));
        let printed = format!("{}{}", text(&o.stdout), text(&o.stderr));
        for s in secrets {
            assert!(!printed.contains(s), "{args:?} printed {s}");
        }
    }
    let mut annotations = 0;
    for f in walk(&dir.path().join("chart")) {
        let t = std::fs::read_to_string(&f).expect("read");
        for s in secrets {
            assert!(!t.contains(s), "{} holds {s}", f.display());
        }
        for (key, value) in [
            ("traefik.http.middlewares.auth.basicauth.users", v2),
            ("traefik.frontend.auth.basic.users", v1),
        ] {
            let line = format!("{key}: \"{}\"", migrator::emit::redact(value.as_bytes()));
            annotations += t.matches(&line).count();
        }
    }
    assert_eq!(
        annotations, 2,
        "each label becomes an annotation holding its digest"
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn output_is_byte_identical_and_never_partial() {
    let dir = tempfile::tempdir().expect("tmp");
    let stack = stack_file();
    for out in ["a", "b"] {
        let o = migrate(
            &[stack.as_os_str(), "-o".as_ref(), out.as_ref()],
            dir.path(),
        );
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    }
    let a = walk(&dir.path().join("a"));
    let b = walk(&dir.path().join("b"));
    assert_eq!(a.len(), b.len());
    for (fa, fb) in a.iter().zip(&b) {
        assert_eq!(
            fa.strip_prefix(dir.path().join("a")).ok(),
            fb.strip_prefix(dir.path().join("b")).ok()
        );
        assert!(
            std::fs::read(fa).ok() == std::fs::read(fb).ok(),
            "{} differs between two runs",
            fa.display()
        );
    }
    // A non-empty folder is refused without --force and left as it was.
    let o = migrate(
        &[stack.as_os_str(), "-o".as_ref(), "a".as_ref()],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("--force"), "{}", text(&o.stderr));
    assert_eq!(walk(&dir.path().join("a")), a);
    let o = migrate(
        &[
            stack.as_os_str(),
            "-o".as_ref(),
            "a".as_ref(),
            "--force".as_ref(),
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(0));
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("e").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "no temporary folders left: {names:?}");
}

#[test]
fn usage_errors_exit_64() {
    let dir = tempfile::tempdir().expect("tmp");
    let stack = stack_file();
    for bad in [
        ["--kube-version", "1.20"],
        ["--kube-version", "x"],
        ["--secrets", "vault"],
    ] {
        let mut args: Vec<&std::ffi::OsStr> = vec![stack.as_os_str()];
        args.extend(bad.iter().map(std::ffi::OsStr::new));
        let o = migrate(&args, dir.path());
        assert_eq!(o.status.code(), Some(64), "{bad:?}: {}", text(&o.stderr));
    }
    let o = migrate(&["--help"], dir.path());
    let help = text(&o.stdout);
    assert!(help.contains("Exit codes") && help.contains("64") && help.contains("--dry-run"));
}

#[test]
fn chart_name_and_namespace() {
    let dir = tempfile::tempdir().expect("tmp");
    let o = migrate(
        &[
            stack_file().as_os_str(),
            "--dry-run".as_ref(),
            "--name".as_ref(),
            "My_Shop".as_ref(),
            "--namespace".as_ref(),
            "shop".as_ref(),
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(0));
    assert!(
        text(&o.stdout).contains("chart my-shop would be written"),
        "{}",
        text(&o.stdout)
    );
    let file_path = stack_file();
    let (_, stack) = load_stack(std::slice::from_ref(&file_path)).expect("loads");
    let mut opts = options(&stack, &file_path, SecretMode::Inline);
    opts.namespace = Some("shop".into());
    let b = emit::chart(&stack, &opts).expect("emit").bundle;
    assert_eq!(
        yaml(&file(&b, "values.yaml"))["namespaceOverride"].as_str(),
        Some("shop")
    );
    assert!(file(&b, "README.md").contains("--namespace shop"));
    assert!(
        file(&b, "Chart.yaml").contains("name: stack"),
        "the stack folder's name"
    );
}
