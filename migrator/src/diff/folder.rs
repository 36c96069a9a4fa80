//! Comparison of the bundle with a chart folder. Template files are compared as objects: each
//! document is read as YAML with its Helm actions kept as opaque text (a line that is only an
//! action becomes an entry of the synthetic `~helm-actions` field), so a change shows as the fields
//! it touches. values.yaml and Chart.yaml are compared field by field; other files line by line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::diff::error::Error;
use crate::diff::object::{self, Key};
use crate::diff::{Change, FileDiff, ObjectDiff, compare_objects, unified};
use crate::emit::{Bundle, redact};

/// A file of either side.
struct Side {
    bytes: Vec<u8>,
    secret: bool,
}

fn read_dir(dir: &Path) -> Result<BTreeMap<String, Side>, Error> {
    let mut out = BTreeMap::new();
    if !dir.exists() {
        return Ok(out);
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Read { path, source }
    };
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(io(&d))? {
            let entry = entry.map_err(io(&d))?;
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let rel = p
                .strip_prefix(dir)
                .unwrap_or(&p)
                .to_string_lossy()
                .replace('\\', "/");
            let bytes = std::fs::read(&p).map_err(io(&p))?;
            #[cfg(unix)]
            let secret = {
                use std::os::unix::fs::PermissionsExt;
                entry
                    .metadata()
                    .map(|m| m.permissions().mode() & 0o077 == 0)
                    .unwrap_or(false)
            };
            #[cfg(not(unix))]
            let secret = false;
            out.insert(rel, Side { bytes, secret });
        }
    }
    Ok(out)
}

fn is_template(path: &str) -> bool {
    path.starts_with("templates/")
        && (path.ends_with(".yaml") || path.ends_with(".yml"))
        && !path.rsplit('/').next().unwrap_or("").starts_with('_')
}

