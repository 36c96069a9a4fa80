//! Tests of the Swarm → tree mapping, over service specs in the JSON shape dockerd returns (as
//! captured from dockerd 20.10 after `docker stack deploy`).

use serde_json::json;

use super::*;
use crate::model::{Checks, Stack};

fn fetched(services: serde_json::Value, networks: serde_json::Value) -> Fetched {
    // As the client reads them: typed by bollard, then the healthchecks restored from the JSON.
    let mut typed: Vec<bollard::models::Service> =
        serde_json::from_value(services.clone()).expect("services");
    crate::swarm::client::restore_healthchecks(&mut typed, &services);
    Fetched {
        services: typed,
        networks: serde_json::from_value(networks).expect("networks"),
        configs: serde_json::from_value(json!([
            {"ID": "c1", "Spec": {"Name": "shop_nginx", "Labels": {"com.docker.stack.namespace": "shop"}, "Data": "c2VydmVyIHt9Cg=="}},
            {"ID": "c2", "Spec": {"Name": "shared_conf", "Labels": {}, "Data": "eA=="}}
        ]))
        .expect("configs"),
        secrets: serde_json::from_value(json!([
            {"ID": "s1", "Spec": {"Name": "shop_db_password", "Labels": {"com.docker.stack.namespace": "shop"}}},
            {"ID": "s2", "Spec": {"Name": "tls_key", "Labels": {}}},
            {"ID": "s3", "Spec": {"Name": "shop_unused", "Labels": {"com.docker.stack.namespace": "shop"}}}
        ]))
        .expect("secrets"),
        addr_pools: vec!["10.0.0.0/8".into()],
        subnet_size: 24,
        api_version: "1.41".into(),
    }
}

fn networks() -> serde_json::Value {
    json!([
        {"Name": "shop_front", "Id": "n1", "Driver": "overlay",
         "IPAM": {"Driver": "default", "Config": [{"Subnet": "10.0.3.0/24", "Gateway": "10.0.3.1"}]},
         "Options": {"com.docker.network.driver.overlay.vxlanid_list": "4097", "encrypted": ""},
         "Labels": {"com.docker.stack.namespace": "shop", "tier": "front"}},
        {"Name": "shop_default", "Id": "n2", "Driver": "overlay",
         "IPAM": {"Driver": "default", "Config": [{"Subnet": "10.0.4.0/24"}]},
         "Options": {"com.docker.network.driver.overlay.vxlanid_list": "4098"},
         "Labels": {"com.docker.stack.namespace": "shop"}},
        {"Name": "legacy", "Id": "n3", "Driver": "overlay",
         "IPAM": {"Driver": "default", "Config": [{"Subnet": "172.30.0.0/16"}]}, "Labels": {}}
    ])
}

