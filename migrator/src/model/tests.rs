//! Tests of the model: typed values with their source keys, reference and file checks, bad values,
//! and the docker-shaped output.

use std::path::Path;
use std::time::Duration;

use pretty_assertions::assert_eq;
use serde_json::json;

use super::deploy::{Condition, EndpointMode, Mode};
use super::service::{MountKind, Ulimit};
use super::{Checks, Stack};
use crate::error::Error;
use crate::load::parse_str;

const WEB: &str = include_str!("../../../tests/fixtures/model/web.yml");

fn stack(yaml: &str) -> Result<Stack, Error> {
    let root = parse_str("test.yml", yaml).expect("test YAML parses");
    Stack::from_root(
        &root,
        Path::new("/srv/stack"),
        Checks {
            files: false,
            references: true,
            images: false,
        },
    )
}

fn compose(yaml: &str) -> serde_json::Value {
    stack(yaml).expect("stack").to_compose_json()
}

#[test]
fn docker_output_is_a_fixed_point() {
    // web.yml is what `docker stack config` printed; reading it and printing it again in docker's
    // shape must give the same document.
    let root = parse_str("web.yml", WEB).expect("parse");
    let stack = Stack::from_root(
        &root,
        Path::new("/srv/stack"),
        Checks {
            files: false,
            references: true,
            images: false,
        },
    )
    .expect("model");
    assert_eq!(stack.to_compose_json(), root.to_json());
}

#[test]
fn values_are_typed_with_their_source() {
    let s = stack(WEB).expect("model");
    let web = &s.services["web"];
    let d = web.deploy.as_ref().expect("deploy");
    let replicas = d.replicas.as_ref().expect("replicas");
    assert_eq!(replicas.value, 3);
    assert_eq!(replicas.source.path, "services.web.deploy.replicas");
    assert_eq!(replicas.source.mark.line, 30);
    assert_eq!(d.mode.as_ref().map(|m| m.value), Some(Mode::Replicated));
    assert_eq!(
        d.endpoint_mode.as_ref().map(|m| m.value),
        Some(EndpointMode::Vip)
    );
    let limits = d
        .resources
        .as_ref()
        .and_then(|r| r.limits.as_ref())
        .expect("limits");
    assert_eq!(limits.memory.as_ref().map(|m| m.value), Some(268_435_456));
    assert_eq!(limits.cpus.as_ref().map(|c| c.value.millis()), Some(1500));
    assert_eq!(limits.pids.as_ref().map(|p| p.value), Some(200));
    let update = d.update_config.as_ref().expect("update_config");
    assert_eq!(
        update.monitor.as_ref().map(|m| m.value),
        Some(Duration::from_secs(120))
    );
    assert_eq!(
        update.order.as_ref().map(|o| o.value.as_str()),
        Some("start-first")
    );
    let restart = d.restart_policy.as_ref().expect("restart_policy");
    assert_eq!(
        restart.condition.as_ref().map(|c| c.value),
        Some(Condition::Any)
    );
    assert_eq!(
        restart.window.as_ref().map(|w| w.value),
        Some(Duration::from_secs(90))
    );
    let placement = d.placement.as_ref().expect("placement");
    assert_eq!(placement.constraints[1].value, "node.role != manager");
    assert_eq!(
        placement.constraints[1].source.path,
        "services.web.deploy.placement.constraints[1]"
    );
    assert_eq!(placement.preferences[0].value, "node.labels.zone");

    let hc = web.healthcheck.as_ref().expect("healthcheck");
    assert_eq!(
        hc.timeout.as_ref().map(|t| t.value),
        Some(Duration::from_millis(2500))
    );
    assert_eq!(
        hc.start_period.as_ref().map(|t| t.value),
        Some(Duration::from_secs(3600))
    );
    assert_eq!(
        web.stop_grace_period.as_ref().map(|t| t.value),
        Some(Duration::from_secs(45))
    );
    assert_eq!(web.secrets[0].mode, Some(0o400));
    assert_eq!(web.secrets[0].target.as_deref(), Some("server.key"));
    assert_eq!(web.ports.len(), 2);
    assert_eq!(
        (web.ports[0].target, web.ports[0].published),
        (8080, Some(80))
    );
    assert_eq!(web.ports[1].mode.as_deref(), Some("host"));
    assert_eq!(web.volumes[1].kind, MountKind::Tmpfs);
    assert_eq!(
        web.volumes[1].tmpfs.as_ref().and_then(|t| t.size),
        Some(65536)
    );
    assert!(web.volumes[2].read_only);
    assert_eq!(web.environment["UNSET"].value, None);
    assert_eq!(web.environment["EMPTY"].value.as_deref(), Some(""));
    assert_eq!(
        web.ulimits["nofile"].value,
        Ulimit::Pair {
            soft: 1024,
            hard: 2048
        }
    );
    assert_eq!(web.sysctls["net.core.somaxconn"].value, "1024");
    assert!(web.networks["back"].value.is_none());
    let front = web.networks["front"]
        .value
        .as_ref()
        .expect("front attachment");
    assert_eq!(front.aliases[0].value, "www");
    assert_eq!(web.init.as_ref().map(|v| v.value), Some(true));
    assert!(s.networks["back"].encrypted());
    assert!(s.secrets["tls_key"].is_external());
    assert_eq!(
        s.configs["site"]
            .template_driver
            .as_ref()
            .map(|t| t.value.as_str()),
        Some("golang")
    );
    assert_eq!(s.extensions["x-owner"].value, json!("platform"));
    let batch = &s.services["batch"];
    let bd = batch.deploy.as_ref().expect("deploy");
    assert_eq!(bd.mode.as_ref().map(|m| m.value), Some(Mode::ReplicatedJob));
    assert_eq!(
        bd.restart_policy
            .as_ref()
            .and_then(|r| r.max_attempts.as_ref())
            .map(|m| m.value),
        Some(4)
    );
}

