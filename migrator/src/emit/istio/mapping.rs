//! The bridge's mapping file (format of the `mappings` crate, docs/mapping.md) as a ConfigMap the
//! bridge mounts: each migrated service's Swarm name, Kubernetes host and ports, Eureka identity
//! and gRPC rules (from `x-istio.grpc`), plus the services left on Swarm and their endpoints.

use crate::emit::Cx;
use crate::emit::yaml::{self, Yaml};

/// The file name inside the ConfigMap.
pub const FILE: &str = "mapping.yaml";

/// Stands for the namespace until the template prints it (a DNS label cannot hold `{{`).
const NS_PLACEHOLDER: &str = "meshmove-namespace-placeholder";

/// The mapping file of the chart (namespace placeholder in the hosts when `--namespace` is not
/// given).
pub(crate) fn file(cx: &Cx<'_>) -> mappings::MappingFile {
    let ns = cx
        .opts
        .namespace
        .clone()
        .unwrap_or_else(|| NS_PLACEHOLDER.to_string());
    let mut services = Vec::new();
    for s in &cx.summary {
        if s.kind == "Job" && s.ports.is_empty() {
            continue;
        }
        let ports = s
            .ports
            .iter()
            .filter_map(|p| p.strip_suffix("/TCP"))
            .filter_map(|p| p.parse::<u16>().ok())
            .collect();
        services.push(mappings::Service {
            swarm_name: s.service.clone(),
            kubernetes_host: format!("{}.{ns}.svc.cluster.local", s.name),
            ports,
            eureka_app: s.service.to_ascii_uppercase(),
            vip_address: s.service.clone(),
            grpc: cx
                .plan
                .extensions
                .get(&s.service)
                .and_then(|e| e.grpc.clone()),
        });
    }
    let on_swarm = cx
        .plan
        .legacy
        .iter()
        .filter(|l| !l.endpoints.is_empty())
        .map(|l| mappings::OnSwarm {
            swarm_name: l.name.clone(),
            endpoints: l
                .endpoints
                .iter()
                .map(|e| {
                    if e.host.contains(':') {
                        format!("[{}]:{}", e.host, e.port)
                    } else {
                        format!("{}:{}", e.host, e.port)
                    }
                })
                .collect(),
        })
        .collect();
    mappings::MappingFile {
        services,
        legacy: Vec::new(),
        on_swarm,
    }
}

/// Adds the ConfigMap template.
pub(crate) fn configmap(cx: &mut Cx<'_>) {
    let file = file(cx);
    let value = serde_json::to_value(&file).unwrap_or_default();
    let mut text = String::from(
        "# The bridge's mapping file (docs/mapping.md), written by migrate: the services moved to\n# Kubernetes and the ones left on Swarm.\n",
    );
    yaml::write(&mut text, &from_json(&value), false);
    let ns = format!("{{{{ include \"{}\" . }}}}", cx.helper("namespace"));
    let mut lines = vec![format!("{FILE}: |")];
    for l in text.lines() {
        // A literal block: `{{` of the user's own text would be read by Helm, so it is escaped;
        // the namespace placeholder becomes the template action.
        let l = l.replace("{{", "{{ \"{{\" }}").replace(NS_PLACEHOLDER, &ns);
        lines.push(if l.is_empty() {
            String::new()
        } else {
            format!("  {l}")
        });
    }
    let name = cx.name("configmap", &format!("{}-bridge-mapping", cx.opts.name));
    let doc = Yaml::map([
        ("apiVersion", Yaml::str("v1")),
        ("kind", Yaml::str("ConfigMap")),
        (
            "metadata",
            cx.metadata(&name, Some("bridge-mapping"), vec![]),
        ),
        ("data", Yaml::map([("", Yaml::Lines(lines))])),
    ]);
    cx.template("bridge-mapping-configmap.yaml", vec![doc], false);
}

/// A JSON value as a YAML node (keys in the order serde wrote them).
fn from_json(v: &serde_json::Value) -> Yaml {
    match v {
        serde_json::Value::Null => Yaml::Null,
        serde_json::Value::Bool(b) => Yaml::Bool(*b),
        serde_json::Value::Number(n) => n
            .as_i64()
            .map_or_else(|| Yaml::Str(n.to_string()), Yaml::Int),
        serde_json::Value::String(s) => Yaml::str(s),
        serde_json::Value::Array(a) => Yaml::Seq(a.iter().map(from_json).collect()),
        serde_json::Value::Object(o) => {
            Yaml::Map(o.iter().map(|(k, v)| (k.clone(), from_json(v))).collect())
        }
    }
}
