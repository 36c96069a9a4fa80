use super::*;
use crate::load::yaml::parse_part;

/// The fast tree, and yaml-rust2's tree of the same part (`None` when yaml-rust2 fails).
fn both(text: &str, offset: u32) -> (Option<Node>, Option<Node>) {
    let file: Arc<str> = Arc::from("s.yml");
    let fast = parse(&file, text, offset, 1);
    let slow = parse_part(file.clone(), text, offset, 1).ok();
    (fast, slow)
}

/// The trees are equal; if not, where they first differ.
fn assert_same(what: &str, fast: &Node, slow: &Node) {
    if fast == slow {
        return;
    }
    let (f, s) = (format!("{fast:?}"), format!("{slow:?}"));
    let at = f.bytes().zip(s.bytes()).take_while(|(a, b)| a == b).count();
    let from = at.saturating_sub(300);
    panic!(
        "{what}: the trees differ\nfast: …{}\nslow: …{}",
        &f[from..(at + 80).min(f.len())],
        &s[from..(at + 80).min(s.len())]
    );
}

/// Either the fast parser gives up or it builds yaml-rust2's tree, marks included; returns
/// whether it read the text.
fn agrees(what: &str, text: &str) -> bool {
    let (fast, slow) = both(text, 7);
    match fast {
        None => false,
        Some(fast) => {
            let slow = slow.unwrap_or_else(|| panic!("{what}: read a text yaml-rust2 refuses"));
            assert_same(what, &fast, &slow);
            true
        }
    }
}

/// A services block like `bench/gen_stack.py` writes, plus the shapes `split.rs` tests with.
fn services(n: usize) -> String {
    let mut t = String::new();
    for i in 0..n {
        t.push_str(&format!(
            "  # service {i}\n  svc{i:04}:\n    image: registry.example.com/team{}/svc{i:04}:1.{}.{}\n    environment:\n      SPRING_PROFILES_ACTIVE: swarm\n      SERVICE_INDEX: \"{i}\"\n      JAVA_OPTS: -Xmx256m -XX:+UseG1GC   # heap\n      EMPTY_QUOTED: ''\n      FLAG: true\n      RATIO: 0.5\n    ports:\n      - \"{}:8080\"\n      - target: 9090\n        published: {}\n        protocol: udp\n    networks: [backend, 'front end']\n    labels: {{}}\n    healthcheck:\n      test: [\"CMD-SHELL\", \"wget -qO- http://localhost:8080/health || exit 1\"]\n      interval: 15s\n    deploy:\n      replicas: {}\n      resources:\n        limits: {{cpus: \"0.50\", memory: 512M}}\n        reservations: {{ cpus: '0.10' , memory: 128M }}\n      update_config: {{parallelism: 1, delay: 10s, order: start-first}}\n      placement:\n        constraints:\n        - \"node.labels.zone == z{}\"\n        - node.role==worker\n    command: [\"run\", \"--port=8080\"]\n    stop_grace_period: 1m30s\n\n",
            i % 14,
            i % 3,
            i % 5,
            20000 + i,
            30000 + i,
            i % 5,
            i % 3
        ));
    }
    t
}

#[test]
fn fast_and_yaml_rust2_trees_are_equal() {
    let text = services(60);
    assert!(agrees("generated services", &text));
    // Without a trailing newline, and starting with a comment.
    assert!(agrees("no final newline", text.trim_end()));
    // Sequences indented under their key, and compact ones.
    assert!(agrees(
        "sequences",
        "  a:\n    x:\n      - 1\n      -   two # c\n      - k: v\n        l: [ ]\n    y:\n    - '3'\n    -   m: 1\n        n: {a: b}\n  b:\n    z: -1\n"
    ));
    assert!(agrees(
        "compact sequence of mappings",
        "  a:\n    y:\n    - m: 1\n      n: 2\n    -   o: [x]\n    z: 1\n"
    ));
    // Scalars yaml.v3 types: numbers, booleans, nulls, timestamps, octal, strings that look typed.
    assert!(agrees(
        "typed",
        "  s:\n    a: 0x1F\n    b: 0o17\n    c: 017\n    d: 1_000\n    e: ~\n    f: null\n    g: .inf\n    h: 2001-12-14\n    i: 1e3\n    j: \"1\"\n    k: yes\n    l: [1, 2.5, true, ~, x]\n    m: {n: 1, o: null}\n"
    ));
}

#[test]
fn every_shared_services_block_agrees() {
    let Some(files) = crate::load::tests::shared_yaml_files() else {
        return;
    };
    let (mut read, mut blocks) = (0, 0);
    for (p, text) in files {
        if text
            .bytes()
            .any(|b| matches!(b, b'&' | b'*' | b'!' | b'\t' | b'\r' | b'<'))
        {
            continue; // split.rs never cuts these
        }
        // The services block: the lines after `services:` up to the next top-level key.
        let lines: Vec<&str> = text.split('\n').collect();
        let Some(start) = lines.iter().position(|l| l.trim_end() == "services:") else {
            continue;
        };
        let len = lines[start + 1..]
            .iter()
            .position(|l| l.starts_with(|c: char| c != ' ' && c != '#'))
            .unwrap_or(lines.len() - start - 1);
        let block = lines[start + 1..start + 1 + len].join("\n");
        let offset = u32::try_from(start + 1).expect("line");
        let (fast, slow) = both(&block, offset);
        blocks += 1;
        if let Some(fast) = fast {
            let slow = slow.unwrap_or_else(|| panic!("{}: read a bad block", p.display()));
            assert_same(&p.display().to_string(), &fast, &slow);
            read += 1;
        }
    }
    println!("{read} of {blocks} services blocks read by the fast parser");
    assert!(
        read >= 10,
        "only {read} of {blocks} services blocks were read"
    );
}

