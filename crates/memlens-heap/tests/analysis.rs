//! Analysis of a Python-shaped heap: retained sizes, paths, views, growth.

mod common;

use common::*;
use memlens_heap::{
    Analysis, HeapReport, Object, ReportOptions, RootKind, Snapshot, SnapshotBuilder, SuspectKind,
    diff,
};

#[test]
fn retained_sizes_follow_dominators() {
    let app = app(100, 5, 0x7f00_0000_0000);
    let snap = Snapshot::read_from(&app.bytes).unwrap();
    let a = Analysis::new(&snap);
    assert_eq!(a.retained_size(app.results), results_retained(100));
    // 1 list + 100 x (record, dict, str, bytes)
    assert_eq!(a.retained_objects(app.results), 401);
    assert_eq!(
        a.retained_size(app.records[3]),
        RECORD + INSTANCE_DICT + str_size("user3") + PAYLOAD
    );
    assert_eq!(a.retained_size(app.listener), 48 + INSTANCE_DICT + BUFFER);
    // The weakly held record is not kept alive by anything.
    assert_eq!(a.retained_size(app.weak_only), 0);
    assert_eq!(a.immediate_dominator(app.weak_only), None);
    assert_eq!(
        a.immediate_dominator(app.records[0]),
        Some(Some(app.results))
    );
    assert!(a.dominates(app.results, app.record_names[7]));
    assert!(!a.dominates(app.records[0], app.records[1]));
    let (objects, bytes) = a.reachable();
    assert_eq!(objects as usize, snap.node_count() - 1);
    assert_eq!(bytes, snap.total_size() - RECORD);
}

#[test]
fn retainer_paths_read_like_python() {
    let app = app(100, 5, 0x1000);
    let snap = Snapshot::read_from(&app.bytes).unwrap();
    let a = Analysis::new(&snap);
    assert_eq!(
        a.render_path(app.results, false),
        "module `app.cache`, global `_RESULTS` -> list"
    );
    assert_eq!(
        a.render_path(app.record_names[42], false),
        "module `app.cache`, global `_RESULTS` -> list, index 42 -> app.models.Record, \
         attribute `name` -> str"
    );
    assert_eq!(
        a.render_path(app.record_names[42], true),
        "module `app.cache`, global `_RESULTS` -> list, index * -> app.models.Record, \
         attribute `name` -> str"
    );
    // A closure cell.
    assert_eq!(
        a.render_path(app.closure_bytes, false),
        "module `app.handlers`, global `handler` -> function, `__closure__` -> tuple, \
         closure cell `payload` -> cell, `cell_contents` -> bytes"
    );
    // A bound method in a list.
    assert_eq!(
        a.render_path(app.buffer, false),
        "module `app.events`, global `_LISTENERS` -> list, index 0 -> method, \
         `__self__` -> app.events.Listener, attribute `buffer` -> bytearray"
    );
    // An exception's traceback.
    assert_eq!(
        a.render_path(app.tb_bytes[1], false),
        "thread \"MainThread\" handled exception, `__traceback__` -> traceback, \
         `tb_frame` -> frame, local `rows` -> list, index 1 -> bytes"
    );
    // A class attribute.
    assert_eq!(
        a.render_path(app.registry_list, false),
        "module `app.models`, global `Registry` -> type, class attribute `instances` -> list"
    );
    assert_eq!(
        a.render_path(app.weak_only, false),
        "(not reachable through strong references)"
    );
}

