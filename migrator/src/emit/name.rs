//! Kubernetes names, label keys and quantities from Swarm values: Swarm accepts `_` and `.` in
//! names and any text in labels, Kubernetes does not, so every name passes through here.

use std::time::Duration;

use crate::model::unit::Cpus;

/// A DNS-1035 label of at most `max` characters (Service names need a leading letter): lowercase,
/// every other character `-`, no leading or trailing `-`.
pub fn dns_label(s: &str, max: usize) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut out = out.trim_matches('-').to_string();
    if out.is_empty() {
        out.push('x');
    }
    if !out.starts_with(|c: char| c.is_ascii_lowercase()) {
        out.insert_str(0, "s-");
    }
    out.truncate(max);
    out.trim_end_matches('-').to_string()
}

/// A lowerCamelCase key usable in `.Values.a.b` paths (Go templates cannot index `a-b`).
pub fn values_key(s: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            if upper && !out.is_empty() {
                out.push(c.to_ascii_uppercase());
            } else if out.is_empty() {
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
            upper = false;
        } else {
            upper = true;
        }
    }
    if !out.starts_with(|c: char| c.is_ascii_alphabetic()) {
        out.insert(0, 'v');
    }
    out
}

/// A key of ConfigMap/Secret data (`[-._a-zA-Z0-9]+`).
pub fn data_key(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match out.as_str() {
        "" | "." | ".." => "file".to_string(),
        _ => out,
    }
}

fn name_part_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Whether `k` is a valid label or annotation key (`[prefix/]name`).
pub fn qualified_name_ok(k: &str) -> bool {
    match k.split_once('/') {
        Some((prefix, name)) => {
            !prefix.is_empty()
                && prefix.len() <= 253
                && prefix.split('.').all(|p| {
                    !p.is_empty()
                        && p.chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                        && !p.starts_with('-')
                        && !p.ends_with('-')
                })
                && name_part_ok(name)
        }
        None => name_part_ok(k),
    }
}

/// Whether `v` is a valid label value.
pub fn label_value_ok(v: &str) -> bool {
    v.is_empty() || name_part_ok(v)
}

/// An image reference split into repository, tag and digest (`redis:7@sha256:…`).
pub fn split_image(image: &str) -> (String, String, String) {
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, d.to_string()),
        None => (image, String::new()),
    };
    let slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[slash..].rfind(':') {
        Some(i) => (
            rest[..slash + i].to_string(),
            rest[slash + i + 1..].to_string(),
            digest,
        ),
        None => (rest.to_string(), String::new(), digest),
    }
}

/// A memory quantity: the largest binary unit that divides the byte count exactly.
pub fn memory(bytes: u64) -> String {
    const KI: u64 = 1024;
    for (unit, size) in [
        ("Ti", KI.pow(4)),
        ("Gi", KI.pow(3)),
        ("Mi", KI.pow(2)),
        ("Ki", KI),
    ] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

/// A CPU quantity: whole cores as a number, otherwise millicores (rounded up).
pub fn cpu(c: &Cpus) -> String {
    let m = c.millis();
    if m.is_multiple_of(1000) {
        (m / 1000).to_string()
    } else {
        format!("{m}m")
    }
}

/// Whole seconds, rounded up (Kubernetes fields count seconds; rounding down could make 0.5s a 0).
pub fn seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Doubles every `$` when the text holds `$(` or `$$`: Kubernetes expands `$(VAR)` in command,
/// args and env values and turns `$$` into `$`; Swarm does neither at run time.
pub fn escape_dollars(s: &str) -> String {
    if s.contains("$(") || s.contains("$$") {
        s.replace('$', "$$")
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(dns_label("My_Service.web", 63), "my-service-web");
        assert_eq!(dns_label("1st", 63), "s-1st");
        assert_eq!(dns_label("__", 63), "x");
        assert_eq!(dns_label(&"a".repeat(80), 63).len(), 63);
        assert_eq!(values_key("my-service_x"), "myServiceX");
        assert_eq!(values_key("9lives"), "v9lives");
        assert_eq!(data_key("a b.txt"), "a_b.txt");
        assert!(qualified_name_ok("traefik.http.routers.x.rule"));
        assert!(qualified_name_ok("com.example/x"));
        assert!(!qualified_name_ok("a b"));
        assert!(!qualified_name_ok(&"a".repeat(64)));
    }

    #[test]
    fn images_and_quantities() {
        assert_eq!(
            split_image("localhost:5000/a/b:1.2@sha256:ab"),
            (
                "localhost:5000/a/b".into(),
                "1.2".into(),
                "sha256:ab".into()
            )
        );
        assert_eq!(
            split_image("redis"),
            ("redis".into(), String::new(), String::new())
        );
        assert_eq!(memory(512 * 1024 * 1024), "512Mi");
        assert_eq!(memory(2 * 1024 * 1024 * 1024), "2Gi");
        assert_eq!(memory(1000), "1000");
        let half = Cpus::parse("0.5").expect("cpus");
        assert_eq!(cpu(&half), "500m");
        assert_eq!(cpu(&Cpus::parse("2").expect("cpus")), "2");
        assert_eq!(seconds(Duration::from_millis(1500)), 2);
        assert_eq!(escape_dollars("a $(b) $c"), "a $$(b) $$c");
        assert_eq!(escape_dollars("$HOME"), "$HOME");
    }
}
