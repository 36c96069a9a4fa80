//! Ledger tests: one entry per key of the input, per-key outcomes over small snippets, value-dependent
//! cases, the text and JSON forms, and a golden ledger of a small stack.

use pretty_assertions::assert_eq;

use super::Ledger;
use crate::load::parse_str;
use crate::report::Status::{
    self, Approximated as A, Converted as C, Dropped as D, NeedsInput as N,
};

fn ledger(yaml: &str) -> Ledger {
    Ledger::from_tree(&parse_str("test.yml", yaml).expect("test YAML parses"))
}

/// The entry for `path`, which must exist.
fn entry<'a>(l: &'a Ledger, path: &str) -> &'a super::Entry {
    l.entries
        .iter()
        .find(|e| e.source.path == path)
        .unwrap_or_else(|| {
            panic!(
                "no ledger entry for {path}; have {:?}",
                l.entries.iter().map(|e| &e.source.path).collect::<Vec<_>>()
            )
        })
}

/// Every service key of the v3.13 schema with a value and the status it gets.
const SERVICE_KEYS: &[(&str, &str, Status)] = &[
    ("build", "{context: .}", D),
    ("cap_add", "[NET_ADMIN]", C),
    ("cap_drop", "[ALL]", C),
    ("cgroup_parent", "m-executor", D),
    ("cgroupns_mode", "host", D),
    ("command", "[run, --fast]", C),
    ("configs", "[{source: c}]", C),
    ("container_name", "web", D),
    ("credential_spec", "{config: spec}", N),
    ("depends_on", "[db]", D),
    ("deploy", "{replicas: 1}", C),
    ("devices", "[/dev/ttyUSB0]", D),
    ("dns", "[1.1.1.1]", A),
    ("dns_search", "[svc.local]", A),
    ("domainname", "example.com", D),
    ("entrypoint", "[/init]", C),
    ("env_file", "[a.env]", C),
    ("environment", "{A: b}", C),
    ("expose", "['80']", C),
    ("external_links", "[redis_1]", D),
    ("extra_hosts", "['db:10.0.0.5']", C),
    ("healthcheck", "{test: [CMD, true]}", C),
    ("hostname", "web", C),
    ("image", "nginx", C),
    ("init", "true", A),
    ("ipc", "host", D),
    ("isolation", "default", D),
    ("labels", "{a: b}", C),
    ("links", "[db]", D),
    ("logging", "{driver: syslog}", D),
    ("mac_address", "02:42:ac:11:65:43", D),
    ("network_mode", "host", D),
    ("networks", "{default: null}", C),
    ("oom_score_adj", "500", D),
    ("pid", "host", D),
    ("ports", "[{target: 80}]", C),
    ("privileged", "true", D),
    ("read_only", "true", C),
    ("restart", "always", D),
    ("secrets", "[{source: s}]", C),
    ("security_opt", "[no-new-privileges]", D),
    ("shm_size", "64m", D),
    ("stdin_open", "true", C),
    ("stop_grace_period", "10s", C),
    ("stop_signal", "SIGINT", D),
    ("sysctls", "{net.core.somaxconn: '1024'}", A),
    ("tmpfs", "[/run]", C),
    ("tty", "true", C),
    ("ulimits", "{nofile: 1024}", D),
    ("user", "'1000:1000'", C),
    ("userns_mode", "host", D),
    ("volumes", "[{type: tmpfs, target: /t}]", C),
    ("working_dir", "/srv", C),
];

/// Every deploy key of the v3.13 schema with a value and the status it gets.
const DEPLOY_KEYS: &[(&str, &str, Status)] = &[
    ("mode", "global", C),
    ("replicas", "2", C),
    ("labels", "{traefik.enable: 'true'}", C),
    ("update_config", "{parallelism: 1}", C),
    ("rollback_config", "{parallelism: 1}", D),
    ("resources", "{limits: {cpus: '1'}}", C),
    ("restart_policy", "{condition: any}", C),
    ("placement", "{constraints: [node.labels.a == b]}", C),
    ("endpoint_mode", "dnsrr", C),
];