#[test]
fn every_schema_service_key_has_a_field() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/schemas/docker-cli__config_schema_v3.13.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        println!(
            "{} is absent: skipping the schema coverage check",
            path.display()
        );
        return;
    };
    let schema: serde_json::Value = serde_json::from_str(&text).expect("schema JSON");
    let props = schema["definitions"]["service"]["properties"]
        .as_object()
        .expect("service properties");
    let mut missing: Vec<&String> = props
        .keys()
        .filter(|k| !super::service::KEYS.contains(&k.as_str()))
        .collect();
    missing.sort();
    assert!(
        missing.is_empty(),
        "service keys without a model field: {missing:?}"
    );
    assert_eq!(props.len(), super::service::KEYS.len());
}

fn unknown_reference(yaml: &str) -> (String, &'static str, String) {
    match stack(yaml) {
        Err(Error::UnknownReference {
            key_path,
            kind,
            name,
            ..
        }) => (key_path, kind, name),
        other => panic!("expected UnknownReference, got {other:?}"),
    }
}

#[test]
fn undeclared_references_are_errors() {
    let (path, kind, name) =
        unknown_reference("services:\n  a:\n    image: x\n    secrets:\n      - source: pw\n");
    assert_eq!(
        (path.as_str(), kind, name.as_str()),
        ("services.a.secrets[0]", "secret", "pw")
    );
    let (path, kind, _) =
        unknown_reference("services:\n  a:\n    image: x\n    configs:\n      - source: c\n");
    assert_eq!((path.as_str(), kind), ("services.a.configs[0]", "config"));
    let (path, kind, _) =
        unknown_reference("services:\n  a:\n    image: x\n    networks:\n      front: null\n");
    assert_eq!(
        (path.as_str(), kind),
        ("services.a.networks.front", "network")
    );
    let (path, kind, _) = unknown_reference(
        "services:\n  a:\n    image: x\n    volumes:\n      - type: volume\n        source: data\n        target: /d\n",
    );
    assert_eq!((path.as_str(), kind), ("services.a.volumes[0]", "volume"));
    let err = stack("services:\n  a:\n    image: x\n    secrets:\n      - source: pw\n")
        .expect_err("error");
    assert!(
        err.to_string().contains("secret 'pw' is not declared"),
        "{err}"
    );
}

#[test]
fn declared_references_and_the_default_network_pass() {
    let s = stack(
        "services:\n  a:\n    image: x\n    networks:\n      default: null\n      front: {}\n    volumes:\n      - type: volume\n        target: /anon\n      - type: bind\n        source: /host\n        target: /h\nnetworks:\n  front: {}\n",
    );
    assert!(s.is_ok(), "{s:?}");
}

#[test]
fn checks_can_be_turned_off() {
    let root = parse_str(
        "t.yml",
        "services:\n  a:\n    image: x\n    secrets: [{source: pw}]\n",
    )
    .expect("parse");
    assert!(Stack::from_root(&root, Path::new("/"), Checks::NONE).is_ok());
    assert!(Stack::from_root(&root, Path::new("/"), Checks::ALL).is_err());
}

