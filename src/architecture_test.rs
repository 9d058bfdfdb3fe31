//! The layers, held by a test: it reads the crate's own source.
//!
//! - Nothing under `domain/`, `commands/`, `engine/` or `report/` names an I/O
//!   crate (or `std::net`, `std::fs`, `std::process`), nor anything in
//!   `store/`, `runtime/` or `adapters/`.
//! - Inside the crate, modules are named by their real path (`crate::domain::alert`,
//!   not the `crate::alert` that `lib.rs` keeps for tests and benches), so that
//!   the graph below is the true one.
//! - The graph of imports between the top-level modules (one node per folder,
//!   and `error`) has no cycle.
//! - Inside `engine/`, the graph of imports between its files has no cycle
//!   either: `mod.rs` dispatches to the features, the features share
//!   `context.rs` and the vocabulary below it, and no file imports what
//!   `mod.rs` re-exports (naming `crate::engine::Decision` from a feature
//!   is an edge up to `mod.rs`). A file's tests (from its first
//!   `#[cfg(test)]` on) and `engine/tests/` are clients of the engine and
//!   do not count.
//! - The words of every post and answer live in `engine/messages.rs` and
//!   `engine/messages/`: no other engine file builds a `Rich` (no
//!   `Rich::new()`, `Rich::from(`, no `.text(`, `.mention(`, `.quoted(`, …
//!   appended to one, no `Reply::private` of a literal or a `format!`). A feature decides and hands the facts to a function
//!   of `messages`. Tests (from a file's first `#[cfg(test)]` on, and
//!   `engine/tests/`) do not count.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The folders that decide and describe, and do no I/O.
const PURE: &[&str] = &["domain", "commands", "engine", "report"];

/// What a pure folder may not name.
const FORBIDDEN_CRATES: &[&str] = &[
    "tokio", "reqwest", "serenity", "axum", "sled", "lettre", "hyper", "tower",
];
const FORBIDDEN_STD: &[&str] = &["std::net", "std::fs", "std::process"];
const FORBIDDEN_MODULES: &[&str] = &["store", "runtime", "adapters"];

