//! Kubernetes discovery of the bridge (issue #9) against the Kubernetes API **test double**
//! (`tests/support/kube_api.rs`, with its watch streams; no API server can run here). Real bridges (`bridge::run::start`) with a real `kube::Client` and kube-runtime
//! reflectors; the Eureka API is read over HTTP like a client does.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use e2e::kube_api::KubeApi;
use e2e::{eureka, http, poll};
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointSlice};
use kube::Api;
use kube::api::{DeleteParams, ObjectMeta, PostParams};

const NS: &str = "shop";
/// "Within one watch event": the double's watch polls every 50 ms; this bounds event delivery,
/// the reflector and the registry update together.
const ONE_EVENT: Duration = Duration::from_secs(2);

struct Cluster {
    api: KubeApi,
    dir: tempfile::TempDir,
    client: kube::Client,
}

async fn cluster() -> anyhow::Result<Cluster> {
    let api = KubeApi::start()?;
    let dir = tempfile::tempdir()?;
    let path = api.kubeconfig(dir.path(), NS)?;
    let kc = kube::config::Kubeconfig::read_from(&path)?;
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await?;
    let client = kube::Client::try_from(config)?;
    Ok(Cluster { api, dir, client })
}

async fn bridge(kubeconfig: &Path, extra: &str) -> anyhow::Result<bridge::run::Running> {
    let yaml = format!(
        "eureka:\n  listen: \"127.0.0.1:0\"\n  advertise_host: bridge.legacy.test\n  \
         advertise_port: 8080\n  response_cache_ttl: 0\n\
         admin:\n  listen: \"127.0.0.1:0\"\nlimits:\n  shutdown_grace: 1\n\
         discovery:\n  enabled: true\n  namespaces: [{NS}]\n  kubeconfig: {}\n{extra}",
        kubeconfig.display()
    );
    let config = bridge::config::Config::from_yaml_str(&yaml).context("test config")?;
    bridge::run::start(config).await.context("bridge start")
}

async fn wait_ready(admin: SocketAddr) -> anyhow::Result<()> {
    poll::until("/ready 200", Duration::from_secs(10), || async move {
        let r = http::send(admin, "GET", "/ready", &[], b"").await?;
        Ok((r.status == 200).then_some(()))
    })
    .await
}

