use jsonschema::json::{Node as _, Object as _};

use super::*;
use crate::load::yaml::parse_str;

/// A schema that touches every kind of value and keyword the stack schemas use.
fn schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "properties": {
            "s": {"type": "string", "minLength": 2, "pattern": "^[a-z]+$"},
            "i": {"type": "integer", "minimum": 0, "maximum": 10},
            "n": {"type": ["number", "string"]},
            "b": {"type": "boolean"},
            "z": {"type": "null"},
            "e": {"enum": ["a", 1, null, true]},
            "c": {"const": {"k": [1, 2.0]}},
            "a": {"type": "array", "items": {"type": "string"}, "uniqueItems": true, "maxItems": 3},
            "o": {
                "type": "object",
                "patternProperties": {"^x-": {}},
                "additionalProperties": {"type": "integer"},
                "propertyNames": {"pattern": "^[a-z-]+$"},
                "required": ["r"]
            },
            "any": {"oneOf": [{"type": "string"}, {"type": "array"}]},
            "d": {"type": "string", "format": "duration"}
        },
        "additionalProperties": false
    })
}

#[test]
fn answers_as_the_json_copy_does() {
    let copy = jsonschema::options()
        .should_validate_formats(true)
        .with_format("duration", crate::load::schema::is_go_duration)
        .build(&schema())
        .expect("schema");
    let tree = jsonschema::options_for::<Tree>()
        .should_validate_formats(true)
        .with_format("duration", crate::load::schema::is_go_duration)
        .build(&schema())
        .expect("schema");
    let docs = [
        "s: ab\ni: 3\nn: 1.5\nb: true\nz: ~\ne: a\nc: {k: [1, 2]}\na: [x, y]\no: {r: 1, x-a: [], b-c: 2}\nany: [1]\nd: 1m30s\n",
        "s: a\n",
        "s: AB\n",
        "s: 12\n",
        "i: -1\n",
        "i: 11\n",
        "i: 1.0\n",
        "i: 1.5\n",
        "i: '1'\n",
        "n: .nan\n",
        "n: .inf\n",
        "n: 0x10\n",
        "b: 'true'\n",
        "z: ''\n",
        "e: 1\n",
        "e: '1'\n",
        "e: ~\n",
        "e: b\n",
        "c: {k: [1, 2]}\n",
        "c: {k: [1, 3]}\n",
        "a: [x, x]\n",
        "a: [x, 1]\n",
        "a: [a, b, c, d]\n",
        "o: {x-a: 1}\n",
        "o: {r: x}\n",
        "o: {r: 1, Bad: 1}\n",
        "any: 1\n",
        "any: s\n",
        "d: 10\n",
        "d: 10x\n",
        "unknown: 1\n",
        "{}\n",
    ];
    for doc in docs {
        let node = parse_str("s.yml", doc).expect("yaml");
        let json = node.to_json();
        assert_eq!(
            tree.is_valid(&node),
            copy.is_valid(&json),
            "{doc:?}: the tree and its JSON copy disagree"
        );
    }
}

#[test]
fn nodes_read_as_their_json() {
    let node = parse_str("s.yml", "a: 1\nb: -2.5\nc: .inf\nd: x\ne: [1]\nf: ~\n").expect("yaml");
    let root = &node;
    let object = root.as_object().expect("object");
    assert_eq!(object.len(), 6);
    let get = |k: &str| object.get(&k.to_string()).expect(k);
    assert_eq!(get("a").as_number().and_then(|n| n.as_u64()), Some(1));
    assert_eq!(get("b").as_number().and_then(|n| n.as_f64()), Some(-2.5));
    // (The trait's answer, not `Node::is_null`'s.)
    assert!(
        json::Node::is_null(&get("c")),
        "a non-finite float is null in JSON"
    );
    assert_eq!(get("c").json_type(), JsonType::Null);
    assert_eq!(get("d").as_string().as_deref(), Some("x"));
    assert_eq!(get("e").as_array().map(|a| a.len()), Some(1));
    assert!(json::Node::is_null(&get("f")));
    assert!(object.get(&"g".to_string()).is_none());
    for name in ["a", "b", "c", "d", "e", "f"] {
        assert_eq!(
            get(name).to_value().into_owned(),
            get(name).to_json(),
            "{name}"
        );
    }
}

/// The stack schemas themselves, over every shared fixture, the project's own fixtures and a few
/// invalid services, in both dialects.
#[test]
fn stack_schemas_answer_as_on_the_json_copy() {
    use crate::load::Dialect;
    use crate::load::schema::{tree_validator, validator};
    let (Ok(Some(_)), Ok(Some(_))) = (tree_validator(Dialect::Swarm), validator(Dialect::Swarm))
    else {
        println!("this build has no schemas: nothing to compare");
        return;
    };
    let mut texts: Vec<(String, String)> = Vec::new();
    let service = "version: '3.8'\nservices:\n  a:\n    image: x\n";
    for (name, extra) in [
        ("replicas", "    deploy:\n      replicas: x\n"),
        (
            "port",
            "    ports:\n      - target: '80'\n        mode: nope\n",
        ),
        ("unknown", "    imag: y\n"),
        (
            "healthcheck",
            "    healthcheck:\n      retries: -1.5\n      interval: 10\n",
        ),
        (
            "limits",
            "    deploy:\n      resources:\n        limits: {cpus: [1]}\n",
        ),
        (
            "valid",
            "    deploy:\n      mode: global\n      resources: {limits: {cpus: '0.5'}}\n",
        ),
    ] {
        texts.push((name.to_string(), format!("{service}{extra}")));
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![root.join("../tests/fixtures"), root.join("tests")];
    let shared = root.join("../../shared/fixtures/stacks");
    if shared.is_dir() {
        dirs.push(shared);
    } else {
        println!("../shared is absent: only the project's fixtures are checked");
    }
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "yml" || x == "yaml")
                && let Ok(text) = std::fs::read_to_string(&p)
            {
                texts.push((p.display().to_string(), text));
            }
        }
    }
    let (mut checked, mut invalid) = (0, 0);
    for (name, text) in &texts {
        let Ok(node) = parse_str("s.yml", text) else {
            continue;
        };
        let json = node.to_json();
        for dialect in [Dialect::Swarm, Dialect::Compose] {
            let (Ok(Some(tree)), Ok(Some(copy))) = (tree_validator(dialect), validator(dialect))
            else {
                continue;
            };
            let valid = copy.is_valid(&json);
            assert_eq!(tree.is_valid(&node), valid, "{name} ({dialect:?})");
            checked += 1;
            invalid += usize::from(!valid);
        }
    }
    println!("{checked} checks, {invalid} invalid");
    assert!(
        checked > 40 && invalid > 10,
        "{checked} checks, {invalid} invalid"
    );
}