fn web() -> serde_json::Value {
    json!({
        "ID": "w1",
        "Spec": {
            "Name": "shop_web",
            "Labels": {"com.docker.stack.image": "nginx:1.27", "com.docker.stack.namespace": "shop", "traefik.enable": "true"},
            "TaskTemplate": {
                "ContainerSpec": {
                    "Image": "nginx:1.27@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                    "Labels": {"com.docker.stack.namespace": "shop", "team": "shop"},
                    "Args": ["nginx", "-g", "daemon off;"],
                    "Env": ["MODE=prod", "UNSET"],
                    "Hosts": ["10.1.2.3 legacy.local old.local"],
                    "StopGracePeriod": 90000000000_i64,
                    "Isolation": "default",
                    "Secrets": [
                        {"File": {"Name": "db_password", "UID": "0", "GID": "0", "Mode": 292}, "SecretName": "shop_db_password"},
                        {"File": {"Name": "tls.key", "UID": "101", "GID": "0", "Mode": 256}, "SecretName": "tls_key"}
                    ],
                    "Configs": [
                        {"File": {"Name": "/etc/nginx/nginx.conf", "UID": "0", "GID": "0", "Mode": 292}, "ConfigName": "shop_nginx"},
                        {"File": {"Name": "shared_conf", "UID": "0", "GID": "0", "Mode": 292}, "ConfigName": "shared_conf"}
                    ],
                    "Mounts": [
                        {"Type": "volume", "Source": "shop_data", "Target": "/data",
                         "VolumeOptions": {"NoCopy": true, "Labels": {"com.docker.stack.namespace": "shop", "backup": "daily"}}},
                        {"Type": "volume", "Source": "backups", "Target": "/backups", "VolumeOptions": {}}
                    ],
                    "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048}, {"Name": "nproc", "Soft": 512, "Hard": 512}]
                },
                "Resources": {"Limits": {"NanoCPUs": 500000000, "MemoryBytes": 268435456}},
                "RestartPolicy": {"Condition": "on-failure", "MaxAttempts": 3},
                "Placement": {"Constraints": ["node.role == manager"]},
                "Networks": [
                    {"Target": "n1", "Aliases": ["web", "www"]},
                    {"Target": "n3", "Aliases": ["web"]}
                ]
            },
            "Mode": {"Replicated": {"Replicas": 2}},
            "UpdateConfig": {"Parallelism": 2, "Order": "start-first"},
            "EndpointSpec": {"Mode": "vip", "Ports": [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"}]}
        }
    })
}

fn resolver() -> serde_json::Value {
    json!({
        "ID": "r1",
        "Spec": {
            "Name": "shop_resolver",
            "Labels": {"com.docker.stack.image": "busybox", "com.docker.stack.namespace": "shop"},
            "TaskTemplate": {
                "ContainerSpec": {"Image": "busybox", "Healthcheck": {"Test": ["NONE"]}, "Isolation": "default"},
                "Networks": [{"Target": "n2", "Aliases": ["resolver"]}]
            },
            "Mode": {"Global": {}},
            "EndpointSpec": {"Mode": "dnsrr"}
        }
    })
}

/// A reference as (source, target, uid, mode).
type RefParts<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Option<u32>);

fn selection(stack: Option<&str>) -> Selection {
    Selection {
        stack: stack.map(str::to_string),
        ..Selection::default()
    }
}

fn mapped(f: &Fetched, sel: &Selection) -> (Mapped, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let m = map(f, sel, dir.path(), "unix:///d.sock", |_| {}).expect("map");
    (m, dir)
}

#[test]
fn a_stack_reads_back_as_the_model_of_its_file() {
    let f = fetched(json!([web(), resolver()]), networks());
    let (m, dir) = mapped(&f, &selection(Some("shop")));
    assert_eq!(m.stack_name.as_deref(), Some("shop"));
    let stack = Stack::from_root(&m.root, dir.path(), Checks::ALL).expect("model");
    assert_eq!(
        stack.services.keys().collect::<Vec<_>>(),
        ["resolver", "web"],
        "the stack prefix is removed"
    );
    let web = &stack.services["web"];
    // The digest docker pinned is dropped; the tag stays.
    assert_eq!(
        web.image.as_ref().map(|i| i.value.as_str()),
        Some("nginx:1.27")
    );
    assert_eq!(
        web.image.as_ref().map(|i| i.source.to_string()).as_deref(),
        Some("swarm:service/shop_web:Spec.TaskTemplate.ContainerSpec.Image: services.web.image")
    );
    assert_eq!(
        web.command.as_ref().map(|c| c.value.clone()),
        Some(vec!["nginx".into(), "-g".into(), "daemon off;".into()])
    );
    assert_eq!(
        web.environment["MODE"].value.as_deref(),
        Some("prod"),
        "KEY=VALUE"
    );
    assert_eq!(web.environment["UNSET"].value, None, "a bare KEY is unset");
    assert_eq!(
        web.environment["MODE"].source.mark.to_string(),
        "swarm:service/shop_web:Spec.TaskTemplate.ContainerSpec.Env[0]"
    );
    // Labels docker stack deploy adds are gone; the user's stay.
    assert_eq!(web.labels.keys().collect::<Vec<_>>(), ["team"]);
    let deploy = web.deploy.as_ref().expect("deploy");
    assert_eq!(deploy.labels.keys().collect::<Vec<_>>(), ["traefik.enable"]);
    assert_eq!(deploy.replicas.as_ref().map(|r| r.value), Some(2));
    assert!(deploy.endpoint_mode.is_none(), "vip is Swarm's default");
    let limits = deploy
        .resources
        .as_ref()
        .and_then(|r| r.limits.as_ref())
        .expect("limits");
    assert_eq!(
        limits.cpus.as_ref().map(|c| c.value.nanos),
        Some(500_000_000)
    );
    assert_eq!(limits.memory.as_ref().map(|m| m.value), Some(268_435_456));
    let restart = deploy.restart_policy.as_ref().expect("restart policy");
    assert_eq!(restart.max_attempts.as_ref().map(|m| m.value), Some(3));
    let update = deploy.update_config.as_ref().expect("update config");
    assert_eq!(
        update.order.as_ref().map(|o| o.value.as_str()),
        Some("start-first")
    );
    assert_eq!(
        web.stop_grace_period.as_ref().map(|d| d.value),
        Some(Duration::from_secs(90))
    );
    // `IP host…` lines become `host:IP` items.
    let hosts: Vec<&str> = web.extra_hosts.iter().map(|h| h.value.as_str()).collect();
    assert_eq!(hosts, ["legacy.local:10.1.2.3", "old.local:10.1.2.3"]);
    assert_eq!(web.ulimits.len(), 2);
    // The service's own alias is the one stack deploy adds; `www` was written.
    let front = web.networks["front"].value.as_ref().expect("attachment");
    let aliases: Vec<&str> = front.aliases.iter().map(|a| a.value.as_str()).collect();
    assert_eq!(aliases, ["www"]);
    assert!(web.networks["legacy"].value.is_none());
    let port = &web.ports[0];
    assert_eq!(
        (port.target, port.published, port.mode.as_deref()),
        (80, Some(8080), Some("ingress"))
    );
    // References: the defaults docker/cli fills in (target = name, uid/gid 0, mode 0444) are
    // left out, written values kept.
    let secrets: Vec<RefParts<'_>> = web
        .secrets
        .iter()
        .map(|r| {
            (
                r.source.as_str(),
                r.target.as_deref(),
                r.uid.as_deref(),
                r.mode,
            )
        })
        .collect();
    assert_eq!(
        secrets,
        [
            ("db_password", None, None, None),
            ("tls_key", Some("tls.key"), Some("101"), Some(0o400))
        ]
    );
    let config = &web.configs[0];
    assert_eq!(
        (config.source.as_str(), config.target.as_deref()),
        ("nginx", Some("/etc/nginx/nginx.conf"))
    );
    // Each reference's `source` points at the field Swarm keeps the name in.
    let source_mark = |list: &str| {
        m.root
            .get("services")
            .and_then(|s| s.get("web"))
            .and_then(|w| w.get(list))
            .and_then(|r| r.as_seq()?.first()?.get("source"))
            .map(|n| n.mark.to_string())
    };
    assert_eq!(
        source_mark("configs").as_deref(),
        Some("swarm:service/shop_web:Spec.TaskTemplate.ContainerSpec.Configs[0].ConfigName")
    );
    assert_eq!(
        source_mark("secrets").as_deref(),
        Some("swarm:service/shop_web:Spec.TaskTemplate.ContainerSpec.Secrets[0].SecretName")
    );
    // Volumes: a stack volume loses its prefix; one without the stack label is external.
    let mounts: Vec<(Option<&str>, &str)> = web
        .volumes
        .iter()
        .map(|m| (m.source.as_deref(), m.target.as_str()))
        .collect();
    assert_eq!(
        mounts,
        [(Some("data"), "/data"), (Some("backups"), "/backups")]
    );
    assert!(web.volumes[0].volume.as_ref().is_some_and(|v| v.nocopy));
    assert!(!stack.volumes["data"].is_external());
    assert_eq!(
        stack.volumes["data"].labels.keys().collect::<Vec<_>>(),
        ["backup"]
    );
    assert!(stack.volumes["backups"].is_external());

    let resolver = &stack.services["resolver"];
    let d = resolver.deploy.as_ref().expect("deploy");
    assert_eq!(
        d.mode.as_ref().map(|m| m.value),
        Some(crate::model::deploy::Mode::Global)
    );
    assert_eq!(
        d.endpoint_mode.as_ref().map(|m| m.value),
        Some(crate::model::deploy::EndpointMode::Dnsrr)
    );
    assert!(
        resolver.networks.is_empty(),
        "only the plain default network: as a file without networks"
    );
    assert_eq!(
        resolver
            .healthcheck
            .as_ref()
            .and_then(|h| h.disable.as_ref())
            .map(|d| d.value),
        Some(true)
    );

    // Networks: the stack's lose their prefix, docker's own options and allocated subnets;
    // others are external; the plain default network is left out.
    assert_eq!(
        stack.networks.keys().collect::<Vec<_>>(),
        ["front", "legacy"]
    );
    let front = &stack.networks["front"];
    assert!(front.encrypted());
    assert_eq!(front.driver_opts.len(), 1);
    assert!(front.ipam_subnets.is_empty(), "10.0.3.0/24 was allocated");
    assert_eq!(front.labels.keys().collect::<Vec<_>>(), ["tier"]);
    assert!(stack.networks["legacy"].is_external());

    // Configs: the data is read from the API into a file the chart reads.
    let nginx = &stack.configs["nginx"];
    let file = nginx.file.as_ref().expect("file");
    assert_eq!(
        std::fs::read_to_string(&file.value).expect("config data"),
        "server {}\n"
    );
    assert_eq!(
        file.source.mark.to_string(),
        "swarm:config/shop_nginx:Spec.Data"
    );
    assert!(stack.configs["shared_conf"].is_external());
    // Secrets: no data; every stack secret is listed (also unused ones), others are external.
    assert_eq!(
        stack.secrets.keys().collect::<Vec<_>>(),
        ["db_password", "tls_key", "unused"]
    );
    assert!(stack.secrets["db_password"].file.is_none());
    assert!(stack.secrets["tls_key"].is_external());
    let sources: Vec<(&str, bool, bool)> = m
        .secrets
        .iter()
        .map(|s| (s.key.as_str(), s.file.is_some(), s.external))
        .collect();
    assert_eq!(
        sources,
        [
            ("db_password", false, false),
            ("tls_key", false, true),
            ("unused", false, false)
        ]
    );
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
}

#[test]
fn secrets_dir_supplies_values_by_stack_or_swarm_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("db_password"), "pw").expect("write");
    std::fs::write(dir.path().join("tls_key"), "key").expect("write");
    let f = fetched(json!([web()]), networks());
    let sel = Selection {
        stack: Some("shop".into()),
        secrets_dir: Some(dir.path().to_path_buf()),
        ..Selection::default()
    };
    let (m, scratch) = mapped(&f, &sel);
    let stack = Stack::from_root(&m.root, scratch.path(), Checks::ALL).expect("model");
    for key in ["db_password", "tls_key"] {
        let s = &stack.secrets[key];
        assert!(!s.is_external(), "{key}: a file makes it part of the chart");
        let file = s.file.as_ref().expect("file");
        assert_eq!(std::path::Path::new(&file.value), dir.path().join(key));
    }
    assert_eq!(
        stack.secrets["tls_key"]
            .name
            .as_ref()
            .map(|n| n.value.as_str()),
        Some("tls_key")
    );
}