#[test]
fn every_service_key_has_its_entry() {
    assert_eq!(SERVICE_KEYS.len(), 53);
    for (key, value, status) in SERVICE_KEYS {
        let base = if *key == "image" {
            ""
        } else {
            "    image: x\n"
        };
        let l = ledger(&format!("services:\n  s:\n{base}    {key}: {value}\n"));
        let e = entry(&l, &format!("services.s.{key}"));
        assert_eq!((key, e.status), (key, *status), "{key}: {}", e.reason);
        assert_eq!(e.rule, format!("services.*.{key}"));
        assert_eq!(e.service.as_deref(), Some("s"));
        assert!(!e.reason.is_empty());
    }
}

#[test]
fn every_deploy_key_has_its_entry() {
    assert_eq!(DEPLOY_KEYS.len(), 9);
    for (key, value, status) in DEPLOY_KEYS {
        let l = ledger(&format!(
            "services:\n  s:\n    image: x\n    deploy:\n      {key}: {value}\n"
        ));
        let e = entry(&l, &format!("services.s.deploy.{key}"));
        assert_eq!((key, e.status), (key, *status), "{key}: {}", e.reason);
    }
}

#[test]
fn nested_keys_and_items_get_entries() {
    let l = ledger(
        "services:\n  s:\n    image: x\n    healthcheck:\n      test: [CMD-SHELL, curl -f localhost]\n      interval: 10s\n      start_period: 30s\n    deploy:\n      update_config:\n        delay: 10s\n        failure_action: rollback\n        max_failure_ratio: 0.1\n      restart_policy:\n        condition: on-failure\n        max_attempts: 3\n        window: 2m\n      resources:\n        limits: {pids: 10}\n        reservations: {generic_resources: [{discrete_resource_spec: {kind: gpu, value: 1}}]}\n      placement:\n        preferences: [{spread: node.labels.zone}]\n        max_replicas_per_node: 1\n",
    );
    let cases: &[(&str, Status)] = &[
        ("services.s.healthcheck.test", C),
        ("services.s.healthcheck.interval", C),
        ("services.s.healthcheck.start_period", A),
        ("services.s.deploy.update_config.delay", A),
        ("services.s.deploy.update_config.failure_action", A),
        ("services.s.deploy.update_config.max_failure_ratio", D),
        ("services.s.deploy.restart_policy.condition", C),
        ("services.s.deploy.restart_policy.max_attempts", A),
        ("services.s.deploy.restart_policy.window", D),
        ("services.s.deploy.resources.limits.pids", D),
        (
            "services.s.deploy.resources.reservations.generic_resources",
            N,
        ),
        ("services.s.deploy.placement.preferences[0]", A),
        ("services.s.deploy.placement.max_replicas_per_node", A),
    ];
    for (path, status) in cases {
        assert_eq!((path, entry(&l, path).status), (path, *status));
    }
    assert!(
        entry(&l, "services.s.healthcheck.test")
            .target
            .contains("[\"sh\", \"-c\"")
    );
    // on-failure, but the service is rolled by update_config and health-checked: it serves.
    assert_eq!(entry(&l, "services.s").target, "Deployment + Service");
}