#[test]
fn histogram_dominators_and_suspects() {
    let app = app(100, 5, 0x1000);
    let snap = Snapshot::read_from(&app.bytes).unwrap();
    let a = Analysis::new(&snap);
    let report = HeapReport::new(&[&a], &ReportOptions::new().top(5));

    let rec = report
        .types
        .iter()
        .find(|t| t.type_name == "app.models.Record")
        .unwrap();
    assert_eq!(rec.count, 101);
    assert_eq!(rec.shallow_bytes, 101 * RECORD);
    assert_eq!(rec.retained_bytes, results_retained(100) - (56 + 800));
    let bytes = report
        .types
        .iter()
        .find(|t| t.type_name == "bytes")
        .unwrap();
    assert_eq!(bytes.count, 100 + 1 + 3);
    assert_eq!(
        bytes.retained_bytes,
        100 * PAYLOAD + CLOSURE_BYTES + 3 * TB_BYTES
    );

    let d = &report.dominators;
    assert_eq!(d[0].type_name, "bytes");
    assert_eq!(d[0].retained_bytes, CLOSURE_BYTES);
    assert_eq!(d[1].type_name, "bytearray");
    assert_eq!(d[1].retained_bytes, BUFFER);
    assert_eq!(d[2].type_name, "list");
    assert_eq!(d[2].retained_bytes, results_retained(100));
    assert_eq!(
        d[2].alloc_site.as_ref().map(|s| (s.file.as_str(), s.line)),
        Some(("app/cache.py", 12))
    );
    // Disjoint: no record (inside `_RESULTS`) is listed.
    assert!(d.iter().all(|row| row.type_name != "app.models.Record"));

    let holders: Vec<_> = report
        .suspects
        .iter()
        .filter(|s| s.kind == SuspectKind::Holder)
        .map(|s| (s.type_name.as_str(), s.retained_bytes))
        .collect();
    assert_eq!(
        holders,
        vec![
            ("bytes", CLOSURE_BYTES),
            ("bytearray", BUFFER),
            ("list", results_retained(100))
        ]
    );
    let list = &report.suspects[2];
    assert_eq!(list.composition[0].type_name, "bytes");
    assert_eq!(list.composition[0].count, 100);
    assert!(
        list.message.contains("one `list` keeps"),
        "{}",
        list.message
    );
    // Records accumulate in `_RESULTS`, which is already a suspect: no second suspect for them.
    assert!(
        report
            .suspects
            .iter()
            .all(|s| s.kind == SuspectKind::Holder)
    );
    assert_eq!(
        report
            .findings
            .iter()
            .filter(|f| f.rule == "heap-leak-suspect")
            .count(),
        3
    );
}

#[test]
fn accumulation_without_a_single_holder_is_a_suspect() {
    // Sessions held by a list and by an index dict of another module: neither dominates them, so no holder
    // reaches 10%, but all of them are held the same way and together they keep a third.
    use memlens_heap::{Object, RootKind, SnapshotBuilder};
    let mut b = SnapshotBuilder::new(Vec::new()).unwrap();
    let module = b.add_type("module").unwrap();
    let list = b.add_type("list").unwrap();
    let dict = b.add_type("dict").unwrap();
    let rec = b.add_type("app.Session").unwrap();
    let other = b.add_type("bytes").unwrap();
    let big = b.add_object(Object::new(1, other, 100_000)).unwrap();
    b.add_root(big, RootKind::Other, "interned bytes").unwrap();
    let m = b.add_object(Object::new(2, module, 100)).unwrap();
    b.add_root(m, RootKind::Module, "module `app`").unwrap();
    let l = b.add_object(Object::new(3, list, 100)).unwrap();
    b.add_attr(m, l, "SESSIONS").unwrap();
    let m2 = b.add_object(Object::new(5, module, 100)).unwrap();
    b.add_root(m2, RootKind::Module, "module `app.index`")
        .unwrap();
    let d = b.add_object(Object::new(4, dict, 100)).unwrap();
    b.add_attr(m2, d, "BY_ID").unwrap();
    for i in 0..50u64 {
        let r = b.add_object(Object::new(1000 + i, rec, 1000)).unwrap();
        b.add_index(l, r, i).unwrap();
        b.add_key(d, r, &format!("s{i}")).unwrap();
    }
    let snap = Snapshot::read_from(&b.finish().unwrap()).unwrap();
    let a = Analysis::new(&snap);
    let s = a.suspects(0.1);
    let acc: Vec<_> = s
        .iter()
        .filter(|s| s.kind == SuspectKind::Accumulation)
        .collect();
    assert_eq!(acc.len(), 1, "{s:?}");
    assert_eq!(acc[0].type_name, "app.Session");
    assert_eq!(acc[0].objects, 50);
    assert_eq!(acc[0].retained_bytes, 50_000);
    // Only the roots dominate them.
    assert_eq!(acc[0].composition[0].type_name, "(roots)");
    assert_eq!(acc[0].composition[0].count, 50);
    assert_eq!(
        acc[0].path,
        "module `app`, global `SESSIONS` -> list, index * -> app.Session"
    );
    assert!(
        acc[0]
            .message
            .contains("all held the same way: module `app`"),
        "{}",
        acc[0].message
    );
}

