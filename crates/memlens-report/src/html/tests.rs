//! Tests of the HTML renderer over the shared fixtures (normal, empty, hostile) and a synthetic
//! capture with 100k distinct stacks. The page's behaviour in a browser is tested by
//! `tests/test_report_html.py` (Chromium through playwright-core).

use memlens_analysis::{
    CallNode, CallTree, CheckpointMark, Finding, Flame, Location, Meta, Moment, Report, Severity,
    Site, StackValue, ThreadInfo, TimelinePoint, Totals, View,
};
use serde_json::Value;

use super::{
    HeapDominator, HeapPanel, HeapSite, HeapSuspect, HeapType, HtmlOptions, MAX_HEAP_ROWS, data,
    escape_script_json, render, render_with_heap,
};

fn loc(file: &str, line: u32, function: &str) -> Location {
    Location {
        file: file.into(),
        line,
        function: function.into(),
    }
}

/// Builds a call tree from stacks given outermost frame first; returns the leaf node of each.
fn tree_of(stacks: &[Vec<Location>]) -> (CallTree, Vec<u32>) {
    let mut tree = CallTree {
        frames: Vec::new(),
        nodes: vec![CallNode::default()],
    };
    let mut leaves = Vec::new();
    for stack in stacks {
        let mut node = 0u32;
        for l in stack {
            let frame = match tree.frames.iter().position(|f| f == l) {
                Some(i) => i as u32,
                None => {
                    tree.frames.push(l.clone());
                    tree.frames.len() as u32 - 1
                }
            };
            node = match tree
                .nodes
                .iter()
                .skip(1)
                .position(|n| n.parent == node && n.frame == frame)
            {
                Some(i) => i as u32 + 1,
                None => {
                    tree.nodes.push(CallNode {
                        parent: node,
                        frame,
                    });
                    tree.nodes.len() as u32 - 1
                }
            };
        }
        leaves.push(node);
    }
    (tree, leaves)
}

fn value(node: u32, thread: u32, bytes: u64, count: u64) -> StackValue {
    StackValue {
        node,
        thread,
        bytes,
        count,
    }
}

fn site(location: Location, peak: u64, leaked: u64, allocated: u64, count: u64) -> Site {
    Site {
        stack: vec![location.clone()],
        location,
        peak_bytes: peak,
        leaked_bytes: leaked,
        allocated_bytes: allocated,
        allocations: count,
        temporary_bytes: allocated.saturating_sub(peak),
        high_water_bytes: peak.max(leaked),
    }
}