#[test]
fn selection_errors_say_what_to_do() {
    let f = fetched(json!([web()]), networks());
    let dir = tempfile::tempdir().expect("tempdir");
    let err = map(
        &f,
        &selection(Some("nope")),
        dir.path(),
        "unix:///d.sock",
        |_| {},
    )
    .expect_err("unknown stack");
    assert!(err.to_string().contains("docker stack ls"), "{err}");
    let sel = Selection {
        services: vec!["shop_api".into()],
        ..Selection::default()
    };
    let err = map(&f, &sel, dir.path(), "unix:///d.sock", |_| {}).expect_err("unknown service");
    assert!(err.to_string().contains("docker service ls"), "{err}");
    let mut other = web();
    other["ID"] = json!("w2");
    other["Spec"]["Name"] = json!("blog_web");
    other["Spec"]["Labels"]["com.docker.stack.namespace"] = json!("blog");
    let f = fetched(json!([web(), other]), networks());
    let err = map(
        &f,
        &Selection::default(),
        dir.path(),
        "unix:///d.sock",
        |_| {},
    )
    .expect_err("two stacks' web");
    assert!(matches!(err, Error::NameClash { .. }), "{err:?}");
    assert!(err.to_string().contains("--stack"), "{err}");
}

#[test]
fn service_selection_reads_only_the_named_services() {
    let f = fetched(json!([web(), resolver()]), networks());
    let sel = Selection {
        services: vec!["shop_resolver".into()],
        ..Selection::default()
    };
    let (m, dir) = mapped(&f, &sel);
    let stack = Stack::from_root(&m.root, dir.path(), Checks::ALL).expect("model");
    assert_eq!(stack.services.keys().collect::<Vec<_>>(), ["resolver"]);
    assert!(
        stack.secrets.is_empty(),
        "only what the selected services use"
    );
}

