//! Every `examples/*.yaml` parses and validates, and survives a serialize/parse round trip.

use std::path::Path;

#[test]
fn every_example_parses_and_validates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut seen = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("examples folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    entries.sort();
    for path in entries {
        let text = std::fs::read_to_string(&path).expect("read example");
        let file =
            mappings::parse_yaml(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!file.services.is_empty(), "{}", path.display());
        let json = serde_json::to_string(&file).expect("serialize");
        let back = mappings::parse_yaml(&json).expect("JSON is YAML; round trip");
        assert_eq!(back, file, "{}", path.display());
        seen += 1;
    }
    assert!(seen >= 2, "expected at least two examples, found {seen}");
}

#[test]
fn shop_example_has_the_expected_shape() {
    let text = include_str!("../examples/shop.yaml");
    let file = mappings::parse_yaml(text).expect("shop parses");
    let orders = &file.services[0];
    let grpc = orders.grpc.as_ref().expect("orders is gRPC");
    assert_eq!(grpc.service, "shop.orders.v1.Orders");
    assert_eq!(grpc.rules[2].verb, mappings::Verb::Post);
    assert_eq!(grpc.rules[2].body.as_deref(), Some("*"));
    assert!(file.services[1].grpc.is_none());
    assert_eq!(file.legacy[0].eureka_app, "INVENTORY");
}

#[test]
fn custom_verb_parses() {
    let text = include_str!("../examples/library.yaml");
    let file = mappings::parse_yaml(text).expect("library parses");
    let rules = &file.services[0].grpc.as_ref().expect("gRPC").rules;
    assert_eq!(
        rules[5].verb,
        mappings::Verb::Custom {
            kind: "HEAD".into()
        }
    );
}
