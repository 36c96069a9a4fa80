//! Each validation and parse error, with its exact message and entry path.

/// A one-service file whose `orders` entry gets `extra` appended (indented as its fields).
fn one(extra: &str) -> String {
    format!(
        "services:\n  - swarm_name: orders\n    kubernetes_host: orders.shop.svc\n    ports: [9090]\n    eureka_app: ORDERS\n    vip_address: orders\n{extra}"
    )
}

/// A gRPC block on the `orders` entry with the given rules (YAML list items at 6 spaces).
fn grpc(rules: &str) -> String {
    one(&format!(
        "    grpc:\n      service: shop.orders.v1.Orders\n      rules:\n{rules}"
    ))
}

/// A single rule with the given `path`, `body` and `response_body` lines.
fn rule(selector: &str, verb: &str, path: &str, more: &str) -> String {
    format!(
        "        - selector: {selector}\n          verb: {verb}\n          path: \"{path}\"\n{more}"
    )
}

fn err(yaml: &str) -> String {
    match mappings::parse_yaml(yaml) {
        Ok(f) => panic!("accepted: {f:?}\n{yaml}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn validation_errors_name_the_entry_and_field() {
    let second = "  - swarm_name: orders\n    kubernetes_host: orders2\n    eureka_app: ORDERS2\n    vip_address: o2\n";
    let cases: Vec<(String, &str)> = vec![
        (
            one("").replace("eureka_app: ORDERS", "eureka_app: \" \""),
            "services[0].eureka_app: must not be empty",
        ),
        (
            one("").replace("orders.shop.svc", "Orders_Svc"),
            "services[0].kubernetes_host: 'Orders_Svc' is not a valid DNS-1123 subdomain (lowercase letters, digits, '-' and '.')",
        ),
        (
            one("").replace("[9090]", "[80, 0]"),
            "services[0].ports[1]: 0 is not a port (1-65535)",
        ),
        (
            one(second),
            "services[1].swarm_name: 'orders' is used by an earlier entry; names must be unique",
        ),
        (
            one("    grpc:\n      service: Orders\n"),
            "services[0].grpc.service: 'Orders' is not a full gRPC service name (package.Service)",
        ),
        (
            one("    grpc:\n      service: \"\"\n"),
            "services[0].grpc.service: must not be empty",
        ),
        (
            grpc(&rule("shop.Other.Get", "get", "/x", "")),
            "services[0].grpc.rules[0].selector: 'shop.Other.Get' names a method outside 'shop.orders.v1.Orders'",
        ),
        (
            grpc(&rule("\"Get-It\"", "get", "/x", "")),
            "services[0].grpc.rules[0].selector: 'Get-It' is not a method name (an identifier)",
        ),
        (
            grpc(&rule("\"\"", "get", "/x", "")),
            "services[0].grpc.rules[0].selector: must not be empty",
        ),
        (
            grpc(&rule("Get", "{custom: {kind: \"\"}}", "/x", "")),
            "services[0].grpc.rules[0].verb: '' is not an HTTP method name (letters only)",
        ),
        (
            grpc(&rule("Get", "get", "x", "")),
            "services[0].grpc.rules[0].path: 'x' must start with '/'",
        ),
        (
            grpc(&(rule("Get", "get", "/a", "") + &rule("List", "get", "/v1/{name", ""))),
            "services[0].grpc.rules[1].path: '/v1/{name' has a '{' without a matching '}'",
        ),
        (
            grpc(&rule("Get", "get", "/v1/{name=**}/x", "")),
            "services[0].grpc.rules[0].path: '/v1/{name=**}/x' uses '**' before the last segment",
        ),
        (
            grpc(&rule("Get", "get", "/v1/{1x}", "")),
            "services[0].grpc.rules[0].path: '/v1/{1x}' has a variable '1x' that is not a field path (identifiers joined by '.')",
        ),
        (
            grpc(&rule("Get", "post", "/x", "          body: \"a..b\"\n")),
            "services[0].grpc.rules[0].body: 'a..b' is neither '*' nor a field path (identifiers joined by '.')",
        ),
        (
            grpc(&rule(
                "Get",
                "get",
                "/x",
                "          response_body: \"*\"\n",
            )),
            "services[0].grpc.rules[0].response_body: '*' is not a field path (identifiers joined by '.')",
        ),
        (
            grpc(&(rule("Get", "get", "/v1/{id}", "") + &rule("Fetch", "get", "/v1/{id}", ""))),
            "services[0].grpc.rules[1]: GET /v1/{id} is already mapped by an earlier rule of this service",
        ),
        (
            one(
                "legacy:\n  - eureka_app: INV\n    grpc: {service: inv.Inv}\n  - eureka_app: inv\n    grpc: {service: inv.Inv}\n",
            ),
            "legacy[1].eureka_app: 'inv' is used by an earlier entry; names must be unique",
        ),
        (
            one(
                "legacy:\n  - eureka_app: INV\n    grpc:\n      service: inv.Inv\n      rules:\n        - {selector: Get, verb: get, path: /i/**/x}\n",
            ),
            "legacy[0].grpc.rules[0].path: '/i/**/x' uses '**' before the last segment",
        ),
    ];
    for (yaml, want) in cases {
        assert_eq!(err(&yaml), want, "\n{yaml}");
    }
}

#[test]
fn same_path_with_other_verbs_is_fine() {
    let yaml = grpc(
        &(rule("Get", "get", "/v1/{id}", "")
            + &rule("Put", "put", "/v1/{id}", "          body: \"*\"\n")
            + &rule("Head", "{custom: {kind: HEAD}}", "/v1/{id}", "")),
    );
    assert!(mappings::parse_yaml(&yaml).is_ok());
}

#[test]
fn syntax_errors_carry_line_column_and_field_path() {
    let cases: Vec<(String, &str)> = vec![
        (
            one("    colour: blue\n"),
            "line 7, column 5: services[0].colour: unknown field `colour`, expected one of swarm_name, kubernetes_host, ports, eureka_app, vip_address, grpc",
        ),
        (
            grpc(&rule("Get", "fetch", "/x", "")),
            "line 11, column 17: services[0].grpc.rules[0].verb: unknown variant `fetch`, expected one of get, put, post, delete, patch, custom",
        ),
        (
            one("").replace("[9090]", "[70000]"),
            "line 4, column 13: services[0].ports[0]: invalid u16",
        ),
        (
            "services: [\n".to_string(),
            "line 1, column 11: services: unclosed bracket '['",
        ),
    ];
    for (yaml, want) in cases {
        assert_eq!(err(&yaml), want, "\n{yaml}");
    }
}
