//! Benchmark: synthetic heaps shaped like a Python program's, through the whole offline path.
//!
//! `cargo run --release -p memlens-heap --example bench_dominators -- [OBJECTS...]`
//! For each size (default 1M and 5M objects): build the snapshot file with `SnapshotBuilder`,
//! read it back, analyse it (dominators, retained sizes, retainer paths), build the full report
//! (types, top dominators, suspects, duplicates) and render it as JSON. Then, with `--dominators
//! N` (default 10M), the Semi-NCA dominators alone of an N-node heap. Figures go to stdout.

use std::time::Instant;

use memlens_heap::{
    Analysis, EdgeKind, EdgeLabel, Format, HeapReport, NodeFlags, NodeId, Object, ReportOptions,
    RootKind, Snapshot, SnapshotBuilder,
};

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Builds a heap of about `target` objects: modules with dicts, classes, lists of instances
/// with `__dict__`s holding strs, ints, tuples and nested lists, some cross references between
/// instances (so dominators are not just a tree), a few long linked chains and duplicate strings.
fn python_like(target: usize) -> (Vec<u8>, usize) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut b = SnapshotBuilder::new(Vec::with_capacity(target * 4)).unwrap();
    let t_module = b.add_type("module").unwrap();
    let t_dict = b.add_type("dict").unwrap();
    let t_list = b.add_type("list").unwrap();
    let t_str = b.add_type("str").unwrap();
    let t_int = b.add_type("int").unwrap();
    let t_tuple = b.add_type("tuple").unwrap();
    let t_type = b.add_type("type").unwrap();
    let t_func = b.add_type("function").unwrap();
    let classes: Vec<_> = (0..50)
        .map(|i| b.add_type(&format!("app.models.Model{i}")).unwrap())
        .collect();
    let attrs: Vec<_> = ["name", "value", "children", "meta", "next"]
        .iter()
        .map(|a| b.intern(a).unwrap())
        .collect();
    let dict_name = b.intern("__dict__").unwrap();
    let class_name = b.intern("__class__").unwrap();
    let site = b.add_site("app/models.py", 42).unwrap();

    let mut addr = 0x7f00_0000_0000u64;
    let mut next_addr = |size: u64| {
        addr += size.div_ceil(16) * 16;
        addr
    };
    let modules = 200.min(target / 100).max(1);
    let mut module_dicts = Vec::new();
    for m in 0..modules {
        let id = b
            .add_object(Object::new(next_addr(72), t_module, 72))
            .unwrap();
        let d = b
            .add_object(Object::new(next_addr(640), t_dict, 640))
            .unwrap();
        b.add_edge(id, d, EdgeLabel::Internal(dict_name), EdgeKind::Strong)
            .unwrap();
        b.add_root(id, RootKind::Module, &format!("module `app.mod{m}`"))
            .unwrap();
        module_dicts.push(d);
    }
    let mut class_objs = Vec::new();
    for (i, &c) in classes.iter().enumerate() {
        let _ = c;
        let id = b
            .add_object(Object::new(next_addr(1064), t_type, 1064).flags(NodeFlags::CLASS))
            .unwrap();
        b.add_key(module_dicts[i % modules], id, &format!("Model{i}"))
            .unwrap();
        class_objs.push(id);
    }
    let mut instances: Vec<NodeId> = Vec::new();
    let mut container = 0usize;
    while (b.object_count() as usize) < target {
        // A global container of instances (a list, sometimes a dict) in some module.
        let n_items = 50 + rng.below(2000) as usize;
        let list = b
            .add_object(Object::new(next_addr(56), t_list, 56 + 8 * n_items as u64))
            .unwrap();
        let md = module_dicts[container % modules];
        b.add_key(md, list, &format!("_CACHE{container}")).unwrap();
        container += 1;
        let mut prev: Option<NodeId> = None;
        for i in 0..n_items {
            let cls = rng.below(50) as usize;
            let inst = b
                .add_object(
                    Object::new(next_addr(48), classes[cls], 48)
                        .site(site)
                        .flags(NodeFlags::GC_TRACKED),
                )
                .unwrap();
            b.add_index(list, inst, i as u64).unwrap();
            b.add_edge(
                inst,
                class_objs[cls],
                EdgeLabel::Internal(class_name),
                EdgeKind::Strong,
            )
            .unwrap();
            let d = b
                .add_object(Object::new(next_addr(104), t_dict, 104))
                .unwrap();
            b.add_edge(inst, d, EdgeLabel::Internal(dict_name), EdgeKind::Strong)
                .unwrap();
            // name: a str, often a duplicate value.
            let v = rng.below(1000);
            let text = format!("user-{v}");
            let s = b
                .add_object(Object::new(next_addr(56), t_str, 56).preview(&text))
                .unwrap();
            b.add_edge(d, s, EdgeLabel::Key(attrs[0]), EdgeKind::Strong)
                .unwrap();
            // value: an int.
            let x = b.add_object(Object::new(next_addr(28), t_int, 28)).unwrap();
            b.add_edge(d, x, EdgeLabel::Key(attrs[1]), EdgeKind::Strong)
                .unwrap();
            // children: sometimes a tuple of two more strs.
            if rng.below(4) == 0 {
                let tup = b
                    .add_object(Object::new(next_addr(56), t_tuple, 56))
                    .unwrap();
                b.add_edge(d, tup, EdgeLabel::Key(attrs[2]), EdgeKind::Strong)
                    .unwrap();
                for k in 0..2 {
                    let s = b.add_object(Object::new(next_addr(64), t_str, 64)).unwrap();
                    b.add_index(tup, s, k).unwrap();
                }
            }
            // meta: a cross reference to an earlier instance (shared ownership).
            if !instances.is_empty() && rng.below(10) == 0 {
                let other = instances[rng.below(instances.len() as u64) as usize];
                b.add_edge(d, other, EdgeLabel::Key(attrs[3]), EdgeKind::Strong)
                    .unwrap();
            }
            // next: a linked chain within the container (deep dominator trees).
            if let Some(p) = prev
                && rng.below(3) == 0
            {
                b.add_edge(d, p, EdgeLabel::Key(attrs[4]), EdgeKind::Strong)
                    .unwrap();
            }
            prev = Some(inst);
            if rng.below(8) == 0 {
                instances.push(inst);
            }
        }
        if container.is_multiple_of(7) {
            let f = b
                .add_object(Object::new(next_addr(152), t_func, 152))
                .unwrap();
            b.add_key(md, f, &format!("handler{container}")).unwrap();
            b.add_index(f, list, 0).unwrap();
        }
    }
    let count = b.object_count() as usize;
    (b.finish().unwrap(), count)
}

fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

fn full(target: usize) {
    let t = Instant::now();
    let (bytes, n) = python_like(target);
    let build = secs(t);
    phases(&bytes, n, build);
}

/// Times reading, analysing and reporting the snapshot in `bytes` (`n` objects).
fn phases(bytes: &[u8], n: usize, build: f64) {
    let t = Instant::now();
    let snap = Snapshot::read_from(bytes).unwrap();
    let read = secs(t);
    let t = Instant::now();
    let a = Analysis::new(&snap);
    let analyse = secs(t);
    if std::env::var_os("BENCH_DETAIL").is_some() {
        let t = Instant::now();
        let types = a.types().len();
        let t_types = secs(t);
        let t = Instant::now();
        let doms = a.top_dominators(20).len();
        let t_doms = secs(t);
        let t = Instant::now();
        let sus = a.suspects(0.1).len();
        let t_sus = secs(t);
        let t = Instant::now();
        let dups = a.duplicate_strings(20).len();
        let t_dups = secs(t);
        println!(
            "  types {t_types:.2} s ({types})  top dominators {t_doms:.2} s ({doms})  \
             suspects {t_sus:.2} s ({sus})  duplicates {t_dups:.2} s ({dups})"
        );
    }
    let t = Instant::now();
    let report = HeapReport::new(&[&a], &ReportOptions::new());
    let mut json = Vec::new();
    report.write(Format::Json, &mut json).unwrap();
    let views = secs(t);
    println!(
        "{n:>10} objects {:>10} edges  file {:>6.1} MiB ({:.2} B/object)  build {build:.2} s  \
         read {read:.2} s  analyse {analyse:.2} s  views+json {views:.2} s  \
         => read+analyse+views {:.2} s",
        snap.edge_count(),
        bytes.len() as f64 / (1 << 20) as f64,
        bytes.len() as f64 / n as f64,
        read + analyse + views
    );
}

fn dominators_only(target: usize) {
    let (bytes, n) = python_like(target);
    let snap = Snapshot::read_from(&bytes).unwrap();
    drop(bytes);
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let reachable = memlens_heap::bench::dominators(&snap);
        best = best.min(secs(t));
        assert!(reachable > 0);
    }
    println!(
        "{n:>10} objects {:>10} edges  dominators (Semi-NCA, best of 3) {best:.2} s",
        snap.edge_count()
    );
}

fn main() {
    let mut sizes = Vec::new();
    let mut dom = 10_000_000usize;
    let mut files = 0;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--file" {
            // A real snapshot (for example one `benches/heap/walk.py --keep` left behind).
            let path = args.next().unwrap_or_default();
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            let n = Snapshot::read_from(&bytes).unwrap().node_count();
            phases(&bytes, n, 0.0);
            files += 1;
        } else if a == "--dominators" {
            dom = args.next().and_then(|v| v.parse().ok()).unwrap_or(dom);
        } else if let Ok(n) = a.parse() {
            sizes.push(n);
        }
    }
    if sizes.is_empty() && files == 0 {
        sizes = vec![1_000_000, 5_000_000];
    }
    for n in sizes {
        full(n);
    }
    if dom > 0 && files == 0 {
        dominators_only(dom);
    }
}