fn service(name: &str, app: Option<&str>) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NS.into()),
            annotations: app
                .map(|a| BTreeMap::from([("meshmove.io/eureka-app".to_owned(), a.to_owned())])),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            ports: Some(vec![ServicePort {
                name: Some("grpc".into()),
                port: 9090,
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

fn slice(svc: &str, ready: bool) -> EndpointSlice {
    EndpointSlice {
        metadata: ObjectMeta {
            name: Some(format!("{svc}-x1")),
            namespace: Some(NS.into()),
            labels: Some(BTreeMap::from([(
                "kubernetes.io/service-name".to_owned(),
                svc.to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        address_type: "IPv4".into(),
        endpoints: Some(vec![Endpoint {
            addresses: vec!["10.1.0.7".into()],
            conditions: Some(EndpointConditions {
                ready: Some(ready),
                ..EndpointConditions::default()
            }),
            ..Endpoint::default()
        }]),
        ports: None,
    }
}

async fn put_slice(client: &kube::Client, s: &EndpointSlice) -> anyhow::Result<()> {
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), NS);
    let name = s.metadata.name.clone().unwrap_or_default();
    match api.get_opt(&name).await? {
        Some(old) => {
            let mut next = s.clone();
            next.metadata.resource_version = old.metadata.resource_version;
            api.replace(&name, &PostParams::default(), &next).await?;
        }
        None => {
            api.create(&PostParams::default(), s).await?;
        }
    }
    Ok(())
}

/// The status of `app`'s only instance, `None` while the app is unknown.
async fn status_of(eureka: SocketAddr, app: &str) -> anyhow::Result<Option<String>> {
    let Some(instances) = eureka::app_instances(eureka, "/eureka/", app).await? else {
        return Ok(None);
    };
    anyhow::ensure!(instances.len() == 1, "one instance expected: {instances:?}");
    Ok(instances[0]["status"].as_str().map(str::to_owned))
}

async fn wait_status(eureka: SocketAddr, app: &str, want: Option<&str>) -> anyhow::Result<()> {
    poll::until(
        &format!("{app} status {want:?} on {eureka}"),
        ONE_EVENT,
        || async move {
            let got = status_of(eureka, app).await?;
            Ok((got.as_deref() == want).then_some(()))
        },
    )
    .await
}

async fn hashcode(eureka: SocketAddr) -> anyhow::Result<String> {
    let r = http::get_json(eureka, "/eureka/apps/").await?;
    anyhow::ensure!(r.status == 200, "GET apps: {}", r.summary());
    let body = r.json()?;
    Ok(body["applications"]["apps__hashcode"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_with_ready_endpoints_is_up_and_turns_down_without_them() -> anyhow::Result<()> {
    let c = cluster().await?;
    let kubeconfig = c.dir.path().join("kubeconfig");
    let running = bridge(&kubeconfig, "").await?;
    let eureka = running.eureka_addr();
    wait_ready(running.admin_addr()).await?;
    assert_eq!(status_of(eureka, "ORDERS").await?, None);

    let services: Api<Service> = Api::namespaced(c.client.clone(), NS);
    services
        .create(&PostParams::default(), &service("orders", Some("ORDERS")))
        .await?;
    // Annotated but no endpoints yet: shown, DOWN.
    wait_status(eureka, "ORDERS", Some("DOWN")).await?;
    put_slice(&c.client, &slice("orders", true)).await?;
    wait_status(eureka, "ORDERS", Some("UP")).await?;

    let inst = eureka::app_instances(eureka, "/eureka/", "ORDERS")
        .await?
        .unwrap_or_default();
    assert_eq!(
        inst[0]["ipAddr"], "bridge.legacy.test",
        "the bridge's address"
    );
    assert_eq!(eureka::port_number(inst[0].get("port")), Some(8080));
    assert_eq!(inst[0]["vipAddress"], "orders");

    // Losing its ready endpoints turns it DOWN; deleting the Service removes the app.
    put_slice(&c.client, &slice("orders", false)).await?;
    wait_status(eureka, "ORDERS", Some("DOWN")).await?;
    put_slice(&c.client, &slice("orders", true)).await?;
    wait_status(eureka, "ORDERS", Some("UP")).await?;
    services.delete("orders", &DeleteParams::default()).await?;
    wait_status(eureka, "ORDERS", None).await?;

    // A Service without the annotation (and no mapping entry) is not exposed.
    services
        .create(&PostParams::default(), &service("internal", None))
        .await?;
    put_slice(&c.client, &slice("internal", true)).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let apps = eureka::apps(eureka, "/eureka/").await?;
    assert!(apps.is_empty(), "{apps:?}");

    running.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_waits_for_the_first_full_sync() -> anyhow::Result<()> {
    let c = cluster().await?;
    c.api.deny("list", "services");
    let kubeconfig = c.dir.path().join("kubeconfig");
    let running = bridge(&kubeconfig, "").await?;
    // Serving, live, but not ready while the Service list is refused.
    let admin = running.admin_addr();
    poll::until("/live 200", Duration::from_secs(5), || async move {
        Ok((http::send(admin, "GET", "/live", &[], b"").await?.status == 200).then_some(()))
    })
    .await?;
    for _ in 0..10 {
        let r = http::send(admin, "GET", "/ready", &[], b"").await?;
        assert_eq!(r.status, 503, "{}", r.summary());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running.shutdown().await?;
    Ok(())
}

/// Three bridges on one double: the same view (same `apps__hashcode`) within 2 s of each change,
/// and a restarted bridge rebuilds its view from the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_agree_and_a_restart_rebuilds_the_view() -> anyhow::Result<()> {
    let c = cluster().await?;
    let kubeconfig = c.dir.path().join("kubeconfig");
    let mut bridges = Vec::new();
    for _ in 0..3 {
        let b = bridge(&kubeconfig, "").await?;
        wait_ready(b.admin_addr()).await?;
        bridges.push(b);
    }
    let services: Api<Service> = Api::namespaced(c.client.clone(), NS);

    async fn agree(bridges: &[bridge::run::Running], want_up: &str) -> anyhow::Result<String> {
        let addrs: Vec<SocketAddr> = bridges.iter().map(|b| b.eureka_addr()).collect();
        poll::until(
            &format!("three bridges agree on {want_up}"),
            Duration::from_secs(2),
            || {
                let addrs = addrs.clone();
                async move {
                    let mut codes = Vec::new();
                    for a in &addrs {
                        codes.push(hashcode(*a).await?);
                    }
                    let same = codes.windows(2).all(|w| w[0] == w[1]);
                    Ok((same && codes[0] == want_up).then(|| codes[0].clone()))
                }
            },
        )
        .await
    }

    services
        .create(&PostParams::default(), &service("orders", Some("ORDERS")))
        .await?;
    put_slice(&c.client, &slice("orders", true)).await?;
    agree(&bridges, "UP_1_").await?;
    services
        .create(&PostParams::default(), &service("billing", Some("BILLING")))
        .await?;
    agree(&bridges, "DOWN_1_UP_1_").await?;
    put_slice(&c.client, &slice("billing", true)).await?;
    agree(&bridges, "UP_2_").await?;
    put_slice(&c.client, &slice("orders", false)).await?;
    agree(&bridges, "DOWN_1_UP_1_").await?;

    // Restart one: the new process lists the API and serves the same registry.
    let old = bridges.remove(0);
    old.shutdown().await?;
    let fresh = bridge(&kubeconfig, "").await?;
    wait_ready(fresh.admin_addr()).await?;
    assert_eq!(hashcode(fresh.eureka_addr()).await?, "DOWN_1_UP_1_");
    assert_eq!(
        status_of(fresh.eureka_addr(), "ORDERS").await?.as_deref(),
        Some("DOWN")
    );
    assert_eq!(
        status_of(fresh.eureka_addr(), "BILLING").await?.as_deref(),
        Some("UP")
    );
    bridges.push(fresh);
    for b in bridges {
        b.shutdown().await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapping_file_entries_are_exposed_and_bad_ones_are_refused() -> anyhow::Result<()> {
    let c = cluster().await?;
    let kubeconfig = c.dir.path().join("kubeconfig");
    let mapping = c.dir.path().join("mapping.yaml");
    std::fs::write(
        &mapping,
        "services:\n  - swarm_name: gateway\n    kubernetes_host: gateway.shop.svc.cluster.local\n    \
         ports: [80]\n    eureka_app: GATEWAY\n    vip_address: edge\n",
    )?;
    let running = bridge(
        &kubeconfig,
        &format!("  mapping_file: {}\n", mapping.display()),
    )
    .await?;
    wait_ready(running.admin_addr()).await?;
    let services: Api<Service> = Api::namespaced(c.client.clone(), NS);
    services
        .create(&PostParams::default(), &service("gateway", None))
        .await?;
    put_slice(&c.client, &slice("gateway", true)).await?;
    wait_status(running.eureka_addr(), "GATEWAY", Some("UP")).await?;
    let inst = eureka::app_instances(running.eureka_addr(), "/eureka/", "GATEWAY")
        .await?
        .unwrap_or_default();
    assert_eq!(inst[0]["vipAddress"], "edge");
    running.shutdown().await?;

    // A broken mapping file stops the start with the file named; nothing is bound.
    std::fs::write(&mapping, "services:\n  - swarm_name: x\n    colour: red\n")?;
    let err = bridge(
        &kubeconfig,
        &format!("  mapping_file: {}\n", mapping.display()),
    )
    .await
    .expect_err("bad mapping file");
    let text = format!("{err:#}");
    assert!(
        text.contains("mapping.yaml") && text.contains("colour"),
        "{text}"
    );
    Ok(())
}