#[test]
fn instances_spread_over_unrelated_places_are_no_suspect() {
    // One session per module (the way every module holds its own functions): no common path.
    use memlens_heap::{Object, RootKind, SnapshotBuilder};
    let mut b = SnapshotBuilder::new(Vec::new()).unwrap();
    let module = b.add_type("module").unwrap();
    let rec = b.add_type("app.Session").unwrap();
    let other = b.add_type("bytes").unwrap();
    let big = b.add_object(Object::new(1, other, 100_000)).unwrap();
    b.add_root(big, RootKind::Other, "interned bytes").unwrap();
    for i in 0..50u64 {
        let m = b.add_object(Object::new(100 + i, module, 100)).unwrap();
        b.add_root(m, RootKind::Module, &format!("module `m{i}`"))
            .unwrap();
        let r = b.add_object(Object::new(1000 + i, rec, 1000)).unwrap();
        b.add_attr(m, r, "session").unwrap();
    }
    let snap = Snapshot::read_from(&b.finish().unwrap()).unwrap();
    let a = Analysis::new(&snap);
    let s = a.suspects(0.1);
    assert!(
        s.iter().all(|s| s.kind != SuspectKind::Accumulation),
        "{s:?}"
    );
}

#[test]
fn why_groups_paths_by_shape() {
    let app = app(100, 5, 0x1000);
    let snap = Snapshot::read_from(&app.bytes).unwrap();
    let a = Analysis::new(&snap);
    let w = a.why("Record", 10);
    assert_eq!(w.matched, 101);
    assert_eq!(w.unreachable, 1);
    assert_eq!(w.groups.len(), 1);
    assert_eq!(w.groups[0].count, 100);
    assert_eq!(
        w.groups[0].retained_bytes,
        results_retained(100) - (56 + 800)
    );
    assert_eq!(
        w.groups[0].path,
        "module `app.cache`, global `_RESULTS` -> list, index * -> app.models.Record"
    );
    assert_eq!(
        w.groups[0].example,
        "module `app.cache`, global `_RESULTS` -> list, index 0 -> app.models.Record"
    );
    // By allocation site, and by glob.
    let by_site = a.why("cache.py:12", 10);
    assert_eq!(by_site.matched, 1);
    assert_eq!(by_site.groups[0].type_name, "list");
    assert_eq!(a.why("app.*.Listener", 10).matched, 1);
    assert_eq!(a.why("NoSuchType", 10).matched, 0);
    // Strings: one group per holder shape; "name" values all hang off record dicts.
    let strs = a.why("str", 10);
    let names = strs
        .groups
        .iter()
        .find(|g| g.path.ends_with("attribute `name` -> str"))
        .unwrap();
    assert_eq!(names.count, 100);
}

