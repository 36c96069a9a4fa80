//! Environment files: the compose `.env` format (compose-go `dotenv`: comments, `export`, quotes
//! with escapes, interpolation) and docker's `env_file` format (`opts.ParseEnvFile`: raw values).

use std::collections::BTreeMap;

use super::interpolate::{TemplateError, substitute_compose};

/// Parses a compose `.env` file. Values may use `${VAR}` of earlier lines or of `env`.
/// `VAR` alone (no `=`) leaves the variable unset. Errors name the 1-based line.
pub fn parse_dotenv(
    text: &str,
    env: &BTreeMap<String, String>,
) -> Result<Vec<(String, String)>, (usize, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut scope = env.clone();
    let lines: Vec<&str> = text.trim_start_matches('\u{feff}').lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let lineno = i + 1;
        let mut line = lines[i].trim_start();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("export ") {
            line = rest.trim_start();
        }
        let Some(eq) = line.find('=') else {
            let key = line.trim();
            if key.chars().any(char::is_whitespace) {
                return Err((lineno, format!("unexpected character in {key:?}")));
            }
            continue;
        };
        let key = line[..eq].trim().to_string();
        if key.is_empty() || key.chars().any(char::is_whitespace) {
            return Err((lineno, format!("invalid variable name {key:?}")));
        }
        let raw = line[eq + 1..].trim_start();
        let value = if let Some(body) = raw.strip_prefix('\'') {
            // Single quotes: literal, may span lines.
            let mut acc = body.to_string();
            loop {
                if let Some(end) = acc.find('\'') {
                    acc.truncate(end);
                    break;
                }
                if i >= lines.len() {
                    return Err((lineno, "unterminated single-quoted value".into()));
                }
                acc.push('\n');
                acc.push_str(lines[i]);
                i += 1;
            }
            acc
        } else if let Some(body) = raw.strip_prefix('"') {
            let mut acc = String::new();
            let mut rest = body.to_string();
            let value = loop {
                if let Some(end) = closing_double_quote(&rest) {
                    acc.push_str(&rest[..end]);
                    break acc;
                }
                if i >= lines.len() {
                    return Err((lineno, "unterminated double-quoted value".into()));
                }
                acc.push_str(&rest);
                acc.push('\n');
                rest = lines[i].to_string();
                i += 1;
            };
            let unescaped = unescape_double(&value);
            expand(&unescaped, &scope).map_err(|e| (lineno, e))?
        } else {
            // Unquoted: an inline comment starts at whitespace followed by '#'.
            let mut v = raw;
            if let Some(pos) = v.find(" #").or_else(|| v.find("\t#")) {
                v = &v[..pos];
            }
            expand(v.trim_end(), &scope).map_err(|e| (lineno, e))?
        };
        scope.entry(key.clone()).or_insert_with(|| value.clone());
        out.retain(|(k, _)| *k != key);
        out.push((key, value));
    }
    Ok(out)
}

fn closing_double_quote(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            return Some(i);
        }
    }
    None
}

fn unescape_double(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some('$') => out.push_str("$$"),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn expand(v: &str, scope: &BTreeMap<String, String>) -> Result<String, String> {
    substitute_compose(v, scope, &mut Vec::new()).map_err(|e| match e {
        TemplateError::Required { name, message } => {
            format!("required variable {name} is missing a value: {message}")
        }
        TemplateError::Invalid => format!("invalid interpolation format in {v:?}"),
    })
}

/// Parses a docker `env_file` (`opts.ParseEnvFile` / `kvfile.Parse`): `KEY=VALUE` kept raw (no
/// quote removal, no trimming of the value); `KEY` alone takes the value from `env`, and is left
/// out when `env` does not have it (docker 28 prints no such variable).
pub fn parse_env_file(
    text: &str,
    env: &BTreeMap<String, String>,
) -> Result<Vec<(String, String)>, (usize, String)> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let raw = if n == 0 {
            raw.trim_start_matches('\u{feff}')
        } else {
            raw
        };
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (var, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim_start_matches([' ', '\t']), Some(v)),
            None => (line.trim_start_matches([' ', '\t']), None),
        };
        let var = if value.is_none() { var.trim() } else { var };
        if var.contains([' ', '\t']) {
            return Err((n + 1, format!("variable '{var}' contains whitespaces")));
        }
        if var.is_empty() {
            return Err((n + 1, format!("no variable name on line '{line}'")));
        }
        let value = match value {
            Some(v) => v.to_string(),
            None => match env.get(var) {
                Some(v) => v.clone(),
                None => continue,
            },
        };
        out.push((var.to_string(), value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_format() {
        let env: BTreeMap<String, String> = [("HOME".to_string(), "/root".to_string())]
            .into_iter()
            .collect();
        let text = concat!(
            "\u{feff}# comment\n",
            "\n",
            "export A=1\n",
            "B = two # inline\n",
            "C=\"x\\ny \\\"q\\\" ${A}\"\n",
            "D='lit ${A}'\n",
            "UNSET_ONLY\n",
            "E=\n",
            "F=${HOME}/x\n",
            "G=a#b\n",
            "H=\"multi\nline\"\n",
        );
        let got = parse_dotenv(text, &env).expect("parses");
        let m: BTreeMap<_, _> = got.into_iter().collect();
        assert_eq!(m["A"], "1");
        assert_eq!(m["B"], "two");
        assert_eq!(m["C"], "x\ny \"q\" 1");
        assert_eq!(m["D"], "lit ${A}");
        assert!(!m.contains_key("UNSET_ONLY"));
        assert_eq!(m["E"], "");
        assert_eq!(m["F"], "/root/x");
        assert_eq!(m["G"], "a#b");
        assert_eq!(m["H"], "multi\nline");
        assert!(parse_dotenv("BAD KEY=1\n", &env).is_err());
    }

    #[test]
    fn docker_env_file_format() {
        let env: BTreeMap<String, String> = [("FROM_ENV".to_string(), "e".to_string())]
            .into_iter()
            .collect();
        let got =
            parse_env_file("# c\n  A=1 \nB=\"q\"\nFROM_ENV\nMISSING\nC=\n", &env).expect("parses");
        assert_eq!(
            got,
            vec![
                ("A".to_string(), "1 ".to_string()),
                ("B".to_string(), "\"q\"".to_string()),
                ("FROM_ENV".to_string(), "e".to_string()),
                ("C".to_string(), String::new()),
            ]
        );
        let err = parse_env_file("A B=1\n", &env).expect_err("whitespace");
        assert_eq!(err.0, 1);
    }
}
