//! Overlay networks → NetworkPolicies: Kubernetes has one flat pod network, so each Swarm network
//! becomes a policy that lets its members talk to each other and keeps everyone else out.

use crate::emit::Cx;
use crate::emit::yaml::Yaml;

/// One NetworkPolicy per network that some service is a member of (the member label is set on
/// the pods by the workload). A pod on several networks is selected by several policies, and
/// Kubernetes allows the union of their sources, as Swarm does.
pub(crate) fn policies(cx: &mut Cx<'_>) {
    let networks: Vec<(String, String)> = cx
        .networks
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (key, n) in &cx.stack.networks {
        if !cx.networks.contains_key(key)
            && !n.is_external()
            && let Some(src) = &n.source
        {
            cx.findings.push(crate::emit::Finding {
                source: src.clone(),
                service: None,
                status: crate::report::Status::Dropped,
                target: "-".into(),
                reason: "no service is attached to this network, so the chart has no policy for it"
                    .into(),
            });
        }
    }
    for (net, label) in networks {
        let name = cx.name("networkpolicy", &format!("{net}-network"));
        let members = || {
            Yaml::map([(
                "matchLabels",
                Yaml::Map(vec![
                    (label.clone(), Yaml::str("true")),
                    (
                        "app.kubernetes.io/instance".into(),
                        Yaml::Tpl("{{ .Release.Name | quote }}".into()),
                    ),
                ]),
            )])
        };
        let meta = cx.metadata(&name, None, vec![]);
        let meta = match cx.stack.networks.get(&net) {
            Some(n) => crate::emit::store::with_labels(meta, &n.labels),
            None => meta,
        };
        let doc = Yaml::map([
            ("apiVersion", Yaml::str("networking.k8s.io/v1")),
            ("kind", Yaml::str("NetworkPolicy")),
            ("metadata", meta),
            (
                "spec",
                Yaml::map([
                    ("podSelector", members()),
                    ("policyTypes", Yaml::Seq(vec![Yaml::str("Ingress")])),
                    (
                        "ingress",
                        Yaml::Seq(vec![Yaml::map([(
                            "from",
                            Yaml::Seq(vec![Yaml::map([("podSelector", members())])]),
                        )])]),
                    ),
                ]),
            ),
        ]);
        cx.template(
            &format!("networks/{name}-networkpolicy.yaml"),
            vec![doc],
            false,
        );
    }
}