#[test]
fn missing_secret_and_config_files_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("present.txt"), "x").expect("write");
    let check = |yaml: &str| {
        let root = parse_str("t.yml", yaml).expect("parse");
        Stack::from_root(&root, dir.path(), Checks::ALL)
    };
    assert!(check("secrets:\n  s:\n    file: ./present.txt\n").is_ok());
    assert!(check("secrets:\n  s:\n    external: true\n").is_ok());
    match check("configs:\n  c:\n    file: ./absent.txt\n") {
        Err(Error::MissingFile { key_path, path, .. }) => {
            assert_eq!(key_path, "configs.c.file");
            assert_eq!(path, dir.path().join("absent.txt"));
        }
        other => panic!("expected MissingFile, got {other:?}"),
    }
    assert!(matches!(
        check("secrets:\n  s:\n    file: ../nope/absent\n"),
        Err(Error::MissingFile { .. })
    ));
}

fn invalid(yaml: &str) -> (String, String) {
    match stack(yaml) {
        Err(Error::Invalid {
            key_path, message, ..
        }) => (key_path, message),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn bad_values_say_where_and_what_to_write() {
    let (path, msg) = invalid("services:\n  a:\n    image: x\n    stop_grace_period: 10\n");
    assert_eq!(path, "services.a.stop_grace_period");
    assert!(msg.contains("10s"), "{msg}");
    let (path, msg) = invalid(
        "services:\n  a:\n    image: x\n    deploy:\n      resources:\n        limits:\n          memory: lots\n",
    );
    assert_eq!(path, "services.a.deploy.resources.limits.memory");
    assert!(msg.contains("512m"), "{msg}");
    let (path, _) = invalid(
        "services:\n  a:\n    image: x\n    deploy:\n      resources:\n        limits:\n          cpus: half\n",
    );
    assert_eq!(path, "services.a.deploy.resources.limits.cpus");
    let (path, msg) =
        invalid("services:\n  a:\n    image: x\n    deploy:\n      mode: everywhere\n");
    assert_eq!(path, "services.a.deploy.mode");
    assert!(msg.contains("replicated, global"), "{msg}");
    let (path, _) = invalid(
        "services:\n  a:\n    image: x\n    deploy:\n      restart_policy:\n        condition: always\n",
    );
    assert_eq!(path, "services.a.deploy.restart_policy.condition");
    let (path, _) = invalid(
        "services:\n  a:\n    image: x\n    deploy:\n      update_config:\n        delay: -1s\n",
    );
    assert_eq!(path, "services.a.deploy.update_config.delay");
    let (path, _) = invalid("services:\n  a:\n    image: x\n    ports:\n      - target: 70000\n");
    assert_eq!(path, "services.a.ports[0]");
    let (path, _) = invalid("services:\n  a:\n    image: x\n    deploy:\n      replicas: -1\n");
    assert_eq!(path, "services.a.deploy.replicas");
}

#[test]
fn compose_json_follows_go_zero_value_rules() {
    let out = compose(
        "version: \"3\"\nservices:\n  a:\n    image: x\n    read_only: false\n    init: false\n    stop_grace_period: 0s\n    deploy:\n      replicas: 0\n      update_config:\n        parallelism: 0\n        delay: 0s\n      placement:\n        max_replicas_per_node: 0\n    secrets:\n      - source: s\n        mode: 0\nsecrets:\n  s:\n    external: true\nnetworks:\n  n: null\n  ext:\n    external: true\n",
    );
    assert_eq!(out["version"], json!("3.13"));
    let a = &out["services"]["a"];
    assert_eq!(a.get("read_only"), None);
    assert_eq!(a["init"], json!(false));
    assert_eq!(a["stop_grace_period"], json!("0s"));
    assert_eq!(
        a["deploy"],
        json!({"replicas": 0, "update_config": {"parallelism": 0}})
    );
    assert_eq!(a["secrets"], json!([{"source": "s", "mode": 0}]));
    assert_eq!(out["secrets"]["s"], json!({"name": "s", "external": true}));
    assert_eq!(
        out["networks"],
        json!({"ext": {"name": "ext", "external": true}, "n": {}})
    );
}

#[test]
fn compose_json_prints_go_units_and_resolves_paths() {
    let out = compose(
        "services:\n  a:\n    image: x\n    healthcheck:\n      interval: 90s\n      timeout: 1500ms\n    deploy:\n      update_config:\n        monitor: 60s\n        max_failure_ratio: 0.3\n      resources:\n        limits:\n          memory: 50M\n          cpus: '0.001'\n    volumes:\n      - type: bind\n        source: ./html\n        target: /h\nconfigs:\n  c:\n    file: ./c.conf\n  d:\n    name: dee\n",
    );
    let a = &out["services"]["a"];
    assert_eq!(
        a["healthcheck"],
        json!({"timeout": "1.5s", "interval": "1m30s"})
    );
    assert_eq!(
        a["deploy"]["update_config"],
        json!({"monitor": "1m0s", "max_failure_ratio": 0.3})
    );
    assert_eq!(
        a["deploy"]["resources"]["limits"],
        json!({"cpus": "0.001", "memory": "52428800"})
    );
    assert_eq!(a["volumes"][0]["source"], json!("/srv/stack/html"));
    assert_eq!(out["configs"]["c"], json!({"file": "/srv/stack/c.conf"}));
    // docker resolves an empty `file` to the stack's folder.
    assert_eq!(
        out["configs"]["d"],
        json!({"name": "dee", "file": "/srv/stack"})
    );
}

#[test]
fn the_example_stack_passes_every_check() {
    let opts = crate::load::Options {
        files: vec!["../examples/stacks/shop/docker-stack.yml".into()],
        ..Default::default()
    };
    let loaded = crate::load::load(&opts).expect("the shop example loads");
    let s = Stack::from_loaded(&loaded).expect("the shop example passes the model checks");
    assert_eq!(s.services.len(), 5);
    let orders = &s.services["orders"];
    assert_eq!(orders.configs[0].mode, Some(0o444));
    assert_eq!(
        orders.environment["SPRING_PROFILES_ACTIVE"]
            .value
            .as_deref(),
        Some("swarm")
    );
    let gateway = s.services["gateway"].deploy.as_ref().expect("deploy");
    let limits = gateway
        .resources
        .as_ref()
        .and_then(|r| r.limits.as_ref())
        .expect("limits");
    assert_eq!(limits.cpus.as_ref().map(|c| c.value.millis()), Some(500));
    assert_eq!(
        limits.memory.as_ref().map(|m| m.value),
        Some(512 * 1024 * 1024)
    );
    assert!(s.networks["backend"].encrypted());
    assert_eq!(s.base_dir, loaded.base_dir);
}

#[test]
fn keys_outside_the_schema_and_extensions_are_kept() {
    let s = stack("name: shop\nx-top: {b: 1, a: 2}\nservices:\n  a:\n    image: x\n    profiles: [debug]\n    x-team: web\n").expect("model");
    assert_eq!(s.name.as_ref().map(|n| n.value.as_str()), Some("shop"));
    let a = &s.services["a"];
    assert_eq!(a.other["profiles"].value, json!(["debug"]));
    assert_eq!(a.other["profiles"].source.path, "services.a.profiles");
    assert_eq!(a.extensions["x-team"].value, json!("web"));
    // docker prints extension maps with sorted keys and never prints keys it does not know.
    let out = s.to_compose_json();
    assert_eq!(
        serde_json::to_string(&out["x-top"]).expect("json"),
        r#"{"a":2,"b":1}"#
    );
    assert_eq!(out["services"]["a"].get("profiles"), None);
    assert_eq!(out["services"]["a"]["x-team"], json!("web"));
}

#[test]
fn swarm_needs_an_image_only_when_checked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("stack.yml");
    std::fs::write(
        &file,
        "version: \"3.9\"\nservices:\n  web:\n    build: ./web\n",
    )
    .expect("write");
    let opts = crate::load::Options {
        files: vec![file],
        ..crate::load::Options::default()
    };
    let loaded = crate::load::load(&opts).expect("docker stack config accepts it, so do we");
    match Stack::from_loaded(&loaded) {
        Err(Error::Schema {
            key_path, message, ..
        }) => {
            assert_eq!(key_path, "services.web.image");
            assert!(message.contains("has no image"), "{message}");
        }
        other => panic!("expected the image rule to refuse it, got {other:?}"),
    }
    assert!(Stack::from_loaded_with(&loaded, Checks::NONE).is_ok());
    let compose = crate::load::Options {
        dialect: crate::load::Dialect::Compose,
        ..opts
    };
    let loaded = crate::load::load(&compose).expect("compose loads");
    assert!(
        Stack::from_loaded(&loaded).is_ok(),
        "compose has no image rule"
    );
}
