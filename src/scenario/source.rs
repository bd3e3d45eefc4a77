//! Where a value of the partial scenario came from, and how an error points back at it.
//!
//! A value is [`Located`]: at a byte span of a file (`toml::Spanned` keeps it), or at a
//! command-line flag. [`FileText`] maps offsets and dotted keys to line and column (also for
//! `mock --config`); `Source` turns an origin into a [`ScenarioError`] whose prefix is the file's
//! `path:line:column: key` or the flag's name, the message being the same either way. It does not
//! validate anything itself.

use std::ops::Range;

use serde::{Deserialize, Deserializer};
use toml::Spanned;

use super::ScenarioError;

/// Where a value of the partial scenario came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Bytes of the scenario file.
    Span(Range<usize>),
    /// A command-line flag (`-c`, `--max-keepalive`, `-H Authorization`), or `URL`.
    Flag(String),
}

/// A value and where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Located<T> {
    /// The value.
    pub value: T,
    /// Where it was written.
    pub origin: Origin,
}

impl<T> Located<T> {
    /// A value given by a command-line flag.
    pub fn flag(flag: impl Into<String>, value: T) -> Located<T> {
        Located {
            value,
            origin: Origin::Flag(flag.into()),
        }
    }

    /// The value.
    pub fn get_ref(&self) -> &T {
        &self.value
    }

    /// The value, without its origin.
    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Spanned::<T>::deserialize(d)?;
        let span = s.span();
        Ok(Located {
            value: s.into_inner(),
            origin: Origin::Span(span),
        })
    }
}

/// A file's text, for pointing at a place in it by line and column.
#[derive(Clone, Copy, Debug)]
pub struct FileText<'a> {
    /// The file as shown in messages.
    pub path: &'a str,
    /// Its contents.
    pub text: &'a str,
}

impl FileText<'_> {
    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_column(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    }

    /// Where the last part of a dotted key (`rps` of `mock.rate_limit.rps`) is assigned in the
    /// table that starts at `table.start`. A `[[table]]`'s span may cover only its header, so the
    /// search runs on to the next table header. `None` if it is not written there.
    pub fn key_offset(&self, table: Range<usize>, key: &str) -> Option<usize> {
        let last = key.rsplit(['.', ']']).find(|s| !s.is_empty())?;
        let text = self.text;
        let start = table.start.min(text.len());
        let first_line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let end = text[first_line_end..]
            .find("\n[")
            .map_or(text.len(), |i| first_line_end + i)
            .max(table.end.min(text.len()));
        let slice = &text[start..end];
        let mut from = 0;
        while let Some(i) = slice[from..].find(last) {
            let at = from + i;
            let starts_word = !slice[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_');
            if starts_word && slice[at + last.len()..].trim_start().starts_with('=') {
                return Some(start + at);
            }
            from = at + last.len();
        }
        None
    }

    /// The error at a byte offset: `path:line:column: key: message`.
    pub fn invalid(
        &self,
        offset: usize,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ScenarioError {
        let (line, column) = self.line_column(offset);
        ScenarioError::Invalid {
            path: self.path.to_string(),
            line,
            column,
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Which flag sets a profile or load key (`max_keepalive_connections` → `--max-keepalive`).
pub(super) type FlagOf = fn(&str) -> Option<&'static str>;

/// What the partial scenario was read from.
pub(super) enum Source<'a> {
    /// A scenario file.
    File(FileText<'a>),
    /// The `quick` command's flags.
    Flags {
        /// Names the flag behind a key that a check reports without a value of its own.
        flag_of: FlagOf,
    },
}

impl Source<'_> {
    /// The path, or `quick`: the scenario's `source` (and its default name).
    pub(super) fn label(&self) -> &str {
        match self {
            Source::File(f) => f.path,
            Source::Flags { .. } => "quick",
        }
    }

    /// The error for `key` at `origin`: the same message whether a file or a flag said it.
    pub(super) fn error(
        &self,
        origin: &Origin,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ScenarioError {
        match (self, origin) {
            (Source::File(f), Origin::Span(span)) => f.invalid(span.start, key, message),
            (_, Origin::Flag(flag)) => ScenarioError::Flag {
                flag: flag.clone(),
                message: message.into(),
            },
            (Source::Flags { .. }, Origin::Span(_)) => ScenarioError::Flag {
                flag: key.into(),
                message: message.into(),
            },
        }
    }

    /// The error for `key` at the place of `value`.
    pub(super) fn at<T>(
        &self,
        value: &Located<T>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ScenarioError {
        self.error(&value.origin, key, message)
    }

    /// Where `key` is written in the table at `table` (the table itself if not found); for
    /// flags, the flag that sets it (the table's flag if none does).
    pub(super) fn key_in(&self, table: &Origin, key: &str) -> Origin {
        match (self, table) {
            (Source::File(f), Origin::Span(span)) => {
                let at = f.key_offset(span.clone(), key).unwrap_or(span.start);
                Origin::Span(at..at)
            }
            (Source::Flags { flag_of }, _) => match flag_of(key) {
                Some(flag) => Origin::Flag(flag.to_string()),
                None => table.clone(),
            },
            (Source::File(_), Origin::Flag(_)) => table.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "a = 1\n[mock]\nlatency = \"5ms\"\nrate_limit = { rps = 0 }\n";

    #[test]
    fn offsets_map_to_lines_and_columns_in_characters() {
        let f = FileText {
            path: "m.toml",
            text: "é = 1\nb = 2\n",
        };
        assert_eq!(f.line_column(0), (1, 1));
        assert_eq!(f.line_column(2), (1, 2));
        assert_eq!(f.line_column(7), (2, 1));
        assert_eq!(f.line_column(999), (3, 1));
    }

    #[test]
    fn a_dotted_key_is_found_where_its_last_part_is_assigned() {
        let f = FileText {
            path: "m.toml",
            text: TEXT,
        };
        let at = f.key_offset(0..TEXT.len(), "mock.rate_limit.rps").unwrap();
        assert_eq!(f.line_column(at), (4, 16));
        // `latency` inside `rate_limit`'s name does not count, nor a key without `=`.
        assert_eq!(f.key_offset(0..TEXT.len(), "mock.limit"), None);
        assert_eq!(f.key_offset(0..TEXT.len(), "mock.status[0]"), None);
        let e = f.invalid(at, "mock.rate_limit.rps", "expected a number > 0, found 0");
        assert_eq!(
            e.to_string(),
            "m.toml:4:16: mock.rate_limit.rps: expected a number > 0, found 0"
        );
    }

    #[test]
    fn a_flag_origin_gives_the_flag_as_the_only_prefix() {
        let src = Source::Flags { flag_of: |_| None };
        let v = Located::flag("-c", 0u64);
        let e = src.at(
            &v,
            "load.stages[0].concurrency",
            "expected a whole number ≥ 1, found 0",
        );
        assert_eq!(e.to_string(), "-c: expected a whole number ≥ 1, found 0");
    }
}
