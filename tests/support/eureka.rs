//! Reading a Eureka registry over its REST API the way a Java client does (JSON, root-wrapped,
//! `application`/`instance` as array or single object), for assertions in end-to-end tests.

use std::net::SocketAddr;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::http;

/// A JSON value that Eureka may send as an array or, for one element, a bare object.
pub fn list(value: Option<&Value>) -> Vec<Value> {
    match value {
        Some(Value::Array(items)) => items.clone(),
        Some(v @ Value::Object(_)) => vec![v.clone()],
        _ => Vec::new(),
    }
}

/// The instances of `app` from `GET {prefix}apps/{APP}` (JSON). `None` when the server answers
/// 404 (unknown app); any other non-200 status is an error. `prefix` is `/eureka/` or
/// `/eureka/v2/`.
pub async fn app_instances(
    addr: SocketAddr,
    prefix: &str,
    app: &str,
) -> anyhow::Result<Option<Vec<Value>>> {
    let response = http::get_json(addr, &format!("{prefix}apps/{app}")).await?;
    match response.status {
        404 => Ok(None),
        200 => {
            let body = response.json()?;
            let application = body
                .get("application")
                .with_context(|| format!("no root `application` in {body}"))?;
            Ok(Some(list(application.get("instance"))))
        }
        _ => bail!("GET {prefix}apps/{app}: {}", response.summary()),
    }
}

/// The instance `id` of `app`, if the registry has it.
pub async fn instance(
    addr: SocketAddr,
    prefix: &str,
    app: &str,
    id: &str,
) -> anyhow::Result<Option<Value>> {
    Ok(app_instances(addr, prefix, app)
        .await?
        .unwrap_or_default()
        .into_iter()
        .find(|i| instance_id(i) == Some(id)))
}

/// All applications from `GET {prefix}apps/` (JSON) as `(name, instances)` pairs.
pub async fn apps(addr: SocketAddr, prefix: &str) -> anyhow::Result<Vec<(String, Vec<Value>)>> {
    let response = http::get_json(addr, &format!("{prefix}apps/")).await?;
    if response.status != 200 {
        bail!("GET {prefix}apps/: {}", response.summary());
    }
    let body = response.json()?;
    let applications = body
        .get("applications")
        .with_context(|| format!("no root `applications` in {body}"))?;
    Ok(list(applications.get("application"))
        .into_iter()
        .map(|a| {
            let name = a
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            (name, list(a.get("instance")))
        })
        .collect())
}

/// The id the server uses for an instance: `instanceId`, else `hostName` (Netflix
/// `InstanceInfo.getId()` for non-Amazon data centers).
pub fn instance_id(instance: &Value) -> Option<&str> {
    instance
        .get("instanceId")
        .and_then(Value::as_str)
        .or_else(|| instance.get("hostName").and_then(Value::as_str))
}

/// `leaseInfo.lastRenewalTimestamp` as a number (servers write a number; accept a string too).
pub fn last_renewal(instance: &Value) -> Option<u64> {
    let v = instance.get("leaseInfo")?.get("lastRenewalTimestamp")?;
    v.as_u64().or_else(|| v.as_str()?.parse().ok())
}

/// A `port`/`securePort` object's number (`$` as number or string).
pub fn port_number(port: Option<&Value>) -> Option<u64> {
    let v = port?.get("$")?;
    v.as_u64().or_else(|| v.as_str()?.parse().ok())
}

/// The value of a Prometheus counter or gauge line `name{labels} value` (first match whose
/// labels contain every `labels` fragment), summed over matching lines.
pub fn metric(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    let mut found = None;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (metric_name, metric_labels) = match key.split_once('{') {
            Some((n, l)) => (n, l),
            None => (key, ""),
        };
        if metric_name != name || !labels.iter().all(|l| metric_labels.contains(l)) {
            continue;
        }
        if let Ok(v) = value.trim().parse::<f64>() {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn list_accepts_array_or_object() {
        assert_eq!(super::list(Some(&json!([1, 2]))).len(), 2);
        assert_eq!(super::list(Some(&json!({"a": 1}))).len(), 1);
        assert!(super::list(None).is_empty());
    }

    #[test]
    fn metric_sums_matching_lines() {
        let text = "# HELP x\nrenewals_total{app=\"A\"} 3\nrenewals_total{app=\"B\"} 2\nother 1\n";
        assert_eq!(super::metric(text, "renewals_total", &[]), Some(5.0));
        assert_eq!(
            super::metric(text, "renewals_total", &["app=\"A\""]),
            Some(3.0)
        );
        assert_eq!(super::metric(text, "missing", &[]), None);
    }
}
