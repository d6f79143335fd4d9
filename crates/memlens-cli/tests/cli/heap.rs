//! End-to-end tests of `memlens heap`, on snapshot files shaped like real Python heaps.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use memlens_heap::{EdgeKind, EdgeLabel, NodeFlags, NodeId, Object, RootKind, SnapshotBuilder};

const RECORD: u64 = 48;
const RECORD_DICT: u64 = 104;
const PAYLOAD: u64 = 1033;

fn str_size(s: &str) -> u64 {
    49 + s.len() as u64
}

fn record_name(i: usize) -> String {
    if i.is_multiple_of(3) {
        "alice".into()
    } else {
        format!("user{i}")
    }
}

/// Retained size of `_RESULTS` holding `n` records.
fn results_retained(n: usize) -> u64 {
    56 + 8 * n as u64
        + (0..n)
            .map(|i| RECORD + RECORD_DICT + str_size(&record_name(i)) + PAYLOAD)
            .sum::<u64>()
}

/// Writes a Python-shaped snapshot: modules, dicts, lists, instances, a closure, a bound method
/// in a list, an exception traceback and a class attribute, each keeping something alive.
fn write_app(dir: &Path, file: &str, n: usize, base: u64) -> PathBuf {
    let mut b = SnapshotBuilder::new(Vec::new()).unwrap();
    let ty = |b: &mut SnapshotBuilder<Vec<u8>>, name: &str| b.add_type(name).unwrap();
    let (module, dict, list, str_, bytes) = (
        ty(&mut b, "module"),
        ty(&mut b, "dict"),
        ty(&mut b, "list"),
        ty(&mut b, "str"),
        ty(&mut b, "bytes"),
    );
    let (record, class, function, tuple, cell) = (
        ty(&mut b, "app.models.Record"),
        ty(&mut b, "type"),
        ty(&mut b, "function"),
        ty(&mut b, "tuple"),
        ty(&mut b, "cell"),
    );
    let (payload_t, method, listener, entry, row) = (
        ty(&mut b, "app.handlers.Payload"),
        ty(&mut b, "method"),
        ty(&mut b, "app.events.Listener"),
        ty(&mut b, "app.models.Entry"),
        ty(&mut b, "app.jobs.Row"),
    );
    let (exc_t, tb_t, frame_t) = (
        ty(&mut b, "ValueError"),
        ty(&mut b, "traceback"),
        ty(&mut b, "frame"),
    );
    let site = b.add_site("app/cache.py", 12).unwrap();
    let addr = std::cell::Cell::new(base);
    let add = |b: &mut SnapshotBuilder<Vec<u8>>, o: Object<'_>| {
        addr.set(addr.get() + 0x30);
        b.add_object(Object {
            address: addr.get(),
            ..o
        })
        .unwrap()
    };
    let module_of = |b: &mut SnapshotBuilder<Vec<u8>>, name: &str| {
        let m = add(b, Object::new(0, module, 72));
        let d = add(b, Object::new(0, dict, 640));
        b.add_internal(m, d, "__dict__").unwrap();
        b.add_root(m, RootKind::Module, &format!("module `{name}`"))
            .unwrap();
        d
    };
    let models = module_of(&mut b, "app.models");
    let cache = module_of(&mut b, "app.cache");
    let handlers = module_of(&mut b, "app.handlers");
    let events = module_of(&mut b, "app.events");

    // A global list of records.
    let results = add(&mut b, Object::new(0, list, 56 + 8 * n as u64).site(site));
    b.add_key(cache, results, "_RESULTS").unwrap();
    let record_class = add(&mut b, Object::new(0, class, 1064).flags(NodeFlags::CLASS));
    b.add_key(models, record_class, "Record").unwrap();
    for i in 0..n {
        let r = add(&mut b, Object::new(0, record, RECORD));
        b.add_index(results, r, i as u64).unwrap();
        b.add_internal(r, record_class, "__class__").unwrap();
        let d = add(&mut b, Object::new(0, dict, RECORD_DICT));
        b.add_internal(r, d, "__dict__").unwrap();
        let name = record_name(i);
        let s = add(&mut b, Object::new(0, str_, str_size(&name)).preview(&name));
        b.add_key(d, s, "name").unwrap();
        let p = add(&mut b, Object::new(0, bytes, PAYLOAD));
        b.add_key(d, p, "payload").unwrap();
    }
    // A closure.
    let f = add(&mut b, Object::new(0, function, 152));
    b.add_key(handlers, f, "on_request").unwrap();
    let closure = add(&mut b, Object::new(0, tuple, 48));
    b.add_internal(f, closure, "__closure__").unwrap();
    let c = add(&mut b, Object::new(0, cell, 32));
    let seen = b.intern("seen").unwrap();
    b.add_edge(closure, c, EdgeLabel::Cell(seen), EdgeKind::Strong)
        .unwrap();
    let payload = add(&mut b, Object::new(0, payload_t, 300_000));
    b.add_internal(c, payload, "cell_contents").unwrap();
    // A bound method in a list.
    let listeners = add(&mut b, Object::new(0, list, 64));
    b.add_key(events, listeners, "_LISTENERS").unwrap();
    let m = add(&mut b, Object::new(0, method, 48));
    b.add_index(listeners, m, 0).unwrap();
    let l = add(&mut b, Object::new(0, listener, 200_000));
    b.add_internal(m, l, "__self__").unwrap();
    // A class attribute.
    let registry = add(&mut b, Object::new(0, class, 1064).flags(NodeFlags::CLASS));
    b.add_key(models, registry, "Registry").unwrap();
    let reg_dict = add(&mut b, Object::new(0, dict, 272));
    b.add_internal(registry, reg_dict, "__dict__").unwrap();
    let entries = add(&mut b, Object::new(0, list, 80));
    b.add_key(reg_dict, entries, "entries").unwrap();
    for i in 0..3 {
        let e = add(&mut b, Object::new(0, entry, 5_000));
        b.add_index(entries, e, i).unwrap();
    }
    // An exception's traceback keeps a frame's locals alive.
    let exc = add(&mut b, Object::new(0, exc_t, 72));
    let tb = add(&mut b, Object::new(0, tb_t, 64));
    b.add_internal(exc, tb, "__traceback__").unwrap();
    let frame = add(&mut b, Object::new(0, frame_t, 400));
    b.add_internal(tb, frame, "tb_frame").unwrap();
    let r = add(&mut b, Object::new(0, row, 7_000));
    let batch = b.intern("batch").unwrap();
    b.add_edge(frame, r, EdgeLabel::Local(batch), EdgeKind::Strong)
        .unwrap();
    b.add_root(
        exc,
        RootKind::Exception,
        "thread \"MainThread\" handled exception",
    )
    .unwrap();
    let _ = NodeId(0);

    let path = dir.join(file);
    std::fs::write(&path, b.finish().unwrap()).unwrap();
    path
}

