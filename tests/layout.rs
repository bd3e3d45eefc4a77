//! The crate's structure, checked by `cargo test --test layout`: no import cycle between files under
//! `src/`, no two top-level modules (`src/X.rs` or `src/X/`) importing each other, no `.rs` file
//! under `src/` over 800 lines. Add `-- --nocapture` for a short report (files read, edges, largest
//! files); with `LAYOUT_EDGES=1` in the environment it also lists every edge with its first place.
//!
//! An edge goes from a file to the file that defines the module a `crate::…` or `super::…` path
//! names (in `use` lines, use trees and code), found by `layout/scan.rs` after blanking comments,
//! doc comments, string and char literals and `#[cfg(test)] mod … { … }` blocks. A parent file's
//! (`mod.rs`, `lib.rs` or `x.rs` beside `x/`) paths into its own descendants (its `mod`
//! declarations and re-exports) are not edges; neither are paths to the crate root. It matches
//! `/work/shared/hooks/import_cycles.py`, and also reads grouped use trees (`use super::{a, b}`)
//! and `super::super::`, which that script does not.
//!
//! It does not compile or resolve names the way rustc does: no macro expansion, no `self::` or
//! bare relative paths, no following of re-exports to the item's real home, no check of `src/bin/`
//! or `main.rs` imports (they are separate crates), only their line counts.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::path::Path;

#[path = "layout/scan.rs"]
mod scan;

use scan::paths_in;

/// The most lines a `.rs` file under `src/` may have.
const MAX_LINES: usize = 800;

/// A module path inside the crate; empty for the crate root.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct ModPath(Vec<String>);

impl ModPath {
    fn top(&self) -> Option<&str> {
        self.0.first().map(String::as_str)
    }

    fn starts_with(&self, other: &ModPath) -> bool {
        self.0.starts_with(&other.0)
    }
}

impl fmt::Display for ModPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("crate")
        } else {
            f.write_str(&self.0.join("::"))
        }
    }
}

/// One `.rs` file under `src/`: its path relative to `src/` (with `/`) and its text.
struct SourceFile {
    rel: String,
    text: String,
}

/// Where an edge was first seen: the line and the path as written (use trees spelled out).
#[derive(Clone, Debug)]
struct Evidence {
    line: usize,
    path: String,
}

/// The file-level import graph of a crate's `src/`.
struct Graph {
    /// Module path -> its file, relative to `src/`.
    files: BTreeMap<ModPath, String>,
    /// Importing module -> imported module -> first place it is imported.
    edges: BTreeMap<ModPath, BTreeMap<ModPath, Evidence>>,
}

/// Two top-level modules that import each other, with one edge each way.
struct MutualPair {
    a: String,
    b: String,
    a_to_b: (ModPath, ModPath, Evidence),
    b_to_a: (ModPath, ModPath, Evidence),
}

// ---------------------------------------------------------------------------------------------
// Reading src/

fn read_src(dir: &Path) -> Vec<SourceFile> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<SourceFile>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {dir:?}: {e}"));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.extension().is_some_and(|x| x == "rs") {
                let text =
                    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
                let rel = path.strip_prefix(root).expect("under src/");
                let rel = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                out.push(SourceFile { rel, text });
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    out
}

/// The module a file under `src/` defines; `None` for binary crates (`main.rs`, `bin/`).
fn module_of(rel: &str) -> Option<ModPath> {
    if rel == "main.rs" || rel.starts_with("bin/") {
        return None;
    }
    let stem = rel.strip_suffix(".rs")?;
    let mut parts: Vec<String> = stem.split('/').map(str::to_string).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    Some(ModPath(parts))
}

// ---------------------------------------------------------------------------------------------
// The graph

