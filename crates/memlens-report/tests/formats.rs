//! Snapshot tests of every renderer except HTML over the shared fixtures (normal, empty,
//! hostile), plus the properties the snapshots rely on.

#[path = "formats/fixtures.rs"]
mod fixtures;

use memlens_analysis::{Report, View};
use memlens_report::{Format, render};

fn rendered(report: &Report, format: Format, view: View) -> String {
    let mut out = Vec::new();
    render(report, format, view, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn text(report: &Report, view: View, color: bool) -> String {
    let options = memlens_report::text::TextOptions {
        color,
        ..Default::default()
    };
    let mut out = Vec::new();
    memlens_report::text::render(report, view, &options, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn speedscope(report: &Report, view: View) -> String {
    serde_json::to_string_pretty(&memlens_report::speedscope::to_value(report, view)).unwrap()
}

#[test]
fn text_snapshots() {
    insta::assert_snapshot!(
        "text_normal_peak",
        text(&fixtures::normal(), View::Peak, false)
    );
    insta::assert_snapshot!(
        "text_normal_temporary",
        text(&fixtures::normal(), View::Temporary, false)
    );
    insta::assert_snapshot!(
        "text_normal_color",
        text(&fixtures::normal(), View::Leaks, true)
    );
    insta::assert_snapshot!("text_empty", text(&fixtures::empty(), View::Peak, false));
    insta::assert_snapshot!(
        "text_hostile",
        text(&fixtures::hostile(), View::Peak, false)
    );
}

#[test]
fn json_snapshots() {
    for (name, report) in [
        ("json_normal", fixtures::normal()),
        ("json_empty", fixtures::empty()),
        ("json_hostile", fixtures::hostile()),
    ] {
        insta::assert_snapshot!(name, rendered(&report, Format::Json, View::Peak));
    }
}

#[test]
fn collapsed_snapshots() {
    for view in View::ALL {
        insta::assert_snapshot!(
            format!("collapsed_normal_{}", view.name()),
            rendered(&fixtures::normal(), Format::Collapsed, view)
        );
    }
    insta::assert_snapshot!(
        "collapsed_empty",
        rendered(&fixtures::empty(), Format::Collapsed, View::Peak)
    );
    insta::assert_snapshot!(
        "collapsed_hostile",
        rendered(&fixtures::hostile(), Format::Collapsed, View::Peak)
    );
}

#[test]
fn speedscope_snapshots() {
    insta::assert_snapshot!(
        "speedscope_normal",
        speedscope(&fixtures::normal(), View::Leaks)
    );
    insta::assert_snapshot!(
        "speedscope_empty",
        speedscope(&fixtures::empty(), View::Peak)
    );
    insta::assert_snapshot!(
        "speedscope_hostile",
        speedscope(&fixtures::hostile(), View::Peak)
    );
}

#[test]
fn hostile_names_stay_text() {
    let report = fixtures::hostile();
    let terminal = text(&report, View::Peak, false);
    assert!(!terminal.contains('\u{1b}'), "{terminal}");
    assert!(!terminal.contains('\r'), "{terminal}");
    let folded = rendered(&report, Format::Collapsed, View::Peak);
    for line in folded.lines() {
        // Thread, user frame, library frame at most: the `;` in the name did not split it.
        let (stack, bytes) = line.rsplit_once(' ').unwrap();
        bytes.parse::<u64>().unwrap();
        assert!(stack.split(';').count() <= 3, "{line}");
    }
    for format in [Format::Json, Format::Speedscope] {
        let doc: serde_json::Value =
            serde_json::from_str(&rendered(&report, format, View::Peak)).unwrap();
        assert!(doc.to_string().contains("alert('x')"));
    }
}

#[test]
fn empty_reports_are_valid_in_every_format() {
    let report = fixtures::empty();
    for view in View::ALL {
        for format in [Format::Json, Format::Speedscope] {
            serde_json::from_str::<serde_json::Value>(&rendered(&report, format, view)).unwrap();
        }
        assert_eq!(rendered(&report, Format::Collapsed, view), "");
        let mut pprof = Vec::new();
        render(&report, Format::Pprof, view, &mut pprof).unwrap();
        assert_eq!(&pprof[..2], &[0x1f, 0x8b], "gzip");
    }
}

/// Found by `cargo fuzz run records`: sizes whose sums pass `u64::MAX` overflowed in the
/// findings (MR001) and would have in the renderers; they saturate now.
#[test]
fn fuzz_overflowing_sizes_saturate_instead_of_panicking() {
    use memlens_format::{Domain, Header, Mode, Record, Writer};
    let huge = |addr| Record::Alloc {
        addr,
        size: u64::MAX / 2,
        stack: 0,
        domain: Domain::Native,
    };
    let mut bytes = Vec::new();
    let mut w = Writer::new(
        &mut bytes,
        &Header {
            mode: Mode::Exact,
            ..Header::default()
        },
    )
    .unwrap();
    w.write_records(&[
        huge(0x10),
        huge(0x20),
        huge(0x30),
        Record::Peak,
        Record::End,
    ])
    .unwrap();
    w.finish().unwrap();
    let report = memlens_analysis::analyze(&bytes, &memlens_analysis::Options::default()).unwrap();
    assert_eq!(report.sites[0].leaked_bytes, u64::MAX);
    for format in [
        Format::Text,
        Format::Json,
        Format::Pprof,
        Format::Speedscope,
        Format::Collapsed,
    ] {
        for view in View::ALL {
            render(&report, format, view, &mut Vec::new()).unwrap();
        }
    }
}