fn memlens(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_memlens"))
        .arg("heap")
        .args(args)
        .output()
        .unwrap()
}

fn ok_stdout(args: &[&std::ffi::OsStr]) -> String {
    let out = memlens(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn os(s: &str) -> &std::ffi::OsStr {
    s.as_ref()
}

#[test]
fn text_names_holders_paths_and_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let snap = write_app(dir.path(), "app.mlheap", 300, 0x7f00_0000_0000);
    let text = ok_stdout(&[snap.as_os_str()]);
    // 8 module objects and dicts, 2 classes, 300 records x 4, 4 for the closure, 3 for the
    // listener, 5 for the registry, 4 for the exception.
    assert!(text.starts_with("Heap snapshot: 1,227 objects"), "{text}");
    // 300 records of (48 + 104 + str + 1033) and the list itself.
    assert_eq!(results_retained(300), 374_484);
    assert!(
        text.contains(
            "   365.7 KiB       1,201  list                      module `app.cache`, global `_RESULTS` -> list  (allocated at app/cache.py:12)"
        ),
        "{text}"
    );
    assert!(
        text.contains("one `app.handlers.Payload` keeps 293.0 KiB"),
        "{text}"
    );
    assert!(text.contains("     allocated at app/cache.py:12"), "{text}");
    // Duplicate strings: 100 copies of 'alice'.
    assert!(
        text.contains("       100        54 B     5.2 KiB  'alice'"),
        "{text}"
    );
}

#[test]
fn json_follows_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let snap = write_app(dir.path(), "app.mlheap", 300, 0x1000);
    let out = dir.path().join("heap.json");
    let _ = ok_stdout(&[
        snap.as_os_str(),
        os("--format"),
        os("json"),
        os("-o"),
        out.as_os_str(),
    ]);
    let json = std::fs::read_to_string(&out).unwrap();
    assert!(
        json.starts_with(
            "{\n  \"format\": \"memlens-heap\",\n  \"version\": 1,\n  \"objects\": 1227,"
        ),
        "{json}"
    );
    assert!(
        json.contains(&format!("\"retained_bytes\": {}", results_retained(300))),
        "{json}"
    );
    assert!(
        json.contains("\"path\": \"module `app.cache`, global `_RESULTS` -> list\""),
        "{json}"
    );
    assert!(
        json.contains(
            "\"alloc_site\": {\n        \"file\": \"app/cache.py\",\n        \"line\": 12\n      }"
        ),
        "{json}"
    );
    assert!(
        json.contains("\"type\": \"app.models.Record\",\n      \"count\": 300,"),
        "{json}"
    );
    assert!(json.contains("\"rule\": \"heap-leak-suspect\""), "{json}");
}

