//! The routing table of the HTTP→gRPC lane: which gRPC method an HTTP request reaches, built from
//! the `google.api.http` options of a descriptor pool or from explicit rules.

use std::fmt;
use std::sync::Arc;

use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor,
    Value,
};

use super::template::{Bound, Template, TemplateError, Unescape};

/// The full name of the method option holding an `HttpRule` (field 72295728).
pub const HTTP_EXTENSION: &str = "google.api.http";

/// The HTTP method a binding answers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verb {
    /// One HTTP method (`get`, `post`, ... or a `custom` kind such as `HEAD`).
    Method(http::Method),
    /// `custom { kind: "*" }`: any HTTP method.
    Any,
}

impl Verb {
    /// Parses `GET`, `post`, `SEARCH` or `*`.
    pub fn parse(s: &str) -> Option<Self> {
        if s == "*" {
            return Some(Self::Any);
        }
        http::Method::from_bytes(s.to_ascii_uppercase().as_bytes())
            .ok()
            .map(Self::Method)
    }

    fn accepts(&self, m: &http::Method) -> bool {
        match self {
            Self::Any => true,
            Self::Method(own) => own == m,
        }
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Method(m) => f.write_str(m.as_str()),
            Self::Any => f.write_str("*"),
        }
    }
}

/// Which part of the request message the HTTP body carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyRule {
    /// No body (`body` omitted): every field not in the path is a query parameter.
    None,
    /// `body: "*"`: every field not bound by the path.
    Whole,
    /// `body: "field"`: one top-level field.
    Field(String),
}

impl BodyRule {
    /// Reads the `body` string of an `HttpRule`.
    pub fn parse(s: &str) -> Self {
        match s {
            "" => Self::None,
            "*" => Self::Whole,
            f => Self::Field(f.to_string()),
        }
    }
}

/// One HTTP rule, as written in a proto option or a mapping file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The method: `pkg.Service.Method` or `/pkg.Service/Method`.
    pub selector: String,
    /// `GET`, `POST`, ..., a custom method, or `*`.
    pub verb: String,
    /// The path template.
    pub path: String,
    /// `""`, `"*"` or a top-level request field.
    pub body: String,
    /// `""` or a top-level response field sent as the whole HTTP body.
    pub response_body: String,
}

/// A rule checked against the descriptors: ready to match requests and to build them.
#[derive(Debug, Clone)]
pub struct Binding {
    /// The gRPC method.
    pub method: MethodDescriptor,
    /// The HTTP method.
    pub verb: Verb,
    /// The path template.
    pub template: Template,
    /// What the body carries.
    pub body: BodyRule,
    /// The response field sent instead of the whole response.
    pub response_body: Option<String>,
    /// `/pkg.Service/Method`, parsed once: every call's request URI uses it.
    path: http::uri::PathAndQuery,
}

impl Binding {
    /// The gRPC request path, `/pkg.Service/Method`.
    pub fn grpc_path(&self) -> &str {
        self.path.as_str()
    }
}

/// The gRPC path of a method, `/pkg.Service/Method`.
pub fn grpc_path(m: &MethodDescriptor) -> String {
    format!("/{}/{}", m.parent_service().full_name(), m.name())
}

/// A request matched to a binding.
#[derive(Debug, Clone)]
pub struct Match {
    /// The gRPC method to call.
    pub method: MethodDescriptor,
    /// Decoded path variable values, in template order.
    pub bindings: Bound,
    /// What the body carries.
    pub body: BodyRule,
    /// The response field sent instead of the whole response.
    pub response_body: Option<String>,
    /// The binding that matched.
    pub binding: Arc<Binding>,
}

/// Options of a routing table.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Also route `POST /pkg.Service/Method` (body `*`) to every method, as Envoy's
    /// `auto_mapping`. Default off.
    pub auto_mapping: bool,
    /// Only these fully-qualified services; empty means every service of the pool.
    pub services: Vec<String>,
    /// Percent-decoding of multi-segment variables. Default [`Unescape::ExceptSlash`].
    pub unescape: Unescape,
}

