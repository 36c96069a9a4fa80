//! `docs/mapping.schema.json` is the schema generated from the types; regenerate it with
//! `UPDATE_DOCS=1 cargo test -p mappings`.

use std::path::Path;

#[test]
fn shipped_schema_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/mapping.schema.json");
    let want = serde_json::to_string_pretty(&mappings::json_schema()).expect("schema JSON") + "\n";
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &want).expect("write docs/mapping.schema.json");
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/mapping.schema.json is stale; regenerate with `UPDATE_DOCS=1 cargo test -p mappings`"
    );
}

#[test]
fn schema_rejects_unknown_fields_and_names_the_verbs() {
    let schema = mappings::json_schema();
    let text = schema.to_string();
    assert!(text.contains("\"additionalProperties\":false"));
    for verb in ["get", "put", "post", "delete", "patch", "custom"] {
        assert!(text.contains(&format!("\"{verb}\"")), "{verb}");
    }
}
