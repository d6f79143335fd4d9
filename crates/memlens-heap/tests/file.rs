//! The snapshot file: round trips, and clear errors (never panics) on damaged input.

mod common;

use memlens_heap::{
    EdgeKind, EdgeLabel, HeapError, NodeFlags, NodeId, Object, RootKind, Snapshot, SnapshotBuilder,
};
use proptest::prelude::*;

/// address, type index, size, site, flags, preview
type NodePlan = (u64, usize, u64, Option<(String, u32)>, u8, Option<String>);
/// Outgoing edges per node: (target, label, kind).
type Adjacency = Vec<Vec<(usize, EdgeLabel, EdgeKind)>>;

#[derive(Debug, Clone)]
struct Plan {
    types: Vec<String>,
    nodes: Vec<NodePlan>,
    edges: Vec<(usize, usize, u8, i64, String, bool)>,
    roots: Vec<(usize, u8, String)>,
}

fn plan() -> impl Strategy<Value = Plan> {
    (1usize..40, 1usize..5).prop_flat_map(|(n, nt)| {
        let node = (
            any::<u64>(),
            0..nt,
            prop_oneof![0u64..1000, any::<u64>()],
            proptest::option::of(("[a-z/]{1,8}\\.py", 0u32..5000)),
            any::<u8>(),
            proptest::option::of("\\PC{0,12}"),
        );
        let edge = (
            0..n,
            0..n,
            0u8..10,
            any::<i64>(),
            "\\PC{0,6}",
            any::<bool>(),
        );
        let root = (0..n, 0u8..9, "\\PC{0,20}");
        (
            prop::collection::vec("[A-Za-z_.]{1,12}", nt..=nt),
            prop::collection::vec(node, n..=n),
            prop::collection::vec(edge, 0..n * 3),
            prop::collection::vec(root, 0..4),
        )
            .prop_map(|(types, nodes, edges, roots)| Plan {
                types,
                nodes,
                edges,
                roots,
            })
    })
}

fn root_kind(k: u8) -> RootKind {
    [
        RootKind::Module,
        RootKind::SysDict,
        RootKind::Builtins,
        RootKind::ThreadFrame,
        RootKind::ThreadState,
        RootKind::Exception,
        RootKind::RefcountSurplus,
        RootKind::GcOnly,
        RootKind::Other,
    ][k as usize % 9]
}

fn label(b: &mut SnapshotBuilder<Vec<u8>>, tag: u8, int: i64, s: &str) -> EdgeLabel {
    match tag {
        0 => EdgeLabel::None,
        1 => EdgeLabel::Attr(b.intern(s).unwrap()),
        2 => EdgeLabel::Key(b.intern(s).unwrap()),
        3 => EdgeLabel::IntKey(int),
        4 => EdgeLabel::OtherKey(b.intern(s).unwrap()),
        5 => EdgeLabel::Index(int.unsigned_abs()),
        6 => EdgeLabel::Cell(b.intern(s).unwrap()),
        7 => EdgeLabel::Local(b.intern(s).unwrap()),
        8 => EdgeLabel::Internal(b.intern(s).unwrap()),
        _ => EdgeLabel::Hidden,
    }
}

/// Nodes whose planned flags have `VALUE_HASH` carry a hash derived from their address and size.
fn plan_hash(addr: u64, size: u64, flags: u8) -> Option<u64> {
    (flags & NodeFlags::VALUE_HASH.0 != 0).then(|| addr.rotate_left(17) ^ size)
}