#[test]
fn duplicate_strings_are_counted() {
    let app = app(100, 5, 0x1000);
    let snap = Snapshot::read_from(&app.bytes).unwrap();
    let a = Analysis::new(&snap);
    let d = a.duplicate_strings(5);
    assert_eq!(d[0].value.as_deref(), Some("'alice'"));
    assert_eq!(d[0].count, 50);
    assert_eq!(d[0].size, str_size("alice"));
    assert_eq!(d[0].wasted_bytes, 49 * str_size("alice"));
    assert_eq!(d.len(), 1);
}

#[test]
fn growth_across_three_snapshots_matches_by_path() {
    // Addresses differ in every snapshot; `_RESULTS` grows every time, `_NOISE` does not.
    let s1 = Snapshot::read_from(&app(10, 5, 0x1000).bytes).unwrap();
    let s2 = Snapshot::read_from(&app(20, 9, 0x9000_0000).bytes).unwrap();
    let s3 = Snapshot::read_from(&app(30, 7, 0x5000).bytes).unwrap();
    let (a1, a2, a3) = (Analysis::new(&s1), Analysis::new(&s2), Analysis::new(&s3));
    let d = diff(&[&a1, &a2, &a3], 10);
    assert_eq!(d.snapshots, 3);
    assert_eq!(d.holders.len(), 1, "{:?}", d.holders);
    let h = &d.holders[0];
    assert_eq!(h.path, "module `app.cache`, global `_RESULTS` -> list");
    assert_eq!(h.references, vec![10, 20, 30]);
    assert_eq!(
        h.retained,
        vec![
            results_retained(10),
            results_retained(20),
            results_retained(30)
        ]
    );
    let rec = d
        .types
        .iter()
        .find(|t| t.type_name == "app.models.Record")
        .unwrap();
    assert_eq!(rec.counts, vec![10, 20, 30]); // reachable instances only
    assert!(
        d.types.iter().all(|t| t.type_name != "int"),
        "noise did not grow every time"
    );
    let p = d
        .paths
        .iter()
        .find(|p| p.type_name == "app.models.Record")
        .unwrap();
    assert_eq!(
        p.path,
        "module `app.cache`, global `_RESULTS` -> list, index * -> app.models.Record"
    );
    assert_eq!(p.counts, vec![10, 20, 30]);

    // Two snapshots (first and last): the noise list grew from 5 to 7 and shows up.
    let d2 = diff(&[&a1, &a3], 10);
    let paths: Vec<&str> = d2.holders.iter().map(|h| h.path.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "module `app.cache`, global `_RESULTS` -> list",
            "module `app.cache`, global `_NOISE` -> list"
        ]
    );
    let int = d2.types.iter().find(|t| t.type_name == "int").unwrap();
    assert_eq!(int.counts, vec![5, 7]);
}