#[test]
fn outcomes_depend_on_values() {
    let port = |p: &str| {
        let l = ledger(&format!(
            "services:\n  s:\n    image: x\n    ports: [{p}]\n"
        ));
        let e = entry(&l, "services.s.ports[0]").clone();
        (e.status, e.target)
    };
    assert_eq!(port("{target: 80}").0, C);
    assert_eq!(port("{target: 80, published: 8080}").0, N);
    assert!(
        port("{target: 80, published: 8080, mode: host}")
            .1
            .contains("hostPort")
    );

    let mount = |m: &str| {
        let l = ledger(&format!(
            "services:\n  s:\n    image: x\n    volumes: [{m}]\n"
        ));
        entry(&l, "services.s.volumes[0]").status
    };
    assert_eq!(mount("{type: volume, target: /d}"), A);
    assert_eq!(mount("{type: volume, source: data, target: /d}"), C);
    assert_eq!(mount("{type: bind, source: /etc/app, target: /d}"), N);
    assert_eq!(mount("{type: tmpfs, target: /d}"), C);
    assert_eq!(mount("{type: npipe, source: x, target: /d}"), D);

    let endpoint = |m: &str| {
        let l = ledger(&format!(
            "services:\n  s:\n    image: x\n    deploy:\n      endpoint_mode: {m}\n"
        ));
        entry(&l, "services.s.deploy.endpoint_mode").target.clone()
    };
    assert!(endpoint("dnsrr").contains("headless"));
    assert!(endpoint("vip").contains("ClusterIP"));

    let constraint = |c: &str| {
        let l = ledger(&format!(
            "services:\n  s:\n    image: x\n    deploy:\n      placement:\n        constraints: ['{c}']\n"
        ));
        entry(&l, "services.s.deploy.placement.constraints[0]").status
    };
    assert_eq!(constraint("node.labels.tier == web"), C);
    assert_eq!(constraint("node.hostname == n1"), C);
    assert_eq!(constraint("node.platform.os == linux"), C);
    assert_eq!(constraint("node.role == manager"), A);
    assert_eq!(constraint("engine.labels.os == linux"), A);
    assert_eq!(constraint("node.id == abc"), N);

    let kind = |deploy: &str| {
        let l = ledger(&format!(
            "services:\n  s:\n    image: x\n    deploy: {deploy}\n"
        ));
        entry(&l, "services.s").target.clone()
    };
    assert_eq!(kind("{mode: global}"), "DaemonSet");
    assert_eq!(
        kind("{restart_policy: {condition: none}}"),
        "Job (restartPolicy Never)"
    );
    assert_eq!(kind("{replicas: 2}"), "Deployment + Service");

    let l = ledger(
        "secrets:\n  a: {external: true}\n  b: {file: ./b}\nconfigs:\n  c: {external: true}\n  d: {file: ./d}\nnetworks:\n  n: {driver_opts: {encrypted: ''}}\n  m: {external: true}\n",
    );
    assert_eq!(entry(&l, "secrets.a").status, N);
    assert_eq!(entry(&l, "secrets.a.external").status, N);
    assert_eq!(entry(&l, "secrets.b").status, C);
    assert_eq!(entry(&l, "configs.c").status, N);
    assert_eq!(entry(&l, "configs.d").status, C);
    assert!(
        entry(&l, "networks.n.driver_opts")
            .target
            .contains("PeerAuthentication")
    );
    assert_eq!(entry(&l, "networks.m").status, N);
}

#[test]
fn extensions_and_unknown_keys_are_accounted_for() {
    let l = ledger(
        "version: '3.13'\nx-top: 1\nservices:\n  s:\n    image: x\n    x-svc: {a: 1}\n    profiles: [debug]\nnetworks:\n  n:\n    x-net: 1\nvolumes:\n  v:\n    x-cluster-spec: {group: g}\n",
    );
    for path in ["x-top", "services.s.x-svc", "networks.n.x-net"] {
        let e = entry(&l, path);
        assert_eq!((e.status, e.rule.as_str()), (D, "x-*"), "{path}");
    }
    assert_eq!(entry(&l, "volumes.v.x-cluster-spec").status, N);
    let unknown = entry(&l, "services.s.profiles");
    assert_eq!(unknown.status, D);
    assert!(unknown.reason.starts_with("not classified"));
    assert_eq!(entry(&l, "version").status, D);
}

#[test]
fn short_network_lists_are_itemised_by_name() {
    let l = ledger("services:\n  s:\n    image: x\n    networks: [front, back]\n");
    assert_eq!(
        entry(&l, "services.s.networks.back").rule,
        "services.*.networks.*"
    );
}

#[test]
fn entries_carry_marks_and_counts_add_up() {
    let l = ledger("services:\n  s:\n    image: x\n    deploy:\n      replicas: 2\n");
    let e = entry(&l, "services.s.deploy.replicas");
    assert_eq!((e.source.mark.line, e.source.mark.col), (5, 7));
    let counts = l.counts();
    assert_eq!(counts.values().sum::<usize>(), l.entries.len());
    assert_eq!(counts.len(), 4);
}

#[test]
fn text_groups_by_service_and_counts() {
    let l = ledger("version: '3.13'\nservices:\n  web:\n    image: x\n    container_name: w\n");
    let text = l.to_text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "stack");
    assert!(lines[1].starts_with("  version "), "{text}");
    assert!(text.contains("\nservice web\n"), "{text}");
    assert!(text.contains("  container_name "), "{text}");
    assert_eq!(
        lines.last().copied(),
        Some("5 keys: 3 converted, 0 approximated, 2 dropped, 0 needs-input")
    );
    // Aligned: the status column starts at the same offset on every entry line.
    let offsets: Vec<usize> = lines
        .iter()
        .filter(|l| l.starts_with("  "))
        .filter_map(|l| {
            ["converted", "dropped"]
                .iter()
                .filter_map(|s| l.find(&format!("  {s}")))
                .min()
        })
        .collect();
    assert!(offsets.windows(2).all(|w| w[0] == w[1]), "{text}");
}