fn build(p: &Plan) -> (Vec<u8>, Adjacency) {
    let mut b = SnapshotBuilder::new(Vec::new()).unwrap();
    b.set_meta("pid", "42").unwrap();
    let types: Vec<_> = p.types.iter().map(|t| b.add_type(t).unwrap()).collect();
    for (addr, t, size, site, flags, preview) in &p.nodes {
        let mut o = Object::new(*addr, types[*t], *size).flags(NodeFlags(*flags));
        if let Some((f, l)) = site {
            o = o.site(b.add_site(f, *l).unwrap());
        }
        if let Some(pv) = preview {
            o = o.preview(pv);
        }
        if let Some(h) = plan_hash(*addr, *size, *flags) {
            o = o.value_hash(h);
        }
        b.add_object(o).unwrap();
    }
    let mut want = vec![Vec::new(); p.nodes.len()];
    for (from, to, tag, int, s, weak) in &p.edges {
        let l = label(&mut b, *tag, *int, s);
        let kind = if *weak {
            EdgeKind::Weak
        } else {
            EdgeKind::Strong
        };
        b.add_edge(NodeId(*from as u32), NodeId(*to as u32), l, kind)
            .unwrap();
        want[*from].push((*to, l, kind));
    }
    for (node, kind, desc) in &p.roots {
        b.add_root(NodeId(*node as u32), root_kind(*kind), desc)
            .unwrap();
    }
    (b.finish().unwrap(), want)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn round_trip(p in plan()) {
        let (bytes, want) = build(&p);
        let s = Snapshot::read_from(&bytes).unwrap();
        prop_assert_eq!(s.node_count(), p.nodes.len());
        prop_assert_eq!(s.edge_count(), p.edges.len());
        for (i, (addr, t, size, site, flags, preview)) in p.nodes.iter().enumerate() {
            let id = NodeId(i as u32);
            prop_assert_eq!(s.address(id), *addr);
            prop_assert_eq!(s.type_name(id), p.types[*t].as_str());
            prop_assert_eq!(s.shallow_size(id), *size);
            prop_assert_eq!(s.alloc_site(id), site.as_ref().map(|(f, l)| (f.as_str(), *l)));
            prop_assert_eq!(s.flags(id), NodeFlags(*flags));
            prop_assert_eq!(s.preview(id), preview.as_deref());
            prop_assert_eq!(s.value_hash(id), plan_hash(*addr, *size, *flags));
            let got: Vec<_> = s.edges(id).map(|e| (e.to.0 as usize, e.label, e.kind)).collect();
            prop_assert_eq!(&got, &want[i]);
            for (to, l, _) in &got {
                let _ = to;
                if let EdgeLabel::Attr(x) | EdgeLabel::Key(x) = l { let _ = s.string(*x); }
            }
        }
        let roots: Vec<_> = s.roots().iter().map(|r| (r.node.0 as usize, r.kind, s.string(r.description).to_string())).collect();
        let want_roots: Vec<_> = p.roots.iter().map(|(n, k, d)| (*n, root_kind(*k), d.clone())).collect();
        prop_assert_eq!(roots, want_roots);
        prop_assert_eq!(s.meta().collect::<Vec<_>>(), vec![("pid", "42")]);
        // Writing the read snapshot back gives an equal snapshot.
        let again = Snapshot::read_from(&s.write_to(Vec::new()).unwrap()).unwrap();
        prop_assert_eq!(again, s);
    }
}

#[test]
fn every_truncation_is_a_clear_error() {
    let app = common::app(30, 3, 0x1000);
    let bytes = &app.bytes;
    assert!(Snapshot::read_from(bytes).is_ok());
    for cut in 0..bytes.len() {
        let err = Snapshot::read_from(&bytes[..cut]).unwrap_err();
        let msg = err.to_string();
        assert!(!msg.contains('\n'), "{msg}");
        match err {
            HeapError::Truncated { offset, .. } => assert_eq!(offset, cut as u64, "{msg}"),
            HeapError::Magic { .. } => assert_eq!(cut, 0, "{msg}"),
            other => panic!("cut at {cut}: unexpected {other}"),
        }
        assert!(msg.contains("offset"), "{msg}");
    }
}

#[test]
fn random_damage_never_panics() {
    let app = common::app(30, 3, 0x1000);
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut errors = 0;
    for _ in 0..3000 {
        let mut bytes = app.bytes.clone();
        let flips = 1 + next() % 4;
        for _ in 0..flips {
            let i = (next() % bytes.len() as u64) as usize;
            bytes[i] ^= 1 << (next() % 8);
        }
        let cut = bytes.len() - (next() % 3) as usize * (next() % 64) as usize;
        if let Err(e) = Snapshot::read_from(&bytes[..cut]) {
            errors += 1;
            assert!(e.to_string().contains("offset"), "{e}");
        }
    }
    // The checksum catches essentially every change.
    assert!(errors > 2900, "{errors}");
}

