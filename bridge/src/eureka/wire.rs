//! Eureka JSON: lenient reading of every shape real clients send, and writing exactly the shapes
//! the Java server (`EurekaJacksonCodec`) emits.
//!
//! Reading goes through a [`serde_json::Value`] tree rather than derived structs because the
//! same field arrives as a number, a string or a bool depending on the client (Spring sends real
//! numbers, the Netflix codec and py-eureka-client send strings), and XML bodies are mapped onto
//! the same tree by [`super::xml`].

use super::instance::{
    AMAZON_DATA_CENTER_CLASS, ActionType, Application, Applications, DEFAULT_DATA_CENTER_CLASS,
    DataCenter, Instance, LeaseInfo, Port, Status,
};
use crate::Error;
use indexmap::IndexMap;
use serde_json::{Map, Value};

/// `metadata` value the Java server writes for an empty map; readers skip the `@class` key.
pub const EMPTY_METADATA_CLASS: &str = "java.util.Collections$EmptyMap";

/// Parses a register body: `{"instance":{…}}`, or a bare instance object (some hand-rolled clients).
pub fn parse_instance(body: &[u8]) -> Result<Instance, Error> {
    let v: Value = serde_json::from_slice(body).map_err(|source| Error::Json { source })?;
    let inner = match &v {
        Value::Object(m) if m.contains_key("instance") => &m["instance"],
        other => other,
    };
    instance_from_value(one(inner))
}

/// Parses a `GET apps` style body: `{"applications":{…}}`.
pub fn parse_applications(body: &[u8]) -> Result<Applications, Error> {
    let v: Value = serde_json::from_slice(body).map_err(|source| Error::Json { source })?;
    let inner = v
        .get("applications")
        .ok_or_else(|| Error::payload("missing applications"))?;
    applications_from_value(inner)
}

/// Reads the inner `applications` object (shared with the XML reader).
pub(crate) fn applications_from_value(v: &Value) -> Result<Applications, Error> {
    let obj = v
        .as_object()
        .ok_or_else(|| Error::payload("applications is not an object"))?;
    let version = obj
        .get("versions__delta")
        .map(as_u64)
        .transpose()?
        .unwrap_or(0);
    let hashcode = obj
        .get("apps__hashcode")
        .and_then(as_text)
        .unwrap_or_default();
    let mut applications = Vec::new();
    for app in many(obj.get("application")) {
        let name = app
            .get("name")
            .and_then(as_text)
            .ok_or_else(|| Error::payload("application without name"))?;
        let instances = many(app.get("instance"))
            .into_iter()
            .map(instance_from_value)
            .collect::<Result<Vec<_>, _>>()?;
        applications.push(Application {
            name: name.to_ascii_uppercase(),
            instances,
        });
    }
    Ok(Applications {
        version,
        hashcode,
        applications,
    })
}

/// A one-element array stands for its element (old Badgerfish servers and some clients).
fn one(v: &Value) -> &Value {
    match v {
        Value::Array(a) if a.len() == 1 => &a[0],
        other => other,
    }
}

/// `application` / `instance` may be an array, a single object, or absent.
fn many(v: Option<&Value>) -> Vec<&Value> {
    match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.iter().collect(),
        Some(other) => vec![other],
    }
}

