//! The registry store on Kubernetes (`store.kind: kubernetes`, issue #9) against the Kubernetes
//! API **test double** (`tests/support/kube_api.rs`, with its watch streams): three
//! real bridges in one process share it; a legacy instance registered on one and heartbeating
//! on another is never evicted, all three agree within 2 s of each change, cancels and expired
//! leases remove it everywhere, and a new bridge rebuilds the registry from the API. The
//! WorkloadEntry and the app's ServiceEntry are checked in the double.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use e2e::kube_api::KubeApi;
use e2e::{eureka, http, poll};

mod istio_common;

const NS: &str = "mesh-ingress";
const APP: &str = "LEGACY-ORDERS";
const ID: &str = "127.0.0.1:legacy-orders:7001";
/// The acceptance bound: every replica shows a change within this.
const AGREE: Duration = Duration::from_secs(2);

async fn bridge(kubeconfig: &Path) -> anyhow::Result<bridge::run::Running> {
    let yaml = format!(
        "eureka:\n  listen: \"127.0.0.1:0\"\n  advertise_host: 127.0.0.1\n  \
         self_preservation: false\n  eviction_interval: 1\n  response_cache_ttl: 0\n\
         admin:\n  listen: \"127.0.0.1:0\"\nlimits:\n  shutdown_grace: 1\n\
         discovery:\n  kubeconfig: {}\n\
         store:\n  kind: kubernetes\n  namespace: {NS}\n  lease_write_interval: 1\n  \
         sync_interval_ms: 100\n",
        kubeconfig.display()
    );
    let config = bridge::config::Config::from_yaml_str(&yaml).context("test config")?;
    bridge::run::start(config).await.context("bridge start")
}

fn register_body(status: &str) -> String {
    format!(
        r#"{{"instance":{{"instanceId":"{ID}","hostName":"127.0.0.1","app":"{APP}","ipAddr":"127.0.0.1","status":"{status}","port":{{"$":7001,"@enabled":"true"}},"securePort":{{"$":443,"@enabled":"false"}},"dataCenterInfo":{{"@class":"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo","name":"MyOwn"}},"leaseInfo":{{"renewalIntervalInSecs":1,"durationInSecs":3}},"vipAddress":"legacy-orders","metadata":{{"zone":"blue"}}}}}}"#
    )
}

async fn register(at: SocketAddr) -> anyhow::Result<()> {
    let r = http::send(
        at,
        "POST",
        &format!("/eureka/apps/{APP}"),
        &[("Content-Type", "application/json")],
        register_body("UP").as_bytes(),
    )
    .await?;
    anyhow::ensure!(r.status == 204, "register: {}", r.summary());
    Ok(())
}

async fn heartbeat(at: SocketAddr) -> anyhow::Result<u16> {
    Ok(
        http::send(at, "PUT", &format!("/eureka/apps/{APP}/{ID}"), &[], b"")
            .await?
            .status,
    )
}

