//! Reading Python source: encodings (PEP 263), binary detection, and line/column positions.

use std::borrow::Cow;

/// Why bytes could not be turned into Python source text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// The bytes hold a NUL byte: a binary file.
    Binary,
    /// The bytes are not valid UTF-8 and no supported coding cookie says otherwise.
    NotUtf8 { line: usize },
    /// A coding cookie names an encoding this linter does not decode.
    UnsupportedEncoding { encoding: String },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Binary => f.write_str("binary file (contains NUL bytes)"),
            DecodeError::NotUtf8 { line } => {
                write!(f, "not valid UTF-8 (line {line}) and no coding declaration")
            }
            DecodeError::UnsupportedEncoding { encoding } => {
                write!(f, "unsupported source encoding `{encoding}`")
            }
        }
    }
}

/// Decodes Python source bytes as the interpreter would (PEP 263, PEP 3120).
///
/// UTF-8 (with or without a BOM) is the default; a coding cookie on line 1 or 2 may name
/// Latin-1 or ASCII instead. Any other declared encoding is refused rather than guessed.
pub(crate) fn decode(bytes: &[u8]) -> Result<Cow<'_, str>, DecodeError> {
    if memchr(0, bytes) {
        return Err(DecodeError::Binary);
    }
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let encoding = coding_cookie(body);
    match encoding.as_deref().map(normalize_encoding) {
        None | Some("utf8") => match std::str::from_utf8(body) {
            Ok(text) => Ok(Cow::Borrowed(text)),
            Err(err) => {
                let line = 1 + body[..err.valid_up_to()]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count();
                Err(DecodeError::NotUtf8 { line })
            }
        },
        Some("latin1") => Ok(Cow::Owned(body.iter().map(|&b| b as char).collect())),
        Some("ascii") => match std::str::from_utf8(body) {
            Ok(text) if text.is_ascii() => Ok(Cow::Borrowed(text)),
            _ => Err(DecodeError::NotUtf8 { line: 1 }),
        },
        Some(other) => {
            // Python's codec names mostly match the WHATWG labels (cp1252 -> windows-1252,
            // koi8-r, shift_jis, euc-jp, gb2312, ...); a few need the `windows-` spelling.
            let label = other.to_ascii_lowercase().replace('_', "-");
            let label = match label.strip_prefix("cp") {
                Some(num) if num.len() == 4 && num.starts_with("12") => format!("windows-{num}"),
                _ => label,
            };
            let Some(enc) = encoding_rs::Encoding::for_label(label.as_bytes()) else {
                return Err(DecodeError::UnsupportedEncoding {
                    encoding: encoding.unwrap_or_default(),
                });
            };
            let (text, had_errors) = enc.decode_without_bom_handling(body);
            if had_errors {
                return Err(DecodeError::UnsupportedEncoding {
                    encoding: format!("{} (undecodable bytes)", encoding.unwrap_or_default()),
                });
            }
            Ok(Cow::Owned(text.into_owned()))
        }
    }
}

fn memchr(needle: u8, haystack: &[u8]) -> bool {
    haystack.contains(&needle)
}

/// Normalises an encoding name to one of `utf8`, `latin1`, `ascii`, or leaves it as is.
fn normalize_encoding(name: &str) -> &str {
    let lower = name.to_ascii_lowercase().replace('_', "-");
    match lower.as_str() {
        "utf-8" | "utf8" | "utf-8-sig" => "utf8",
        "latin-1" | "latin1" | "iso-8859-1" | "iso8859-1" | "l1" | "iso-latin-1" => "latin1",
        "ascii" | "us-ascii" => "ascii",
        _ => name,
    }
}