/// Text of a scalar; numbers and bools are stringified like Jackson's `asText()`.
fn as_text(v: &Value) -> Option<String> {
    match one(v) {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn as_u64(v: &Value) -> Result<u64, Error> {
    match one(v) {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            .ok_or_else(|| Error::payload(format!("not a non-negative number: {n}"))),
        Value::String(s) if s.trim().is_empty() => Ok(0),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| Error::payload(format!("not a number: {s:?}"))),
        Value::Null => Ok(0),
        other => Err(Error::payload(format!("not a number: {other}"))),
    }
}

fn as_bool(v: &Value) -> bool {
    match one(v) {
        Value::Bool(b) => *b,
        Value::String(s) => s.trim().eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn as_port(field: &str, v: &Value, enabled_default: bool) -> Result<Port, Error> {
    let v = one(v);
    let (number, enabled) = match v {
        Value::Object(m) => (
            m.get("$")
                .ok_or_else(|| Error::payload(format!("{field} without \"$\"")))?,
            m.get("@enabled").map(as_bool).unwrap_or(enabled_default),
        ),
        // A bare number breaks the Java reader; accept it anyway.
        other => (other, enabled_default),
    };
    let n = as_u64(number)?;
    let port =
        u16::try_from(n).map_err(|_| Error::payload(format!("{field} out of range: {n}")))?;
    Ok(Port { port, enabled })
}

fn string_map(v: &Value) -> IndexMap<String, String> {
    let mut out = IndexMap::new();
    if let Value::Object(m) = one(v) {
        for (k, val) in m {
            // `@class` marks the Java empty map; it is not a metadata key.
            if k == "@class" {
                continue;
            }
            if let Some(text) = as_text(val) {
                out.insert(k.clone(), text);
            }
        }
    }
    out
}

fn data_center_from_value(v: &Value) -> Result<DataCenter, Error> {
    let m = one(v)
        .as_object()
        .ok_or_else(|| Error::payload("Missing dataCenterInfo"))?;
    let name = m
        .get("name")
        .and_then(as_text)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::payload("Missing dataCenterInfo Name"))?;
    // eureka-js-client users often omit `@class` (zerotodocker#46); infer it from the name.
    let class = m.get("@class").and_then(as_text).unwrap_or_else(|| {
        if name == "Amazon" {
            AMAZON_DATA_CENTER_CLASS.to_owned()
        } else {
            DEFAULT_DATA_CENTER_CLASS.to_owned()
        }
    });
    let metadata = m.get("metadata").map(string_map);
    Ok(DataCenter {
        class,
        name,
        metadata,
    })
}

fn lease_from_value(v: &Value) -> Result<LeaseInfo, Error> {
    let mut lease = LeaseInfo::default();
    if let Value::Object(m) = one(v) {
        for (k, val) in m {
            if val.is_null() {
                continue;
            }
            match k.as_str() {
                "renewalIntervalInSecs" => lease.renewal_interval_secs = secs(as_u64(val)?),
                "durationInSecs" => lease.duration_secs = secs(as_u64(val)?),
                "registrationTimestamp" => lease.registration_timestamp = as_u64(val)?,
                // `renewalTimestamp` is the legacy name of the same field.
                "lastRenewalTimestamp" | "renewalTimestamp" => {
                    lease.last_renewal_timestamp = as_u64(val)?
                }
                "evictionTimestamp" => lease.eviction_timestamp = as_u64(val)?,
                "serviceUpTimestamp" => lease.service_up_timestamp = as_u64(val)?,
                _ => {}
            }
        }
    }
    Ok(lease)
}

fn secs(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Reads one instance object. Does not check required fields: that is the register handler's job,
/// so that its 400 messages match the Java server's.
pub(crate) fn instance_from_value(v: &Value) -> Result<Instance, Error> {
    let m = v
        .as_object()
        .ok_or_else(|| Error::payload("instance is not an object"))?;
    // Java `InstanceInfo.Builder` defaults.
    let mut i = Instance {
        port: Port {
            port: 7001,
            enabled: true,
        },
        secure_port: Port {
            port: 7002,
            enabled: false,
        },
        country_id: 1,
        ..Instance::default()
    };
    let text = as_text;
    for (k, val) in m {
        // Spring's client sends explicit nulls for unset fields.
        if val.is_null() {
            continue;
        }
        match k.as_str() {
            "instanceId" => i.instance_id = text(val),
            "hostName" => i.host_name = text(val).unwrap_or_default(),
            "app" => i.app = text(val).unwrap_or_default().to_ascii_uppercase(),
            "ipAddr" => i.ip_addr = text(val).unwrap_or_default(),
            "sid" => i.sid = text(val),
            "status" => i.status = Status::from_wire(&text(val).unwrap_or_default()),
            // The current codec writes camelCase, XML and older JSON lowercase.
            "overriddenStatus" | "overriddenstatus" => {
                i.overridden_status = Status::from_wire(&text(val).unwrap_or_default())
            }
            "port" => i.port = as_port("port", val, true)?,
            "securePort" => i.secure_port = as_port("securePort", val, false)?,
            "countryId" => {
                i.country_id = i32::try_from(as_u64(val)?)
                    .map_err(|_| Error::payload("countryId out of range"))?
            }
            "dataCenterInfo" => i.data_center = Some(data_center_from_value(val)?),
            "leaseInfo" => i.lease = Some(lease_from_value(val)?),
            "metadata" => i.metadata = string_map(val),
            "appGroupName" => i.app_group_name = text(val),
            "homePageUrl" => i.home_page_url = text(val),
            "statusPageUrl" => i.status_page_url = text(val),
            "healthCheckUrl" => i.health_check_url = text(val),
            "secureHealthCheckUrl" => i.secure_health_check_url = text(val),
            "vipAddress" => i.vip_address = text(val),
            "secureVipAddress" => i.secure_vip_address = text(val),
            "isCoordinatingDiscoveryServer" => i.is_coordinating_discovery_server = as_bool(val),
            "lastUpdatedTimestamp" => i.last_updated_timestamp = as_u64(val)?,
            "lastDirtyTimestamp" => i.last_dirty_timestamp = as_u64(val)?,
            "actionType" => i.action_type = text(val).as_deref().and_then(ActionType::parse),
            "asgName" => i.asg_name = text(val),
            _ => {}
        }
    }
    // Spring Cloud's server: without an instanceId, use `metadata.instanceId` prefixed by the host.
    if i.instance_id.as_deref().is_none_or(str::is_empty)
        && let Some(meta_id) = i.metadata.get("instanceId").filter(|s| !s.is_empty())
    {
        i.instance_id = Some(format!("{}:{}", i.host_name, meta_id));
    }
    Ok(i)
}

fn port_value(p: Port) -> Value {
    let mut m = Map::new();
    m.insert("$".into(), Value::from(p.port));
    // `@enabled` is a string on the wire; Spring Cloud's server 500s on a bool.
    m.insert("@enabled".into(), Value::from(p.enabled.to_string()));
    Value::Object(m)
}

fn metadata_value(meta: &IndexMap<String, String>) -> Value {
    let mut m = Map::new();
    if meta.is_empty() {
        m.insert("@class".into(), Value::from(EMPTY_METADATA_CLASS));
    }
    for (k, v) in meta {
        m.insert(k.clone(), Value::from(v.as_str()));
    }
    Value::Object(m)
}

/// One instance in the Java server's field order; `@Auto` fields are strings.
pub fn instance_to_value(i: &Instance) -> Value {
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_owned(), v);
    };
    if let Some(id) = &i.instance_id {
        put("instanceId", Value::from(id.as_str()));
    }
    put("hostName", Value::from(i.host_name.as_str()));
    put("app", Value::from(i.app.as_str()));
    put("ipAddr", Value::from(i.ip_addr.as_str()));
    if let Some(sid) = i.sid.as_deref().filter(|s| *s != "na" && *s != "unknown") {
        put("sid", Value::from(sid));
    }
    put("status", Value::from(i.status.as_str()));
    put(
        "overriddenStatus",
        Value::from(i.overridden_status.as_str()),
    );
    put("port", port_value(i.port));
    put("securePort", port_value(i.secure_port));
    put("countryId", Value::from(i.country_id));
    if let Some(dc) = &i.data_center {
        let mut d = Map::new();
        d.insert("@class".into(), Value::from(dc.class.as_str()));
        d.insert("name".into(), Value::from(dc.name.as_str()));
        if let Some(meta) = &dc.metadata {
            d.insert("metadata".into(), metadata_value(meta));
        }
        put("dataCenterInfo", Value::Object(d));
    }
    if let Some(l) = &i.lease {
        let mut d = Map::new();
        d.insert(
            "renewalIntervalInSecs".into(),
            Value::from(l.renewal_interval_secs),
        );
        d.insert("durationInSecs".into(), Value::from(l.duration_secs));
        d.insert(
            "registrationTimestamp".into(),
            Value::from(l.registration_timestamp),
        );
        d.insert(
            "lastRenewalTimestamp".into(),
            Value::from(l.last_renewal_timestamp),
        );
        d.insert(
            "evictionTimestamp".into(),
            Value::from(l.eviction_timestamp),
        );
        d.insert(
            "serviceUpTimestamp".into(),
            Value::from(l.service_up_timestamp),
        );
        put("leaseInfo", Value::Object(d));
    }
    put("metadata", metadata_value(&i.metadata));
    for (k, v) in auto_fields(i) {
        put(k, Value::from(v));
    }
    Value::Object(m)
}

/// The `@Auto` fields in `InstanceInfo` declaration order, stringified, nulls left out.
/// Shared by the JSON and XML writers, which both emit them after `metadata`.
pub(crate) fn auto_fields(i: &Instance) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let opt = [
        ("appGroupName", &i.app_group_name),
        ("homePageUrl", &i.home_page_url),
        ("statusPageUrl", &i.status_page_url),
        ("healthCheckUrl", &i.health_check_url),
        ("secureHealthCheckUrl", &i.secure_health_check_url),
        ("vipAddress", &i.vip_address),
        ("secureVipAddress", &i.secure_vip_address),
    ];
    for (k, v) in opt {
        if let Some(v) = v {
            out.push((k, v.clone()));
        }
    }
    out.push((
        "isCoordinatingDiscoveryServer",
        i.is_coordinating_discovery_server.to_string(),
    ));
    out.push(("lastUpdatedTimestamp", i.last_updated_timestamp.to_string()));
    out.push(("lastDirtyTimestamp", i.last_dirty_timestamp.to_string()));
    if let Some(a) = i.action_type {
        out.push(("actionType", a.as_str().to_owned()));
    }
    if let Some(asg) = &i.asg_name {
        out.push(("asgName", asg.clone()));
    }
    out
}