#[test]
fn why_explains_closures_methods_tracebacks_and_class_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let snap = write_app(dir.path(), "app.mlheap", 10, 0x1000);
    let why = |pattern: &str| ok_stdout(&[snap.as_os_str(), os("--why"), os(pattern)]);
    let t = why("Payload");
    assert!(t.contains(
        "  1 x `app.handlers.Payload`, 293.0 KiB retained: module `app.handlers`, global `on_request` -> function, \
         `__closure__` -> tuple, closure cell `seen` -> cell, `cell_contents` -> app.handlers.Payload"
    ), "{t}");
    let t = why("app.events.Listener");
    assert!(t.contains(
        "module `app.events`, global `_LISTENERS` -> list, index * -> method, `__self__` -> app.events.Listener"
    ), "{t}");
    assert!(
        t.contains(
            "      e.g. module `app.events`, global `_LISTENERS` -> list, index 0 -> method"
        ),
        "{t}"
    );
    let t = why("Row");
    assert!(t.contains(
        "thread \"MainThread\" handled exception, `__traceback__` -> traceback, `tb_frame` -> frame, \
         local `batch` -> app.jobs.Row"
    ), "{t}");
    let t = why("app.models.Entry");
    assert!(
        t.contains(
            "Why `app.models.Entry` is alive: 3 objects, 14.6 KiB shallow, 14.6 KiB retained"
        ),
        "{t}"
    );
    assert!(t.contains(
        "  3 x `app.models.Entry`, 14.6 KiB retained: module `app.models`, global `Registry` -> type, \
         class attribute `entries` -> list, index * -> app.models.Entry"
    ), "{t}");
    let t = why("app/cache.py:12");
    assert!(
        t.contains("Why `app/cache.py:12` is alive: 1 objects"),
        "{t}"
    );
}

#[test]
fn growth_across_three_snapshots_keeps_what_grew_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let s1 = write_app(dir.path(), "1.mlheap", 100, 0x1000);
    let s2 = write_app(dir.path(), "2.mlheap", 200, 0x5_0000_0000);
    let s3 = write_app(dir.path(), "3.mlheap", 300, 0x9000);
    let text = ok_stdout(&[
        s3.as_os_str(),
        os("--diff"),
        s1.as_os_str(),
        os("--diff"),
        s2.as_os_str(),
    ]);
    assert!(
        text.contains("Growth over 3 snapshots (oldest first): 427 -> 827 -> 1,227 objects"),
        "{text}"
    );
    let holders = text
        .lines()
        .skip_while(|l| !l.starts_with("  Holders that grew every time"))
        .skip(1)
        .take_while(|l| l.starts_with("    "))
        .collect::<Vec<_>>();
    assert_eq!(
        holders,
        vec![
            "    121.9 KiB -> 243.8 KiB -> 365.7 KiB (100 -> 200 -> 300 refs) `list`: module `app.cache`, global `_RESULTS` -> list"
        ],
        "{text}"
    );
    // 200 more records of 48 bytes each on one generalised path.
    assert!(text.contains("      +9.4 KiB          +200 objects  module `app.cache`, global `_RESULTS` -> list, index * -> app.models.Record\n"), "{text}");
    assert!(
        text.contains("[heap-growth] a `list` grew in every snapshot"),
        "{text}"
    );
}

