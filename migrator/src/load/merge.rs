//! Merging normalised files like docker/cli `cli/compose/loader/merge.go` (mergo with
//! `WithOverride` + `WithAppendSlice` and its special cases), reproduced on the tree.
//!
//! What docker does, and so what this does: services merge field by field; scalars are overridden
//! only by non-empty values (`replicas` and the other `*uint64` fields also by 0); lists append
//! (even `healthcheck.test`); `ports` collapse by published port, `volumes` by target,
//! `secrets`/`configs` by source, each then sorted by that key; `command`/`entrypoint` replace;
//! top-level networks, volumes, secrets and configs are replaced whole; top-level `x-` keys and
//! `version` of later files are dropped.

use super::node::{Entry, Node, Value};

/// Merges `over` (a later file) into `base`.
pub fn merge_files(base: &mut Node, over: Node) {
    let Value::Map(over_entries) = over.value else {
        return;
    };
    for e in over_entries {
        match e.key.as_str() {
            "services" => merge_services(base, e),
            "networks" | "volumes" | "secrets" | "configs" => {
                let Value::Map(objects) = e.value.value else {
                    continue;
                };
                if base.get(&e.key).is_none() {
                    base.set(
                        &e.key,
                        Node::new(Value::Map(Vec::new()), e.value.mark.clone()),
                    );
                }
                if let Some(Node {
                    value: Value::Map(dst),
                    ..
                }) = base.get_mut(&e.key)
                {
                    for obj in objects {
                        upsert(dst, obj);
                    }
                }
            }
            _ => {}
        }
    }
}

fn upsert(dst: &mut Vec<Entry>, e: Entry) {
    if let Some(d) = dst.iter_mut().find(|d| d.key == e.key) {
        *d = e;
    } else {
        dst.push(e);
    }
}

fn merge_services(base: &mut Node, services: Entry) {
    let Value::Map(over) = services.value.value else {
        return;
    };
    if base.get("services").is_none() {
        base.set(
            "services",
            Node::new(Value::Map(Vec::new()), services.value.mark.clone()),
        );
    }
    let Some(Node {
        value: Value::Map(dst),
        ..
    }) = base.get_mut("services")
    else {
        return;
    };
    for svc in over {
        match dst.iter_mut().find(|d| d.key == svc.key) {
            Some(d) => merge_service(&mut d.value, svc.value),
            None => dst.push(svc),
        }
    }
}

fn merge_service(dst: &mut Node, src: Node) {
    let Value::Map(src_entries) = src.value else {
        return;
    };
    if !matches!(dst.value, Value::Map(_)) {
        dst.value = Value::Map(Vec::new());
    }
    let mut touched: Vec<String> = Vec::new();
    for e in src_entries {
        touched.push(e.key.clone());
        merge_field(dst, e, &[]);
    }
    // mergo calls the slice transformers whenever the base has the list, even when the
    // override has none: the base list is collapsed and sorted all the same.
    for key in ["ports", "volumes", "secrets", "configs"] {
        if touched.iter().any(|t| t == key) {
            continue;
        }
        if let Some(n) = dst.get_mut(key) {
            let items = std::mem::replace(&mut n.value, Value::Null);
            if let Value::Seq(items) = items {
                n.value = Value::Seq(keyed(key, items, Vec::new()));
            } else {
                n.value = items;
            }
        }
    }
}

/// mergo's notion of an empty value.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Int(i) => *i == 0,
        Value::Float(f) => *f == 0.0,
        Value::String(s) => s.is_empty(),
        Value::Seq(items) => items.is_empty(),
        Value::Map(entries) => entries.is_empty(),
    }
}

