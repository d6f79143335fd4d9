//! Escaping of names that come from the profiled program, and human-readable sizes.

use std::fmt::Write as _;

const MAX_NAME: usize = 80;
const MAX_VALUE: usize = 60;

fn push_escaped(out: &mut String, c: char, quote: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\\' => out.push_str("\\\\"),
        c if c == quote => {
            out.push('\\');
            out.push(c);
        }
        c if c.is_control()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}') =>
        {
            let _ = if (c as u32) < 0x100 {
                write!(out, "\\x{:02x}", c as u32)
            } else {
                write!(out, "\\u{{{:x}}}", c as u32)
            };
        }
        c => out.push(c),
    }
}

fn escape_with(s: &str, quote: char, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max) + 2);
    for (i, c) in s.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        push_escaped(&mut out, c, quote);
    }
    out
}

/// Escapes a name shown between backticks: control and bidi characters, backslashes and
/// backticks are escaped; long names are cut with an ellipsis.
pub(crate) fn name(s: &str) -> String {
    escape_with(s, '`', MAX_NAME)
}

/// Renders a string value as a Python-style single-quoted literal, cut when long.
pub(crate) fn quoted(s: &str) -> String {
    format!("'{}'", escape_with(s, '\'', MAX_VALUE))
}

/// Escapes control characters only (for free text that already carries its own quoting, such
/// as root descriptions written by the walker).
pub(crate) fn text(s: &str) -> String {
    escape_with(s, '\0', 200)
}

/// Formats a byte count in binary units: `512 B`, `1.5 KiB`, `12.0 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

/// Formats a signed byte delta: `+1.5 MiB`, `-512 B`.
pub(crate) fn human_delta(d: i64) -> String {
    let sign = if d < 0 { "-" } else { "+" };
    format!("{sign}{}", human_bytes(d.unsigned_abs()))
}

/// Formats a count with thousands separators: `1,234,567`.
pub(crate) fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1 object`, `2 objects`, `1,000 objects`.
pub(crate) fn plural(n: u64, word: &str) -> String {
    format!("{} {word}{}", count(n), if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_escaped() {
        assert_eq!(name("a`b\nc\u{1b}[31m"), "a\\`b\\nc\\x1b[31m");
        assert_eq!(quoted("it's\\"), "'it\\'s\\\\'");
        assert_eq!(name("\u{202E}evil"), "\\u{202e}evil");
        assert_eq!(name(&"x".repeat(100)).chars().count(), 81);
    }

    #[test]
    fn sizes_and_counts() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 20), "3.0 MiB");
        assert_eq!(human_delta(-2048), "-2.0 KiB");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(count(999), "999");
    }
}
