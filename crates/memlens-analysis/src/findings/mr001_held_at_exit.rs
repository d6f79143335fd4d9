//! MR001: a line whose memory is still alive when the program ends.
use super::{Finding, MIB, Rule, Severity, line_bytes};
use crate::human_bytes;
use crate::model::{Report, View};

pub(super) const RULE: Rule = Rule {
    code: "MR001",
    title: "memory held until exit",
    doc: "## What it finds\n\nA line that allocated a large share of the memory that is still alive when tracking \
ends: a cache or registry that only grows, objects kept reachable by a module global, a class \
attribute or a closure.\n\n## Why it matters\n\nMemory that is never released grows with the work a \
long-running process does, until it is killed for running out of memory.\n\n## How to fix it\n\n\
Bound caches (`functools.lru_cache(maxsize=N)`, an `OrderedDict` with eviction) or clear them when \
the work is done; keep back-references (child to parent, observer to subject) as `weakref`s; \
`del` large globals you no longer need. `memlens heap` shows which reference keeps an object alive.\n",
    check,
};

fn check(report: &Report) -> Vec<Finding> {
    let peak = report.totals.peak_bytes.max(1);
    report
        .top_sites(View::Leaks)
        .take(3)
        .filter(|s| s.leaked_bytes >= 10 * MIB && u128::from(s.leaked_bytes) * 100 >= u128::from(peak) * 15)
        .map(|s| Finding {
            rule: RULE.code,
            title: RULE.title,
            severity: Severity::Warning,
            location: Some(s.location.clone()),
            bytes: s.leaked_bytes,
            message: format!(
                "{} allocated here is still alive at exit ({:.0}% of the peak)",
                line_bytes(report, s.leaked_bytes),
                s.leaked_bytes as f64 * 100.0 / peak as f64
            ),
            fix: "if this is a cache or registry, bound it (functools.lru_cache(maxsize=...)) or clear it \
                  when done; hold back-references with weakref; `del` globals no longer needed"
                .to_owned(),
            evidence: format!(
                "leaked {} of {} allocated at this line; peak {}",
                line_bytes(report, s.leaked_bytes),
                line_bytes(report, s.allocated_bytes),
                human_bytes(report.totals.peak_bytes)
            ),
        })
        .collect()
}