#[test]
fn report_renders_text_and_json() {
    let app = app(100, 5, 0x1000);
    let snap = Snapshot::read_from(&app.bytes).unwrap();
    let a = Analysis::new(&snap);
    let report = HeapReport::new(&[&a], &ReportOptions::new().why(Some("Record".into())));
    let mut text = Vec::new();
    report.write(memlens_heap::Format::Text, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    // `why` alone: the answer only; the full report without it.
    assert!(!text.contains("Leak suspects"), "{text}");
    assert!(
        text.starts_with("Why `Record` is alive: 101 objects"),
        "{text}"
    );
    let mut full = Vec::new();
    HeapReport::new(&[&a], &ReportOptions::new())
        .write(memlens_heap::Format::Text, &mut full)
        .unwrap();
    let full = String::from_utf8(full).unwrap();
    assert!(full.contains("Leak suspects"), "{full}");
    assert!(
        full.contains("     path: module `app.cache`, global `_RESULTS` -> list"),
        "{full}"
    );
    let mut json = Vec::new();
    report.write(memlens_heap::Format::Json, &mut json).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(v["format"], "memlens-heap");
    assert_eq!(v["version"], 1);
    assert_eq!(v["objects"], snap.node_count() as u64);
    assert_eq!(v["bytes"], snap.total_size());
    assert_eq!(v["dominators"][2]["retained_bytes"], results_retained(100));
    assert_eq!(
        v["dominators"][2]["path"],
        "module `app.cache`, global `_RESULTS` -> list"
    );
    assert_eq!(v["dominators"][2]["alloc_site"]["file"], "app/cache.py");
    assert_eq!(v["dominators"][2]["alloc_site"]["line"], 12);
    assert_eq!(v["dominators"][0]["alloc_site"], serde_json::Value::Null);
    assert_eq!(v["why"]["matched"], 101);
    assert!(
        v["types"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["type"] == "app.models.Record" && t["count"] == 101)
    );
}

#[test]
fn hostile_names_are_escaped_in_paths_and_text() {
    use memlens_heap::{Format, Object, RootKind, SnapshotBuilder};
    let mut b = SnapshotBuilder::new(Vec::new()).unwrap();
    let module = b.add_type("module").unwrap();
    let evil = b.add_type("Evil`\u{1b}[2J\nType").unwrap();
    let m = b.add_object(Object::new(1, module, 10)).unwrap();
    let x = b.add_object(Object::new(2, evil, 10_000)).unwrap();
    b.add_attr(m, x, "a`b\nc").unwrap();
    b.add_root(m, RootKind::Module, "module `x\u{7}y`").unwrap();
    let snap = Snapshot::read_from(&b.finish().unwrap()).unwrap();
    let a = Analysis::new(&snap);
    assert_eq!(
        a.render_path(x, false),
        "module `x\\x07y`, global `a\\`b\\nc` -> Evil\\`\\x1b[2J\\nType"
    );
    let report = HeapReport::new(&[&a], &ReportOptions::new());
    let mut text = Vec::new();
    report.write(Format::Text, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text:?}"
    );
}

#[test]
fn empty_snapshot() {
    let b = memlens_heap::SnapshotBuilder::new(Vec::new()).unwrap();
    let snap = Snapshot::read_from(&b.finish().unwrap()).unwrap();
    let a = Analysis::new(&snap);
    let r = HeapReport::new(&[&a], &ReportOptions::new().why(Some("x".into())));
    assert_eq!(r.objects, 0);
    assert!(r.dominators.is_empty() && r.suspects.is_empty() && r.types.is_empty());
    let mut text = Vec::new();
    r.write(memlens_heap::Format::Text, &mut text).unwrap();
    assert!(
        String::from_utf8(text)
            .unwrap()
            .starts_with("Why `x` is alive: 0 objects, 0 B")
    );
}

#[test]
fn duplicate_strings_are_equal_in_full_not_by_preview() {
    // 2,000 strs whose 64-character previews are equal but whose values differ (their hashes
    // differ), and 30 copies of one value: only the 30 are duplicates. Without stored values,
    // the group has no value to show.
    let mut b = SnapshotBuilder::new(Vec::new()).unwrap();
    let t = b.add_type("str").unwrap();
    let list = b.add_type("list").unwrap();
    let holder = b.add_object(Object::new(8, list, 64)).unwrap();
    b.add_root(holder, RootKind::Module, "module `m`").unwrap();
    let prefix = "x".repeat(64);
    for i in 0..2030u64 {
        let hash = if i < 2000 { i } else { 99_999 };
        let o = Object::new(16 * (i + 1), t, 2049).value_hash(hash);
        let o = if i < 2000 { o.preview(&prefix) } else { o };
        let n = b.add_object(o).unwrap();
        b.add_index(holder, n, i).unwrap();
    }
    let snap = Snapshot::read_from(&b.finish().unwrap()).unwrap();
    let d = Analysis::new(&snap).duplicate_strings(5);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!((d[0].count, d[0].size, d[0].truncated), (30, 2049, false));
    assert_eq!(d[0].wasted_bytes, 29 * 2049);
    assert_eq!(d[0].value, None);
    assert_eq!(d[0].described(), "str of 2.0 KiB");
}