#[test]
fn foreign_and_newer_input_is_named() {
    let err = Snapshot::read_from(b"{\"snapshot\": {}}")
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "not a memlens heap snapshot: bad magic at offset 0 (found 0x7b22736e61707368)"
    );
    let mut newer = common::app(1, 0, 0).bytes;
    newer[8] = 9;
    let err = Snapshot::read_from(&newer).unwrap_err().to_string();
    assert_eq!(
        err,
        "unsupported heap snapshot version 9 at offset 8 (this build reads versions 1 to 3)"
    );
    let mut bad = common::app(1, 0, 0).bytes;
    let last = bad.len() - 1;
    bad[last] ^= 0xFF;
    let err = Snapshot::read_from(&bad).unwrap_err().to_string();
    assert!(err.starts_with("corrupt heap snapshot at offset "), "{err}");
    assert!(err.ends_with("checksum mismatch in the end block"), "{err}");
    let mut trailing = common::app(1, 0, 0).bytes;
    trailing.push(0);
    let err = Snapshot::read_from(&trailing).unwrap_err().to_string();
    assert!(
        err.ends_with("1 unexpected bytes after the end block"),
        "{err}"
    );
}

#[test]
fn builder_rejects_dangling_references() {
    let mut b = SnapshotBuilder::new(Vec::new()).unwrap();
    let t = b.add_type("dict").unwrap();
    let a = b.add_object(Object::new(1, t, 10)).unwrap();
    b.add_index(a, NodeId(5), 0).unwrap();
    let err = b.finish().unwrap_err().to_string();
    assert_eq!(
        err,
        "heap snapshot builder: an edge or root names object 5, but only 1 objects were added"
    );
    let mut b = SnapshotBuilder::new(Vec::new()).unwrap();
    let err = b
        .add_object(Object::new(1, memlens_heap::TypeId(3), 10))
        .unwrap_err()
        .to_string();
    assert_eq!(err, "heap snapshot builder: object 0: unknown type id 3");
    // Forward references are fine: edges may name objects added later.
    let mut b = SnapshotBuilder::new(Vec::new()).unwrap();
    let t = b.add_type("list").unwrap();
    b.add_index(NodeId(0), NodeId(1), 0).unwrap();
    b.add_object(Object::new(1, t, 10)).unwrap();
    b.add_object(Object::new(2, t, 10)).unwrap();
    let s = Snapshot::read_from(&b.finish().unwrap()).unwrap();
    assert_eq!(s.edges(NodeId(0)).next().unwrap().to, NodeId(1));
}

#[test]
fn interning_dedupes_and_the_file_is_compact() {
    let app = common::app(2000, 0, 0x7f12_3456_0000);
    let s = Snapshot::read_from(&app.bytes).unwrap();
    // ~10k objects and ~12k references in a few bytes each.
    let per_object = app.bytes.len() as f64 / s.node_count() as f64;
    assert!(per_object < 4.0, "{per_object} bytes per object");
    assert_eq!(s.type_count(), 18);
}

/// A block of a hand-made snapshot file: kind, lengths, checksum, zstd frame.
fn block(out: &mut Vec<u8>, kind: u8, raw: &[u8]) {
    let stored = zstd::bulk::compress(raw, 1).unwrap();
    out.push(kind);
    out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
    out.extend_from_slice(&(stored.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&stored).to_le_bytes());
    out.extend_from_slice(&stored);
}