impl Graph {
    fn build(sources: &[SourceFile]) -> Graph {
        let files: BTreeMap<ModPath, String> = sources
            .iter()
            .filter_map(|s| module_of(&s.rel).map(|m| (m, s.rel.clone())))
            .collect();
        let resolve = |mut p: Vec<String>| {
            while !p.is_empty() && !files.contains_key(&ModPath(p.clone())) {
                p.pop();
            }
            ModPath(p)
        };
        let mut edges: BTreeMap<ModPath, BTreeMap<ModPath, Evidence>> = BTreeMap::new();
        for s in sources {
            let Some(m) = module_of(&s.rel) else { continue };
            let has_children = files
                .keys()
                .any(|k| k.0.len() > m.0.len() && k.starts_with(&m));
            let from = edges.entry(m.clone()).or_default();
            for p in paths_in(&s.text) {
                if p.supers > m.0.len() {
                    continue;
                }
                let mut full = m.0[..m.0.len() - p.supers].to_vec();
                if p.supers == 0 {
                    full.clear();
                }
                full.extend(p.segs.iter().cloned());
                let target = resolve(full);
                if target == m || target.0.is_empty() || (has_children && target.starts_with(&m)) {
                    continue;
                }
                from.entry(target).or_insert(Evidence {
                    line: p.line,
                    path: p.spelled(),
                });
            }
        }
        Graph { files, edges }
    }

    fn edge_count(&self) -> usize {
        self.edges.values().map(BTreeMap::len).sum()
    }

    fn targets(&self, m: &ModPath) -> impl Iterator<Item = &ModPath> {
        self.edges.get(m).into_iter().flat_map(BTreeMap::keys)
    }

    /// Strongly connected components of more than one file (Tarjan), each sorted, in order.
    fn components(&self) -> Vec<Vec<ModPath>> {
        struct Tarjan<'g> {
            g: &'g Graph,
            index: BTreeMap<&'g ModPath, usize>,
            low: BTreeMap<&'g ModPath, usize>,
            stack: Vec<&'g ModPath>,
            on_stack: BTreeSet<&'g ModPath>,
            out: Vec<Vec<ModPath>>,
        }
        impl<'g> Tarjan<'g> {
            fn visit(&mut self, v: &'g ModPath) {
                let n = self.index.len();
                self.index.insert(v, n);
                self.low.insert(v, n);
                self.stack.push(v);
                self.on_stack.insert(v);
                for w in self.g.targets(v) {
                    if !self.index.contains_key(w) {
                        self.visit(w);
                        let lw = self.low[w];
                        let lv = self.low.get_mut(v).expect("visited");
                        *lv = (*lv).min(lw);
                    } else if self.on_stack.contains(w) {
                        let iw = self.index[w];
                        let lv = self.low.get_mut(v).expect("visited");
                        *lv = (*lv).min(iw);
                    }
                }
                if self.low[v] == self.index[v] {
                    let mut comp = Vec::new();
                    while let Some(w) = self.stack.pop() {
                        self.on_stack.remove(w);
                        comp.push(w.clone());
                        if w == v {
                            break;
                        }
                    }
                    if comp.len() > 1 {
                        comp.sort();
                        self.out.push(comp);
                    }
                }
            }
        }
        let mut t = Tarjan {
            g: self,
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: Vec::new(),
            on_stack: BTreeSet::new(),
            out: Vec::new(),
        };
        for v in self.files.keys() {
            if !t.index.contains_key(v) {
                t.visit(v);
            }
        }
        let mut out = t.out;
        out.sort();
        out
    }

    /// A shortest cycle through the component's first member, staying inside the component:
    /// `[a, b, …, a]`.
    fn cycle_in(&self, comp: &[ModPath]) -> Vec<ModPath> {
        let start = &comp[0];
        let mut prev: BTreeMap<&ModPath, &ModPath> = BTreeMap::new();
        let mut queue = VecDeque::from([start]);
        while let Some(v) = queue.pop_front() {
            for w in self.targets(v).filter(|w| comp.contains(w)) {
                if w == start {
                    let mut path = vec![start.clone(), v.clone()];
                    let mut at = v;
                    while at != start {
                        at = prev[at];
                        path.push(at.clone());
                    }
                    path.reverse();
                    return path;
                }
                if !prev.contains_key(w) {
                    prev.insert(w, v);
                    queue.push_back(w);
                }
            }
        }
        unreachable!("a strongly connected component has a cycle through each member")
    }

    /// Each cycle as `a -> b -> a`, one `file:line: path` per hop, the whole component if larger.
    fn cycle_report(&self) -> Vec<String> {
        self.components()
            .iter()
            .map(|comp| {
                let cycle = self.cycle_in(comp);
                let names: Vec<String> = cycle.iter().map(ToString::to_string).collect();
                let mut text = names.join(" -> ");
                for hop in cycle.windows(2) {
                    text.push_str(&format!("\n    {}", self.hop(&hop[0], &hop[1])));
                }
                if comp.len() + 1 > cycle.len() {
                    let all: Vec<String> = comp.iter().map(ToString::to_string).collect();
                    text.push_str(&format!(
                        "\n    (all files in this knot: {})",
                        all.join(", ")
                    ));
                }
                text
            })
            .collect()
    }

    fn hop(&self, from: &ModPath, to: &ModPath) -> String {
        let e = &self.edges[from][to];
        format!("src/{}:{}: {}", self.files[from], e.line, e.path)
    }

    /// Top-level modules that import each other (through any of their files), in order.
    fn mutual_top_level(&self) -> Vec<MutualPair> {
        let mut top: BTreeMap<(&str, &str), (ModPath, ModPath, Evidence)> = BTreeMap::new();
        for (v, ws) in &self.edges {
            for (w, e) in ws {
                if let (Some(a), Some(b)) = (v.top(), w.top())
                    && a != b
                {
                    top.entry((a, b))
                        .or_insert_with(|| (v.clone(), w.clone(), e.clone()));
                }
            }
        }
        top.iter()
            .filter(|((a, b), _)| a < b)
            .filter_map(|((a, b), ab)| {
                let ba = top.get(&(*b, *a))?;
                Some(MutualPair {
                    a: a.to_string(),
                    b: b.to_string(),
                    a_to_b: ab.clone(),
                    b_to_a: ba.clone(),
                })
            })
            .collect()
    }

    fn mutual_report(&self) -> Vec<String> {
        self.mutual_top_level()
            .iter()
            .map(|p| {
                let one = |(v, w, _): &(ModPath, ModPath, Evidence)| {
                    format!("{v} -> {w} ({})", self.hop(v, w))
                };
                format!(
                    "{} <-> {}\n    {}\n    {}",
                    p.a,
                    p.b,
                    one(&p.a_to_b),
                    one(&p.b_to_a)
                )
            })
            .collect()
    }
}