/// Merges one entry of a service (at `path` below the service) into `dst`, a mapping.
fn merge_field(dst: &mut Node, e: Entry, path: &[&str]) {
    let mut full: Vec<&str> = path.to_vec();
    full.push(e.key.as_str());
    let key = e.key.clone();
    let Some(d) = dst.get_mut(&key) else {
        // Nothing to merge with: the override's value is taken as it is (mergo sets nil fields).
        if let Value::Map(entries) = &mut dst.value {
            entries.push(e);
        }
        return;
    };
    let src = e.value;
    match full.as_slice() {
        ["ports"] | ["volumes"] | ["secrets"] | ["configs"] => {
            let dst_items = match std::mem::replace(&mut d.value, Value::Null) {
                Value::Seq(items) => items,
                _ => Vec::new(),
            };
            let src_items = match src.value {
                Value::Seq(items) => items,
                _ => Vec::new(),
            };
            d.value = Value::Seq(keyed(full[0], dst_items, src_items));
        }
        ["command"] | ["entrypoint"] => {
            if !is_empty(&src.value) {
                *d = src;
            }
        }
        ["logging"] => merge_logging(d, src),
        ["ulimits"] => {
            if let (Value::Map(dm), Value::Map(sm)) = (&mut d.value, src.value) {
                for s in sm {
                    match dm.iter_mut().find(|x| x.key == s.key) {
                        Some(x) if !is_empty(&s.value.value) => *x = s,
                        Some(_) => {}
                        None => dm.push(s),
                    }
                }
            }
        }
        ["networks"] => merge_networks(d, src),
        ["environment"] | ["build", "args"] => {
            // map[string]*string: a nil or empty override only fills a nil or empty base.
            if let (Value::Map(dm), Value::Map(sm)) = (&mut d.value, src.value) {
                for s in sm {
                    match dm.iter_mut().find(|x| x.key == s.key) {
                        Some(x) => {
                            if is_empty(&x.value.value) || !is_empty(&s.value.value) {
                                *x = s;
                            }
                        }
                        None => dm.push(s),
                    }
                }
            }
        }
        ["deploy", "replicas"]
        | ["healthcheck", "retries"]
        | ["deploy", "update_config", "parallelism"]
        | ["deploy", "rollback_config", "parallelism"]
        | ["deploy", "restart_policy", "max_attempts"] => {
            // *uint64 fields: any value given, 0 included, overrides.
            if !src.is_null() {
                *d = src;
            }
        }
        _ => {
            let is_extension = full.first().is_some_and(|k| k.starts_with("x-"));
            let string_map = matches!(
                full.as_slice(),
                ["labels"]
                    | ["deploy", "labels"]
                    | ["build", "labels"]
                    | ["sysctls"]
                    | ["logging", "options"]
            );
            match (&mut d.value, src.value) {
                (Value::Map(_), Value::Map(sm)) if string_map || is_extension => {
                    if let Value::Map(dm) = &mut d.value {
                        for s in sm {
                            match dm.iter_mut().find(|x| x.key == s.key) {
                                Some(x) if is_extension => deep_merge(&mut x.value, s.value),
                                Some(x) => *x = s,
                                None => dm.push(s),
                            }
                        }
                    }
                }
                (Value::Map(_), Value::Map(sm)) => {
                    for s in sm {
                        merge_field(d, s, &full);
                    }
                }
                (Value::Seq(di), Value::Seq(si)) => di.extend(si),
                (_, v) => {
                    if is_extension || !is_empty(&v) {
                        d.value = v;
                        d.mark = src.mark;
                    }
                }
            }
        }
    }
}

/// Generic merge of extension (`x-`) values: maps merge, lists append, scalars override.
fn deep_merge(dst: &mut Node, src: Node) {
    match (&mut dst.value, src.value) {
        (Value::Map(dm), Value::Map(sm)) => {
            for s in sm {
                match dm.iter_mut().find(|x| x.key == s.key) {
                    Some(x) => deep_merge(&mut x.value, s.value),
                    None => dm.push(s),
                }
            }
        }
        (Value::Seq(di), Value::Seq(si)) => di.extend(si),
        (_, v) => {
            dst.value = v;
            dst.mark = src.mark;
        }
    }
}

/// The key docker collapses a list on.
fn list_key(kind: &str, item: &Node) -> KeyVal {
    let field = match kind {
        "ports" => "published",
        "volumes" => "target",
        _ => "source",
    };
    match item.get(field).map(|n| &n.value) {
        Some(Value::Int(i)) => KeyVal::Int(*i),
        Some(Value::String(s)) => KeyVal::Str(s.clone()),
        _ if kind == "ports" => KeyVal::Int(0),
        _ => KeyVal::Str(String::new()),
    }
}

#[derive(PartialEq, Eq, PartialOrd, Ord, Clone)]
enum KeyVal {
    Int(i64),
    Str(String),
}