/// A YAML single-quoted scalar.
fn single_quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The documents of a template file, with its actions made opaque.
pub(crate) fn template_objects(text: &str, path: &str) -> Result<Vec<Value>, Error> {
    let mut docs: Vec<(String, Vec<String>)> = vec![(String::new(), Vec::new())];
    for line in text.lines() {
        if line.trim_end() == "---" {
            docs.push((String::new(), Vec::new()));
            continue;
        }
        let Some((body, actions)) = docs.last_mut() else {
            continue;
        };
        let t = line.trim();
        if t.starts_with("{{") && t.ends_with("}}") {
            actions.push(t.to_string());
            continue;
        }
        if let Some(at) = line.find("{{") {
            // Quote the value holding the action: after `key: ` or `- `.
            let prefix_end = line[..at]
                .rfind(": ")
                .map(|i| i + 2)
                .or_else(|| line[..at].rfind("- ").map(|i| i + 2))
                .unwrap_or(at);
            let (prefix, value) = line.split_at(prefix_end);
            body.push_str(prefix);
            body.push_str(&single_quoted(value.trim_end()));
            body.push('\n');
            continue;
        }
        body.push_str(line);
        body.push('\n');
    }
    let mut out = Vec::new();
    for (body, actions) in docs {
        let mut v = object::parse_yaml_one(&body, path)?;
        if let Value::Object(m) = &mut v
            && !actions.is_empty()
        {
            m.insert(
                "~helm-actions".into(),
                Value::Array(actions.into_iter().map(Value::String).collect()),
            );
        }
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

/// (objects that differ, files that differ, how many are the same).
pub(crate) fn compare(
    bundle: &Bundle,
    dir: &Path,
) -> Result<(Vec<ObjectDiff>, Vec<FileDiff>, usize), Error> {
    let old = read_dir(dir)?;
    let new: BTreeMap<String, Side> = bundle
        .files
        .iter()
        .map(|(p, f)| {
            (
                p.to_string_lossy().replace('\\', "/"),
                Side {
                    bytes: f.bytes.clone(),
                    secret: f.is_secret(),
                },
            )
        })
        .collect();
    let mut before: BTreeMap<Key, Value> = BTreeMap::new();
    let mut after: BTreeMap<Key, Value> = BTreeMap::new();
    let mut files = Vec::new();
    let mut same = 0;
    let mut paths: Vec<&String> = old.keys().chain(new.keys()).collect();
    paths.sort();
    paths.dedup();
    for path in paths {
        let (o, n) = (old.get(path), new.get(path));
        if is_template(path) {
            let parse = |s: Option<&Side>| -> Option<Vec<Value>> {
                match s {
                    None => Some(Vec::new()),
                    Some(s) => template_objects(&String::from_utf8_lossy(&s.bytes), path).ok(),
                }
            };
            if let (Some(po), Some(pn)) = (parse(o), parse(n)) {
                let keyed = |docs: Vec<Value>, into: &mut BTreeMap<Key, Value>| -> bool {
                    for d in docs {
                        match object::key_of(&d) {
                            Some(mut k) => {
                                if k.namespace.contains("{{") {
                                    k.namespace.clear();
                                }
                                into.insert(k, d);
                            }
                            None => return false,
                        }
                    }
                    true
                };
                let ok_o = keyed(po, &mut before);
                let ok_n = keyed(pn, &mut after);
                if ok_o && ok_n {
                    continue;
                }
            }
        }
        match file_diff(path, o, n)? {
            Some(d) => files.push(d),
            None => same += 1,
        }
    }
    let (objects, same_objects) = compare_objects(before, after, false);
    Ok((objects, files, same + same_objects))
}

fn file_diff(path: &str, o: Option<&Side>, n: Option<&Side>) -> Result<Option<FileDiff>, Error> {
    if let (Some(a), Some(b)) = (o, n)
        && a.bytes == b.bytes
    {
        return Ok(None);
    }
    let change = match (o, n) {
        (None, _) => Change::Added,
        (_, None) => Change::Removed,
        _ => Change::Changed,
    };
    let secret = o.is_some_and(|s| s.secret) || n.is_some_and(|s| s.secret);
    let text = |s: Option<&Side>| {
        s.map(|s| String::from_utf8(s.bytes.clone()))
            .transpose()
            .ok()
            .map(Option::unwrap_or_default)
    };
    let (a, b) = (text(o), text(n));
    let mut fields = Vec::new();
    let mut diff = String::new();
    if secret {
        // Only which file changed and the digests, never a line of it.
        fields.push(object::Field {
            path: String::new(),
            before: o.map(|s| redact(&s.bytes)),
            after: n.map(|s| redact(&s.bytes)),
        });
    } else if let (Some(a), Some(b)) = (a, b) {
        if matches!(path, "values.yaml" | "Chart.yaml") {
            let pa = object::parse_yaml_one(&a, path)?;
            let pb = object::parse_yaml_one(&b, path)?;
            fields = object::fields(&pa, &pb);
        }
        diff = unified(&a, &b, path);
    } else {
        fields.push(object::Field {
            path: String::new(),
            before: o.map(|s| format!("binary, {} bytes", s.bytes.len())),
            after: n.map(|s| format!("binary, {} bytes", s.bytes.len())),
        });
    }
    Ok(Some(FileDiff {
        path: path.to_string(),
        change,
        secret,
        fields,
        diff,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_actions_become_opaque_text() {
        let text = "apiVersion: v1\nkind: Service\nmetadata:\n  name: vote\n  namespace: {{ include \"x.namespace\" . }}\n  labels:\n    {{- include \"x.labels\" . | nindent 4 }}\nspec:\n  type: {{ .Values.t }}\n---\nkind: X\n";
        let docs = template_objects(text, "t.yaml").expect("parse");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0]["spec"]["type"], "{{ .Values.t }}");
        assert_eq!(
            docs[0]["~helm-actions"][0],
            "{{- include \"x.labels\" . | nindent 4 }}"
        );
    }
}
