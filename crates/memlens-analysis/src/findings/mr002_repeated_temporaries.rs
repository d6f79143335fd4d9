//! MR002: a line that allocates far more over the run than it ever holds at once.
use super::{Finding, MIB, Rule, Severity};
use crate::human_bytes;
use crate::model::{Report, View};

pub(super) const RULE: Rule = Rule {
    code: "MR002",
    title: "repeated large temporaries",
    doc: "## What it finds\n\nA line that allocates many times more memory over the run than it holds at the peak or \
at exit: a large temporary (a copy, an intermediate list or array) built again and again.\n\n\
## Why it matters\n\nEach temporary costs allocation, copying and, for container copies, garbage \
collection work; in numpy code each one is a full pass over memory.\n\n## How to fix it\n\nReuse \
a buffer; iterate lazily (generators, `itertools`) instead of building lists; avoid copies such \
as `list(x)`, `x[:]`, `dict(r)` or `copy.deepcopy` inside loops; in numpy use in-place operations \
(`a *= 2`, `np.add(a, b, out=a)`).\n",
    check,
};

fn check(report: &Report) -> Vec<Finding> {
    report
        .top_sites(View::Allocations)
        .take(5)
        .filter(|s| {
            let held = s.peak_bytes.max(s.leaked_bytes).max(1);
            s.allocated_bytes >= 64 * MIB && u128::from(s.allocated_bytes) >= 8 * u128::from(held)
        })
        .map(|s| {
            let held = s.peak_bytes.max(s.leaked_bytes);
            Finding {
                rule: RULE.code,
                title: RULE.title,
                severity: Severity::Warning,
                location: Some(s.location.clone()),
                bytes: s.allocated_bytes,
                message: format!(
                    "{} allocated here over the run in {} allocations, but at most {} held at once",
                    human_bytes(s.allocated_bytes),
                    s.allocations,
                    human_bytes(held)
                ),
                fix: "avoid rebuilding the copy each time: reuse a buffer, iterate lazily (generators), \
                      or use in-place operations (numpy: out=, +=)"
                .to_owned(),
                evidence: format!(
                    "allocated {} at this line; held at the peak {}, at exit {}",
                    human_bytes(s.allocated_bytes),
                    human_bytes(s.peak_bytes),
                    human_bytes(s.leaked_bytes)
                ),
            }
        })
        .collect()
}