/// Finds a PEP 263 coding declaration in the first two lines.
fn coding_cookie(bytes: &[u8]) -> Option<String> {
    for line in bytes.split(|b| *b == b'\n').take(2) {
        let line = String::from_utf8_lossy(line);
        let trimmed = line.trim_start();
        if !trimmed.starts_with('#') {
            // Only a comment line can declare; a code line on line 1 ends the search.
            if trimmed.is_empty() {
                continue;
            }
            return None;
        }
        if let Some(pos) = trimmed.find("coding") {
            let rest = &trimmed[pos + "coding".len()..];
            if let Some(rest) = rest.strip_prefix(':').or_else(|| rest.strip_prefix('=')) {
                let name: String = rest
                    .trim_start()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                    .collect();
                if !name.is_empty() {
                    return Some(name);
                }
            }
        }
    }
    None
}

/// Byte offsets of line starts, to turn byte positions into 1-based lines and character columns.
#[derive(Debug)]
pub(crate) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub(crate) fn new(text: &str) -> LineIndex {
        let mut starts = Vec::with_capacity(text.len() / 32 + 1);
        starts.push(0);
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                starts.push(i + 1);
            }
        }
        LineIndex { starts }
    }

    /// The tree-sitter point (0-based row, byte column) of byte offset `byte`.
    pub(crate) fn point(&self, byte: usize) -> tree_sitter::Point {
        let row = self
            .starts
            .partition_point(|s| *s <= byte)
            .saturating_sub(1);
        tree_sitter::Point::new(row, byte - self.starts[row])
    }

    /// The text of 0-based line `row`, without its line ending.
    pub(crate) fn line<'t>(&self, text: &'t str, row: usize) -> &'t str {
        let start = self.starts.get(row).copied().unwrap_or(text.len());
        let end = self.starts.get(row + 1).copied().unwrap_or(text.len());
        text[start..end].trim_end_matches(['\n', '\r'])
    }

    /// The 1-based character column of byte column `byte_col` on 0-based line `row`.
    pub(crate) fn column(&self, text: &str, row: usize, byte_col: usize) -> usize {
        let line = self.line(text, row);
        let end = byte_col.min(line.len());
        // Tree-sitter positions are on char boundaries; be safe anyway.
        let prefix = line.get(..end).unwrap_or(line);
        prefix.chars().count() + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_with_bom_decodes() {
        assert_eq!(decode(b"\xEF\xBB\xBFx = 1\n").unwrap(), "x = 1\n");
    }

    #[test]
    fn binary_is_refused() {
        assert_eq!(decode(b"x = 1\0\n"), Err(DecodeError::Binary));
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        assert_eq!(
            decode(b"a = 1\nb = '\xff'\n"),
            Err(DecodeError::NotUtf8 { line: 2 })
        );
    }

    #[test]
    fn latin1_cookie_decodes() {
        let text = decode(b"# -*- coding: latin-1 -*-\ns = '\xe9'\n").unwrap();
        assert_eq!(text.lines().nth(1), Some("s = '\u{e9}'"));
    }

    #[test]
    fn other_cookies_decode_through_encoding_rs() {
        let text =
            decode(b"#!/usr/bin/python\n# vim: set fileencoding=koi8-r :\ns = '\xc1'\n").unwrap();
        assert_eq!(text.lines().nth(2), Some("s = '\u{430}'"));
        let text = decode(b"# coding: cp1252\ns = '\x80'\n").unwrap();
        assert_eq!(text.lines().nth(1), Some("s = '\u{20ac}'"));
    }

    #[test]
    fn unknown_cookies_are_refused() {
        assert_eq!(
            decode(b"# -*- coding: uft-8 -*-\n"),
            Err(DecodeError::UnsupportedEncoding {
                encoding: "uft-8".into()
            })
        );
    }

    #[test]
    fn columns_count_characters() {
        let text = "a\n\u{e9}\u{e9} = x\n";
        let idx = LineIndex::new(text);
        assert_eq!(idx.line(text, 1), "\u{e9}\u{e9} = x");
        // byte 5 on line 2 is `=` after two 2-byte chars and a space
        assert_eq!(idx.column(text, 1, 5), 4);
    }
}