#[test]
fn heapsnapshot_export_is_v8_json() {
    let dir = tempfile::tempdir().unwrap();
    let snap = write_app(dir.path(), "app.mlheap", 5, 0x1000);
    let out = dir.path().join("app.heapsnapshot");
    let _ = ok_stdout(&[
        snap.as_os_str(),
        os("--format"),
        os("heapsnapshot"),
        os("-o"),
        out.as_os_str(),
    ]);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.starts_with("{\"snapshot\":{\"meta\":{\"node_fields\":[\"type\",\"name\",\"id\",\"self_size\",\"edge_count\",\"trace_node_id\",\"detachedness\"]"), "{text}");
    let graph = memlens_heap::Snapshot::read_from(&std::fs::read(&snap).unwrap()).unwrap();
    assert_eq!(graph.node_count(), 47);
    // The objects plus the synthetic root; the references plus one edge per root.
    let counts = format!(
        "\"node_count\":{},\"edge_count\":{},",
        graph.node_count() + 1,
        graph.edge_count() + graph.roots().len()
    );
    assert!(text.contains(&counts), "{text}");
    assert!(text.contains("\"app.models.Record\""), "{text}");
    assert!(text.contains("\"module `app.cache`\""), "{text}");
    assert!(text.trim_end().ends_with("]}"), "{text}");
}

