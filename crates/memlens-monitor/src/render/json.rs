//! JSON: the whole recording, for CI and scripts. Fields are only ever added.
//!
//! Written by hand: the schema is fixed and flat, and a writer of forty lines streams large sample
//! arrays without building a tree or pulling serde into the crate.

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::record::{ProcessSample, Recording};

/// Writes `recording` as one JSON document (see `docs/monitor.md` for the schema).
///
/// # Errors
/// Any error of the writer.
pub fn write_json(recording: &Recording, mut out: impl Write) -> io::Result<()> {
    let r = recording;
    let peaks = r.peaks();
    let peak = r.peak_sample();
    let mut s = String::with_capacity(256 + r.samples.len() * 96);
    s.push_str("{\"format\":\"memlens-monitor\",\"version\":1,\"command\":");
    push_str_array(&mut s, &r.command);
    let _ = write!(
        s,
        ",\"pid\":{},\"interval_s\":{},\"start_unix_s\":{:.3},\"duration_s\":{}",
        opt(r.pid.map(u64::from)),
        num(r.interval_s),
        r.start_unix_s,
        num(r.duration_s)
    );
    let _ = write!(
        s,
        ",\"peak_rss\":{},\"peak_rss_t\":{},\"peak_pss\":{},\"peak_uss\":{},\"peak_swap\":{}",
        peaks.rss,
        peak.map_or("null".to_owned(), |p| num(p.t)),
        if r.has_pss() {
            peaks.pss.to_string()
        } else {
            "null".to_owned()
        },
        if r.has_pss() {
            peaks.uss.to_string()
        } else {
            "null".to_owned()
        },
        peaks.swap
    );
    let _ = write!(s, ",\"stop_reason\":\"{}\"", r.stop.as_str());
    match &r.exit {
        Some(exit) => {
            let _ = write!(
                s,
                ",\"exit\":{{\"status\":{},\"code\":{},\"signal\":{},\"kernel_max_rss\":{}}}",
                exit.status(),
                opt(exit.code.map(|c| c as i64)),
                opt(exit.signal.map(|c| c as i64)),
                exit.max_rss
            );
        }
        None => s.push_str(",\"exit\":null"),
    }
    match &r.threshold {
        Some(th) => {
            let _ = write!(
                s,
                ",\"threshold\":{{\"bytes\":{},\"exceeded\":{},\"first_crossed_t\":{},\"samples_above\":{}}}",
                th.bytes,
                th.exceeded(),
                th.first_crossed.map_or("null".to_owned(), num),
                th.samples_above
            );
        }
        None => s.push_str(",\"threshold\":null"),
    }
    s.push_str(",\"error\":");
    match &r.error {
        Some(e) => push_str_value(&mut s, e),
        None => s.push_str("null"),
    }
    s.push_str(",\"warnings\":");
    push_str_array(&mut s, &r.warnings);
    s.push_str(",\"samples\":[");
    for (i, x) in r.samples.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(
            s,
            "{{\"t\":{},\"rss\":{},\"pss\":{},\"uss\":{},\"swap\":{},\"processes\":{}}}",
            num(x.t),
            x.rss,
            opt(x.pss),
            opt(x.uss),
            opt(x.swap),
            x.processes
        );
    }
    s.push_str("],\"processes\":[");
    out.write_all(s.as_bytes())?;
    for (i, p) in r.processes.iter().enumerate() {
        s.clear();
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{{\"pid\":{},\"ppid\":{},\"command\":", p.pid, p.ppid);
        push_str_array(&mut s, &p.command);
        let _ = write!(
            s,
            ",\"first_seen\":{},\"last_seen\":{},\"exited\":{},\"source\":{},\"peak_rss\":{},\"peak_pss\":{},\"peak_uss\":{},\"peak_swap\":{},\"kernel_peak_rss\":{},\"samples\":[",
            num(p.first_seen),
            num(p.last_seen),
            p.exited,
            p.source
                .map_or("null".to_owned(), |src| format!("\"{}\"", src.file_name())),
            p.peak.rss,
            opt_peak(p.peak.pss, &p.samples, |x| x.pss),
            opt_peak(p.peak.uss, &p.samples, |x| x.uss),
            p.peak.swap,
            opt(p.kernel_peak_rss)
        );
        for (j, x) in p.samples.iter().enumerate() {
            if j > 0 {
                s.push(',');
            }
            let _ = write!(
                s,
                "{{\"t\":{},\"rss\":{},\"pss\":{},\"uss\":{},\"swap\":{}}}",
                num(x.t),
                x.rss,
                opt(x.pss),
                opt(x.uss),
                opt(x.swap)
            );
        }
        s.push_str("]}");
        out.write_all(s.as_bytes())?;
    }
    out.write_all(b"]}\n")?;
    out.flush()
}

fn opt_peak(
    peak: u64,
    samples: &[ProcessSample],
    get: fn(&ProcessSample) -> Option<u64>,
) -> String {
    if samples.iter().any(|x| get(x).is_some()) {
        peak.to_string()
    } else {
        "null".to_owned()
    }
}

fn opt<T: ToString>(value: Option<T>) -> String {
    value.map_or("null".to_owned(), |v| v.to_string())
}

/// A finite number in JSON form (JSON has no NaN or infinity).
fn num(value: f64) -> String {
    if value.is_finite() {
        let text = format!("{value}");
        text
    } else {
        "null".to_owned()
    }
}

fn push_str_array(s: &mut String, items: &[String]) {
    s.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        push_str_value(s, item);
    }
    s.push(']');
}

/// Appends `value` as a JSON string, escaping quotes, backslashes and control characters (and
/// `<`, `>` and `&`, so the same text can sit inside an HTML `<script>`).
pub(crate) fn push_str_value(s: &mut String, value: &str) {
    s.push('"');
    for c in value.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::tests::fixture;

    fn render() -> String {
        let mut out = Vec::new();
        write_json(&fixture(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn has_the_documented_fields() {
        let text = render();
        for field in [
            "\"command\":[\"python3\",\"-c\",\"print(\\\"\\u003c/script\\u003e\\u003c\\\")\"]",
            "\"interval_s\":0.1",
            "\"peak_rss\":3145728",
            "\"peak_rss_t\":0.2",
            "\"samples\":[{\"t\":0,\"rss\":1048576,\"pss\":524288,\"uss\":262144,\"swap\":0,\"processes\":1}",
            "\"pss\":null,\"uss\":null",
            "\"stop_reason\":\"exited\"",
            "\"exit\":{\"status\":0,\"code\":0,\"signal\":null,\"kernel_max_rss\":3200000}",
            "\"threshold\":{\"bytes\":2000000,\"exceeded\":true,\"first_crossed_t\":0.1,\"samples_above\":3}",
            "\"processes\":[{\"pid\":100,\"ppid\":1,",
        ] {
            assert!(text.contains(field), "missing {field} in {text}");
        }
        assert!(!text.contains("</script>"), "{text}");
        assert!(text.ends_with("]}\n"));
    }

    #[test]
    fn escapes_control_characters() {
        let mut s = String::new();
        push_str_value(&mut s, "a\"b\\c\n\u{1}<&>");
        assert_eq!(s, "\"a\\\"b\\\\c\\n\\u0001\\u003c\\u0026\\u003e\"");
    }
}
