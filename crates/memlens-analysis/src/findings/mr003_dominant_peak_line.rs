//! MR003: one line holds most of the peak.
use super::{Finding, MIB, Rule, Severity, line_bytes};
use crate::human_bytes;
use crate::model::{Report, View};

pub(super) const RULE: Rule = Rule {
    code: "MR003",
    title: "one line dominates the peak",
    doc: "## What it finds\n\nA single line that holds a large share of the memory live at the program's high-water \
mark.\n\n## Why it matters\n\nThe peak decides how much memory the program needs (and when it is \
killed); shrinking the biggest holder at the peak lowers it directly.\n\n## How to fix it\n\nStream \
or chunk the data instead of materialising it whole: `json.dump(obj, f)` rather than \
`json.dumps(obj)`, iterate a file line by line rather than `read()`/`readlines()`, process a \
dataframe in chunks, use smaller dtypes; `del` large intermediates as soon as they are used.\n",
    check,
};

fn check(report: &Report) -> Vec<Finding> {
    let peak = report.totals.peak_bytes.max(1);
    report
        .top_sites(View::Peak)
        .take(1)
        .filter(|s| {
            s.peak_bytes >= 32 * MIB && u128::from(s.peak_bytes) * 100 >= u128::from(peak) * 35
        })
        .map(|s| Finding {
            rule: RULE.code,
            title: RULE.title,
            severity: Severity::Info,
            location: Some(s.location.clone()),
            bytes: s.peak_bytes,
            message: format!(
                "this line holds {} of the {} peak ({:.0}%)",
                line_bytes(report, s.peak_bytes),
                human_bytes(report.totals.peak_bytes),
                s.peak_bytes as f64 * 100.0 / peak as f64
            ),
            fix: "stream or chunk the data instead of building it whole (json.dump to a file, \
                  iterate files line by line, process in batches); del large intermediates early"
                .to_owned(),
            evidence: format!(
                "peak {} at {:.0} ms",
                human_bytes(report.totals.peak_bytes),
                report.totals.peak_time_s * 1e3
            ),
        })
        .collect()
}