#[test]
fn bad_input_is_one_line_and_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let snap = write_app(dir.path(), "app.mlheap", 5, 0x1000);
    let bytes = std::fs::read(&snap).unwrap();
    let cut = dir.path().join("cut.mlheap");
    std::fs::write(&cut, &bytes[..bytes.len() - 7]).unwrap();
    let out = memlens(&[cut.as_os_str()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "memlens: error: cannot read {}: truncated heap snapshot at offset {}",
            cut.display(),
            bytes.len() - 7
        )),
        "{err}"
    );

    let capture = dir.path().join("run.mlens");
    std::fs::write(&capture, b"MLENS\0\r\n\x01\x00rest").unwrap();
    let err = String::from_utf8(memlens(&[capture.as_os_str()]).stderr).unwrap();
    assert!(
        err.contains("run.mlens: capture truncated at offset 14"),
        "{err}"
    );

    let out = memlens(&[
        snap.as_os_str(),
        os("--format"),
        os("heapsnapshot"),
        os("--diff"),
        snap.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("--diff and --why do not apply")
    );

    let out = memlens(&[dir.path().join("missing.mlheap").as_os_str()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("cannot read")
    );
}

/// A capture holding events and heap snapshot chunks, as `memlens run --exact` writes it.
fn write_capture(dir: &Path, exact: bool, snapshots: &[u64]) -> PathBuf {
    use memlens_format::{ChunkKind, Domain, Header, Mode, Record, Writer};
    let header = Header {
        python_version: "3.11.7".into(),
        pid: 42,
        command: vec!["app.py".into()],
        mode: if exact { Mode::Exact } else { Mode::Sampling },
        sample_rate: 1,
        start_unix_ns: 0,
        library_prefixes: vec!["/usr/lib/python3.11/".into()],
    };
    let path = dir.join("run.mlens");
    let mut w = Writer::new(std::fs::File::create(&path).unwrap(), &header).unwrap();
    for (n, &blob) in snapshots.iter().enumerate() {
        // A user frame (app.py:7) calling a library frame: the site is the user's line.
        let base = 10 * n as u32;
        w.write_records(&[
            Record::String {
                id: base + 1,
                text: "/app/app.py".into(),
            },
            Record::String {
                id: base + 2,
                text: "/usr/lib/python3.11/json/decoder.py".into(),
            },
            Record::String {
                id: base + 3,
                text: "load".into(),
            },
            Record::Function {
                id: base + 1,
                name: base + 3,
                qualname: base + 3,
                file: base + 1,
                first_line: 1,
            },
            Record::Function {
                id: base + 2,
                name: base + 3,
                qualname: base + 3,
                file: base + 2,
                first_line: 1,
            },
            Record::Frame {
                id: base + 1,
                function: base + 1,
                line: 7 + n as u32,
            },
            Record::Frame {
                id: base + 2,
                function: base + 2,
                line: 300,
            },
            Record::Stack {
                id: base + 1,
                parent: 0,
                frame: base + 1,
            },
            Record::Stack {
                id: base + 2,
                parent: base + 1,
                frame: base + 2,
            },
            // A GC object's block starts at its GC header, 16 bytes before the object.
            Record::Alloc {
                addr: blob - 16,
                size: 1_000_072,
                stack: base + 2,
                domain: Domain::Python,
            },
        ])
        .unwrap();
        let mut b = SnapshotBuilder::new(Vec::new()).unwrap();
        let module = b.add_type("module").unwrap();
        let bytes = b.add_type("bytearray").unwrap();
        let m = b.add_object(Object::new(0x1000, module, 72)).unwrap();
        let x = b.add_object(Object::new(blob, bytes, 1_000_056)).unwrap();
        b.add_attr(m, x, "BLOB").unwrap();
        b.add_root(m, RootKind::Module, "module `app`").unwrap();
        w.write_chunk(ChunkKind::HeapSnapshot, &b.finish().unwrap())
            .unwrap();
    }
    w.finish().unwrap();
    path
}

fn json_of(args: &[&std::ffi::OsStr]) -> serde_json::Value {
    serde_json::from_str(&ok_stdout(args)).unwrap()
}

#[test]
fn capture_snapshots_are_picked_and_joined_with_exact_sites() {
    let dir = tempfile::tempdir().unwrap();
    let capture = write_capture(dir.path(), true, &[0x7f00_0000_1000, 0x7f00_0000_9000]);
    let last = json_of(&[capture.as_os_str(), os("--format"), os("json")]);
    let top = &last["dominators"][0];
    assert_eq!(top["type"], "bytearray");
    assert_eq!(top["path"], "module `app`, global `BLOB` -> bytearray");
    assert_eq!(top["alloc_site"]["file"], "/app/app.py");
    assert_eq!(top["alloc_site"]["line"], 8);
    let first = json_of(&[
        capture.as_os_str(),
        os("--snapshot"),
        os("1"),
        os("--format"),
        os("json"),
    ]);
    assert_eq!(first["dominators"][0]["alloc_site"]["line"], 7);
    let out = memlens(&[capture.as_os_str(), os("--snapshot"), os("3")]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!(
            "memlens: error: cannot read {}: --snapshot 3: the capture holds 2 heap snapshots (1 to 2)\n",
            capture.display()
        )
    );
}

#[test]
fn sampling_captures_carry_no_sites_and_empty_ones_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let capture = write_capture(dir.path(), false, &[0x7f00_0000_1000]);
    let json = json_of(&[capture.as_os_str(), os("--format"), os("json")]);
    assert!(json["dominators"][0]["alloc_site"].is_null());
    let empty = write_capture(dir.path(), true, &[]);
    let out = memlens(&[empty.as_os_str()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("the capture holds no heap snapshot"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn why_prints_only_the_answer_and_exits_1_when_nothing_matches() {
    let dir = tempfile::tempdir().unwrap();
    let snap = write_app(dir.path(), "app.mlheap", 10, 0x1000);
    let t = ok_stdout(&[snap.as_os_str(), os("--why"), os("app.models.Entry")]);
    assert!(
        t.starts_with(
            "Why `app.models.Entry` is alive: 3 objects, 14.6 KiB shallow, 14.6 KiB retained\n"
        ),
        "{t}"
    );
    assert!(
        !t.contains("Top dominators") && !t.contains("Heap snapshot:"),
        "{t}"
    );
    let out = memlens(&[snap.as_os_str(), os("--why"), os("NoSuchType")]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "Why `NoSuchType` is alive: 0 objects, 0 B shallow, 0 B retained\n  no object matches \
         (a type name, a glob such as `app.*`, or file.py:LINE)\n"
    );
    let out = memlens(&[
        snap.as_os_str(),
        os("--why"),
        os("NoSuchType"),
        os("--format"),
        os("json"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    // Without --why, the full report.
    let t = ok_stdout(&[snap.as_os_str()]);
    assert!(
        t.starts_with("Heap snapshot:") && t.contains("Top dominators"),
        "{t}"
    );
}
