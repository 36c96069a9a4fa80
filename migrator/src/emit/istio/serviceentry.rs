//! ServiceEntry (+ WorkloadEntry) for each service left on Swarm that the mesh reaches: the host
//! is the Swarm name, so migrated services keep calling it by the name they used on Swarm. IP
//! endpoints become WorkloadEntries selected by the ServiceEntry (resolution STATIC); DNS names
//! stay inline endpoints (resolution DNS); without any address the name itself is resolved (DNS).

use crate::emit::Cx;
use crate::emit::istio::{LEGACY_LABEL, Legacy, NETWORKING, resource, template};
use crate::emit::yaml::Yaml;

/// The objects, one template per legacy service.
pub(crate) fn objects(cx: &mut Cx<'_>) {
    let legacy = cx.plan.legacy.clone();
    for l in &legacy {
        if l.port.is_none() && l.endpoints.is_empty() {
            continue;
        }
        let docs = service(cx, l);
        let file = cx.name("serviceentry-file", &l.name);
        template(cx, &format!("istio/legacy-{file}.yaml"), &docs);
    }
}

fn service(cx: &mut Cx<'_>, l: &Legacy) -> Vec<Yaml> {
    let name = cx.name("serviceentry", &l.name);
    let client_port = l
        .port
        .or_else(|| l.endpoints.first().map(|e| e.port))
        .unwrap_or(0);
    let port_name = format!("tcp-{client_port}");
    let label = crate::emit::name::dns_label(&l.name, 63);
    let all_ip = !l.endpoints.is_empty() && l.endpoints.iter().all(|e| e.is_ip());
    let mut docs = Vec::new();
    let mut spec = vec![
        ("hosts".to_string(), Yaml::Seq(vec![Yaml::str(&l.name)])),
        ("location".to_string(), Yaml::str("MESH_INTERNAL")),
        (
            "ports".to_string(),
            Yaml::Seq(vec![Yaml::map([
                ("number", Yaml::uint(u64::from(client_port))),
                ("name", Yaml::str(&port_name)),
                ("protocol", Yaml::str("TCP")),
            ])]),
        ),
    ];
    let ports = |e: &crate::emit::istio::Endpoint| {
        Yaml::map([(port_name.as_str(), Yaml::uint(u64::from(e.port)))])
    };
    if all_ip {
        spec.push(("resolution".into(), Yaml::str("STATIC")));
        spec.push((
            "workloadSelector".into(),
            Yaml::map([("labels", Yaml::map([(LEGACY_LABEL, Yaml::str(&label))]))]),
        ));
        for (i, e) in l.endpoints.iter().enumerate() {
            let we = cx.name("workloadentry", &format!("{}-legacy-{}", l.name, i + 1));
            let wspec = Yaml::map([
                ("address", Yaml::str(&e.host)),
                ("ports", ports(e)),
                ("labels", Yaml::map([(LEGACY_LABEL, Yaml::str(&label))])),
            ]);
            docs.push(resource(
                cx,
                NETWORKING,
                "WorkloadEntry",
                &we,
                Some(&label),
                wspec,
            ));
        }
    } else if l.endpoints.is_empty() {
        // No address given: Envoy resolves the Swarm name itself.
        spec.push(("resolution".into(), Yaml::str("DNS")));
    } else {
        spec.push(("resolution".into(), Yaml::str("DNS")));
        spec.push((
            "endpoints".into(),
            Yaml::Seq(
                l.endpoints
                    .iter()
                    .map(|e| Yaml::map([("address", Yaml::str(&e.host)), ("ports", ports(e))]))
                    .collect(),
            ),
        ));
    }
    docs.insert(
        0,
        resource(
            cx,
            NETWORKING,
            "ServiceEntry",
            &name,
            Some(&label),
            Yaml::Map(spec),
        ),
    );
    docs
}
