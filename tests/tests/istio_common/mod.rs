//! Shared by the bridge's Kubernetes tests: YAML documents as JSON, and Istio objects checked
//! against the openAPIV3Schema of the CRDs in `../shared/schemas/istio-crds.gen.yaml`.

#![allow(dead_code)] // each test binary uses a different part

use serde_json::Value;
use yaml_rust2::{Yaml, YamlLoader};

/// The Istio CRDs, when `../shared` is there.
pub fn istio_crds() -> Option<Vec<Value>> {
    let shared = e2e::shared_dir()?;
    let text = std::fs::read_to_string(shared.join("schemas/istio-crds.gen.yaml")).ok()?;
    Some(docs(&text))
}

pub fn yaml_to_json(y: &Yaml) -> Value {
    match y {
        Yaml::Real(s) => s
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::String(s.clone()), Value::Number),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Array(a) => Value::Array(a.iter().map(yaml_to_json).collect()),
        Yaml::Hash(h) => Value::Object(
            h.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Yaml::String(s) => s.clone(),
                        Yaml::Integer(i) => i.to_string(),
                        Yaml::Boolean(b) => b.to_string(),
                        other => format!("{other:?}"),
                    };
                    (key, yaml_to_json(v))
                })
                .collect(),
        ),
        _ => Value::Null,
    }
}

pub fn docs(text: &str) -> Vec<Value> {
    YamlLoader::load_from_str(text)
        .expect("rendered YAML parses")
        .iter()
        .map(yaml_to_json)
        .filter(|v| !v.is_null())
        .collect()
}

pub fn istio_schema(crds: &[Value], kind: &str, version: &str) -> Value {
    for crd in crds {
        if crd["spec"]["names"]["kind"] != kind || crd["spec"]["group"] != "networking.istio.io" {
            continue;
        }
        for v in crd["spec"]["versions"].as_array().expect("versions") {
            if v["name"] == version {
                return v["schema"]["openAPIV3Schema"].clone();
            }
        }
    }
    panic!("no CRD schema for {kind} {version}");
}

/// The CRD schemas mark `x-kubernetes-*` keys the validator does not know; they are ignored.
pub fn check_istio(obj: &Value, crds: &[Value]) -> Result<(), String> {
    let kind = obj["kind"].as_str().expect("kind");
    let version = obj["apiVersion"]
        .as_str()
        .and_then(|a| a.rsplit('/').next())
        .expect("apiVersion");
    let schema = istio_schema(crds, kind, version);
    let validator = jsonschema::validator_for(&schema).map_err(|e| e.to_string())?;
    let errors: Vec<String> = validator
        .iter_errors(obj)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}
