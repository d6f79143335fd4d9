//! MR002: a line that allocates far more over the run than it ever holds at once.
use super::{Finding, MIB, Rule, Severity, line_bytes};
use crate::model::{Report, View};

pub(super) const RULE: Rule = Rule {
    code: "MR002",
    title: "repeated large temporaries",
    doc: "## What it finds\n\nA line that allocates many times more memory over the run than it ever holds at once (its \
own high-water mark): a large temporary (a copy, an intermediate list or array) built again and \
again. It fires at 64 MiB allocated and eight times the high-water mark, four times in sampling \
mode, where the estimated high-water mark runs high (the highest of many noisy estimates).\n\n\
## Why it matters\n\nEach temporary costs allocation, copying and, for container copies, garbage \
collection work; in numpy code each one is a full pass over memory.\n\n## How to fix it\n\nReuse \
a buffer; iterate lazily (generators, `itertools`) instead of building lists; avoid copies such \
as `list(x)`, `x[:]`, `dict(r)` or `copy.deepcopy` inside loops; in numpy use in-place operations \
(`a *= 2`, `np.add(a, b, out=a)`).\n",
    check,
};

/// Allocated over held at once, at least. A sampled high-water mark is the highest of many
/// noisy estimates, so it runs high (2-3x for a line holding 4 MB at a 512 KiB sample rate):
/// the ratio asked for is lower there to make up for it.
fn min_ratio(report: &Report) -> u128 {
    if report.meta.sites_estimated { 4 } else { 8 }
}

fn check(report: &Report) -> Vec<Finding> {
    let ratio = min_ratio(report);
    report
        .top_sites(View::Allocations)
        .take(5)
        .filter(|s| {
            let held = s.high_water_bytes.max(1);
            s.allocated_bytes >= 64 * MIB
                && u128::from(s.allocated_bytes) >= ratio * u128::from(held)
        })
        .map(|s| Finding {
            rule: RULE.code,
            title: RULE.title,
            severity: Severity::Warning,
            location: Some(s.location.clone()),
            bytes: s.allocated_bytes,
            message: format!(
                "{} allocated here over the run in {} allocations, but the line never held more \
                 than {} at once",
                line_bytes(report, s.allocated_bytes),
                s.allocations,
                line_bytes(report, s.high_water_bytes)
            ),
            fix:
                "avoid rebuilding the copy each time: reuse a buffer, iterate lazily (generators), \
                  or use in-place operations (numpy: out=, +=)"
                    .to_owned(),
            evidence: format!(
                "allocated {} at this line; its high-water mark {} (held at the program's peak {}, \
                 at exit {})",
                line_bytes(report, s.allocated_bytes),
                line_bytes(report, s.high_water_bytes),
                line_bytes(report, s.peak_bytes),
                line_bytes(report, s.leaked_bytes)
            ),
        })
        .collect()
}