/// Files over `max` lines, longest first, as `src/path: N lines`.
fn long_files(counts: &[(String, usize)], max: usize) -> Vec<String> {
    let mut long: Vec<&(String, usize)> = counts.iter().filter(|(_, n)| *n > max).collect();
    long.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    long.iter()
        .map(|(f, n)| format!("src/{f}: {n} lines"))
        .collect()
}

fn line_counts(sources: &[SourceFile]) -> Vec<(String, usize)> {
    sources
        .iter()
        .map(|s| (s.rel.clone(), s.text.lines().count()))
        .collect()
}

fn crate_src() -> Vec<SourceFile> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = read_src(&src);
    assert!(!files.is_empty(), "no .rs files found under {src:?}");
    files
}

// ---------------------------------------------------------------------------------------------
// The checks on this crate

#[test]
fn no_files_under_src_form_an_import_cycle() {
    let sources = crate_src();
    let g = Graph::build(&sources);
    let cycles = g.cycle_report();
    eprintln!(
        "layout: read {} files under src/ ({} modules), {} import edges, {} cycles",
        sources.len(),
        g.files.len(),
        g.edge_count(),
        cycles.len()
    );
    if std::env::var_os("LAYOUT_EDGES").is_some() {
        for (v, ws) in &g.edges {
            for (w, e) in ws {
                eprintln!(
                    "edge {v} -> {w} (src/{}:{}: {})",
                    g.files[v], e.line, e.path
                );
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "{} import cycle(s) between files under src/ (each file reaches itself through these paths; \
         break one hop, e.g. move the shared item into a leaf both can import):\n{}",
        cycles.len(),
        cycles.join("\n")
    );
}

#[test]
fn no_two_top_level_modules_import_each_other() {
    let g = Graph::build(&crate_src());
    let pairs = g.mutual_report();
    let tops: BTreeSet<&str> = g.files.keys().filter_map(ModPath::top).collect();
    eprintln!(
        "layout: {} top-level modules, {} pairs importing each other",
        tops.len(),
        pairs.len()
    );
    assert!(
        pairs.is_empty(),
        "{} pair(s) of top-level modules import each other (data should flow one way):\n{}",
        pairs.len(),
        pairs.join("\n")
    );
}

#[test]
fn no_source_file_is_longer_than_800_lines() {
    let counts = line_counts(&crate_src());
    let mut largest = counts.clone();
    largest.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let top5: Vec<String> = largest
        .iter()
        .take(5)
        .map(|(f, n)| format!("src/{f} {n}"))
        .collect();
    eprintln!("layout: largest files: {}", top5.join(", "));
    let long = long_files(&counts, MAX_LINES);
    assert!(
        long.is_empty(),
        "{} file(s) under src/ over {MAX_LINES} lines (split along a noun):\n{}",
        long.len(),
        long.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// The checker itself, on hand-written module sets

mod checker {
    use super::*;

    fn graph(files: &[(&str, &str)]) -> Graph {
        let sources: Vec<SourceFile> = files
            .iter()
            .map(|(rel, text)| SourceFile {
                rel: rel.to_string(),
                text: text.to_string(),
            })
            .collect();
        Graph::build(&sources)
    }

    fn m(path: &str) -> ModPath {
        ModPath(path.split("::").map(str::to_string).collect())
    }

    fn edges(g: &Graph) -> Vec<String> {
        g.edges
            .iter()
            .flat_map(|(v, ws)| ws.keys().map(move |w| format!("{v} -> {w}")))
            .collect()
    }

    #[test]
    fn a_cycle_of_three_files_is_reported_as_a_path_back_to_its_start() {
        let g = graph(&[
            ("lib.rs", "pub mod a;\npub mod b;\npub mod c;\n"),
            ("a.rs", "use crate::b::B;\npub struct A;\n"),
            ("b.rs", "use crate::c::C;\npub struct B;\n"),
            (
                "c.rs",
                "pub struct C;\nfn f() -> crate::a::A { crate::a::A }\n",
            ),
        ]);
        assert_eq!(g.components(), vec![vec![m("a"), m("b"), m("c")]]);
        let report = g.cycle_report();
        assert_eq!(report.len(), 1);
        assert!(report[0].starts_with("a -> b -> c -> a\n"), "{}", report[0]);
        assert!(
            report[0].contains("src/c.rs:2: crate::a::A"),
            "{}",
            report[0]
        );
    }

    #[test]
    fn a_chain_without_a_way_back_is_not_a_cycle() {
        let g = graph(&[
            ("a.rs", "use crate::b::B;"),
            ("b.rs", "use crate::c::C;"),
            ("c.rs", "pub struct C;"),
        ]);
        assert!(g.components().is_empty());
        assert_eq!(edges(&g), ["a -> b", "b -> c"]);
    }

    #[test]
    fn a_parent_re_exporting_its_child_is_not_an_edge() {
        let g = graph(&[
            (
                "run/mod.rs",
                "mod events;\npub use crate::run::events::RunEvent;\npub use events::Other;\n",
            ),
            (
                "run/events.rs",
                "use super::RunOptions;\npub struct RunEvent;\n",
            ),
        ]);
        assert_eq!(edges(&g), ["run::events -> run"]);
        assert!(g.components().is_empty());
    }

    #[test]
    fn super_from_a_plain_file_names_its_parent_module_and_super_super_the_grandparent() {
        let g = graph(&[
            ("scenario/mod.rs", "mod convert;\nmod partial;\n"),
            ("scenario/partial.rs", "pub struct Raw;"),
            ("scenario/convert/mod.rs", "mod load;"),
            (
                "scenario/convert/load.rs",
                "use super::Conv;\nuse super::super::partial::Raw;\n",
            ),
        ]);
        assert_eq!(
            edges(&g),
            [
                "scenario::convert::load -> scenario::convert",
                "scenario::convert::load -> scenario::partial"
            ]
        );
    }

    #[test]
    fn a_path_in_a_comment_string_or_test_module_is_ignored() {
        let g = graph(&[
            ("a.rs", "use crate::b::B;\n"),
            (
                "b.rs",
                concat!(
                    "//! Unlike crate::a::A, this is a leaf.\n",
                    "/// See [`crate::a::A`].\n",
                    "// use crate::a::A;\n",
                    "/* crate::a::A /* nested */ crate::a::A */\n",
                    "const S: &str = \"crate::a::A\";\n",
                    "const R: &str = r#\"crate::a::A \" still\"#;\n",
                    "const Q: char = '\"'; fn f<'a>(x: &'a str) {}\n",
                    "pub struct B;\n",
                    "#[cfg(test)]\nmod tests {\n    use crate::a::A;\n    fn g() { let _ = '{'; }\n}\n",
                ),
            ),
        ]);
        assert_eq!(edges(&g), ["a -> b"]);
    }

    #[test]
    fn code_after_a_test_module_in_the_middle_of_a_file_still_counts() {
        let g = graph(&[
            (
                "a.rs",
                "#[cfg(test)]\nmod tests {\n    use crate::b::B;\n}\nfn f() { crate::c::g() }\n",
            ),
            ("b.rs", ""),
            ("c.rs", ""),
        ]);
        assert_eq!(edges(&g), ["a -> c"]);
    }

    #[test]
    fn a_grouped_use_tree_gives_one_edge_per_named_module() {
        let g = graph(&[
            ("lib.rs", ""),
            ("engine/mod.rs", "pub mod pool;"),
            ("engine/pool.rs", ""),
            (
                "report.rs",
                "use crate::{engine::{self, pool::Pool as P}, metrics::*, failure::{Kind}};",
            ),
            ("metrics.rs", ""),
            ("failure.rs", ""),
        ]);
        assert_eq!(
            edges(&g),
            [
                "report -> engine",
                "report -> engine::pool",
                "report -> failure",
                "report -> metrics"
            ]
        );
    }

    #[test]
    fn visibility_and_the_crate_root_are_not_edges() {
        let g = graph(&[
            ("lib.rs", "pub mod a;"),
            (
                "a.rs",
                "pub(crate) fn f() {}\npub(super) fn g() {}\nuse crate::VERSION;\n",
            ),
        ]);
        assert_eq!(g.edge_count(), 0);
    }

    #[test]
    fn two_top_level_modules_importing_each_other_are_reported_without_a_file_cycle() {
        let g = graph(&[
            ("engine/mod.rs", "mod load;\nmod pool;"),
            ("engine/load.rs", "use crate::run::RunOptions;"),
            ("engine/pool.rs", ""),
            ("run/mod.rs", "mod finish;"),
            ("run/finish.rs", "use crate::engine::pool::Pool;"),
        ]);
        assert!(g.components().is_empty());
        let report = g.mutual_report();
        assert_eq!(report.len(), 1, "{report:?}");
        assert!(report[0].starts_with("engine <-> run\n"), "{}", report[0]);
        assert!(
            report[0]
                .contains("engine::load -> run (src/engine/load.rs:1: crate::run::RunOptions)")
        );
        assert!(report[0].contains("run::finish -> engine::pool"));
    }

    #[test]
    fn files_over_the_limit_are_listed_longest_first() {
        let counts = [
            ("a.rs".to_string(), 800),
            ("b.rs".to_string(), 801),
            ("c/d.rs".to_string(), 950),
        ];
        assert_eq!(
            long_files(&counts, MAX_LINES),
            ["src/c/d.rs: 950 lines", "src/b.rs: 801 lines"]
        );
    }

    #[test]
    fn main_and_bin_files_are_not_modules_of_the_library() {
        assert_eq!(module_of("main.rs"), None);
        assert_eq!(module_of("bin/tool.rs"), None);
        assert_eq!(module_of("lib.rs"), Some(ModPath(vec![])));
        assert_eq!(module_of("engine/mod.rs"), Some(m("engine")));
        assert_eq!(module_of("engine/pool.rs"), Some(m("engine::pool")));
    }
}