/// A small program: a list built in a function, a JSON dump, an import, a worker thread.
fn normal() -> Report {
    let runner = vec![
        loc("<frozen runpy>", 198, "_run_module_as_main"),
        loc("<frozen runpy>", 88, "_run_code"),
        loc(
            "/venv/lib/python3.11/site-packages/memlens/__main__.py",
            21,
            "<module>",
        ),
        loc(
            "/venv/lib/python3.11/site-packages/memlens/_runner.py",
            92,
            "run",
        ),
    ];
    let with = |frames: &[Location]| {
        let mut s = runner.clone();
        s.extend_from_slice(frames);
        s
    };
    let stacks = vec![
        with(&[
            loc("/app/app.py", 4, "<module>"),
            loc("/app/app.py", 3, "build"),
        ]),
        with(&[
            loc("/app/app.py", 9, "<module>"),
            loc("/usr/lib/python3.11/json/__init__.py", 231, "dumps"),
        ]),
        with(&[
            loc("/app/app.py", 1, "<module>"),
            loc("<frozen importlib._bootstrap>", 1176, "_find_and_load"),
            loc("/app/helpers.py", 2, "<module>"),
        ]),
        vec![
            loc("/usr/lib/python3.11/threading.py", 982, "Thread.run"),
            loc("/app/app.py", 6, "worker"),
        ],
    ];
    let (calls, leaves) = tree_of(&stacks);
    let [build, dumps, helpers, worker] = leaves[..] else {
        unreachable!()
    };
    let flames = vec![
        Flame {
            view: View::Peak,
            values: vec![
                value(build, 0, 5_000_000, 0),
                value(dumps, 0, 700_000, 0),
                value(worker, 1, 130_000, 0),
            ],
        },
        Flame {
            view: View::Leaks,
            values: vec![value(build, 0, 5_000_000, 0), value(helpers, 0, 2_000, 0)],
        },
        Flame {
            view: View::Allocations,
            values: vec![
                value(build, 0, 5_100_000, 5_000),
                value(dumps, 0, 2_000_000, 30),
                value(helpers, 0, 2_000, 12),
                value(worker, 1, 900_000, 20_000),
            ],
        },
        Flame {
            view: View::Temporary,
            values: vec![value(dumps, 0, 1_300_000, 20)],
        },
    ];
    Report {
        meta: Meta {
            command: vec!["app.py".into(), "--fast".into()],
            python: "3.11.7".into(),
            pid: 4242,
            mode: "exact".into(),
            sample_rate: 1,
            duration_s: 1.5,
            events: 60_000,
            warning: None,
            dropped_events: 0,
            sites_estimated: false,
            start_unix_ns: 0,
            processes: 1,
        },
        totals: Totals {
            peak_bytes: 5_830_000,
            peak_time_s: 1.2,
            leaked_bytes: 5_002_000,
            allocated_bytes: 8_002_000,
            allocations: 25_042,
            rss_peak_bytes: 30_000_000,
        },
        sites: vec![
            site(
                loc("/app/app.py", 3, "build"),
                5_000_000,
                5_000_000,
                5_100_000,
                5_000,
            ),
            site(loc("/app/app.py", 9, "<module>"), 700_000, 0, 2_000_000, 30),
            site(loc("/app/helpers.py", 2, "<module>"), 0, 2_000, 2_000, 12),
            site(loc("/app/app.py", 6, "worker"), 130_000, 0, 900_000, 20_000),
        ],
        timeline: (0..=15)
            .map(|i| TimelinePoint {
                time_s: i as f64 * 0.1,
                live_bytes: (i as u64 * 400_000).min(5_830_000),
                rss_bytes: 20_000_000 + i as u64 * 600_000,
            })
            .collect(),
        findings: vec![Finding {
            rule: "MR001",
            title: "memory held until exit",
            severity: Severity::Warning,
            location: Some(loc("/app/app.py", 3, "build")),
            bytes: 5_000_000,
            message: "4.8 MiB allocated here is still live at exit".into(),
            fix: "free it when done".into(),
            evidence: "5000 blocks".into(),
        }],
        threads: vec![
            ThreadInfo {
                id: 1,
                name: "MainThread".into(),
                ..ThreadInfo::default()
            },
            ThreadInfo {
                id: 2,
                name: "Worker-1".into(),
                ..ThreadInfo::default()
            },
        ],
        calls,
        flames,
        moments: vec![
            Moment {
                time_s: 0.4,
                live_bytes: 1_600_000,
                values: vec![value(build, 0, 1_500_000, 0), value(worker, 1, 100_000, 0)],
            },
            Moment {
                time_s: 1.2,
                live_bytes: 5_830_000,
                values: vec![value(build, 0, 5_000_000, 0), value(dumps, 0, 700_000, 0)],
            },
        ],
        checkpoints: vec![CheckpointMark {
            time_s: 0.5,
            label: "after build".into(),
        }],
        leak_window: None,
    }
}

const SCRIPT_CLOSE: &str = "</script><script>alert(1)</script>";

