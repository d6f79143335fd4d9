//! SARIF 2.1.0, for code-scanning dashboards (GitHub code scanning, Azure DevOps, ...).

use std::io::{self, Write};
use std::path::Path;

use serde_json::{Value, json};

use crate::diagnostic::{Report, display_path};
use crate::registry::Rule;

pub(super) fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let rules: Vec<Value> = Rule::ALL
        .iter()
        .map(|r| {
            json!({
                "id": r.code(),
                "name": r.name(),
                "shortDescription": {"text": r.summary()},
                "fullDescription": {"text": r.doc().what},
                "help": {"text": r.doc().why, "markdown": crate::docs::rule_page(*r)},
                "defaultConfiguration": {"level": "warning"},
            })
        })
        .collect();
    let results: Vec<Value> = report
        .diagnostics
        .iter()
        .map(|d| {
            json!({
                "ruleId": d.rule.code(),
                "ruleIndex": Rule::ALL.iter().position(|r| *r == d.rule).unwrap_or(0),
                "level": "warning",
                "message": {"text": format!("{} Fix: {}.", sentence(&d.message), d.fix.trim_end_matches('.'))},
                "locations": [location(&d.path, Some((d.line, d.column, d.end_line, d.end_column)))],
                "properties": {"fix": d.fix},
            })
        })
        .collect();
    let notifications: Vec<Value> = report
        .problems
        .iter()
        .map(|p| {
            let region = p
                .line
                .map(|l| (l, p.column.unwrap_or(1), l, p.column.unwrap_or(1)));
            json!({
                "level": "error",
                "descriptor": {"id": p.kind.as_str()},
                "message": {"text": p.message},
                "locations": [location(&p.path, region)],
            })
        })
        .collect();
    let sarif = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "memlens",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://example.invalid/memlens",
                "rules": rules,
            }},
            "columnKind": "unicodeCodePoints",
            "results": results,
            "invocations": [{
                "executionSuccessful": true,
                "toolExecutionNotifications": notifications,
            }],
        }],
    });
    serde_json::to_writer_pretty(&mut *out, &sarif)?;
    writeln!(out)
}

fn sentence(message: &str) -> String {
    let mut s = message.to_owned();
    if !s.ends_with('.') {
        s.push('.');
    }
    s
}

fn location(path: &Path, region: Option<(usize, usize, usize, usize)>) -> Value {
    let mut physical = json!({"artifactLocation": artifact(path)});
    if let Some((line, column, end_line, end_column)) = region {
        physical["region"] = json!({
            "startLine": line,
            "startColumn": column,
            "endLine": end_line,
            "endColumn": end_column,
        });
    }
    json!({"physicalLocation": physical})
}

/// A SARIF artifact location: a relative URI reference for relative paths (resolved against
/// the checkout root), a `file://` URI for absolute ones; percent-encoded either way.
fn artifact(path: &Path) -> Value {
    let shown = display_path(path).replace('\\', "/");
    if path.is_absolute() {
        json!({"uri": format!("file://{}", percent_encode(&shown))})
    } else {
        json!({"uri": percent_encode(&shown), "uriBaseId": "%SRCROOT%"})
    }
}

/// Percent-encodes everything but unreserved characters and `/` (RFC 3986).
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::render::OutputFormat;
    use crate::render::fixtures::{empty, hostile, normal, render};

    #[test]
    fn normal_report() {
        let out = render(OutputFormat::Sarif, &normal());
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let run = &v["runs"][0];
        assert_eq!(v["version"], "2.1.0");
        assert_eq!(run["results"][0]["ruleId"], "ML101");
        assert_eq!(
            run["results"][0]["locations"][0]["physicalLocation"]["region"]["startColumn"],
            12
        );
        assert_eq!(
            run["results"][1]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "app/io.py"
        );
        assert_eq!(
            run["invocations"][0]["toolExecutionNotifications"][0]["descriptor"]["id"],
            "python2-syntax"
        );
        assert_eq!(
            run["tool"]["driver"]["rules"].as_array().unwrap().len(),
            crate::Rule::ALL.len()
        );
        // The rules' help is long; snapshot only the results.
        insta::assert_snapshot!(serde_json::to_string_pretty(&run["results"]).unwrap());
    }

    #[test]
    fn empty_report_has_no_results() {
        let v: serde_json::Value =
            serde_json::from_str(&render(OutputFormat::Sarif, &empty())).unwrap();
        assert_eq!(v["runs"][0]["results"], serde_json::json!([]));
    }

    #[test]
    fn hostile_paths_are_percent_encoded() {
        let v: serde_json::Value =
            serde_json::from_str(&render(OutputFormat::Sarif, &hostile())).unwrap();
        let run = &v["runs"][0];
        assert_eq!(
            run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "we%20ird/a%25b%2Cc%3Ad%0A%3A%3Aerror%3A%3Ax.py"
        );
        assert_eq!(
            run["invocations"][0]["toolExecutionNotifications"][0]["locations"][0]["physicalLocation"]
                ["artifactLocation"]["uri"],
            "bad%0Aname.py"
        );
        insta::assert_snapshot!(serde_json::to_string_pretty(&run["results"]).unwrap());
    }
}