#[test]
fn shapes_it_does_not_read_are_left_to_yaml_rust2() {
    for (what, text) in [
        ("block scalar", "  a:\n    command: >\n      run\n"),
        ("literal", "  a:\n    x: |\n      run\n"),
        ("continued plain", "  a:\n    x: one\n      two\n"),
        ("escaped quote", "  a:\n    x: \"a\\\"b\"\n"),
        ("doubled quote", "  a:\n    x: 'it''s'\n"),
        ("multi-line quote", "  a:\n    x: \"one\n      two\"\n"),
        ("empty value", "  a:\n    x:\n    y: 1\n"),
        ("empty service", "  a:\n  b:\n    y: 1\n"),
        ("nested flow", "  a:\n    x: [[1], 2]\n"),
        ("flow map in seq", "  a:\n    x: [{a: 1}]\n"),
        ("multi-line flow", "  a:\n    x: [1,\n      2]\n"),
        ("trailing comma", "  a:\n    x: [1, 2, ]\n"),
        ("quoted key", "  a:\n    \"x\": 1\n"),
        ("complex key", "  a:\n    ? x\n    : 1\n"),
        ("number key", "  a:\n    1: x\n"),
        ("bool key", "  a:\n    true: x\n"),
        ("null key", "  a:\n    ~: x\n"),
        ("duplicate", "  a:\n    x: 1\n    x: 2\n"),
        ("duplicate service", "  a:\n    x: 1\n  a:\n    x: 2\n"),
        ("duplicate flow key", "  a:\n    x: {b: 1, b: 2}\n"),
        (
            "rewritten key",
            "  a:\n    2001-12-14: 1\n    2001-12-14 0:0:0: 2\n",
        ),
        ("colon in value", "  a:\n    x: y: z\n"),
        ("colon at end", "  a:\n    x: y:\n"),
        ("nested sequence", "  a:\n    x:\n      - - 1\n"),
        ("dash alone", "  a:\n    x:\n      -\n        y: 1\n"),
        ("bad indent", "  a:\n    x: 1\n   y: 2\n"),
        ("deeper after value", "  a:\n    x: 1\n      y: 2\n"),
        ("sequence at map indent", "  a:\n    x: 1\n    - 2\n"),
        ("indicator", "  a:\n    x: @y\n"),
        ("non-ascii", "  a:\n    x: caf\u{e9}\n"),
        ("unclosed quote", "  a:\n    x: \"abc\n"),
        ("unclosed flow", "  a:\n    x: [a, b\n"),
        ("flow without space", "  a:\n    x: {a:1}\n"),
        ("text after value", "  a:\n    x: \"a\" b\n"),
        ("dedented tail", "  a:\n    x: 1\nb: 2\n"),
    ] {
        assert!(!agrees(what, text), "{what}: read by the fast parser");
    }
}

#[test]
fn comments_and_blank_lines_anywhere() {
    assert!(agrees(
        "comments",
        "\n  # first\n  a:   # on a key\n\n    # inside\n    x: 1 # after\n    y: \"q\"   # after a quote\n    z: [a, b]  # after flow\n    w: a#b\n  # between\n  b:\n    - 1 # item\n"
    ));
}

#[test]
fn tricky_scalars_agree_wherever_they_are_written() {
    let values = [
        "-1",
        ":x",
        "a:b",
        "a: b",
        "a #b",
        "a#b",
        "'q'",
        "\"q\"",
        "\"\"",
        "''",
        "x,y",
        "[x]",
        "{x: y}",
        "?x",
        "? x",
        "-x",
        "- x",
        "@x",
        "`x",
        "%x",
        "!x",
        "&x",
        "*x",
        "|",
        ">",
        "x ",
        "0x1g",
        "1e",
        "+1",
        ".5",
        "1.",
        "null",
        "Null",
        "~",
        "yes",
        "on",
        "2001-02-30",
        "2001-12-14t21:59:43.10-05:00",
        "12:30:00",
        "0755",
        "'a''b'",
        "\"a\\nb\"",
        "x :y",
        "x]",
        "x}",
        "[x, y]",
        "[]",
        "{}",
        "{a: 1}",
        "{a: [1]}",
        "[x, [y]]",
        "[ x , y ]",
        "[x ,y]",
        "{ a : 1 }",
        "{a: 1 , b: 2}",
        "{a: 1,b: 2}",
        "a  b",
        "x:",
        "\"x\":",
        "[\"a, b\", 'c]']",
        "{\"k\": v}",
        "[a: b]",
        "[-1, -x, - x]",
        "{a: -1}",
        "[a #b]",
        "[a, #b]",
        "[ ]",
        "{ }",
        "'#'",
        "\"#\"",
        "a \"b\"",
        "\"a\" #c",
        "[a]#c",
        "[a] #c",
        "x\\y",
        "$HOME",
        "${A:-b}",
    ];
    let (mut read, mut tried) = (0, 0);
    for v in values {
        for text in [
            format!("  a:\n    k: {v}\n    z: 1\n"),
            format!("  a:\n    k:\n      - {v}\n      - 2\n"),
            format!("  a:\n    k:\n    - {v}\n"),
            format!("  a:\n    k: [{v}, 2]\n"),
            format!("  a:\n    k: {{x: {v}}}\n"),
            format!("  a:\n    {v}: 1\n"),
            format!("  a:\n    k:\n      - m: {v}\n        n: 1\n"),
        ] {
            tried += 1;
            read += usize::from(agrees(&text, &text));
        }
    }
    println!("{read} of {tried} texts read by the fast parser");
    assert!(read > tried / 3, "only {read} of {tried}");
}