async fn hashcode(at: SocketAddr) -> anyhow::Result<String> {
    let r = http::get_json(at, "/eureka/apps/").await?;
    anyhow::ensure!(r.status == 200, "GET apps: {}", r.summary());
    Ok(r.json()?["applications"]["apps__hashcode"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

/// Waits until every bridge has `want` as its hash code; returns the time it took.
async fn agree(addrs: &[SocketAddr], want: &str, within: Duration) -> anyhow::Result<()> {
    let addrs = addrs.to_vec();
    poll::until(
        &format!("every bridge at apps__hashcode {want:?}"),
        within,
        || {
            let addrs = addrs.clone();
            async move {
                let mut codes = Vec::new();
                for a in &addrs {
                    codes.push(hashcode(*a).await?);
                }
                Ok(codes.iter().all(|c| c == want).then_some(()))
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_share_one_registry_through_workload_entries() -> anyhow::Result<()> {
    let api = KubeApi::start()?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = api.kubeconfig(dir.path(), NS)?;
    let mut bridges = Vec::new();
    for _ in 0..3 {
        bridges.push(bridge(&kubeconfig).await?);
    }
    let addrs: Vec<SocketAddr> = bridges.iter().map(|b| b.eureka_addr()).collect();

    // Registered on the first: all three serve it within 2 s, and it is a WorkloadEntry.
    register(addrs[0]).await?;
    agree(&addrs, "UP_1_", AGREE).await?;
    let name = bridge::discovery::store::entry_name(APP, ID);
    let we = api
        .object("networking.istio.io/v1", "workloadentries", NS, &name)
        .context("WorkloadEntry written")?;
    assert_eq!(we["spec"]["address"], "127.0.0.1");
    assert_eq!(we["spec"]["ports"]["http"], 7001);
    assert_eq!(we["metadata"]["labels"]["app"], "legacy-orders");
    assert_eq!(we["metadata"]["labels"]["zone"], "blue");
    let managers: Vec<&str> = we["metadata"]["managedFields"]
        .as_array()
        .map(|m| m.iter().filter_map(|f| f["manager"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(managers, ["meshmove-bridge"]);
    let se_name = bridge::discovery::store::service_entry_name(APP);
    let se = poll::until("ServiceEntry written", AGREE, || async {
        Ok(api.object("networking.istio.io/v1", "serviceentries", NS, &se_name))
    })
    .await?;
    assert_eq!(
        se["spec"]["hosts"],
        serde_json::json!(["legacy-orders.mesh-ingress.legacy"])
    );
    assert_eq!(se["spec"]["location"], "MESH_INTERNAL");
    assert_eq!(se["spec"]["resolution"], "STATIC");
    assert_eq!(se["spec"]["ports"][0]["number"], 7001);
    assert_eq!(
        se["spec"]["workloadSelector"]["labels"],
        we["spec"]["labels"]
    );

    // Heartbeats only on the second for three lease durations: never evicted anywhere.
    let end = tokio::time::Instant::now() + Duration::from_secs(9);
    while tokio::time::Instant::now() < end {
        assert_eq!(heartbeat(addrs[1]).await?, 200);
        for (n, a) in addrs.iter().enumerate() {
            let present = eureka::instance(*a, "/eureka/", APP, ID).await?;
            assert!(present.is_some(), "evicted on bridge {n}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // A status change on the third reaches the others.
    let r = http::send(
        addrs[2],
        "PUT",
        &format!("/eureka/apps/{APP}/{ID}/status?value=OUT_OF_SERVICE"),
        &[],
        b"",
    )
    .await?;
    assert_eq!(r.status, 200, "{}", r.summary());
    agree(&addrs, "OUT_OF_SERVICE_1_", AGREE).await?;

    // A cancel on the third removes it everywhere, and its entry.
    let r = http::send(
        addrs[2],
        "DELETE",
        &format!("/eureka/apps/{APP}/{ID}"),
        &[],
        b"",
    )
    .await?;
    assert_eq!(r.status, 200, "{}", r.summary());
    let empty = hashcode(addrs[2]).await?;
    agree(&addrs, &empty, AGREE).await?;
    for a in &addrs {
        assert!(eureka::instance(*a, "/eureka/", APP, ID).await?.is_none());
    }
    poll::until("entry deleted", AGREE, || async {
        Ok(api
            .object("networking.istio.io/v1", "workloadentries", NS, &name)
            .is_none()
            .then_some(()))
    })
    .await?;
    poll::until("ServiceEntry deleted", AGREE, || async {
        Ok(api
            .object("networking.istio.io/v1", "serviceentries", NS, &se_name)
            .is_none()
            .then_some(()))
    })
    .await?;

    // Registered again; a bridge started now rebuilds the registry from the API.
    register(addrs[1]).await?;
    agree(&addrs, "UP_1_", AGREE).await?;
    let fresh = bridge(&kubeconfig).await?;
    agree(&[fresh.eureka_addr()], "UP_1_", AGREE).await?;
    bridges.push(fresh);

    // Without heartbeats the lease (3 s) expires and every replica drops it.
    let all: Vec<SocketAddr> = bridges.iter().map(|b| b.eureka_addr()).collect();
    agree(&all, &empty, Duration::from_secs(10)).await?;
    for b in bridges {
        b.shutdown().await?;
    }
    Ok(())
}

/// A replica is ready only after its store's first full round, and that round deletes the
/// ServiceEntries left (by a replica that stopped) for apps without instances, never one whose
/// app still has a WorkloadEntry.
#[tokio::test]
async fn ready_after_the_first_round_which_removes_left_over_service_entries() -> anyhow::Result<()>
{
    let api = KubeApi::start()?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = api.kubeconfig(dir.path(), NS)?;
    // A first replica registers the app; its WorkloadEntry and ServiceEntry exist.
    let first = bridge(&kubeconfig).await?;
    register(first.eureka_addr()).await?;
    let se_name = bridge::discovery::store::service_entry_name(APP);
    poll::until("ServiceEntry written", AGREE, || async {
        Ok(api.object("networking.istio.io/v1", "serviceentries", NS, &se_name))
    })
    .await?;
    // A ServiceEntry for an app that is gone, as a stopped replica would leave it.
    let gone = bridge::discovery::store::service_entry_name("LEGACY-GONE");
    let mut left = api
        .object("networking.istio.io/v1", "serviceentries", NS, &se_name)
        .context("a ServiceEntry to copy")?;
    left["metadata"] = serde_json::json!({
        "name": gone, "namespace": NS,
        "labels": {bridge::discovery::store::MANAGED_LABEL: "eureka"},
    });
    left["spec"]["workloadSelector"]["labels"]["app"] = serde_json::json!("legacy-gone");
    let double: SocketAddr = api.url().trim_start_matches("http://").parse()?;
    let r = http::send(
        double,
        "POST",
        &format!("/apis/networking.istio.io/v1/namespaces/{NS}/serviceentries"),
        &[("Content-Type", "application/json")],
        left.to_string().as_bytes(),
    )
    .await?;
    anyhow::ensure!(r.status == 201, "create: {}", r.summary());

    // A second replica that may not delete ServiceEntries yet: not ready, nothing deleted.
    api.deny("delete", "serviceentries");
    let second = bridge(&kubeconfig).await?;
    let ready = |b: &bridge::run::Running| {
        let at = b.admin_addr();
        async move { Ok::<u16, anyhow::Error>(http::send(at, "GET", "/ready", &[], b"").await?.status) }
    };
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        ready(&second).await?,
        503,
        "ready before its first full round"
    );
    assert!(
        api.object("networking.istio.io/v1", "serviceentries", NS, &gone)
            .is_some()
    );
    // Allowed: within 2 s it is ready, the left-over entry is gone, the live app's is kept.
    api.allow("delete", "serviceentries");
    poll::until("second replica ready", AGREE, || async {
        Ok((ready(&second).await? == 200).then_some(()))
    })
    .await?;
    assert!(
        api.object("networking.istio.io/v1", "serviceentries", NS, &gone)
            .is_none(),
        "the left-over ServiceEntry is deleted"
    );
    assert!(
        api.object("networking.istio.io/v1", "serviceentries", NS, &se_name)
            .is_some(),
        "the ServiceEntry of an app with instances is kept"
    );
    assert_eq!(ready(&first).await?, 200);
    first.shutdown().await?;
    second.shutdown().await?;
    Ok(())
}