/// The crate's top-level modules, by their real names.
const TOP: &[&str] = &[
    "adapters", "commands", "config", "domain", "engine", "error", "report", "runtime", "store",
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a line: without its `//` comment (a crude cut, which may
/// also cut a string holding `//`; that only ever hides text, never adds it).
fn code(line: &str) -> &str {
    let t = line.trim_start();
    if t.starts_with("//") {
        return "";
    }
    match line.find("//") {
        Some(i) => &line[..i],
        None => line,
    }
}

/// Whether `word` occurs in `text` as a path's first segment or a `use`d name:
/// `word::`, `use word;`, `use word as`, `extern crate word`.
fn names_crate(text: &str, word: &str) -> bool {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(i) = text[from..].find(word) {
        let at = from + i;
        from = at + word.len();
        let before_ok = at == 0 || {
            let c = bytes[at - 1] as char;
            !(c.is_alphanumeric() || c == '_' || c == ':')
        };
        let rest = &text[at + word.len()..];
        let after_ok = rest.starts_with("::")
            || (text[..at].trim_end().ends_with("use") || text[..at].trim_end().ends_with("crate"))
                && (rest.starts_with(';') || rest.starts_with(' '));
        if before_ok && after_ok {
            return true;
        }
    }
    false
}

/// The top-level modules a line names through `crate::` (`crate::x::…`,
/// `crate::{x, y}`), as written.
fn crate_paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find("crate::") {
        let at = from + i + "crate::".len();
        from = at;
        let rest = &text[at..];
        if let Some(list) = rest.strip_prefix('{') {
            let list = list.split('}').next().unwrap_or("");
            for item in list.split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.push(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

/// The top-level module a file belongs to (`None` for `lib.rs` and `main.rs`).
fn node_of(file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src()).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.to_string();
    if rel.components().count() > 1 {
        return Some(first);
    }
    let stem = first.trim_end_matches(".rs");
    (TOP.contains(&stem)).then(|| stem.to_string())
}

fn place(file: &Path, n: usize) -> String {
    format!(
        "src/{}:{}",
        file.strip_prefix(src()).unwrap().display(),
        n + 1
    )
}

/// Every breach of the layers in the given files, as `file:line: what`.
fn breaches(files: &[PathBuf]) -> Vec<String> {
    let mut found = Vec::new();
    for file in files {
        let Some(node) = node_of(file) else { continue };
        let text = std::fs::read_to_string(file).unwrap();
        let pure = PURE.contains(&node.as_str());
        for (n, line) in text.lines().enumerate() {
            let c = code(line);
            if pure {
                for krate in FORBIDDEN_CRATES {
                    if names_crate(c, krate) {
                        found.push(format!(
                            "{}: `{node}/` names the I/O crate `{krate}`: {}",
                            place(file, n),
                            line.trim()
                        ));
                    }
                }
                for std_mod in FORBIDDEN_STD {
                    if c.contains(std_mod) {
                        found.push(format!(
                            "{}: `{node}/` names `{std_mod}`: {}",
                            place(file, n),
                            line.trim()
                        ));
                    }
                }
            }
            for m in crate_paths(c) {
                if pure && FORBIDDEN_MODULES.contains(&m.as_str()) {
                    found.push(format!(
                        "{}: `{node}/` imports `crate::{m}`, a layer above it: {}",
                        place(file, n),
                        line.trim()
                    ));
                } else if !TOP.contains(&m.as_str()) {
                    found.push(format!(
                        "{}: `crate::{m}` is no module of the crate; name a module by its folder: {}",
                        place(file, n),
                        line.trim()
                    ));
                }
            }
        }
    }
    found
}

/// The imports between top-level modules: `from → {to}`, with one place each.
fn graph(files: &[PathBuf]) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut g: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for file in files {
        let Some(node) = node_of(file) else { continue };
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for m in crate_paths(code(line)) {
                if m != node && TOP.contains(&m.as_str()) {
                    g.entry(node.clone())
                        .or_default()
                        .entry(m)
                        .or_insert_with(|| place(file, n));
                }
            }
        }
    }
    g
}

/// One cycle of the graph, as the path that closes it, if there is one.
fn cycle(g: &BTreeMap<String, BTreeMap<String, String>>) -> Option<Vec<String>> {
    fn visit(
        g: &BTreeMap<String, BTreeMap<String, String>>,
        node: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == node) {
            let mut c = path[i..].to_vec();
            c.push(node.to_string());
            return Some(c);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in g.get(node).into_iter().flat_map(|m| m.keys()) {
            if let Some(c) = visit(g, next, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in g.keys() {
        if let Some(c) = visit(g, node, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

/// The graph of imports between the files of one folder, from their text:
/// `(file stem, source)` pairs, `mod` for the folder's `mod.rs`. An edge
/// goes from a file to `crate::<folder>::<stem>` for each stem it names, to
/// `mod` for anything else it names through `crate::<folder>::` (what
/// `mod.rs` declares or re-exports) or through `super::`; `mod` points to
/// every file it declares (`mod x;`). Lines from a file's first
/// `#[cfg(test)]` on are left out.
fn folder_graph(
    folder: &str,
    sources: &[(String, String)],
) -> BTreeMap<String, BTreeMap<String, String>> {
    let stems: BTreeSet<&str> = sources.iter().map(|(s, _)| s.as_str()).collect();
    let prefix = format!("crate::{folder}::");
    let mut g: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (stem, text) in sources {
        let file = format!("src/{folder}/{stem}.rs");
        let mut edge = |to: &str, n: usize| {
            if to != stem {
                g.entry(stem.clone())
                    .or_default()
                    .entry(to.to_string())
                    .or_insert_with(|| format!("{file}:{}", n + 1));
            }
        };
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("#[cfg(test)]") {
                break;
            }
            let c = code(line);
            if stem == "mod" {
                let decl = c
                    .trim()
                    .trim_start_matches("pub ")
                    .trim_start_matches("pub(crate) ");
                if let Some(m) = decl.strip_prefix("mod ").and_then(|m| m.strip_suffix(';')) {
                    if stems.contains(m.trim()) {
                        edge(m.trim(), n);
                    }
                }
                continue;
            }
            if c.contains("super::") {
                edge("mod", n);
            }
            let mut from = 0;
            while let Some(i) = c[from..].find(&prefix) {
                let at = from + i + prefix.len();
                from = at;
                let rest = &c[at..];
                let names: Vec<String> = match rest.strip_prefix('{') {
                    Some(list) => list
                        .split('}')
                        .next()
                        .unwrap_or("")
                        .split(',')
                        .map(|item| {
                            item.trim()
                                .chars()
                                .take_while(|c| c.is_alphanumeric() || *c == '_')
                                .collect()
                        })
                        .filter(|n: &String| !n.is_empty())
                        .collect(),
                    None => vec![rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect()],
                };
                for name in names {
                    if stems.contains(name.as_str()) && name != "mod" {
                        edge(&name, n);
                    } else {
                        edge("mod", n);
                    }
                }
            }
        }
    }
    g
}

/// The files directly in `src/<folder>/`, as `(stem, source)`.
fn folder_sources(folder: &str) -> Vec<(String, String)> {
    let dir = src().join(folder);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "rs"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| {
            let stem = p.file_stem().unwrap().to_str().unwrap().to_string();
            (stem, std::fs::read_to_string(p).unwrap())
        })
        .collect()
}

/// A cycle of a graph, step by step with the place of each import.
fn cycle_steps(g: &BTreeMap<String, BTreeMap<String, String>>) -> Option<String> {
    let c = cycle(g)?;
    let steps: Vec<String> = c
        .windows(2)
        .map(|w| format!("{} → {} (at {})", w[0], w[1], g[&w[0]][&w[1]]))
        .collect();
    Some(steps.join("\n"))
}

fn all_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files
}

#[test]
fn pure_folders_import_no_io_and_no_layer_above() {
    let found = breaches(&all_files());
    assert!(
        found.is_empty(),
        "the layers are breached:\n{}",
        found.join("\n")
    );
}

#[test]
fn folders_import_each_other_without_a_cycle() {
    let g = graph(&all_files());
    if let Some(steps) = cycle_steps(&g) {
        panic!("the folders import in a circle:\n{steps}");
    }
}

#[test]
fn engine_files_import_each_other_without_a_cycle() {
    let sources = folder_sources("engine");
    assert!(
        sources.iter().any(|(s, _)| s == "context"),
        "the engine's files are where this test looks"
    );
    let g = folder_graph("engine", &sources);
    assert!(
        g.get("mod").is_some_and(|to| to.contains_key("context")),
        "the graph sees mod.rs declare its files: {g:?}"
    );
    if let Some(steps) = cycle_steps(&g) {
        panic!("the engine's files import in a circle:\n{steps}");
    }
}

#[test]
fn the_file_graph_sees_a_circle_through_mod_rs_and_between_features() {
    let src = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    // Down only: mod → features → context; tests may use the facade.
    let fine = src(&[
        ("mod", "mod alerts;\nmod context;\npub use context::Out;\n"),
        ("alerts", "use crate::engine::context::{Cx, Out};\n#[cfg(test)]\nmod tests { use crate::engine::Engine; }\n"),
        ("context", "use crate::domain::Ticket;\n"),
    ]);
    assert_eq!(cycle_steps(&folder_graph("engine", &fine)), None);
    // A feature naming a re-export of mod.rs points up to it.
    let up = src(&[
        ("mod", "mod alerts;\nmod context;\n"),
        ("alerts", "use crate::engine::{context::Cx, Decision};\n"),
        ("context", ""),
    ]);
    let steps = cycle_steps(&folder_graph("engine", &up)).expect("a cycle");
    assert!(
        steps.contains("alerts → mod (at src/engine/alerts.rs:1)"),
        "{steps}"
    );
    // Two features importing each other.
    let pair = src(&[
        ("mod", "mod builds;\nmod deploys;\n"),
        ("builds", "use crate::engine::deploys::deploy_run;\n"),
        (
            "deploys",
            "\n    crate::engine::builds::progress_of(cx, out, run);\n",
        ),
    ]);
    let steps = cycle_steps(&folder_graph("engine", &pair)).expect("a cycle");
    assert_eq!(
        steps,
        "builds → deploys (at src/engine/builds.rs:1)\ndeploys → builds (at src/engine/deploys.rs:2)"
    );
}

#[test]
fn the_checks_see_what_they_look_for() {
    assert!(names_crate("use tokio::sync::watch;", "tokio"));
    assert!(names_crate("    let s = sled::open(p);", "sled"));
    assert!(names_crate("use reqwest;", "reqwest"));
    assert!(!names_crate("let tokio_like = 1;", "tokio"));
    assert!(!names_crate("use crate::domain::sled_free::X;", "sled"));
    assert_eq!(
        crate_paths("use crate::{domain, store::Store}; crate::engine::X"),
        vec!["domain", "store", "engine"]
    );
    assert_eq!(code("let a = 1; // use tokio::x"), "let a = 1; ");
    let mut g: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    g.entry("a".into())
        .or_default()
        .insert("b".into(), "x".into());
    g.entry("b".into())
        .or_default()
        .insert("a".into(), "y".into());
    assert_eq!(
        cycle(&g),
        Some(vec!["a".to_string(), "b".to_string(), "a".to_string()])
    );
}

/// What appends words to a `Rich` (or makes one from words).
const WORD_BUILDERS: &[&str] = &[
    "Rich::new()",
    "Rich::from(",
    ".text(",
    ".bold(",
    ".quoted(",
    ".mention(",
    ".relative(",
    ".time(",
    "Reply::private(format!",
    "Reply::private(\"",
];

/// The places in one engine file's source that build a post's words, as
/// `path:line: code`. Lines from the first `#[cfg(test)]` on are left out.
fn word_builders(path: &str, text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("#[cfg(test)]") {
            break;
        }
        let c = code(line);
        if WORD_BUILDERS.iter().any(|w| c.contains(w)) {
            found.push(format!("{path}:{}: {}", n + 1, c.trim()));
        }
    }
    found
}

/// Whether an engine file is where words may be built.
fn holds_words(engine: &Path, file: &Path) -> bool {
    let rel = file.strip_prefix(engine).unwrap_or(file);
    rel == Path::new("messages.rs") || rel.starts_with("messages") || rel.starts_with("tests")
}

#[test]
fn words_of_posts_live_in_the_messages_module() {
    let engine = src().join("engine");
    let mut files = Vec::new();
    rust_files(&engine, &mut files);
    assert!(
        files.iter().any(|f| f.ends_with("engine/sla.rs")),
        "the engine's files are where this test looks"
    );
    let mut found = Vec::new();
    for f in files.iter().filter(|f| !holds_words(&engine, f)) {
        let text = std::fs::read_to_string(f).unwrap();
        found.extend(word_builders(&f.display().to_string(), &text));
    }
    assert!(
        found.is_empty(),
        "engine files outside messages* build words of posts; move them into a function of engine/messages:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_words_check_sees_a_post_built_outside_messages() {
    let engine = Path::new("/x/src/engine");
    assert!(holds_words(engine, &engine.join("messages.rs")));
    assert!(holds_words(engine, &engine.join("messages/oncall.rs")));
    assert!(holds_words(engine, &engine.join("tests/sla.rs")));
    assert!(!holds_words(engine, &engine.join("sla.rs")));
    let src = "let body = messages::ticket_head(t).text(\" — late\");\n\
               // Rich::new() in a comment is fine\n\
               let r = Rich::new();\n\
               #[cfg(test)]\n\
               mod tests { fn f() { Rich::new().text(\"x\"); } }\n";
    assert_eq!(
        word_builders("sla.rs", src),
        vec![
            "sla.rs:1: let body = messages::ticket_head(t).text(\" — late\");".to_string(),
            "sla.rs:3: let r = Rich::new();".to_string(),
        ]
    );
    assert!(word_builders("ok.rs", "out.post(&ch, None, messages::x(t));\n").is_empty());
}

/// The config may not import the store, so each keeps the default cache
/// size: this keeps them equal.
#[test]
fn the_config_and_the_store_agree_on_the_default_cache() {
    assert_eq!(crate::config::DEFAULT_CACHE, crate::store::DEFAULT_CACHE);
}
