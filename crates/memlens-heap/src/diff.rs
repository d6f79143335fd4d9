//! Growth between snapshots: by type, by retainer path, and holders that grew every time.

use std::collections::HashMap;

use crate::analysis::Analysis;
use crate::hash::FxBuild;
use crate::model::{NONE, NodeId};

/// How one type changed across the series (first to last snapshot).
#[derive(Debug, Clone, PartialEq)]
pub struct TypeDelta {
    /// Type name.
    pub type_name: String,
    /// Instances in each snapshot, oldest first.
    pub counts: Vec<u64>,
    /// Shallow bytes in each snapshot, oldest first.
    pub bytes: Vec<u64>,
    /// Whether count and bytes grew at every step.
    pub grew_every_time: bool,
}

/// Objects on one generalised retainer path, across the series.
#[derive(Debug, Clone, PartialEq)]
pub struct PathDelta {
    /// The generalised retainer path (indices and plain dict keys as `*`), ending at the type.
    pub path: String,
    /// Type of the objects.
    pub type_name: String,
    /// Objects on this path in each snapshot, oldest first.
    pub counts: Vec<u64>,
    /// Their shallow bytes in each snapshot, oldest first.
    pub bytes: Vec<u64>,
}

/// A container, matched across snapshots by its concrete retainer path, that grew every time.
#[derive(Debug, Clone, PartialEq)]
pub struct HolderGrowth {
    /// Its concrete retainer path in the newest snapshot.
    pub path: String,
    /// Its type.
    pub type_name: String,
    /// What it alone keeps alive in each snapshot, in bytes, oldest first.
    pub retained: Vec<u64>,
    /// Number of references it holds (its elements) in each snapshot, oldest first.
    pub references: Vec<u64>,
}

/// The comparison of two or more snapshots of one program, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Diff {
    /// Number of snapshots compared.
    pub snapshots: usize,
    /// Reachable objects in each snapshot.
    pub objects: Vec<u64>,
    /// Reachable bytes in each snapshot.
    pub bytes: Vec<u64>,
    /// Types whose shallow bytes grew from first to last, largest growth first.
    pub types: Vec<TypeDelta>,
    /// Retainer paths whose objects grew from first to last (with three or more snapshots: at
    /// every step), largest growth first.
    pub paths: Vec<PathDelta>,
    /// Containers that grew at every step (both in elements and in retained bytes), ranked by
    /// what each alone keeps in the newest snapshot.
    pub holders: Vec<HolderGrowth>,
}

fn increasing(v: &[u64]) -> bool {
    v.windows(2).all(|w| w[0] < w[1])
}

