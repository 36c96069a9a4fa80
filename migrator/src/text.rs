//! Short strings (key paths, values paths, template snippets, names) built without the formatting
//! machinery: one allocation of the exact size. `format!` costs about a thousand instructions a
//! call, and a 1000-service stack makes some 160 000 such strings (docs/benchmarks.md).

/// The parts, one after the other.
pub(crate) fn cat(parts: &[&str]) -> String {
    let mut s = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        s.push_str(p);
    }
    s
}

/// A dotted key path: `path.key`, or `key` at the top (`path` empty).
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        cat(&[path, ".", key])
    }
}

/// The key path of a sequence item: `path[i]`.
pub(crate) fn index(path: &str, i: usize) -> String {
    cat(&[path, "[", itoa::Buffer::new().format(i), "]"])
}

/// A number's decimal text.
pub(crate) fn uint(n: impl itoa::Integer) -> String {
    itoa::Buffer::new().format(n).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_what_format_builds() {
        assert_eq!(cat(&[]), "");
        assert_eq!(
            cat(&["{{- with ", ".Values.x", " }}"]),
            format!("{{{{- with {} }}}}", ".Values.x")
        );
        assert_eq!(join("", "services"), "services");
        assert_eq!(join("services", "web"), "services.web");
        assert_eq!(
            join("services.web", "ports"),
            format!("{}.{}", "services.web", "ports")
        );
        for i in [0usize, 7, 10, 99, 12345, usize::MAX] {
            assert_eq!(
                index("services.web.ports", i),
                format!("services.web.ports[{i}]")
            );
            assert_eq!(uint(i), i.to_string());
        }
        assert_eq!(uint(u16::MAX), "65535");
    }
}