/// Names that try to break out of the page: tags, quotes, comment openers, line separators,
/// terminal escapes, bidi overrides and a name of 10,000 characters.
fn hostile() -> Report {
    let evil_file = format!("/tmp/{SCRIPT_CLOSE}\"'&<!--.py");
    let evil_fn = "f\u{2028}g\u{2029}<img src=x onerror=alert(2)>\u{1b}[31m\u{202e}txt.exe";
    let long = "x".repeat(10_000);
    let stacks = vec![
        vec![loc(&evil_file, 1, "<module>"), loc(&evil_file, 7, evil_fn)],
        vec![loc(&long, 2, &long)],
    ];
    let (calls, leaves) = tree_of(&stacks);
    let mut report = normal();
    report.meta.command = vec![evil_file.clone(), "--name=</title><b>".into()];
    report.meta.warning = Some(format!("truncated at {SCRIPT_CLOSE}"));
    report.threads = vec![ThreadInfo {
        id: 1,
        name: format!("<b>{SCRIPT_CLOSE}</b>"),
        ..ThreadInfo::default()
    }];
    report.calls = calls;
    report.flames = View::ALL
        .iter()
        .map(|&view| Flame {
            view,
            values: vec![value(leaves[0], 0, 1000, 1), value(leaves[1], 0, 10, 1)],
        })
        .collect();
    report.moments = vec![Moment {
        time_s: 0.1,
        live_bytes: 1010,
        values: vec![value(leaves[0], 0, 1000, 0)],
    }];
    report.sites = vec![site(loc(&evil_file, 7, evil_fn), 1000, 1000, 1000, 1)];
    report.checkpoints = vec![CheckpointMark {
        time_s: 0.2,
        label: SCRIPT_CLOSE.into(),
    }];
    report.findings[0].location = Some(loc(&evil_file, 7, evil_fn));
    report.findings[0].message = format!("held at {SCRIPT_CLOSE}");
    report
}

fn options() -> HtmlOptions {
    HtmlOptions {
        read_sources: false,
        ..HtmlOptions::default()
    }
}