#[test]
fn version_1_files_still_read() {
    // Version 1 coded an edge's target against its source and indices as they are.
    let mut file = b"\x89MLHEAP\n\x01\x00\x00\x00".to_vec();
    block(&mut file, 1, b"\x04list\x03str\x07app `m`");
    block(&mut file, 2, &[0, 1]);
    // Three nodes at 0x10, 0x20, 0x30: a list and two strs (zigzag address deltas, type,
    // size, site + 1, flags, preview + 1).
    block(
        &mut file,
        4,
        &[
            0x20, 0, 56, 0, 0, 0, 0x20, 1, 50, 0, 0, 0, 0x20, 1, 50, 0, 0, 0,
        ],
    );
    // list -> str index 5, list -> str index 9: zz(from delta), zz(to - from), tag 6, index.
    block(&mut file, 5, &[0, 2, 6, 5, 0, 4, 6, 9]);
    block(&mut file, 6, &[0, 0, 2]);
    block(&mut file, 0xFF, &[3, 2, 0, 3, 2, 1, 0]);
    let snap = Snapshot::read_from(&file).unwrap();
    let edges: Vec<_> = snap.edges(NodeId(0)).map(|e| (e.to, e.label)).collect();
    assert_eq!(
        edges,
        vec![
            (NodeId(1), EdgeLabel::Index(5)),
            (NodeId(2), EdgeLabel::Index(9))
        ]
    );
    // Written again, it is version 3 and reads back the same.
    let again = snap.write_to(Vec::new()).unwrap();
    assert_eq!(&again[8..10], &[3, 0]);
    assert_eq!(Snapshot::read_from(&again).unwrap(), snap);
}

#[test]
fn version_2_files_still_read_and_never_carry_value_hashes() {
    // Version 2: node records end with the preview; flag 128 was unused.
    let v2 = |node_flags: u8| {
        let mut file = b"\x89MLHEAP\n\x02\x00\x00\x00".to_vec();
        block(&mut file, 1, b"\x03str\x05alice");
        block(&mut file, 2, &[0]);
        // Two strs at 0x10 and 0x20 with the preview 'alice'.
        block(
            &mut file,
            4,
            &[0x20, 0, 54, 0, 16, 2, 0x20, 0, 54, 0, node_flags, 2],
        );
        block(&mut file, 0xFF, &[2, 1, 0, 2, 0, 0, 0]);
        file
    };
    let snap = Snapshot::read_from(&v2(16)).unwrap();
    assert_eq!(snap.preview(NodeId(1)), Some("alice"));
    assert_eq!(snap.value_hash(NodeId(1)), None);
    assert!(snap.values_stored());
    // Old snapshots are grouped by preview, marked as only probably equal when one was cut.
    let d = memlens_heap::Analysis::new(&snap).duplicate_strings(5);
    assert_eq!((d[0].count, d[0].truncated), (2, true));
    let err = Snapshot::read_from(&v2(128)).unwrap_err().to_string();
    assert!(err.starts_with("corrupt heap snapshot at offset "), "{err}");
    assert!(
        err.ends_with("nodes block, payload byte 12: node flag 128 in a version 1 or 2 snapshot"),
        "{err}"
    );
}

#[test]
fn value_hashes_round_trip_and_a_short_record_is_named() {
    let mut b = SnapshotBuilder::new(Vec::new()).unwrap();
    let t = b.add_type("str").unwrap();
    b.add_object(Object::new(16, t, 60).value_hash(u64::MAX))
        .unwrap();
    // A flag given without a hash is not written as one.
    b.add_object(Object::new(32, t, 60).flags(NodeFlags::VALUE_HASH))
        .unwrap();
    let snap = Snapshot::read_from(&b.finish().unwrap()).unwrap();
    assert_eq!(snap.value_hash(NodeId(0)), Some(u64::MAX));
    assert_eq!(snap.value_hash(NodeId(1)), None);
    assert!(!snap.flags(NodeId(1)).contains(NodeFlags::VALUE_HASH));
    assert!(!snap.values_stored());
    let mut file = b"\x89MLHEAP\n\x03\x00\x00\x00".to_vec();
    block(&mut file, 1, b"\x03str");
    block(&mut file, 2, &[0]);
    block(&mut file, 4, &[0x20, 0, 54, 0, 128, 0, 1, 2, 3]);
    block(&mut file, 0xFF, &[1, 1, 0, 1, 0, 0, 0]);
    let err = Snapshot::read_from(&file).unwrap_err().to_string();
    assert!(err.ends_with("value hash runs past the block"), "{err}");
}