/// A rule that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// The selector names no method of the pool.
    #[error("rule for {selector}: no such method")]
    UnknownMethod {
        /// The selector.
        selector: String,
    },
    /// A listed service is not in the pool.
    #[error("service {service} is not in the descriptors")]
    UnknownService {
        /// The service.
        service: String,
    },
    /// The verb is not an HTTP method.
    #[error("rule for {selector}: bad HTTP method {verb:?}")]
    BadVerb {
        /// The selector.
        selector: String,
        /// The verb.
        verb: String,
    },
    /// An `HttpRule` option has no pattern.
    #[error("rule for {selector}: no get/put/post/delete/patch/custom pattern")]
    NoPattern {
        /// The selector.
        selector: String,
    },
    /// The path template is malformed.
    #[error("rule for {selector}: {source}")]
    Template {
        /// The selector.
        selector: String,
        /// What is wrong.
        #[source]
        source: TemplateError,
    },
    /// A field path of the rule does not fit the message.
    #[error("rule for {selector}: {what} {field}: {reason}")]
    Field {
        /// The selector.
        selector: String,
        /// `path variable`, `body` or `response_body`.
        what: &'static str,
        /// The field path.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// Two bindings match exactly the same requests.
    #[error("{verb} {shape} is bound to both {first} and {second}")]
    Conflict {
        /// The HTTP method.
        verb: String,
        /// The template with variable names erased.
        shape: String,
        /// The first method.
        first: String,
        /// The second method.
        second: String,
    },
}

/// The routing table.
#[derive(Debug, Clone, Default)]
pub struct Table {
    bindings: Vec<Arc<Binding>>,
    unescape: Unescape,
}

impl Table {
    /// Builds the table from every method's `google.api.http` option (and its
    /// `additional_bindings`) in `pool`, plus auto mapping when enabled.
    pub fn from_pool(pool: &DescriptorPool, options: &Options) -> Result<Self, RouteError> {
        let mut table = Table {
            bindings: Vec::new(),
            unescape: options.unescape,
        };
        for s in &options.services {
            if pool.get_service_by_name(s).is_none() {
                return Err(RouteError::UnknownService { service: s.clone() });
            }
        }
        let ext = pool.get_extension_by_name(HTTP_EXTENSION);
        for service in pool.services() {
            if !options.services.is_empty()
                && !options.services.iter().any(|s| s == service.full_name())
            {
                continue;
            }
            for method in service.methods() {
                let selector = method.full_name().to_string();
                if let Some(ext) = &ext
                    && method.options().has_extension(ext)
                {
                    let opt = method.options();
                    let Some(rule) = opt.get_extension(ext).as_message().cloned() else {
                        continue;
                    };
                    table.push_http_rule(&method, &selector, &rule)?;
                    if let Some(extra) = rule.get_field_by_name("additional_bindings")
                        && let Some(list) = extra.as_list()
                    {
                        for r in list.iter().filter_map(Value::as_message) {
                            table.push_http_rule(&method, &selector, r)?;
                        }
                    }
                }
            }
        }
        if options.auto_mapping {
            table.add_auto_mapping(pool, &options.services)?;
        }
        Ok(table)
    }

