//! The Chrome DevTools `.heapsnapshot` export: structure, and a real consumer (MemLab).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;
use memlens_heap::{Analysis, Snapshot};

fn export(n: usize) -> (Snapshot, String) {
    let snap = Snapshot::read_from(&app(n, 3, 0x1000).bytes).unwrap();
    let mut out = Vec::new();
    snap.write_heapsnapshot(&mut out).unwrap();
    (snap, String::from_utf8(out).unwrap())
}

/// Parses the flat arrays back and checks every edge points at a node boundary.
#[test]
fn flat_arrays_are_consistent() {
    let (snap, text) = export(20);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let meta = &v["snapshot"]["meta"];
    let nf = meta["node_fields"].as_array().unwrap().len();
    let ef = meta["edge_fields"].as_array().unwrap().len();
    assert_eq!((nf, ef), (7, 3));
    let nodes = v["nodes"].as_array().unwrap();
    let edges = v["edges"].as_array().unwrap();
    let strings = v["strings"].as_array().unwrap();
    assert_eq!(nodes.len(), (snap.node_count() + 1) * nf);
    assert_eq!(edges.len(), (snap.edge_count() + snap.roots().len()) * ef);
    assert_eq!(v["snapshot"]["node_count"], snap.node_count() as u64 + 1);
    // Edge counts add up, and every target is a node offset.
    let total: u64 = nodes.chunks(nf).map(|n| n[4].as_u64().unwrap()).sum();
    assert_eq!(total as usize * ef, edges.len());
    for e in edges.chunks(ef) {
        let to = e[2].as_u64().unwrap() as usize;
        assert_eq!(to % nf, 0);
        assert!(to / nf <= snap.node_count());
    }
    // Root node, then the first module; names resolve through the string table.
    assert_eq!(
        strings[nodes[1].as_u64().unwrap() as usize],
        "(Python roots)"
    );
    assert_eq!(strings[nodes[nf + 1].as_u64().unwrap() as usize], "module");
    // A str node is named by its value; the weak reference is a weak edge (type 6).
    assert!(strings.iter().any(|s| s == "alice"));
    assert!(edges.chunks(ef).any(|e| e[0] == 6));
    // Every edge named in the graph carries that name (string indices stay aligned even after
    // weak edges whose index became a string).
    let named: Vec<String> = edges
        .chunks(ef)
        .filter(|e| matches!(e[0].as_u64().unwrap(), 0 | 2 | 3 | 6))
        .map(|e| {
            strings[e[1].as_u64().unwrap() as usize]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(named.contains(&"_LISTENERS".to_string()), "{named:?}");
    assert!(named.contains(&"rows".to_string()), "{named:?}");
    assert!(
        named.contains(&"0".to_string()),
        "the weak edge without a name: {named:?}"
    );
    // Ids are unique.
    let mut ids: Vec<u64> = nodes.chunks(nf).map(|n| n[2].as_u64().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), snap.node_count() + 1);
}

#[test]
fn hostile_names_stay_valid_json() {
    use memlens_heap::{Object, RootKind, SnapshotBuilder};
    let mut b = SnapshotBuilder::new(Vec::new()).unwrap();
    let t = b.add_type("Evil\"\\\n\u{0}</script>").unwrap();
    let o = b.add_object(Object::new(1, t, 10)).unwrap();
    b.add_attr(o, o, "\"key\"\u{1b}").unwrap();
    b.add_root(o, RootKind::Other, "root \"x\"").unwrap();
    let snap = Snapshot::read_from(&b.finish().unwrap()).unwrap();
    let mut out = Vec::new();
    snap.write_heapsnapshot(&mut out).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let strings = v["strings"].as_array().unwrap();
    assert!(strings.iter().any(|s| s == "Evil\"\\\n\u{0}</script>"));
    assert!(strings.iter().any(|s| s == "\"key\"\u{1b}"));
}

/// Where MemLab is installed: `$MEMLENS_MEMLAB_DIR` (a directory with
/// `node_modules/@memlab/heap-analysis`), else `tests/memlab` (what `scripts/install-test-deps`
/// installs from its lock file), else `target-heap/memlab` (`benches/heap/memlab.sh`).
fn memlab_dir() -> Option<PathBuf> {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let candidates = [
        std::env::var_os("MEMLENS_MEMLAB_DIR").map(PathBuf::from),
        Some(workspace.join("tests/memlab")),
        Some(workspace.join("target-heap/memlab")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|d| d.join("node_modules/@memlab/heap-analysis").is_dir())
}

#[test]
fn memlab_loads_the_export_and_agrees_on_retained_size() {
    // A missing consumer is a failure, not a skip: the export is only known to load if
    // something that reads the format opened it.
    let dir = memlab_dir().expect(
        "MemLab is not installed: run scripts/install-test-deps (npm ci in tests/memlab) or set \
         MEMLENS_MEMLAB_DIR",
    );
    assert!(
        Command::new("node").arg("--version").output().is_ok(),
        "node is not installed; MemLab cannot run (scripts/install-test-deps)"
    );
    let (snap, text) = export(50);
    let path = std::env::temp_dir().join(format!(
        "memlens-heap-test-{}.heapsnapshot",
        std::process::id()
    ));
    std::fs::write(&path, text).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/memlab/check.js");
    let out = Command::new("node")
        .arg(&script)
        .arg(&path)
        .env("NODE_PATH", dir.join("node_modules"))
        .output()
        .unwrap();
    if std::env::var_os("MEMLENS_KEEP").is_none() {
        let _ = std::fs::remove_file(&path);
    }
    assert!(
        out.status.success(),
        "memlab failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("{stdout}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["nodes"], snap.node_count() as u64 + 1);
    assert_eq!(v["edges"], (snap.edge_count() + snap.roots().len()) as u64);
    // MemLab computes its own dominators: every list retains what ours says.
    let a = Analysis::new(&snap);
    let fixture = app(50, 3, 0x1000);
    let lists = v["lists"].as_array().unwrap();
    let by_name = |name: &str| {
        lists
            .iter()
            .find(|l| l["referrers"] == serde_json::json!([name]))
            .unwrap_or_else(|| panic!("no list referred to as {name}: {lists:?}"))
    };
    let results = by_name("_RESULTS");
    assert_eq!(results["self"], 56 + 8 * 50);
    assert_eq!(results["retained"], results_retained(50));
    assert_eq!(a.retained_size(fixture.results), results_retained(50));
    let listeners = by_name("_LISTENERS");
    assert_eq!(listeners["retained"], 64 + 48 + 48 + INSTANCE_DICT + BUFFER);
    assert_eq!(
        by_name("instances")["retained"],
        a.retained_size(fixture.registry_list)
    );
    assert_eq!(
        by_name("_NOISE")["retained"],
        a.retained_size(fixture.noise)
    );
    assert_eq!(lists.len(), 5);
}
