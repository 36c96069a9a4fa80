//! The `google.api.http` path-template grammar, checked (not compiled):
//!
//! ```text
//! Template  = "/" Segments [ Verb ] ;
//! Segments  = Segment { "/" Segment } ;
//! Segment   = "*" | "**" | LITERAL | Variable ;
//! Variable  = "{" FieldPath [ "=" Segments ] "}" ;
//! FieldPath = IDENT { "." IDENT } ;
//! Verb      = ":" LITERAL ;
//! ```
//!
//! `**` may only be the last segment of the template; variables do not nest.

/// Whether `s` is an identifier: a letter or `_`, then letters, digits or `_`.
pub(crate) fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether `s` is `IDENT { "." IDENT }`.
pub(crate) fn is_ident_path(s: &str) -> bool {
    s.split('.').all(is_ident)
}

/// Whether `s` is a literal path segment: unreserved URL characters and `%`-escapes.
fn is_literal(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | '%'))
}

/// Checks a path template; the error is the reason, phrased to follow the value.
pub(crate) fn check(path: &str) -> Result<(), String> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err("must start with '/'".into());
    };
    // The verb is the `:` suffix after the last segment, outside any variable.
    let mut depth = 0usize;
    let mut verb_at = None;
    for (i, c) in rest.char_indices() {
        match c {
            '{' => {
                if depth > 0 {
                    return Err("nests a variable inside a variable".into());
                }
                depth += 1;
            }
            '}' => {
                if depth == 0 {
                    return Err("has a '}' without a matching '{'".into());
                }
                depth -= 1;
            }
            ':' if depth == 0 => {
                verb_at = Some(i);
                break;
            }
            _ => {}
        }
    }
    if depth > 0 && verb_at.is_none() {
        return Err("has a '{' without a matching '}'".into());
    }
    let (segments, verb) = match verb_at {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    if let Some(verb) = verb
        && !is_literal(verb)
    {
        return Err(format!("has an invalid ':verb' suffix '{verb}'"));
    }
    let mut parts = Vec::new();
    split_segments(segments, &mut parts)?;
    let last = parts.len().saturating_sub(1);
    let mut vars = std::collections::BTreeSet::new();
    for (i, part) in parts.iter().enumerate() {
        match *part {
            Part::DoubleWild if i != last => {
                return Err("uses '**' before the last segment".into());
            }
            Part::Var(name) if !vars.insert(name) => {
                return Err(format!("binds the variable '{name}' twice"));
            }
            _ => {}
        }
    }
    Ok(())
}

/// One flattened segment; a variable's own pattern is flattened in place after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part<'a> {
    Other,
    DoubleWild,
    Var(&'a str),
}

/// Splits `Segments` on `/` outside braces and checks each segment.
fn split_segments<'a>(s: &'a str, out: &mut Vec<Part<'a>>) -> Result<(), String> {
    let mut start = 0;
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            '/' if depth == 0 => {
                segment(&s[start..i], out)?;
                start = i + 1;
            }
            _ => {}
        }
    }
    segment(&s[start..], out)
}

/// Checks one `Segment`.
fn segment<'a>(s: &'a str, out: &mut Vec<Part<'a>>) -> Result<(), String> {
    match s {
        "" => Err("has an empty segment".into()),
        "*" => {
            out.push(Part::Other);
            Ok(())
        }
        "**" => {
            out.push(Part::DoubleWild);
            Ok(())
        }
        _ => {
            if let Some(inner) = s.strip_prefix('{') {
                let Some(inner) = inner.strip_suffix('}') else {
                    return Err(format!("has a segment '{s}' with text after its variable"));
                };
                let (name, pattern) = match inner.split_once('=') {
                    Some((n, p)) => (n, Some(p)),
                    None => (inner, None),
                };
                if !is_ident_path(name) {
                    return Err(format!(
                        "has a variable '{name}' that is not a field path (identifiers joined by '.')"
                    ));
                }
                out.push(Part::Var(name));
                match pattern {
                    Some(p) if p.contains(['{', '}']) => {
                        Err("nests a variable inside a variable".into())
                    }
                    Some(p) => split_segments(p, out),
                    None => Ok(()),
                }
            } else if is_literal(s) {
                out.push(Part::Other);
                Ok(())
            } else {
                Err(format!("has an invalid segment '{s}'"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn accepts_the_http_proto_forms() {
        for ok in [
            "/v1/messages/{message_id}",
            "/v1/{name=shelves/*}",
            "/v1/{name=shelves/*/books/*}:publish",
            "/v1/users/{user_id}/messages/{message_id}",
            "/v1/{name=messages/**}",
            "/v1/messages/{sub.subfield}",
            "/v1/**",
            "/api/orders:batchGet",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn rejects_broken_templates() {
        for (bad, why) in [
            ("v1/x", "must start with '/'"),
            ("/v1/{name", "has a '{' without a matching '}'"),
            ("/v1/name}", "has a '}' without a matching '{'"),
            ("/v1/{a{b}}", "nests a variable inside a variable"),
            (
                "/v1/{1a}",
                "has a variable '1a' that is not a field path (identifiers joined by '.')",
            ),
            ("/v1/**/x", "uses '**' before the last segment"),
            ("/v1/{name=**}/x", "uses '**' before the last segment"),
            ("/v1//x", "has an empty segment"),
            ("/v1/x:", "has an invalid ':verb' suffix ''"),
            ("/v1/{a}/{a}", "binds the variable 'a' twice"),
            ("/v1/a b", "has an invalid segment 'a b'"),
            (
                "/v1/{a}x",
                "has a segment '{a}x' with text after its variable",
            ),
        ] {
            assert_eq!(check(bad), Err(why.to_string()), "{bad}");
        }
    }
}