    /// Builds the table from explicit rules (a mapping file), resolved against `pool`. Several
    /// rules may name one method: each is one binding, the first being the primary one.
    pub fn from_rules<'a>(
        pool: &DescriptorPool,
        rules: impl IntoIterator<Item = &'a Rule>,
        options: &Options,
    ) -> Result<Self, RouteError> {
        let mut table = Table {
            bindings: Vec::new(),
            unescape: options.unescape,
        };
        table.add_rules(pool, rules)?;
        if options.auto_mapping {
            table.add_auto_mapping(pool, &options.services)?;
        }
        Ok(table)
    }

    /// Adds explicit rules to a table, e.g. mapping-file rules on top of the proto annotations.
    /// A rule matching exactly the requests of an existing binding is a conflict.
    pub fn add_rules<'a>(
        &mut self,
        pool: &DescriptorPool,
        rules: impl IntoIterator<Item = &'a Rule>,
    ) -> Result<(), RouteError> {
        for rule in rules {
            let method =
                find_method(pool, &rule.selector).ok_or_else(|| RouteError::UnknownMethod {
                    selector: rule.selector.clone(),
                })?;
            let verb = Verb::parse(&rule.verb).ok_or_else(|| RouteError::BadVerb {
                selector: rule.selector.clone(),
                verb: rule.verb.clone(),
            })?;
            self.push(
                method,
                &rule.selector,
                verb,
                &rule.path,
                &rule.body,
                &rule.response_body,
            )?;
        }
        Ok(())
    }

    fn add_auto_mapping(
        &mut self,
        pool: &DescriptorPool,
        only: &[String],
    ) -> Result<(), RouteError> {
        for service in pool.services() {
            if !only.is_empty() && !only.iter().any(|s| s == service.full_name()) {
                continue;
            }
            for method in service.methods() {
                let path = grpc_path(&method);
                let selector = method.full_name().to_string();
                // A hand-written rule for the same request wins over the generated one.
                let taken = self.bindings.iter().any(|b| {
                    b.template.as_str() == path && b.verb == Verb::Method(http::Method::POST)
                });
                if !taken {
                    self.push(
                        method,
                        &selector,
                        Verb::Method(http::Method::POST),
                        &path,
                        "*",
                        "",
                    )?;
                }
            }
        }
        Ok(())
    }

    fn push_http_rule(
        &mut self,
        method: &MethodDescriptor,
        selector: &str,
        rule: &DynamicMessage,
    ) -> Result<(), RouteError> {
        let text = |name: &str| {
            rule.get_field_by_name(name)
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        };
        let mut found = None;
        for kind in ["get", "put", "post", "delete", "patch"] {
            if rule.has_field_by_name(kind) {
                let verb = Verb::parse(kind).ok_or_else(|| RouteError::BadVerb {
                    selector: selector.to_string(),
                    verb: kind.to_string(),
                })?;
                found = Some((verb, text(kind)));
            }
        }
        if rule.has_field_by_name("custom")
            && let Some(custom) = rule.get_field_by_name("custom")
            && let Some(c) = custom.as_message()
        {
            let field = |n: &str| {
                c.get_field_by_name(n)
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            };
            let kind = field("kind");
            let verb = Verb::parse(&kind).ok_or_else(|| RouteError::BadVerb {
                selector: selector.to_string(),
                verb: kind.clone(),
            })?;
            found = Some((verb, field("path")));
        }
        let (verb, path) = found.ok_or_else(|| RouteError::NoPattern {
            selector: selector.to_string(),
        })?;
        self.push(
            method.clone(),
            selector,
            verb,
            &path,
            &text("body"),
            &text("response_body"),
        )
    }

    fn push(
        &mut self,
        method: MethodDescriptor,
        selector: &str,
        verb: Verb,
        path: &str,
        body: &str,
        response_body: &str,
    ) -> Result<(), RouteError> {
        let template = Template::parse(path).map_err(|source| RouteError::Template {
            selector: selector.to_string(),
            source,
        })?;
        let field_err = |what, field: &str, reason: String| RouteError::Field {
            selector: selector.to_string(),
            what,
            field: field.to_string(),
            reason,
        };
        for v in template.variables() {
            let leaf = resolve(&method.input(), v.field_path.parts())
                .map_err(|r| field_err("path variable", &v.field_path.to_string(), r))?;
            if leaf.is_list() || leaf.is_map() {
                return Err(field_err(
                    "path variable",
                    &v.field_path.to_string(),
                    "is repeated".into(),
                ));
            }
            if matches!(leaf.kind(), Kind::Message(_)) {
                return Err(field_err(
                    "path variable",
                    &v.field_path.to_string(),
                    "is a message".into(),
                ));
            }
        }
        let body = BodyRule::parse(body);
        if let BodyRule::Field(f) = &body {
            let field = method.input().get_field_by_name(f).ok_or_else(|| {
                field_err(
                    "body",
                    f,
                    format!("no such field in {}", method.input().full_name()),
                )
            })?;
            if field.is_list() || field.is_map() {
                return Err(field_err("body", f, "is repeated".into()));
            }
        }
        let response_body = match response_body {
            "" => None,
            f => {
                method.output().get_field_by_name(f).ok_or_else(|| {
                    field_err(
                        "response_body",
                        f,
                        format!("no such field in {}", method.output().full_name()),
                    )
                })?;
                Some(f.to_string())
            }
        };
        let shape = template.shape();
        if let Some(other) = self
            .bindings
            .iter()
            .find(|b| b.template.shape() == shape && b.verb == verb)
        {
            return Err(RouteError::Conflict {
                verb: verb.to_string(),
                shape,
                first: other.method.full_name().to_string(),
                second: method.full_name().to_string(),
            });
        }
        // Proto names are identifiers, so this holds for any method a pool can have.
        let text = grpc_path(&method);
        let path =
            http::uri::PathAndQuery::try_from(text.as_str()).map_err(|e| RouteError::Field {
                selector: method.full_name().to_string(),
                what: "gRPC path",
                field: text.clone(),
                reason: e.to_string(),
            })?;
        self.bindings.push(Arc::new(Binding {
            method,
            verb,
            template,
            body,
            response_body,
            path,
        }));
        Ok(())
    }

    /// Every binding, in the order they were added.
    pub fn bindings(&self) -> &[Arc<Binding>] {
        &self.bindings
    }

    /// The primary binding of a method (its own rule, not an additional binding): what the
    /// reverse lane uses to call a legacy service. Accepts `pkg.Service.Method` or
    /// `/pkg.Service/Method`.
    pub fn primary(&self, method: &str) -> Option<&Binding> {
        let name = normalise_selector(method);
        self.bindings
            .iter()
            .find(|b| b.method.full_name() == name)
            .map(|b| b.as_ref())
    }

    /// Finds the binding for an HTTP request. `path` may carry a query string, which is ignored.
    /// Of several matching bindings the most specific template wins (literal segments before
    /// variables, then a custom verb before none).
    pub fn find(&self, method: &http::Method, path: &str) -> Option<Match> {
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        let mut best: Option<(&Arc<Binding>, Bound)> = None;
        for b in &self.bindings {
            if !b.verb.accepts(method) {
                continue;
            }
            let Some(vals) = b.template.matches(path, self.unescape) else {
                continue;
            };
            let better = match &best {
                None => true,
                // An exact verb beats a `*` custom rule of the same shape.
                Some((cur, _)) => {
                    let (r, c) = (b.template.rank(), cur.template.rank());
                    r > c || (r == c && cur.verb == Verb::Any && b.verb != Verb::Any)
                }
            };
            if better {
                best = Some((b, vals));
            }
        }
        best.map(|(b, bindings)| Match {
            method: b.method.clone(),
            bindings,
            body: b.body.clone(),
            response_body: b.response_body.clone(),
            binding: Arc::clone(b),
        })
    }
}