#[test]
fn settings_without_a_stack_key_are_warnings() {
    let mut s = web();
    s["Spec"]["TaskTemplate"]["ContainerSpec"]["Groups"] = json!(["audio"]);
    s["Spec"]["TaskTemplate"]["ContainerSpec"]["DNSConfig"] = json!({"Options": ["ndots:2"]});
    let f = fetched(json!([s]), networks());
    let (m, _dir) = mapped(&f, &selection(Some("shop")));
    let texts: Vec<String> = m.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts[0].starts_with(
        "swarm:service/shop_web:Spec.TaskTemplate.ContainerSpec.Groups: services.web: "
    ));
    assert!(texts[1].contains("DNS options"), "{texts:?}");
}

#[test]
fn images_keep_their_tag_and_lose_the_digest() {
    let d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    assert_eq!(
        image(&format!("nginx:1.27@{d}"), None, false).0,
        "nginx:1.27"
    );
    assert_eq!(
        image(&format!("registry:5000/team/app:2@{d}"), None, false).0,
        "registry:5000/team/app:2"
    );
    assert_eq!(
        image(&format!("nginx:1.27@{d}"), None, true).0,
        format!("nginx:1.27@{d}"),
        "--pin-digests"
    );
    // Only a digest: the image as written in the file (stack deploy's label) has the tag.
    assert_eq!(
        image(&format!("nginx@{d}"), Some("nginx:1.27"), false),
        ("nginx:1.27".into(), None)
    );
    let (kept, why) = image(&format!("nginx@{d}"), None, false);
    assert_eq!(kept, format!("nginx@{d}"));
    assert!(why.is_some_and(|w| w.contains("digest is kept")));
    assert_eq!(image("busybox", None, false), ("busybox".into(), None));
}

#[test]
fn nanocpus_print_as_written() {
    assert_eq!(cpus(500_000_000), "0.5");
    assert_eq!(cpus(2_000_000_000), "2");
    assert_eq!(cpus(1_250_000_000), "1.25");
    assert_eq!(cpus(1), "0.000000001");
}

#[test]
fn subnets_from_the_default_pool_are_allocated_ones() {
    let pools = ["10.0.0.0/8".to_string()];
    assert!(allocated("10.0.3.0/24", &pools, 24));
    assert!(
        !allocated("10.0.3.0/16", &pools, 24),
        "another size was written"
    );
    assert!(!allocated("172.28.0.0/16", &pools, 24));
    assert!(!allocated("fd00::/64", &pools, 24));
}
