//! The source scanner behind `tests/layout.rs`: blanks comments, doc comments, string, raw-string
//! and char literals and `#[cfg(test)] mod … { … }` blocks, then finds every `crate::…` and
//! `super::…` path left in code, use trees (`use crate::{a, b::{c, d}}`) spelled out one path each.
//!
//! It does not resolve paths to files (the graph in `tests/layout.rs` does), expand macros or
//! read `self::` and bare relative paths.

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn blank(chars: &mut [char], from: usize, to: usize) {
    let to = to.min(chars.len());
    for c in &mut chars[from..to] {
        if *c != '\n' {
            *c = ' ';
        }
    }
}

/// End (exclusive) of a `"…"` literal whose opening quote is at `open`.
fn end_of_quoted(c: &[char], open: usize) -> usize {
    let mut j = open + 1;
    while j < c.len() && c[j] != '"' {
        j += if c[j] == '\\' { 2 } else { 1 };
    }
    j + 1
}

/// The source with comments (line, block, doc) and string, byte-string, raw-string and char
/// literals replaced by spaces; line breaks kept, so line numbers still hold.
fn blank_comments_and_strings(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = c.clone();
    let n = c.len();
    let at = |k: usize| c.get(k).copied().unwrap_or('\0');
    let mut i = 0;
    while i < n {
        match c[i] {
            '/' if at(i + 1) == '/' => {
                let mut j = i;
                while j < n && c[j] != '\n' {
                    j += 1;
                }
                blank(&mut out, i, j);
                i = j;
            }
            '/' if at(i + 1) == '*' => {
                let (mut j, mut depth) = (i + 2, 1);
                while j < n && depth > 0 {
                    if c[j] == '/' && at(j + 1) == '*' {
                        depth += 1;
                        j += 2;
                    } else if c[j] == '*' && at(j + 1) == '/' {
                        depth -= 1;
                        j += 2;
                    } else {
                        j += 1;
                    }
                }
                blank(&mut out, i, j);
                i = j;
            }
            '"' => {
                let j = end_of_quoted(&c, i);
                blank(&mut out, i, j);
                i = j;
            }
            '\'' => {
                if at(i + 1) == '\\' {
                    let mut j = i + 3;
                    while j < n && c[j] != '\'' {
                        j += 1;
                    }
                    blank(&mut out, i, j + 1);
                    i = j + 1;
                } else if at(i + 2) == '\'' {
                    blank(&mut out, i, i + 3);
                    i += 3;
                } else {
                    i += 1; // a lifetime or label
                }
            }
            ch if is_ident_start(ch) => {
                let mut j = i;
                while j < n && is_ident_char(c[j]) {
                    j += 1;
                }
                let word: String = c[i..j].iter().collect();
                let raw = matches!(word.as_str(), "r" | "br" | "cr");
                if raw && (at(j) == '"' || (at(j) == '#' && matches!(at(j + 1), '"' | '#'))) {
                    let mut hashes = 0;
                    while at(j + hashes) == '#' {
                        hashes += 1;
                    }
                    let mut k = j + hashes + 1;
                    while k < n && !(c[k] == '"' && (1..=hashes).all(|h| at(k + h) == '#')) {
                        k += 1;
                    }
                    let end = k + 1 + hashes;
                    blank(&mut out, i, end);
                    i = end;
                } else if matches!(word.as_str(), "b" | "c") && at(j) == '"' {
                    let end = end_of_quoted(&c, j);
                    blank(&mut out, i, end);
                    i = end;
                } else if word == "r" && at(j) == '#' {
                    i = j + 1; // a raw identifier, r#name
                } else {
                    i = j;
                }
            }
            ch if ch.is_ascii_digit() => {
                while i < n && is_ident_char(c[i]) {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    out.into_iter().collect()
}

/// The (already comment-free) source with every `#[cfg(test)] mod name { … }` block blanked.
fn blank_test_modules(src: &str) -> String {
    const ATTR: &str = "#[cfg(test)]";
    let c: Vec<char> = src.chars().collect();
    let mut out = c.clone();
    let skip_ws = |mut k: usize| {
        while k < c.len() && c[k].is_whitespace() {
            k += 1;
        }
        k
    };
    let word_at = |k: usize| {
        let mut j = k;
        while j < c.len() && is_ident_char(c[j]) {
            j += 1;
        }
        (c[k..j].iter().collect::<String>(), j)
    };
    let attr: Vec<char> = ATTR.chars().collect();
    let mut i = 0;
    while i + attr.len() <= c.len() {
        if c[i..i + attr.len()] != attr[..] {
            i += 1;
            continue;
        }
        let mut k = skip_ws(i + attr.len());
        let (mut word, mut after) = word_at(k);
        if word == "pub" {
            k = skip_ws(after);
            (word, after) = word_at(k);
        }
        let (name, after_name) = word_at(skip_ws(after));
        let open = skip_ws(after_name);
        if word != "mod" || name.is_empty() || c.get(open) != Some(&'{') {
            i += attr.len();
            continue;
        }
        let (mut j, mut depth) = (open + 1, 1);
        while j < c.len() && depth > 0 {
            match c[j] {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            j += 1;
        }
        blank(&mut out, i, j);
        i = j;
    }
    out.into_iter().collect()
}

#[derive(Clone, PartialEq, Debug)]
enum Tok {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Star,
    Other,
}

fn tokenize(src: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = src.chars().collect();
    let (mut i, mut line, mut out) = (0, 1, Vec::new());
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if is_ident_start(ch) {
            let mut j = i;
            while j < c.len() && is_ident_char(c[j]) {
                j += 1;
            }
            out.push((Tok::Ident(c[i..j].iter().collect()), line));
            i = j;
        } else if ch.is_ascii_digit() {
            while i < c.len() && is_ident_char(c[i]) {
                i += 1;
            }
            out.push((Tok::Other, line));
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            out.push((Tok::PathSep, line));
            i += 2;
        } else {
            let tok = match ch {
                '{' => Tok::Open,
                '}' => Tok::Close,
                ',' => Tok::Comma,
                '*' => Tok::Star,
                _ => Tok::Other,
            };
            out.push((tok, line));
            i += 1;
        }
    }
    out
}

/// A `crate::…` or `super::…` path as written: how many `super`s (0 for `crate`) and the rest.
#[derive(Clone, PartialEq, Debug)]
pub struct RawPath {
    /// The line of its first segment, from 1.
    pub line: usize,
    /// How many leading `super`s; 0 for a path from `crate`.
    pub supers: usize,
    /// The segments after `crate`/`super`.
    pub segs: Vec<String>,
}

impl RawPath {
    /// The path as written, e.g. `super::super::partial::Raw`.
    pub fn spelled(&self) -> String {
        let mut parts = if self.supers == 0 {
            vec!["crate".to_string()]
        } else {
            vec!["super".to_string(); self.supers]
        };
        parts.extend(self.segs.iter().cloned());
        parts.join("::")
    }
}

fn ident(toks: &[(Tok, usize)], i: usize) -> Option<&str> {
    match toks.get(i) {
        Some((Tok::Ident(s), _)) => Some(s),
        _ => None,
    }
}

fn tok(toks: &[(Tok, usize)], i: usize) -> Option<&Tok> {
    toks.get(i).map(|(t, _)| t)
}

/// Follows `::name` segments from `*i`, then a use-tree group or a glob; emits each full path.
fn path_tail(
    toks: &[(Tok, usize)],
    i: &mut usize,
    mut prefix: Vec<String>,
    emit: &mut dyn FnMut(Vec<String>),
) {
    while tok(toks, *i) == Some(&Tok::PathSep) {
        match tok(toks, *i + 1) {
            Some(Tok::Ident(s)) if s != "self" && s != "super" => {
                prefix.push(s.clone());
                *i += 2;
            }
            Some(Tok::Open) => {
                *i += 2;
                use_group(toks, i, &prefix, emit);
                return;
            }
            Some(Tok::Star) => {
                *i += 2;
                break;
            }
            _ => break,
        }
    }
    emit(prefix);
}

/// A use-tree group, `{ a, b::c, self, *, { … } }`, starting just after its `{`.
fn use_group(
    toks: &[(Tok, usize)],
    i: &mut usize,
    prefix: &[String],
    emit: &mut dyn FnMut(Vec<String>),
) {
    while let Some(t) = tok(toks, *i) {
        match t {
            Tok::Close => {
                *i += 1;
                return;
            }
            Tok::Ident(s) if s == "self" => {
                emit(prefix.to_vec());
                *i += 1;
            }
            Tok::Ident(s) if s == "as" => *i += 2,
            Tok::Ident(s) => {
                let mut p = prefix.to_vec();
                p.push(s.clone());
                *i += 1;
                path_tail(toks, i, p, emit);
            }
            Tok::Star => {
                emit(prefix.to_vec());
                *i += 1;
            }
            Tok::Open => {
                *i += 1;
                use_group(toks, i, prefix, emit);
            }
            _ => *i += 1,
        }
    }
}

/// Every `crate::…`/`super::…` path in code (comments, literals and test modules blanked).
pub fn paths_in(src: &str) -> Vec<RawPath> {
    let code = blank_test_modules(&blank_comments_and_strings(src));
    let toks = tokenize(&code);
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let anchor = ident(&toks, i);
        let after_sep = i > 0 && tok(&toks, i - 1) == Some(&Tok::PathSep);
        let follows = tok(&toks, i + 1) == Some(&Tok::PathSep);
        if !matches!(anchor, Some("crate" | "super")) || after_sep || !follows {
            i += 1;
            continue;
        }
        let line = toks[i].1;
        let mut supers = usize::from(anchor == Some("super"));
        i += 1;
        while supers > 0
            && tok(&toks, i) == Some(&Tok::PathSep)
            && ident(&toks, i + 1) == Some("super")
        {
            supers += 1;
            i += 2;
        }
        path_tail(&toks, &mut i, Vec::new(), &mut |segs| {
            out.push(RawPath { line, supers, segs })
        });
    }
    out
}