fn normalise_selector(s: &str) -> String {
    let s = s.trim_start_matches('/');
    match s.split_once('/') {
        Some((svc, m)) => format!("{svc}.{m}"),
        None => s.to_string(),
    }
}

/// Finds a method by `pkg.Service.Method` or `/pkg.Service/Method`.
pub fn find_method(pool: &DescriptorPool, selector: &str) -> Option<MethodDescriptor> {
    let name = normalise_selector(selector);
    let (svc, m) = name.rsplit_once('.')?;
    pool.get_service_by_name(svc)?
        .methods()
        .find(|x| x.name() == m)
}

/// Walks a field path through singular message fields, returning the leaf field.
pub fn resolve(msg: &MessageDescriptor, path: &[String]) -> Result<FieldDescriptor, String> {
    let mut desc = msg.clone();
    let mut iter = path.iter().peekable();
    while let Some(name) = iter.next() {
        let field = desc
            .get_field_by_name(name)
            .ok_or_else(|| format!("no field {name:?} in {}", desc.full_name()))?;
        if iter.peek().is_none() {
            return Ok(field);
        }
        match field.kind() {
            Kind::Message(m) if !field.is_list() && !field.is_map() => desc = m,
            _ => return Err(format!("{name} is not a singular message field")),
        }
    }
    Err("empty field path".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn pool(file: &str) -> Option<DescriptorPool> {
        let Some(dir) = rpc::reference_protos() else {
            println!("skipped: {} is absent", rpc::REFERENCE_PROTOS);
            return None;
        };
        Some(rpc::compile(file, &[&dir]).expect("test protos compile"))
    }

    fn found(t: &Table, m: http::Method, path: &str) -> Option<(String, Vec<(String, String)>)> {
        t.find(&m, path).map(|x| {
            (
                x.method.name().to_string(),
                x.bindings
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            )
        })
    }

    fn b(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn shop_table_from_annotations() {
        let Some(pool) = pool("demo/shop.proto") else {
            return;
        };
        let t = Table::from_pool(&pool, &Options::default()).expect("table builds");
        use http::Method as M;
        type Case<'a> = (M, &'a str, Option<(&'a str, Vec<(String, String)>)>);
        let cases: Vec<Case> = vec![
            (
                M::GET,
                "/v1/orders/42",
                Some(("GetOrder", b(&[("order_id", "42")]))),
            ),
            (
                M::GET,
                "/v1/customers/c1/orders/42",
                Some(("GetOrder", b(&[("customer_id", "c1"), ("order_id", "42")]))),
            ),
            (M::GET, "/v1/orders", Some(("ListOrders", b(&[])))),
            (
                M::GET,
                "/v1/orders?page_size=3",
                Some(("ListOrders", b(&[]))),
            ),
            (M::POST, "/v1/orders", Some(("CreateOrder", b(&[])))),
            (
                M::PATCH,
                "/v1/orders/42",
                Some(("UpdateOrder", b(&[("order.order_id", "42")]))),
            ),
            (
                M::POST,
                "/v1/orders/42:cancel",
                Some(("CancelOrder", b(&[("order_id", "42")]))),
            ),
            (
                M::GET,
                "/v1/orders/42:watch",
                Some(("WatchOrder", b(&[("order_id", "42")]))),
            ),
            // Not a registered verb for GET: the colon stays in the id.
            (
                M::GET,
                "/v1/orders/42:cancel",
                Some(("GetOrder", b(&[("order_id", "42:cancel")]))),
            ),
            (
                M::DELETE,
                "/v1/orders/42",
                Some(("DeleteOrder", b(&[("order_id", "42")]))),
            ),
            (
                M::GET,
                "/v1/shelves/s1/books/b2",
                Some(("GetBook", b(&[("name", "shelves/s1/books/b2")]))),
            ),
            (
                M::GET,
                "/v1/buckets/pics/objects/2024/a%2Fb.png",
                Some((
                    "GetObject",
                    b(&[("bucket", "pics"), ("object", "2024/a%2Fb.png")]),
                )),
            ),
            (M::PUT, "/v1/orders/42", None),
            (M::GET, "/v1/shelves/s1", None),
            (M::POST, "/demo.shop.v1.Orders/Ping", None),
        ];
        for (m, path, want) in cases {
            let got = found(&t, m.clone(), path);
            let want = want.map(|(n, b)| (n.to_string(), b));
            assert_eq!(got, want, "{m} {path}");
        }
        let get_book = t.find(&M::GET, "/v1/shelves/1/books/2").expect("found");
        assert_eq!(get_book.response_body.as_deref(), Some("title"));
        assert_eq!(get_book.body, BodyRule::None);
        assert_eq!(
            t.find(&M::PATCH, "/v1/orders/1").expect("found").body,
            BodyRule::Field("order".into())
        );
        assert_eq!(
            t.find(&M::POST, "/v1/orders").expect("found").body,
            BodyRule::Whole
        );
        assert_eq!(
            t.primary("/demo.shop.v1.Orders/GetOrder")
                .expect("primary")
                .template
                .as_str(),
            "/v1/orders/{order_id}"
        );
        assert_eq!(get_book.binding.grpc_path(), "/demo.shop.v1.Orders/GetBook");
    }

    #[test]
    fn auto_mapping_and_service_filter() {
        let Some(pool) = pool("demo/shop.proto") else {
            return;
        };
        let t = Table::from_pool(
            &pool,
            &Options {
                auto_mapping: true,
                ..Options::default()
            },
        )
        .expect("builds");
        let m = t
            .find(&http::Method::POST, "/demo.shop.v1.Orders/Ping")
            .expect("auto mapped");
        assert_eq!(m.method.name(), "Ping");
        assert_eq!(m.body, BodyRule::Whole);
        // Annotated methods keep their own routes too.
        assert!(
            t.find(&http::Method::POST, "/demo.shop.v1.Orders/GetOrder")
                .is_some()
        );
        assert!(t.find(&http::Method::GET, "/v1/orders/1").is_some());

        let none = Table::from_pool(
            &pool,
            &Options {
                services: vec!["demo.shop.v1.Nope".into()],
                ..Options::default()
            },
        );
        assert!(matches!(none, Err(RouteError::UnknownService { .. })));
    }

    #[test]
    fn table_applies_the_unescape_option() {
        let Some(pool) = pool("demo/shop.proto") else {
            return;
        };
        let path = "/v1/buckets/b/objects/a%2Fb%3Ac";
        let object = |unescape| {
            let t = Table::from_pool(
                &pool,
                &Options {
                    unescape,
                    ..Options::default()
                },
            )
            .expect("table");
            t.find(&http::Method::GET, path).expect("found").bindings[1]
                .1
                .clone()
        };
        assert_eq!(object(Unescape::ExceptSlash), "a%2Fb:c");
        assert_eq!(object(Unescape::ExceptReserved), "a%2Fb%3Ac");
        assert_eq!(object(Unescape::All), "a/b:c");
    }

    #[test]
    fn messaging_table_covers_http_proto_examples() {
        let Some(pool) = pool("test/messaging.proto") else {
            return;
        };
        let t = Table::from_pool(&pool, &Options::default()).expect("builds");
        use http::Method as M;
        assert_eq!(
            found(&t, M::GET, "/v1/messages/123456/foo"),
            Some((
                "GetMessagePath".into(),
                b(&[("message_id", "123456"), ("sub.subfield", "foo")])
            ))
        );
        assert_eq!(
            found(&t, M::GET, "/v1/messages/123456"),
            Some(("GetMessage".into(), b(&[("message_id", "123456")])))
        );
        assert_eq!(
            found(&t, M::PUT, "/v1/messages/123456"),
            Some(("UpdateMessage".into(), b(&[("message_id", "123456")])))
        );
        assert_eq!(
            found(&t, M::PUT, "/v2/messages/123456"),
            Some(("UpdateMessageWhole".into(), b(&[("message_id", "123456")])))
        );
        assert_eq!(
            found(&t, M::GET, "/v3/messages/123456"),
            Some(("GetUserMessage".into(), b(&[("message_id", "123456")])))
        );
        assert_eq!(
            found(&t, M::GET, "/v3/users/me/messages/123456"),
            Some((
                "GetUserMessage".into(),
                b(&[("user_id", "me"), ("message_id", "123456")])
            ))
        );
        let search = M::from_bytes(b"SEARCH").expect("method");
        assert_eq!(
            found(&t, search, "/v1/projects/p1/messages:search"),
            Some(("Search".into(), b(&[("parent", "projects/p1")])))
        );
        assert_eq!(found(&t, M::POST, "/v1/projects/p1/messages:search"), None);
    }

    fn rule(selector: &str, verb: &str, path: &str, body: &str, response_body: &str) -> Rule {
        Rule {
            selector: selector.into(),
            verb: verb.into(),
            path: path.into(),
            body: body.into(),
            response_body: response_body.into(),
        }
    }

    #[test]
    fn explicit_rules_and_precedence() {
        let Some(pool) = pool("demo/shop.proto") else {
            return;
        };
        let rules = [
            rule(
                "demo.shop.v1.Orders.GetBook",
                "GET",
                "/legacy/{name=**}",
                "",
                "",
            ),
            rule(
                "/demo.shop.v1.Orders/GetOrder",
                "get",
                "/legacy/orders/{order_id}",
                "",
                "",
            ),
            rule(
                "demo.shop.v1.Orders.ListOrders",
                "GET",
                "/legacy/orders/recent",
                "",
                "",
            ),
            rule("demo.shop.v1.Orders.Ping", "*", "/legacy/ping", "", ""),
            rule(
                "demo.shop.v1.Orders.CancelOrder",
                "POST",
                "/legacy/ping",
                "*",
                "",
            ),
        ];
        let t = Table::from_rules(&pool, &rules, &Options::default()).expect("builds");
        use http::Method as M;
        assert_eq!(
            found(&t, M::GET, "/legacy/orders/recent").map(|x| x.0),
            Some("ListOrders".into())
        );
        assert_eq!(
            found(&t, M::GET, "/legacy/orders/7").map(|x| x.0),
            Some("GetOrder".into())
        );
        assert_eq!(
            found(&t, M::GET, "/legacy/orders/7/x").map(|x| x.0),
            Some("GetBook".into())
        );
        assert_eq!(
            found(&t, M::GET, "/legacy").map(|x| x.1),
            Some(b(&[("name", "")]))
        );
        assert_eq!(
            found(&t, M::DELETE, "/legacy/ping").map(|x| x.0),
            Some("Ping".into())
        );
        // An exact method beats `*` on the same template.
        assert_eq!(
            found(&t, M::POST, "/legacy/ping").map(|x| x.0),
            Some("CancelOrder".into())
        );
        assert_eq!(
            t.primary("demo.shop.v1.Orders.GetOrder")
                .map(|b| b.verb.clone()),
            Some(Verb::Method(M::GET))
        );
    }

    #[test]
    fn annotations_and_mapping_rules_combine() {
        let Some(pool) = pool("demo/shop.proto") else {
            return;
        };
        let mut t = Table::from_pool(&pool, &Options::default()).expect("table");
        let extra = rule(
            "demo.shop.v1.Orders.GetOrder",
            "GET",
            "/legacy/order/{order_id}",
            "",
            "",
        );
        t.add_rules(&pool, [&extra]).expect("added");
        assert_eq!(
            found(&t, http::Method::GET, "/legacy/order/3").map(|x| x.0),
            Some("GetOrder".into())
        );
        assert!(t.find(&http::Method::GET, "/v1/orders/3").is_some());
        // The annotation stays the primary binding.
        assert_eq!(
            t.primary("demo.shop.v1.Orders.GetOrder")
                .map(|b| b.template.as_str()),
            Some("/v1/orders/{order_id}")
        );
        let clash = rule(
            "demo.shop.v1.Orders.GetBook",
            "GET",
            "/v1/orders/{name}",
            "",
            "",
        );
        assert!(matches!(
            t.add_rules(&pool, [&clash]),
            Err(RouteError::Conflict { .. })
        ));
    }

    #[test]
    fn bad_rules_are_rejected() {
        let Some(pool) = pool("demo/shop.proto") else {
            return;
        };
        let o = Options::default();
        let bad = |r: Rule| Table::from_rules(&pool, [&r], &o).expect_err("rejected");
        assert!(matches!(
            bad(rule("demo.shop.v1.Orders.Nope", "GET", "/x", "", "")),
            RouteError::UnknownMethod { .. }
        ));
        assert!(matches!(
            bad(rule("demo.shop.v1.Orders.GetOrder", "G ET", "/x", "", "")),
            RouteError::BadVerb { .. }
        ));
        assert!(matches!(
            bad(rule("demo.shop.v1.Orders.GetOrder", "GET", "x", "", "")),
            RouteError::Template { .. }
        ));
        for (path, body, resp) in [
            ("/x/{nope}", "", ""),
            ("/x/{order_id.deeper}", "", ""),
            ("/x/{lines}", "", ""),
            ("/x/{ship_to}", "", ""),
            ("/x/{labels}", "", ""),
            ("/x/{order_id}", "nope", ""),
            ("/x/{order_id}", "lines", ""),
            ("/x/{order_id}", "", "nope"),
        ] {
            let e = bad(rule(
                "demo.shop.v1.Orders.CreateOrder",
                "POST",
                path,
                body,
                resp,
            ));
            assert!(
                matches!(e, RouteError::Field { .. }),
                "{path} {body} {resp}: {e}"
            );
        }
        let dup = [
            rule(
                "demo.shop.v1.Orders.GetOrder",
                "GET",
                "/x/{order_id}",
                "",
                "",
            ),
            rule("demo.shop.v1.Orders.GetBook", "GET", "/x/{name}", "", ""),
        ];
        let e = Table::from_rules(&pool, &dup, &o).expect_err("conflict");
        assert!(matches!(e, RouteError::Conflict { .. }), "{e}");
        assert!(e.to_string().contains("GET /x/* is bound to both"), "{e}");
    }
}
