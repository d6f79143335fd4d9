//! Byte sizes as people write them ("500MB", "1.5 GiB") and as the monitor prints them.

use crate::error::{Error, Result};

/// Parses a byte size: a number (decimals allowed) and an optional unit, spaces allowed between.
///
/// Units are case-insensitive. `KB`, `MB`, `GB`, `TB` are powers of 1000; `KiB`, `MiB`, `GiB`,
/// `TiB` and the one-letter `K`, `M`, `G`, `T` are powers of 1024 (as in `dd` and `ulimit`);
/// `B` or no unit means bytes. The result is rounded down to whole bytes.
///
/// ```
/// assert_eq!(memlens_monitor::parse_size("500MB").unwrap(), 500_000_000);
/// assert_eq!(memlens_monitor::parse_size("1.5 GiB").unwrap(), 1_610_612_736);
/// assert_eq!(memlens_monitor::parse_size("4096").unwrap(), 4096);
/// ```
pub fn parse_size(input: &str) -> Result<u64> {
    let invalid = |reason| Error::InvalidSize {
        input: input.to_owned(),
        reason,
    };
    let text = input.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: String = number.chars().filter(|&c| c != '_').collect();
    if number.is_empty() {
        return Err(invalid("expected a number such as 500MB or 1.5GiB"));
    }
    let unit = unit.trim().to_ascii_lowercase();
    let multiplier: u64 = match unit.as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        _ => {
            return Err(invalid(
                "unknown unit (use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)",
            ));
        }
    };
    if let Ok(whole) = number.parse::<u64>() {
        return whole
            .checked_mul(multiplier)
            .ok_or_else(|| invalid("too large"));
    }
    let value: f64 = number
        .parse()
        .map_err(|_| invalid("expected a number such as 500MB or 1.5GiB"))?;
    let bytes = value * multiplier as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(invalid("too large"));
    }
    Ok(bytes as u64)
}

/// Formats bytes with binary units and one decimal: `312.4 MiB`, `812 B`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_decimal_and_binary_units() {
        assert_eq!(parse_size("500MB").unwrap(), 500_000_000);
        assert_eq!(parse_size("500 mb").unwrap(), 500_000_000);
        assert_eq!(parse_size("1.5 GiB").unwrap(), 1_610_612_736);
        assert_eq!(parse_size("1.5G").unwrap(), 1_610_612_736);
        assert_eq!(parse_size("64k").unwrap(), 65_536);
        assert_eq!(parse_size("2KB").unwrap(), 2_000);
        assert_eq!(parse_size("123").unwrap(), 123);
        assert_eq!(parse_size("  7 B ").unwrap(), 7);
        assert_eq!(parse_size("1_000_000").unwrap(), 1_000_000);
        assert_eq!(parse_size("0.5KiB").unwrap(), 512);
    }

    #[test]
    fn rejects_garbage_with_a_reason() {
        for bad in ["", "MB", "12 parsecs", "1.2.3GB", "-5MB", "99999999999TB"] {
            let err = parse_size(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid size"), "{bad:?}: {err}");
        }
        assert!(
            parse_size("3 furlongs")
                .unwrap_err()
                .to_string()
                .contains("unknown unit")
        );
    }

    #[test]
    fn formats_with_binary_units() {
        assert_eq!(format_size(0), "0 B");
        assert_eq!(format_size(1023), "1023 B");
        assert_eq!(format_size(1024), "1.0 KiB");
        assert_eq!(format_size(300 * 1024 * 1024), "300.0 MiB");
        assert_eq!(format_size(1_610_612_736), "1.5 GiB");
    }
}