fn page(report: &Report, options: &HtmlOptions) -> String {
    let mut out = Vec::new();
    render(report, View::Peak, options, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// The embedded data of a page, parsed back.
fn embedded(page: &str) -> Value {
    let start = "<script type=\"application/json\" id=\"memlens-data\">";
    let from = page.find(start).expect("data element") + start.len();
    let len = page[from..].find("</script>").expect("data element closes");
    serde_json::from_str(&page[from..from + len]).unwrap()
}

fn data_of(report: &Report) -> Value {
    let text = data::Prepared::new(report).build(View::Peak, &options(), options().max_nodes);
    serde_json::from_str(&text).unwrap()
}

#[test]
fn snapshot_normal() {
    insta::assert_snapshot!(serde_json::to_string_pretty(&data_of(&normal())).unwrap());
}

#[test]
fn snapshot_empty() {
    insta::assert_snapshot!(serde_json::to_string_pretty(&data_of(&Report::default())).unwrap());
}

#[test]
fn snapshot_hostile() {
    insta::assert_snapshot!(serde_json::to_string_pretty(&data_of(&hostile())).unwrap());
}

#[test]
fn script_json_escapes_everything_that_could_end_the_element() {
    let json = serde_json::to_string(&format!("{SCRIPT_CLOSE}&<!--\u{2028}\u{2029}")).unwrap();
    let escaped = escape_script_json(&json);
    for bad in ["<", ">", "&", "\u{2028}", "\u{2029}"] {
        assert!(!escaped.contains(bad), "{bad:?} left in {escaped}");
    }
    let back: String = serde_json::from_str(&escaped).unwrap();
    assert_eq!(back, format!("{SCRIPT_CLOSE}&<!--\u{2028}\u{2029}"));
}

#[test]
fn hostile_names_stay_inside_the_data_and_come_back_unchanged() {
    let report = hostile();
    let html = page(&report, &options());
    // The template's two script elements close; nothing else does.
    assert_eq!(html.matches("</script").count(), 2);
    assert!(!html.contains("<img"));
    assert!(!html.contains("<b>"));
    assert!(html.contains("<title>memlens: /tmp/&lt;/script&gt;"));
    let data = embedded(&html);
    let strings: Vec<&str> = data["strings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let evil_file = &report.calls.frames[0].file;
    assert!(strings.contains(&evil_file.as_str()));
    assert!(strings.contains(&report.calls.frames[1].function.as_str()));
    // The 10,000-character name is cut to 300 characters and an ellipsis.
    let long = strings.iter().find(|s| s.starts_with("xxx")).unwrap();
    assert_eq!(long.chars().count(), 301);
    assert!(long.ends_with('…'));
    assert_eq!(data["pruning"]["names_cut"], 2);
}

#[test]
fn empty_report_is_a_valid_page() {
    let html = page(&Report::default(), &options());
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    let data = embedded(&html);
    assert_eq!(data["parents"], serde_json::json!([0]));
    assert_eq!(data["views"].as_array().unwrap().len(), 4);
    for v in data["views"].as_array().unwrap() {
        assert_eq!(v["values"], serde_json::json!([]));
    }
    assert_eq!(data["threads"].as_array().unwrap().len(), 1);
}

#[test]
fn page_is_self_contained() {
    let html = page(&normal(), &options());
    for remote in ["http://", "https://", "//cdn", "src=\"", "href=\"http"] {
        assert!(!html.contains(remote), "found {remote}");
    }
    assert!(html.contains("default-src 'none'"));
    assert!(!html.contains("{{"), "a placeholder was left");
}

#[test]
fn source_lines_are_read_at_render_time() {
    let dir = std::env::temp_dir().join(format!("memlens-html-src-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("prog.py");
    std::fs::write(
        &file,
        "import os\n    data = [bytearray(10) for _ in range(9)]  # <b>\n",
    )
    .unwrap();
    let mut report = normal();
    report.sites = vec![site(
        loc(file.to_str().unwrap(), 2, "<module>"),
        90,
        90,
        90,
        9,
    )];
    let text = data::Prepared::new(&report).build(View::Peak, &HtmlOptions::default(), 100);
    let data: Value = serde_json::from_str(&text).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        data["sites"][0]["source"],
        "data = [bytearray(10) for _ in range(9)]  # <b>"
    );
}

#[test]
fn frames_are_flagged_for_the_hide_toggles() {
    let data = data_of(&normal());
    let strings = data["strings"].as_array().unwrap();
    let frames = data["frames"].as_array().unwrap();
    let name = |node: usize| {
        let f = data["node_frames"][node].as_u64().unwrap() as usize;
        let file = strings[frames[3 * f].as_u64().unwrap() as usize]
            .as_str()
            .unwrap();
        let func = strings[frames[3 * f + 2].as_u64().unwrap() as usize]
            .as_str()
            .unwrap();
        format!("{file} {func}")
    };
    let flags = data["node_flags"].as_array().unwrap();
    let flagged = |bit: u64| -> Vec<String> {
        (1..flags.len())
            .filter(|&i| flags[i].as_u64().unwrap() & bit != 0)
            .map(name)
            .collect()
    };
    assert_eq!(
        flagged(super::data::FLAG_MEMLENS as u64),
        [
            "<frozen runpy> _run_module_as_main",
            "<frozen runpy> _run_code",
            "/venv/lib/python3.11/site-packages/memlens/__main__.py <module>",
            "/venv/lib/python3.11/site-packages/memlens/_runner.py run",
        ]
    );
    assert_eq!(
        flagged(super::data::FLAG_IMPORT as u64),
        ["<frozen importlib._bootstrap> _find_and_load"]
    );
}

/// Sums bytes per thread out of a flat `[node, thread, bytes, (count)]` array.
fn sum_bytes(values: &Value, stride: usize) -> u64 {
    values
        .as_array()
        .unwrap()
        .chunks(stride)
        .map(|c| c[2].as_u64().unwrap())
        .sum()
}

/// 100,000 distinct allocating stacks, 10 frames deep, over 4 threads, with 64 moments.
fn large() -> Report {
    const LEAVES: u32 = 100_000;
    let mut calls = CallTree {
        frames: Vec::new(),
        nodes: vec![CallNode::default()],
    };
    let mut report = Report::default();
    // Levels of the tree fan out 10, 10, 10, 10, 10, then one chain of 5 frames per leaf.
    let mut level = vec![0u32];
    for depth in 0..5 {
        let mut next = Vec::new();
        for &p in &level {
            for k in 0..10 {
                calls.frames.push(loc(
                    &format!("/app/pkg{depth}/mod{k}.py"),
                    10 + k,
                    &format!("f{depth}_{k}_{p}"),
                ));
                calls.nodes.push(CallNode {
                    parent: p,
                    frame: calls.frames.len() as u32 - 1,
                });
                next.push(calls.nodes.len() as u32 - 1);
            }
        }
        level = next;
    }
    let mut leaves = Vec::new();
    for (i, &p) in level.iter().enumerate().take(LEAVES as usize) {
        let mut node = p;
        for d in 0..5 {
            calls.frames.push(loc(
                &format!("/app/deep/leaf{}.py", i % 1000),
                d + 1,
                &format!("leaf_{i}_{d}"),
            ));
            calls.nodes.push(CallNode {
                parent: node,
                frame: calls.frames.len() as u32 - 1,
            });
            node = calls.nodes.len() as u32 - 1;
        }
        leaves.push(node);
    }
    // Sizes spread over four orders of magnitude so that pruning has something to choose.
    let bytes = |i: usize, salt: usize| 100 + ((i * 7919 + salt * 104_729) % 10_000) as u64 * 10;
    for (vi, &view) in View::ALL.iter().enumerate() {
        report.flames.push(Flame {
            view,
            values: leaves
                .iter()
                .enumerate()
                .map(|(i, &n)| value(n, (i % 4) as u32, bytes(i, vi), 1 + (i % 3) as u64))
                .collect(),
        });
    }
    report.moments = (0..64)
        .map(|m| Moment {
            time_s: m as f64 * 0.1,
            live_bytes: 1 << 20,
            values: leaves
                .iter()
                .enumerate()
                .filter(|(i, _)| i % 8 == m % 8)
                .map(|(i, &n)| value(n, (i % 4) as u32, bytes(i, m), 0))
                .collect(),
        })
        .collect();
    report.threads = (0..4)
        .map(|i| ThreadInfo {
            id: i,
            name: format!("T{i}"),
            ..ThreadInfo::default()
        })
        .collect();
    report.sites = (0..2000)
        .map(|i| site(loc("/app/deep/x.py", i, "g"), 10, 10, 10, 1))
        .collect();
    report.timeline = (0..2000)
        .map(|i| TimelinePoint {
            time_s: i as f64 * 0.01,
            live_bytes: i * 1000,
            rss_bytes: i * 2000,
        })
        .collect();
    report.calls = calls;
    report
}

#[test]
fn a_capture_with_100k_stacks_fits_in_5_mb_and_keeps_its_totals() {
    let report = large();
    let started = std::time::Instant::now();
    let html = page(&report, &options());
    let elapsed = started.elapsed();
    assert!(html.len() <= 5_000_000, "{} bytes", html.len());
    let data = embedded(&html);
    for (view, v) in View::ALL.iter().zip(data["views"].as_array().unwrap()) {
        let original: u64 = report
            .flame(*view)
            .unwrap()
            .values
            .iter()
            .map(|v| v.bytes)
            .sum();
        assert_eq!(sum_bytes(&v["values"], 4), original, "{}", view.name());
    }
    let m = &data["moments"][5];
    let original: u64 = report.moments[5].values.iter().map(|v| v.bytes).sum();
    assert_eq!(sum_bytes(&m["values"], 3), original);
    let kept = data["pruning"]["nodes_kept"].as_u64().unwrap();
    assert!(kept > 1000 && kept < 611_110, "{kept}");
    // Every kept node's parent comes first (the page relies on it).
    let parents = data["parents"].as_array().unwrap();
    for (i, p) in parents.iter().enumerate().skip(1) {
        assert!((p.as_u64().unwrap() as usize) < i);
    }
    eprintln!(
        "100k stacks: {} bytes, {kept} nodes kept, rendered in {elapsed:?}",
        html.len()
    );
}

#[test]
fn a_small_budget_prunes_harder_but_stays_valid() {
    let report = large();
    let options = HtmlOptions {
        max_bytes: 1_000_000,
        ..options()
    };
    let html = page(&report, &options);
    assert!(html.len() <= 1_000_000, "{} bytes", html.len());
    let data = embedded(&html);
    let original: u64 = report.flames[0].values.iter().map(|v| v.bytes).sum();
    assert_eq!(sum_bytes(&data["views"][0]["values"], 4), original);
}

#[test]
fn without_a_call_tree_the_flames_come_from_the_sites() {
    let mut report = normal();
    report.calls = CallTree::default();
    report.flames.clear();
    report.moments.clear();
    report.sites[0].stack = vec![
        loc("/app/app.py", 3, "build"),
        loc("/app/app.py", 4, "<module>"),
    ];
    let data = data_of(&report);
    assert_eq!(data["pruning"]["from_sites"], true);
    assert_eq!(sum_bytes(&data["views"][0]["values"], 4), 5_830_000);
}

/// The page `tests/test_report_html.py` opens in Chromium to check the thread filter, the
/// timeline's moments and hostile names: the normal fixture plus one stack with hostile names.
fn browser_fixture() -> Report {
    let mut report = normal();
    let evil_file = format!("/app/{SCRIPT_CLOSE}\"'&.py");
    let evil_fn = "<img src=x onerror=alert(3)>\u{202e}gnp.exe";
    let calls = &mut report.calls;
    calls.frames.push(loc("/app/app.py", 12, "<module>"));
    calls.frames.push(loc(&evil_file, 7, evil_fn));
    let n = calls.frames.len() as u32;
    calls.nodes.push(CallNode {
        parent: 0,
        frame: n - 2,
    });
    calls.nodes.push(CallNode {
        parent: calls.nodes.len() as u32 - 1,
        frame: n - 1,
    });
    let leaf = calls.nodes.len() as u32 - 1;
    for flame in &mut report.flames {
        flame.values.push(value(leaf, 0, 300_000, 3));
    }
    report.moments[1].values.push(value(leaf, 0, 300_000, 0));
    report.sites.push(site(
        loc(&evil_file, 7, evil_fn),
        300_000,
        300_000,
        300_000,
        3,
    ));
    report.checkpoints[0].label = format!("after build {SCRIPT_CLOSE}");
    report
}

/// `tests/browser/fixture.html` is this renderer's output for [`browser_fixture`]; set
/// `MEMLENS_BLESS=1` to rewrite it after changing the renderer or its assets.
#[test]
fn browser_fixture_page_is_current() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser/fixture.html");
    let html = page(&browser_fixture(), &options());
    if std::env::var_os("MEMLENS_BLESS").is_some() {
        std::fs::write(&path, &html).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == html,
        "{} is stale: run `MEMLENS_BLESS=1 cargo test -p memlens-report browser_fixture`",
        path.display()
    );
}

#[test]
fn a_leak_window_is_described_and_has_no_exact_total() {
    let mut report = normal();
    report.leak_window = Some(memlens_analysis::LeakWindow {
        from: Some("warm".into()),
        to: None,
        from_time_s: 0.5,
        to_time_s: 1.5,
    });
    let data = data_of(&report);
    let strings = data["strings"].as_array().unwrap();
    let from = data["leak_window"]["from"].as_u64().unwrap() as usize;
    assert_eq!(strings[from], "warm");
    assert_eq!(data["leak_window"]["to"], Value::Null);
    assert_eq!(data["views"][1]["name"], "leaks");
    assert_eq!(data["views"][1]["exact_total"], Value::Null);
}

#[test]
fn pruned_stacks_keep_their_allocating_frame_under_other() {
    // 1,000 distinct callers of one allocating function, each too small to keep.
    let stacks: Vec<Vec<Location>> = (0..1000)
        .map(|i| {
            vec![
                loc("/app/main.py", 1, "<module>"),
                loc("/app/main.py", 10 + i, "caller"),
                loc("/app/alloc.py", 3, "make"),
            ]
        })
        .collect();
    let (calls, leaves) = tree_of(&stacks);
    let mut report = Report {
        calls,
        ..Report::default()
    };
    report.flames.push(Flame {
        view: View::Peak,
        values: leaves.iter().map(|&n| value(n, 0, 100, 1)).collect(),
    });
    let text = data::Prepared::new(&report).build(View::Peak, &options(), 10);
    let data: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(data["pruning"]["nodes_kept"], 10);
    let strings = data["strings"].as_array().unwrap();
    let frames = data["frames"].as_array().unwrap();
    let function = |node: usize| {
        let f = data["node_frames"][node].as_u64().unwrap() as usize;
        strings[frames[3 * f + 2].as_u64().unwrap() as usize]
            .as_str()
            .unwrap()
    };
    let parents = data["parents"].as_array().unwrap();
    // Sum the bytes that sit on `make` nodes whose parent is an `(other)` node.
    let values = data["views"][0]["values"].as_array().unwrap();
    let under_other: u64 = values
        .chunks(4)
        .filter(|c| {
            let n = c[0].as_u64().unwrap() as usize;
            let p = parents[n].as_u64().unwrap() as usize;
            function(n) == "make" && function(p) == "(other)"
        })
        .map(|c| c[2].as_u64().unwrap())
        .sum();
    let kept_make: u64 = values
        .chunks(4)
        .filter(|c| function(c[0].as_u64().unwrap() as usize) == "make")
        .map(|c| c[2].as_u64().unwrap())
        .sum();
    assert_eq!(
        kept_make, 100_000,
        "every byte still sits on a `make` frame"
    );
    assert!(under_other >= 100_000 - 10 * 100, "{under_other}");
}

#[test]
fn figures_near_u64_max_saturate_instead_of_overflowing() {
    let mut report = normal();
    for flame in &mut report.flames {
        for v in &mut flame.values {
            v.bytes = u64::MAX - 1;
            v.count = u64::MAX;
        }
    }
    for m in &mut report.moments {
        for v in &mut m.values {
            v.bytes = u64::MAX;
        }
    }
    let html = page(&report, &options());
    let data = embedded(&html);
    assert!(data["views"][0]["values"].as_array().unwrap().len() >= 4);
}

/// A heap panel whose every name is hostile, with more rows than the page keeps.
fn hostile_heap() -> HeapPanel {
    let evil_type = format!("app.{SCRIPT_CLOSE}\"'&\u{1b}[31m\u{202e}\u{2028}Rec");
    let evil_file = format!("/tmp/{SCRIPT_CLOSE}\u{0}'\".py");
    let evil_path = format!("module `app`, global `{SCRIPT_CLOSE}\\``\u{7}` -> list, index 3");
    let site = Some(HeapSite {
        file: evil_file.clone(),
        line: 7,
    });
    HeapPanel {
        objects: 100_123,
        bytes: 5_600_000,
        reachable_objects: 100_100,
        reachable_bytes: 5_500_000,
        suspects: vec![HeapSuspect {
            kind: "accumulation".into(),
            type_name: evil_type.clone(),
            retained_bytes: 4_800_000,
            share: 0.87,
            objects: 100_000,
            message: format!("100,000 instances of {evil_type} keep 4.6 MiB alive"),
            path: evil_path.clone(),
            alloc_site: site.clone(),
        }],
        dominators: (0..25)
            .map(|i| HeapDominator {
                type_name: evil_type.clone(),
                retained_bytes: 1_000_000 - i,
                retained_objects: 3,
                path: if i == 1 {
                    "x".repeat(10_000)
                } else {
                    evil_path.clone()
                },
                alloc_site: if i == 0 { site.clone() } else { None },
            })
            .collect(),
        types: vec![HeapType {
            type_name: evil_type,
            count: 100_000,
            shallow_bytes: 4_800_000,
            retained_bytes: 4_800_000,
            alloc_site: site,
        }],
    }
}

fn page_with_heap(report: &Report, heap: Option<&HeapPanel>) -> String {
    let mut out = Vec::new();
    render_with_heap(report, heap, View::Peak, &options(), &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn heap_data_of(heap: &HeapPanel) -> Value {
    let text = data::Prepared::new(&Report::default())
        .with_heap(Some(heap))
        .build(View::Peak, &options(), options().max_nodes);
    serde_json::from_str::<Value>(&text).unwrap()["heap"].clone()
}

#[test]
fn snapshot_heap_hostile() {
    insta::assert_snapshot!(serde_json::to_string_pretty(&heap_data_of(&hostile_heap())).unwrap());
}

#[test]
fn snapshot_heap_empty() {
    insta::assert_snapshot!(
        serde_json::to_string_pretty(&heap_data_of(&HeapPanel::default())).unwrap()
    );
}

#[test]
fn hostile_heap_names_stay_inside_the_data_and_come_back_unchanged() {
    let heap = hostile_heap();
    let html = page_with_heap(&hostile(), Some(&heap));
    // The template's two script elements close; nothing else does.
    assert_eq!(html.matches("</script").count(), 2);
    assert!(!html.contains("<script>alert"));
    assert!(!html.contains('\u{2028}'));
    let data = embedded(&html);
    let h = &data["heap"];
    assert_eq!(h["objects"], 100_123);
    assert_eq!(h["reachable_bytes"], 5_500_000);
    assert_eq!(h["types"][0]["type"], heap.types[0].type_name.as_str());
    assert_eq!(h["types"][0]["count"], 100_000);
    assert_eq!(h["types"][0]["alloc_site"]["line"], 7);
    assert_eq!(h["suspects"][0]["path"], heap.suspects[0].path.as_str());
    assert_eq!(
        h["suspects"][0]["message"],
        heap.suspects[0].message.as_str()
    );
    assert_eq!(
        h["suspects"][0]["alloc_site"]["file"],
        heap.suspects[0].alloc_site.as_ref().unwrap().file.as_str()
    );
    assert_eq!(h["dominators"][0]["alloc_site"]["line"], 7);
    assert_eq!(h["dominators"][2]["alloc_site"], Value::Null);
    // Bounded: 20 of the 25 dominators, the 10,000-character path cut to 2,000 and an ellipsis.
    assert_eq!(h["dominators"].as_array().unwrap().len(), MAX_HEAP_ROWS);
    assert_eq!(h["rows_cut"], 5);
    let long = h["dominators"][1]["path"].as_str().unwrap();
    assert_eq!(long.chars().count(), 2001);
    assert!(long.ends_with('…'));
    assert_eq!(h["dominators"][0]["retained_bytes"], 1_000_000);
}

#[test]
fn without_a_heap_panel_the_data_has_no_heap() {
    let html = page_with_heap(&normal(), None);
    assert!(embedded(&html).get("heap").is_none());
    assert!(html.contains("No heap snapshot in this report"));
    // An empty snapshot still gets a panel (with zeros and empty lists), so the page says so.
    let empty = embedded(&page_with_heap(
        &Report::default(),
        Some(&HeapPanel::default()),
    ));
    assert_eq!(empty["heap"]["objects"], 0);
    assert_eq!(empty["heap"]["dominators"], serde_json::json!([]));
    assert_eq!(empty["heap"]["max_rows"], MAX_HEAP_ROWS);
}