#[test]
fn json_has_entries_counts_and_warnings() {
    let l = ledger("services:\n  web:\n    image: x\n");
    let v = l.to_json(&[]);
    assert_eq!(v["counts"]["converted"], 3);
    assert_eq!(v["entries"][2]["source"]["path"], "services.web.image");
    assert_eq!(v["entries"][2]["status"], "converted");
    assert_eq!(v["entries"][2]["service"], "web");
    assert_eq!(v["warnings"], serde_json::json!([]));
}

#[test]
fn golden_ledger_of_a_small_stack() {
    let opts = crate::load::Options {
        files: vec!["../tests/fixtures/model/ledger.yml".into()],
        ..Default::default()
    };
    let loaded = crate::load::load(&opts).expect("ledger.yml loads");
    crate::model::Stack::from_loaded_with(&loaded, crate::model::Checks::NONE).expect("model");
    insta::assert_json_snapshot!(
        "ledger",
        Ledger::from_loaded(&loaded).to_json(&loaded.warnings)
    );
}

/// Every mapping key under `node` (as dotted paths), descending into the parts the ledger itemises.
fn keys_below(node: &crate::load::node::Node, path: &str, out: &mut Vec<String>) {
    if let crate::load::node::Value::Map(entries) = &node.value {
        for e in entries {
            let p = if path.is_empty() {
                e.key.clone()
            } else {
                format!("{path}.{}", e.key)
            };
            out.push(p.clone());
            // Inside these, keys are data (labels, options, variables), not stack keys.
            let data = [
                "environment",
                "labels",
                "sysctls",
                "ulimits",
                "logging",
                "build",
                "driver_opts",
                "ipam",
                "x-",
                "credential_spec",
                "extra_hosts",
                "x-cluster-spec",
            ];
            if !data.iter().any(|d| e.key.starts_with(d)) {
                keys_below(&e.value, &p, out);
            }
        }
    }
}

#[test]
fn every_key_of_the_shared_fixtures_is_in_the_ledger() {
    let stacks =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/stacks");
    let Ok(text) = std::fs::read_to_string(stacks.join("manifest.json")) else {
        println!("../shared is absent: skipping the shared-fixture ledger check");
        return;
    };
    let manifest: serde_json::Value = serde_json::from_str(&text).expect("manifest JSON");
    let mut checked = 0;
    for item in manifest.as_array().expect("list") {
        let local = item["local"].as_str().expect("local");
        if local.ends_with(".golden") {
            continue;
        }
        let opts = crate::load::Options {
            files: vec![stacks.join(local)],
            ..Default::default()
        };
        // Some fixtures are Compose files docker stack deploy refuses (no image); skip those.
        let Ok(loaded) = crate::load::load(&opts) else {
            continue;
        };
        let l = Ledger::from_loaded(&loaded);
        let paths: std::collections::BTreeSet<&str> =
            l.entries.iter().map(|e| e.source.path.as_str()).collect();
        let mut keys = Vec::new();
        keys_below(&loaded.root, "", &mut keys);
        for k in keys {
            let synthesised = ["name", "file"]
                .iter()
                .any(|s| k.ends_with(&format!(".{s}")))
                && k.matches('.').count() == 2;
            assert!(
                paths.contains(k.as_str()) || synthesised,
                "{local}: {k} has no ledger entry"
            );
        }
        let unclassified: Vec<&str> = l
            .entries
            .iter()
            .filter(|e| e.reason.starts_with("not classified"))
            .map(|e| e.source.path.as_str())
            .collect();
        assert!(
            unclassified.is_empty(),
            "{local}: unclassified keys {unclassified:?}"
        );
        checked += 1;
    }
    assert!(checked > 15, "only {checked} fixtures loaded");
}

#[test]
fn text_reads_like_a_string() {
    let t = super::Text::from("ab");
    assert_eq!(format!("[{t:4}] {t:?}"), "[ab  ] \"ab\"");
    assert_eq!(t, "ab");
    assert_eq!(t, String::from("ab"));
    assert_eq!(super::Text::from(String::from("ab")), t);
}