fn application_value(a: &Application) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), Value::from(a.name.as_str()));
    // Always an array, even for one instance, like the Java server.
    m.insert(
        "instance".into(),
        Value::Array(a.instances.iter().map(instance_to_value).collect()),
    );
    Value::Object(m)
}

fn wrapped(root: &str, v: Value) -> Vec<u8> {
    let mut m = Map::new();
    m.insert(root.to_owned(), v);
    // Serialising a Value cannot fail.
    serde_json::to_vec(&Value::Object(m)).unwrap_or_default()
}

/// `{"applications":{…}}`.
pub fn applications_to_json(apps: &Applications) -> Vec<u8> {
    let mut m = Map::new();
    m.insert(
        "versions__delta".into(),
        Value::from(apps.version.to_string()),
    );
    m.insert("apps__hashcode".into(), Value::from(apps.hashcode.as_str()));
    m.insert(
        "application".into(),
        Value::Array(apps.applications.iter().map(application_value).collect()),
    );
    wrapped("applications", Value::Object(m))
}

/// `{"application":{…}}`.
pub fn application_to_json(app: &Application) -> Vec<u8> {
    wrapped("application", application_value(app))
}

/// `{"instance":{…}}`.
pub fn instance_to_json(i: &Instance) -> Vec<u8> {
    wrapped("instance", instance_to_value(i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eureka::instance::{ActionType, Status};
    use std::path::PathBuf;

    /// `../shared/reference/eureka` beside the repository; `None` (after one line of output)
    /// when the shared folder is not there.
    pub(crate) fn reference_dir() -> Option<PathBuf> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference/eureka");
        if dir.is_dir() {
            Some(dir)
        } else {
            println!("skipping: {} not found", dir.display());
            None
        }
    }

    fn read(name: &str) -> Option<Vec<u8>> {
        let dir = reference_dir()?;
        Some(std::fs::read(dir.join(name)).expect("reference file"))
    }

    #[test]
    fn py_eureka_client_register_body() {
        let Some(body) = read("captured-py-eureka-client-0.13.3.register.json") else {
            return;
        };
        let i = parse_instance(&body).expect("parses");
        assert_eq!(i.id(), "127.0.0.1:py-legacy-svc:9090");
        assert_eq!(i.app, "PY-LEGACY-SVC");
        assert_eq!((i.port.port, i.port.enabled), (9090, true));
        assert_eq!((i.secure_port.port, i.secure_port.enabled), (9443, false));
        assert_eq!(i.status, Status::Up);
        assert_eq!(i.overridden_status, Status::Unknown);
        let lease = i.lease.expect("leaseInfo");
        assert_eq!((lease.renewal_interval_secs, lease.duration_secs), (2, 90));
        assert_eq!(i.last_dirty_timestamp, 1_795_299_938_468);
        assert_eq!(i.metadata.get("zone").map(String::as_str), Some("default"));
        assert_eq!(i.secure_health_check_url.as_deref(), Some(""));
        assert!(!i.is_coordinating_discovery_server);
        let dc = i.data_center.expect("dataCenterInfo");
        assert_eq!(
            (dc.class.as_str(), dc.name.as_str()),
            (DEFAULT_DATA_CENTER_CLASS, "MyOwn")
        );
    }

    #[test]
    fn eureka_js_client_register_body() {
        let Some(body) = read("captured-eureka-js-client-4.5.0.register.json") else {
            return;
        };
        let i = parse_instance(&body).expect("parses");
        // No instanceId: the host name is the id, which is what the client PUTs to.
        assert_eq!(i.instance_id, None);
        assert_eq!(i.id(), "127.0.0.1");
        assert_eq!(i.app, "JS-LEGACY-SVC");
        assert_eq!((i.port.port, i.port.enabled), (8090, true));
        assert_eq!((i.secure_port.port, i.secure_port.enabled), (7002, false));
        assert_eq!(i.lease, None);
        assert_eq!(i.vip_address.as_deref(), Some("js-legacy-svc"));
    }

    #[test]
    fn spring_register_body_with_nulls_and_numbers() {
        let Some(body) = read("spring-cloud-netflix-register.reconstructed.json") else {
            return;
        };
        let i = parse_instance(&body).expect("parses");
        assert_eq!(i.id(), "host-a.example.internal:order-service:8080");
        assert_eq!(i.app_group_name, None);
        assert_eq!(i.secure_health_check_url, None);
        assert_eq!(i.action_type, None);
        assert_eq!(i.last_dirty_timestamp, 1_700_000_000_000);
        assert_eq!(i.sid.as_deref(), Some("na"));
        // `sid: na` is not written back.
        assert!(instance_to_value(&i).get("sid").is_none());
    }

    #[test]
    fn every_captured_request_body_parses() {
        for name in [
            "captured-py-eureka-client-0.13.3.requests.jsonl",
            "captured-eureka-js-client-4.5.0.requests.jsonl",
        ] {
            let Some(text) = read(name) else {
                return;
            };
            let mut posts = 0;
            for line in String::from_utf8(text).expect("utf-8").lines() {
                let req: Value = serde_json::from_str(line).expect("jsonl line");
                if req["method"] == "POST" {
                    let body = serde_json::to_vec(&req["body"]).expect("re-encode");
                    let i = parse_instance(&body).expect("register body parses");
                    let path_app = req["path"]
                        .as_str()
                        .and_then(|p| p.rsplit('/').next())
                        .expect("path")
                        .to_ascii_uppercase();
                    assert_eq!(i.app, path_app, "{name}");
                    posts += 1;
                }
            }
            assert!(posts >= 2, "{name}");
        }
    }

    #[test]
    fn istio_2017_server_capture() {
        let Some(body) = read("istio-pilot-testdata-eureka-apps.json") else {
            return;
        };
        let apps = parse_applications(&body).expect("parses");
        assert_eq!(apps.hashcode, "UP_34_");
        assert_eq!(apps.version, 1);
        let names: Vec<_> = apps.applications.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["FOO_BAR_LOCAL", "FOO_BIZ_LOCAL"]);
        let first = &apps.applications[0].instances[0];
        assert_eq!(first.data_center, None);
        assert_eq!(
            (first.secure_port.port, first.secure_port.enabled),
            (5443, true)
        );
        assert_eq!(first.action_type, Some(ActionType::Added));
        assert_eq!(
            first.metadata.get("istio.protocol").map(String::as_str),
            Some("HTTP")
        );
        assert_eq!(
            first.lease.map(|l| l.last_renewal_timestamp),
            Some(1_502_120_127_413)
        );
    }

    #[test]
    fn synthetic_json_round_trips_byte_for_byte() {
        let Some(body) = read("synthetic-get-apps.response.json") else {
            return;
        };
        let apps = parse_applications(&body).expect("parses");
        let file: Value = serde_json::from_slice(&body).expect("json");
        let expected = serde_json::to_string(&file).expect("compact");
        let ours = String::from_utf8(applications_to_json(&apps)).expect("utf-8");
        assert_eq!(ours, expected);
    }

    fn parse_obj(v: Value) -> Result<Instance, Error> {
        instance_from_value(&v)
    }

    #[test]
    fn lenient_shapes() {
        let dc = serde_json::json!({"@class": DEFAULT_DATA_CENTER_CLASS, "name": "MyOwn"});
        // `$` as string, `@enabled` as bool, timestamps as numbers or strings.
        let i = parse_obj(serde_json::json!({
            "hostName": "h", "app": "a", "ipAddr": "1.2.3.4", "dataCenterInfo": dc,
            "port": {"$": "8080", "@enabled": true}, "securePort": {"$": 8443, "@enabled": "true"},
            "lastDirtyTimestamp": 5, "lastUpdatedTimestamp": "6", "overriddenStatus": "OUT_OF_SERVICE",
            "countryId": "1", "isCoordinatingDiscoveryServer": true,
            "metadata": {"@class": EMPTY_METADATA_CLASS}
        }))
        .expect("parses");
        assert_eq!((i.port.port, i.port.enabled), (8080, true));
        assert_eq!((i.secure_port.port, i.secure_port.enabled), (8443, true));
        assert_eq!((i.last_dirty_timestamp, i.last_updated_timestamp), (5, 6));
        assert_eq!(i.overridden_status, Status::OutOfService);
        assert!(i.metadata.is_empty());
        assert!(i.is_coordinating_discovery_server);
        // Bare number port, one-element array wrapping, unknown status string.
        let i = parse_obj(serde_json::json!({
            "hostName": "h", "app": "a", "ipAddr": "1", "port": 81, "status": "WEIRD",
            "dataCenterInfo": [{"name": "MyOwn"}]
        }))
        .expect("parses");
        assert_eq!((i.port.port, i.port.enabled), (81, true));
        assert_eq!(i.status, Status::Unknown);
        assert_eq!(
            i.data_center.map(|d| d.class),
            Some(DEFAULT_DATA_CENTER_CLASS.to_owned())
        );
        let wrapped = br#"{"instance":[{"hostName":"h","app":"a","ipAddr":"1","dataCenterInfo":{"name":"MyOwn"}}]}"#;
        assert_eq!(
            parse_instance(wrapped).expect("array-wrapped").host_name,
            "h"
        );
        // Spring Cloud server: metadata.instanceId stands in for a missing instanceId.
        let i = parse_obj(serde_json::json!({"hostName": "h", "metadata": {"instanceId": "x:1"}}))
            .expect("parses");
        assert_eq!(i.id(), "h:x:1");
    }

    #[test]
    fn malformed_shapes_are_errors() {
        assert!(parse_instance(b"{").is_err());
        assert!(parse_instance(b"[]").is_err());
        assert!(parse_obj(serde_json::json!({"dataCenterInfo": {"@class": "x"}})).is_err());
        assert!(parse_obj(serde_json::json!({"port": {"$": 70000}})).is_err());
        assert!(parse_obj(serde_json::json!({"port": {"@enabled": "true"}})).is_err());
        assert!(parse_obj(serde_json::json!({"lastDirtyTimestamp": "yesterday"})).is_err());
    }

    #[test]
    fn single_instance_and_application_stay_arrays() {
        let app = Application {
            name: "A".into(),
            instances: vec![Instance::default()],
        };
        let v: Value = serde_json::from_slice(&application_to_json(&app)).expect("json");
        assert!(v["application"]["instance"].is_array());
        let apps = Applications::new(3, vec![app]);
        let v: Value = serde_json::from_slice(&applications_to_json(&apps)).expect("json");
        assert!(v["applications"]["application"].is_array());
        assert_eq!(v["applications"]["versions__delta"], "3");
        assert_eq!(v["applications"]["apps__hashcode"], "UNKNOWN_1_");
        let empty: Value =
            serde_json::from_slice(&applications_to_json(&Applications::new(1, vec![])))
                .expect("json");
        assert_eq!(empty["applications"]["apps__hashcode"], "");
        assert_eq!(empty["applications"]["application"], serde_json::json!([]));
    }
}