/// `mergeSlice`: base and override items into a map by key (later wins), sorted by key.
fn keyed(kind: &str, dst: Vec<Node>, src: Vec<Node>) -> Vec<Node> {
    let mut out: Vec<(KeyVal, Node)> = Vec::new();
    for item in dst.into_iter().chain(src) {
        let k = list_key(kind, &item);
        if let Some(slot) = out.iter_mut().find(|(x, _)| *x == k) {
            slot.1 = item;
        } else {
            out.push((k, item));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.into_iter().map(|(_, n)| n).collect()
}

fn driver(n: &Node) -> String {
    n.get("driver")
        .and_then(Node::as_str)
        .unwrap_or("")
        .to_string()
}

fn merge_logging(d: &mut Node, src: Node) {
    let (dd, sd) = (driver(d), driver(&src));
    if dd == sd || dd.is_empty() || sd.is_empty() {
        if dd.is_empty()
            && let Some(n) = src.get("driver")
        {
            d.set("driver", n.clone());
        }
        if let Some(Node {
            value: Value::Map(so),
            mark,
        }) = src.get("options").cloned()
        {
            if d.get("options").is_none() {
                d.set("options", Node::new(Value::Map(Vec::new()), mark));
            }
            if let Some(Node {
                value: Value::Map(dopts),
                ..
            }) = d.get_mut("options")
            {
                for o in so {
                    upsert(dopts, o);
                }
            }
        }
    } else {
        *d = src;
    }
}

fn merge_networks(d: &mut Node, src: Node) {
    let (Value::Map(dm), Value::Map(sm)) = (&mut d.value, src.value) else {
        return;
    };
    for s in sm {
        let Some(x) = dm.iter_mut().find(|x| x.key == s.key) else {
            dm.push(s);
            continue;
        };
        if x.value.is_null() {
            *x = s;
            continue;
        }
        if s.value.is_null() {
            continue;
        }
        // mergeServiceNetworkConfig: aliases replaced, addresses overridden when set.
        match s.value.get("aliases") {
            Some(a) => x.value.set("aliases", a.clone()),
            None => {
                x.value.remove("aliases");
            }
        }
        for key in ["ipv4_address", "ipv6_address"] {
            if let Some(v) = s.value.get(key)
                && !is_empty(&v.value)
            {
                x.value.set(key, v.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::parse_str;

    fn merged(a: &str, b: &str) -> serde_json::Value {
        let mut base = parse_str("a.yml", a).expect("a");
        let over = parse_str("b.yml", b).expect("b");
        merge_files(&mut base, over);
        base.to_json()
    }

    #[test]
    fn services_merge_like_docker() {
        let out = merged(
            concat!(
                "version: '3.8'\nx-top: 1\n",
                "services:\n  web:\n    image: a\n    read_only: true\n",
                "    deploy: {replicas: 3, labels: {a: '1'}}\n",
                "    dns: [1.1.1.1]\n    command: [a, b]\n",
                "    environment: {A: '1', E: ''}\n",
                "    healthcheck: {test: [CMD, a]}\n",
                "    ports: [{target: 80, protocol: tcp}, {target: 81, protocol: tcp}]\n",
                "    logging: {driver: json-file, options: {max-size: 1m}}\n",
                "    networks: {front: {aliases: [x]}}\n",
                "volumes:\n  v: {driver: local, labels: {a: b}}\n",
            ),
            concat!(
                "version: '3.9'\nx-top: 2\n",
                "services:\n  web:\n    image: b\n    read_only: false\n",
                "    deploy: {replicas: 0, labels: {b: '2'}}\n",
                "    dns: [8.8.8.8]\n    command: [c]\n",
                "    environment: {B: '2', E: ~}\n",
                "    healthcheck: {test: [CMD, b]}\n",
                "    ports: [{target: 82, protocol: tcp}, {target: 70, published: 7000, protocol: udp}]\n",
                "    logging: {options: {max-file: '3'}}\n",
                "    networks: {front: {aliases: [y]}, back: ~}\n",
                "  cache:\n    image: redis\n",
                "volumes:\n  v: {driver: other}\n",
            ),
        );
        let web = &out["services"]["web"];
        assert_eq!(web["image"], "b");
        assert_eq!(web["read_only"], true);
        assert_eq!(web["deploy"]["replicas"], 0);
        assert_eq!(
            web["deploy"]["labels"],
            serde_json::json!({"a": "1", "b": "2"})
        );
        assert_eq!(web["dns"], serde_json::json!(["1.1.1.1", "8.8.8.8"]));
        assert_eq!(web["command"], serde_json::json!(["c"]));
        assert_eq!(
            web["environment"],
            serde_json::json!({"A": "1", "E": null, "B": "2"})
        );
        assert_eq!(
            web["healthcheck"]["test"],
            serde_json::json!(["CMD", "a", "CMD", "b"])
        );
        assert_eq!(
            web["ports"],
            serde_json::json!([
                {"target": 82, "protocol": "tcp"},
                {"target": 70, "published": 7000, "protocol": "udp"}
            ])
        );
        assert_eq!(
            web["logging"],
            serde_json::json!({"driver": "json-file", "options": {"max-size": "1m", "max-file": "3"}})
        );
        assert_eq!(
            web["networks"],
            serde_json::json!({"front": {"aliases": ["y"]}, "back": null})
        );
        assert_eq!(out["services"]["cache"]["image"], "redis");
        assert_eq!(out["volumes"]["v"], serde_json::json!({"driver": "other"}));
        assert_eq!(out["x-top"], 1);
        assert_eq!(out["version"], "3.8");
    }

    #[test]
    fn base_lists_collapse_even_without_override() {
        let out = merged(
            concat!(
                "services:\n  web:\n    image: a\n",
                "    ports: [{target: 80}, {target: 81}, {target: 90, published: 9000}]\n",
                "    volumes: [{type: bind, source: /z, target: /z}, {type: bind, source: /a, target: /a}]\n",
            ),
            "services:\n  web:\n    image: a\n",
        );
        let web = &out["services"]["web"];
        assert_eq!(
            web["ports"],
            serde_json::json!([{"target": 81}, {"target": 90, "published": 9000}])
        );
        assert_eq!(web["volumes"][0]["target"], "/a");
    }
}