/// Compares snapshots of one program, oldest first (at least two).
///
/// Objects are matched by retainer path, never by address (addresses are reused). `k` bounds
/// each list.
pub fn diff(series: &[&Analysis<'_>], k: usize) -> Diff {
    let m = series.len();
    let newest = series[m - 1];
    let strict = m >= 3;

    // By type name.
    let mut types: HashMap<&str, (Vec<u64>, Vec<u64>), FxBuild> = HashMap::default();
    for (si, a) in series.iter().enumerate() {
        let s = a.snapshot();
        for i in 0..s.node_count() {
            if a.idom[i] == NONE {
                continue;
            }
            let e = types
                .entry(s.type_name(NodeId(i as u32)))
                .or_insert_with(|| (vec![0; m], vec![0; m]));
            e.0[si] += 1;
            e.1[si] += s.size[i];
        }
    }
    let mut type_rows: Vec<TypeDelta> = types
        .into_iter()
        .map(|(t, (counts, bytes))| TypeDelta {
            type_name: t.to_string(),
            grew_every_time: increasing(&counts) && increasing(&bytes),
            counts,
            bytes,
        })
        .filter(|r| r.bytes[m - 1] > r.bytes[0] && (!strict || r.grew_every_time))
        .collect();
    type_rows.sort_by(|a, b| {
        let ga = a.bytes[m - 1] - a.bytes[0];
        let gb = b.bytes[m - 1] - b.bytes[0];
        gb.cmp(&ga).then_with(|| a.type_name.cmp(&b.type_name))
    });
    type_rows.truncate(k);

    // By generalised retainer path.
    // (path hash, type) -> (counts, bytes, example node in the newest snapshot)
    type Acc = (Vec<u64>, Vec<u64>, u32);
    let mut paths: HashMap<(u64, &str), Acc, FxBuild> = HashMap::default();
    for (si, a) in series.iter().enumerate() {
        let s = a.snapshot();
        let sig = a.path_hashes(true);
        for &v in &a.bfs {
            let e = paths
                .entry((sig[v as usize], s.type_name(NodeId(v))))
                .or_insert_with(|| (vec![0; m], vec![0; m], NONE));
            e.0[si] += 1;
            e.1[si] += s.size[v as usize];
            if si == m - 1 && e.2 == NONE {
                e.2 = v;
            }
        }
    }
    let mut path_rows: Vec<(u32, PathDelta)> = paths
        .into_iter()
        .filter(|(_, (c, b, ex))| {
            *ex != NONE && b[m - 1] > b[0] && (!strict || (increasing(c) && increasing(b)))
        })
        .map(|((_, t), (counts, bytes, ex))| {
            (
                ex,
                PathDelta {
                    path: String::new(),
                    type_name: t.to_string(),
                    counts,
                    bytes,
                },
            )
        })
        .collect();
    path_rows.sort_by(|a, b| {
        let ga = a.1.bytes[m - 1] - a.1.bytes[0];
        let gb = b.1.bytes[m - 1] - b.1.bytes[0];
        gb.cmp(&ga).then(a.0.cmp(&b.0))
    });
    path_rows.truncate(k);
    let path_rows = path_rows
        .into_iter()
        .map(|(ex, mut row)| {
            row.path = newest.render_path(NodeId(ex), true);
            row
        })
        .collect();

    // Holders matched by concrete path that grew at every step.
    let older: Vec<HashMap<u64, u32, FxBuild>> = series[..m - 1]
        .iter()
        .map(|a| {
            let s = a.snapshot();
            let h = a.path_hashes(false);
            let mut map: HashMap<u64, u32, FxBuild> = HashMap::default();
            map.reserve(a.bfs.len() / 2);
            for &v in &a.bfs {
                if !s.edge_range(v).is_empty() {
                    map.entry(h[v as usize]).or_insert(v);
                }
            }
            map
        })
        .collect();
    let s_new = newest.snapshot();
    let h_new = newest.path_hashes(false);
    let mut holders: Vec<(u32, Vec<u64>, Vec<u64>)> = Vec::new();
    let mut seen: HashMap<u64, (), FxBuild> = HashMap::default();
    for &v in &newest.bfs {
        let refs_now = s_new.edge_range(v).len() as u64;
        if refs_now == 0 || seen.insert(h_new[v as usize], ()).is_some() {
            continue;
        }
        let mut retained = Vec::with_capacity(m);
        let mut refs = Vec::with_capacity(m);
        let mut ok = true;
        for (a, map) in series.iter().zip(&older) {
            match map.get(&h_new[v as usize]) {
                Some(&u) => {
                    retained.push(a.retained[u as usize]);
                    refs.push(a.snapshot().edge_range(u).len() as u64);
                }
                None => {
                    ok = false;
                    break;
                }
            }
        }
        if !ok {
            continue;
        }
        retained.push(newest.retained[v as usize]);
        refs.push(refs_now);
        if increasing(&retained) && increasing(&refs) {
            holders.push((v, retained, refs));
        }
    }
    holders.sort_by(|a, b| b.1[m - 1].cmp(&a.1[m - 1]).then(a.0.cmp(&b.0)));
    holders.truncate(k);
    let holders = holders
        .into_iter()
        .map(|(v, retained, references)| HolderGrowth {
            path: newest.render_path(NodeId(v), false),
            type_name: s_new.type_name(NodeId(v)).to_string(),
            retained,
            references,
        })
        .collect();

    Diff {
        snapshots: m,
        objects: series.iter().map(|a| a.reachable().0).collect(),
        bytes: series.iter().map(|a| a.reachable().1).collect(),
        types: type_rows,
        paths: path_rows,
        holders,
    }
}
