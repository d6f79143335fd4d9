//! `Analysis`: dominators, retained sizes, retainer paths and the views built on them.

use std::collections::HashMap;

use crate::dominators;
use crate::escape;
use crate::hash::{FxBuild, hash_str, mix};
use crate::model::{
    EdgeLabel, NONE, NodeFlags, NodeId, Snapshot, Tag, WEAK_BIT, payload_of, tag_of,
};

/// An analysed snapshot: immediate dominators, retained sizes and shortest retainer paths.
///
/// Built once with [`Analysis::new`] (dominators and the breadth-first retainer search run on two
/// threads); every view (histogram, top dominators, suspects, `why`, duplicates, diffs) reads
/// these arrays. Only strong references count: an object reachable only through weak references
/// has no dominator, no retainer path and counts as unreachable.
pub struct Analysis<'s> {
    pub(crate) snap: &'s Snapshot,
    /// Immediate dominator per node; `n` is the super-root; `NONE` when unreachable.
    pub(crate) idom: Vec<u32>,
    /// Reachable nodes in DFS preorder, super-root first.
    pub(crate) order: Vec<u32>,
    /// Retained size per node (index `n`: the super-root, i.e. all reachable bytes).
    pub(crate) retained: Vec<u64>,
    /// Number of objects each node retains, itself included.
    pub(crate) retained_count: Vec<u32>,
    /// How the breadth-first search reached each node: an edge index, `edges + root index`, or
    /// `NONE` when unreachable.
    pub(crate) via: Vec<u32>,
    /// Nodes in breadth-first order (parents before children).
    pub(crate) bfs: Vec<u32>,
    /// The node each node was reached from in the breadth-first search (`NONE` for roots and
    /// unreachable nodes): the source of its `via` edge without a search of the CSR.
    pub(crate) bfs_parent: Vec<u32>,
    /// Dominator tree: children of each node (index `n`: the super-root) in CSR form.
    pub(crate) child_start: Vec<u32>,
    pub(crate) children: Vec<u32>,
    /// Entry and exit times of a depth-first walk of the dominator tree: `d` dominates `v` iff
    /// `tin[d] <= tin[v] < tout[d]`.
    pub(crate) tin: Vec<u32>,
    pub(crate) tout: Vec<u32>,
    /// Retained size per type: the sum over instances not dominated by another instance of the
    /// same type.
    pub(crate) type_retained: Vec<u64>,
    /// Whether another instance of the node's type dominates it.
    pub(crate) nested: Vec<bool>,
}

/// One row of the types histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeRow {
    /// Qualified type name.
    pub type_name: String,
    /// Number of instances.
    pub count: u64,
    /// Their total shallow size, in bytes.
    pub shallow_bytes: u64,
    /// What they keep alive together (instances nested under another instance of the same type
    /// are counted once), in bytes.
    pub retained_bytes: u64,
}

/// An allocation site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// Source file.
    pub file: String,
    /// Line number (1-based).
    pub line: u32,
}

/// One entry of the top-dominators view.
#[derive(Debug, Clone, PartialEq)]
pub struct DominatorRow {
    /// The object.
    pub node: NodeId,
    /// Its address.
    pub address: u64,
    /// Its type name.
    pub type_name: String,
    /// Its shallow size, in bytes.
    pub shallow_bytes: u64,
    /// What it alone keeps alive, in bytes.
    pub retained_bytes: u64,
    /// How many objects it alone keeps alive (itself included).
    pub retained_objects: u64,
    /// Its shortest strong retainer path, rendered.
    pub path: String,
    /// Where it was allocated, if known.
    pub alloc_site: Option<Site>,
}

/// A type (or kind of object) with its count and bytes inside some subtree.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeShare {
    /// Type name.
    pub type_name: String,
    /// Number of objects.
    pub count: u64,
    /// Their shallow bytes.
    pub bytes: u64,
}

/// What kind of leak suspect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuspectKind {
    /// One object keeps a large share of the heap alive.
    Holder,
    /// Many instances of one type keep a large share alive together.
    Accumulation,
}

/// A MAT-style leak suspect.
#[derive(Debug, Clone, PartialEq)]
pub struct Suspect {
    /// Kind.
    pub kind: SuspectKind,
    /// Type of the holder (Holder) or of the accumulating instances (Accumulation).
    pub type_name: String,
    /// Bytes kept alive.
    pub retained_bytes: u64,
    /// Share of all reachable bytes, 0 to 1.
    pub share: f64,
    /// Objects kept alive (Holder) or instances (Accumulation).
    pub objects: u64,
    /// Retainer path of the holder (or of the main holder of the instances).
    pub path: String,
    /// Allocation site of the holder (or of the first instance), if known.
    pub alloc_site: Option<Site>,
    /// Largest types inside (Holder) or the main holders (Accumulation).
    pub composition: Vec<TypeShare>,
    /// One readable sentence.
    pub message: String,
}

/// A group of equal strings (or bytes).
#[derive(Debug, Clone, PartialEq)]
pub struct DuplicateString {
    /// `str` or `bytes` (the type name).
    pub type_name: String,
    /// The value preview, escaped and quoted; `None` when the snapshot holds no values (the
    /// default: values are stored only when asked for).
    pub value: Option<String>,
    /// Whether the preview shown is only the start of the value.
    pub value_cut: bool,
    /// Number of copies.
    pub count: u64,
    /// Size of each copy, in bytes.
    pub size: u64,
    /// Bytes that interning would save: `(count - 1) * size`.
    pub wasted_bytes: u64,
    /// Whether the copies were matched by previews that were cut short (snapshots before
    /// format 3, which hold no value hash), so they are only probably equal.
    pub truncated: bool,
}

impl DuplicateString {
    /// The value when stored (`'abc'`, `b'abc'`, ending `…'` when cut), else the type and size
    /// (`str of 2.0 KiB`).
    pub fn described(&self) -> String {
        match &self.value {
            Some(v) => format!(
                "{}{v}",
                if self.type_name.ends_with("bytes") {
                    "b"
                } else {
                    ""
                }
            ),
            None => format!(
                "{} of {}",
                escape::name(&self.type_name),
                escape::human_bytes(self.size)
            ),
        }
    }
}

/// Objects matched by a `why` pattern that share one (generalised) retainer path.
#[derive(Debug, Clone, PartialEq)]
pub struct WhyGroup {
    /// Type name of the matched objects in this group.
    pub type_name: String,
    /// Number of matched objects.
    pub count: u64,
    /// Their shallow bytes.
    pub shallow_bytes: u64,
    /// What they keep alive (nested matches counted once).
    pub retained_bytes: u64,
    /// The retainer path with indices and plain dict keys generalised to `*`.
    pub path: String,
    /// The concrete retainer path of one member.
    pub example: String,
}

/// The answer to "why is this alive?" for a pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct WhyReport {
    /// The pattern as given.
    pub pattern: String,
    /// Objects matching it.
    pub matched: u64,
    /// Their shallow bytes.
    pub shallow_bytes: u64,
    /// What they keep alive together.
    pub retained_bytes: u64,
    /// Matching objects that no strong path keeps alive (weakly held or garbage).
    pub unreachable: u64,
    /// Groups by retainer path, largest retained first.
    pub groups: Vec<WhyGroup>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Owner {
    Module,
    Class,
    Instance,
}

impl<'s> Analysis<'s> {
    /// Analyses a snapshot: dominators, retained sizes, breadth-first retainer paths.
    pub fn new(snap: &'s Snapshot) -> Analysis<'s> {
        let n = snap.node_count();
        let roots: Vec<u32> = snap.roots.iter().map(|r| r.node.0).collect();
        let (dom, (via, bfs, bfs_parent)) = std::thread::scope(|scope| {
            let bfs = scope.spawn(|| bfs(snap, &roots));
            let dom =
                dominators::compute(n, &snap.edge_start, &snap.edge_to, &snap.edge_label, &roots);
            (
                dom,
                bfs.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            )
        });
        let dominators::Dominators { idom, order } = dom;

        // Retained sizes and counts: children come after their idom in preorder.
        let mut retained: Vec<u64> = Vec::with_capacity(n + 1);
        retained.extend_from_slice(&snap.size);
        retained.push(0);
        let mut retained_count = vec![1u32; n + 1];
        for &v in order[1..].iter().rev() {
            let d = idom[v as usize] as usize;
            retained[d] += retained[v as usize];
            retained_count[d] = retained_count[d].saturating_add(retained_count[v as usize]);
        }
        retained_count[n] -= 1;

        // Dominator tree children, in preorder.
        let mut child_start = vec![0u32; n + 2];
        for &v in &order[1..] {
            child_start[idom[v as usize] as usize + 1] += 1;
        }
        for i in 0..=n {
            child_start[i + 1] += child_start[i];
        }
        let mut children = vec![0u32; order.len().saturating_sub(1)];
        let mut fill = child_start.clone();
        for &v in &order[1..] {
            let slot = &mut fill[idom[v as usize] as usize];
            children[*slot as usize] = v;
            *slot += 1;
        }
        drop(fill);

        // One depth-first walk of the dominator tree: Euler times and per-type retained sizes.
        let mut tin = vec![NONE; n + 1];
        let mut tout = vec![NONE; n + 1];
        let mut type_retained = vec![0u64; snap.types.len()];
        let mut active = vec![0u32; snap.types.len()];
        let mut nested = vec![false; n];
        let mut clock = 0u32;
        let mut stack: Vec<(u32, u32)> = vec![(n as u32, child_start[n])];
        tin[n] = clock;
        clock += 1;
        while let Some(top) = stack.last_mut() {
            let v = top.0 as usize;
            if top.1 < child_start[v + 1] {
                let c = children[top.1 as usize];
                top.1 += 1;
                let t = snap.ty[c as usize] as usize;
                if active[t] == 0 {
                    type_retained[t] += retained[c as usize];
                } else {
                    nested[c as usize] = true;
                }
                active[t] += 1;
                tin[c as usize] = clock;
                clock += 1;
                stack.push((c, child_start[c as usize]));
            } else {
                tout[v] = clock;
                if v != n {
                    active[snap.ty[v] as usize] -= 1;
                }
                stack.pop();
            }
        }

        Analysis {
            snap,
            idom,
            order,
            retained,
            retained_count,
            via,
            bfs,
            bfs_parent,
            child_start,
            children,
            tin,
            tout,
            type_retained,
            nested,
        }
    }

    /// The snapshot analysed.
    pub fn snapshot(&self) -> &'s Snapshot {
        self.snap
    }

    /// What `node` alone keeps alive, in bytes (0 when it is not strongly reachable).
    pub fn retained_size(&self, node: NodeId) -> u64 {
        if self.idom[node.0 as usize] == NONE {
            0
        } else {
            self.retained[node.0 as usize]
        }
    }

    /// How many objects `node` alone keeps alive, itself included.
    pub fn retained_objects(&self, node: NodeId) -> u64 {
        if self.idom[node.0 as usize] == NONE {
            0
        } else {
            u64::from(self.retained_count[node.0 as usize])
        }
    }

    /// The immediate dominator of `node`: `Some(None)` when only the (virtual) super-root
    /// dominates it, `None` when it is not strongly reachable.
    pub fn immediate_dominator(&self, node: NodeId) -> Option<Option<NodeId>> {
        match self.idom[node.0 as usize] {
            NONE => None,
            d if d as usize == self.snap.node_count() => Some(None),
            d => Some(Some(NodeId(d))),
        }
    }

    /// Whether `d` dominates `v` (every strong path from the roots to `v` passes through `d`).
    pub fn dominates(&self, d: NodeId, v: NodeId) -> bool {
        let (d, v) = (d.0 as usize, v.0 as usize);
        self.tin[d] != NONE
            && self.tin[v] != NONE
            && self.tin[d] <= self.tin[v]
            && self.tin[v] < self.tout[d]
    }

    /// Number of strongly reachable objects and their total shallow size.
    pub fn reachable(&self) -> (u64, u64) {
        (
            (self.order.len() - 1) as u64,
            self.retained[self.snap.node_count()],
        )
    }

    /// The shortest strong retainer path of `node`: the root index and the edges followed.
    pub fn retainer_path(&self, node: NodeId) -> Option<(usize, Vec<usize>)> {
        let e_count = self.snap.edge_count();
        let mut edges = Vec::new();
        let mut v = node.0;
        loop {
            let via = self.via[v as usize];
            if via == NONE {
                return None;
            }
            if via as usize >= e_count {
                edges.reverse();
                return Some((via as usize - e_count, edges));
            }
            edges.push(via as usize);
            v = self.bfs_parent[v as usize];
        }
    }

    fn owner(&self, v: u32) -> Owner {
        let s = self.snap;
        let t = s.type_name(NodeId(v));
        if t == "module" || t == "builtins.module" {
            Owner::Module
        } else if s.flags(NodeId(v)).contains(NodeFlags::CLASS)
            || t == "type"
            || t == "builtins.type"
        {
            Owner::Class
        } else {
            Owner::Instance
        }
    }

    fn is_dict_edge(&self, e: usize) -> bool {
        let packed = self.snap.edge_label[e];
        matches!(tag_of(packed), Tag::Attr | Tag::Internal)
            && self.snap.strings.get(payload_of(packed)) == "__dict__"
            && is_dict_type(self.snap.type_name(NodeId(self.snap.edge_to[e])))
    }

    /// Renders the shortest strong retainer path of `node`, e.g.
    /// ``module `app.cache`, global `_RESULTS` -> dict, key 'u42' -> list, index 3 -> str``.
    /// With `generalize`, sequence indices and plain dict keys become `*`.
    pub fn render_path(&self, node: NodeId, generalize: bool) -> String {
        let Some((root, edges)) = self.retainer_path(node) else {
            return "(not reachable through strong references)".to_string();
        };
        let s = self.snap;
        let r = s.roots[root];
        let mut out = escape::text(s.string(r.description));
        let mut pending_dict: Option<(Owner, usize)> = None;
        for &e in &edges {
            let from = s.edge_source(e);
            let to = s.edge_to[e];
            if self.is_dict_edge(e) {
                if let Some((_, pe)) = pending_dict.take() {
                    self.push_step(&mut out, pe, "`__dict__`".into());
                }
                pending_dict = Some((self.owner(from), e));
                continue;
            }
            let label = s.unpack_label(s.edge_label[e]);
            let owner = match pending_dict.take() {
                Some((owner, pe)) => {
                    if matches!(label, EdgeLabel::Key(_)) {
                        Some(owner)
                    } else {
                        self.push_step(&mut out, pe, "`__dict__`".into());
                        None
                    }
                }
                None => None,
            };
            let text = match label {
                EdgeLabel::Key(k) => match owner {
                    Some(o) => attr_text(o, s.string(k)),
                    None if generalize => "key *".into(),
                    None => format!("key {}", escape::quoted(s.string(k))),
                },
                EdgeLabel::Attr(a) => attr_text(self.owner(from), s.string(a)),
                EdgeLabel::IntKey(i) if !generalize => format!("key {i}"),
                EdgeLabel::IntKey(_) | EdgeLabel::OtherKey(_) if generalize => "key *".into(),
                EdgeLabel::OtherKey(k) => format!("key {}", escape::text(s.string(k))),
                EdgeLabel::Index(i) if !generalize => format!("index {i}"),
                EdgeLabel::Index(_) => "index *".into(),
                EdgeLabel::Cell(c) => format!("closure cell `{}`", escape::name(s.string(c))),
                EdgeLabel::Local(l) => format!("local `{}`", escape::name(s.string(l))),
                EdgeLabel::Internal(i) => format!("`{}`", escape::name(s.string(i))),
                EdgeLabel::Hidden => "<hidden: refcount surplus>".into(),
                EdgeLabel::None | EdgeLabel::IntKey(_) => "reference".into(),
            };
            let _ = to;
            self.push_step(&mut out, e, text);
        }
        if let Some((_, pe)) = pending_dict {
            self.push_step(&mut out, pe, "`__dict__`".into());
        }
        out
    }

    fn push_step(&self, out: &mut String, e: usize, text: String) {
        out.push_str(", ");
        out.push_str(&text);
        out.push_str(" -> ");
        out.push_str(&escape::name(
            self.snap.type_name(NodeId(self.snap.edge_to[e])),
        ));
    }

    pub(crate) fn site_of(&self, v: u32) -> Option<Site> {
        self.snap.alloc_site(NodeId(v)).map(|(f, l)| Site {
            file: f.to_string(),
            line: l,
        })
    }

    /// The types histogram, largest retained size first.
    pub fn types(&self) -> Vec<TypeRow> {
        let s = self.snap;
        let mut count = vec![0u64; s.types.len()];
        let mut shallow = vec![0u64; s.types.len()];
        for (i, &t) in s.ty.iter().enumerate() {
            count[t as usize] += 1;
            shallow[t as usize] += s.size[i];
        }
        let mut rows: Vec<TypeRow> = (0..s.types.len())
            .filter(|&t| count[t] > 0)
            .map(|t| TypeRow {
                type_name: s.strings.get(s.types[t]).to_string(),
                count: count[t],
                shallow_bytes: shallow[t],
                retained_bytes: self.type_retained[t],
            })
            .collect();
        rows.sort_by(|a, b| {
            b.retained_bytes
                .cmp(&a.retained_bytes)
                .then(b.shallow_bytes.cmp(&a.shallow_bytes))
                .then_with(|| a.type_name.cmp(&b.type_name))
        });
        rows
    }

    /// The largest disjoint dominators: objects that alone keep the most memory alive, skipping
    /// pass-through objects (one dominated child holds 80% or more of what they retain, as a
    /// module holds its `__dict__`) and objects inside an object already listed.
    pub fn top_dominators(&self, k: usize) -> Vec<DominatorRow> {
        self.dominator_rows(&self.top_dominator_nodes(k))
    }

    pub(crate) fn dominator_rows(&self, nodes: &[u32]) -> Vec<DominatorRow> {
        nodes
            .iter()
            .map(|&v| DominatorRow {
                node: NodeId(v),
                address: self.snap.addr[v as usize],
                type_name: self.snap.type_name(NodeId(v)).to_string(),
                shallow_bytes: self.snap.size[v as usize],
                retained_bytes: self.retained[v as usize],
                retained_objects: u64::from(self.retained_count[v as usize]),
                path: self.render_path(NodeId(v), false),
                alloc_site: self.site_of(v),
            })
            .collect()
    }

    pub(crate) fn top_dominator_nodes(&self, k: usize) -> Vec<u32> {
        let n = self.snap.node_count();
        if k == 0 {
            return Vec::new();
        }
        let mut max_child = vec![0u64; n + 1];
        for &v in &self.order[1..] {
            let d = self.idom[v as usize] as usize;
            max_child[d] = max_child[d].max(self.retained[v as usize]);
        }
        let mut cands: Vec<u32> = self.order[1..]
            .iter()
            .copied()
            .filter(|&v| {
                let r = self.retained[v as usize];
                r > 0 && (max_child[v as usize] as u128) * 5 < (r as u128) * 4
            })
            .collect();
        drop(max_child);
        let by_size = |a: &u32, b: &u32| {
            self.retained[*b as usize]
                .cmp(&self.retained[*a as usize])
                .then(a.cmp(b))
        };
        let mut chosen: Vec<u32> = Vec::new();
        let mut pool = (k * 8 + 64).min(cands.len());
        let mut done = 0;
        loop {
            if pool < cands.len() {
                cands[done..].select_nth_unstable_by(pool - done, by_size);
            }
            cands[done..pool].sort_unstable_by(by_size);
            for &v in &cands[done..pool] {
                if chosen.iter().any(|&c| self.dominates(NodeId(c), NodeId(v))) {
                    continue;
                }
                chosen.push(v);
                if chosen.len() == k {
                    return chosen;
                }
            }
            done = pool;
            if pool == cands.len() {
                return chosen;
            }
            pool = (pool * 4).min(cands.len());
        }
    }

    /// Shallow bytes by type inside the dominator subtree of `v`, largest first.
    pub(crate) fn composition(&self, v: u32, k: usize) -> Vec<TypeShare> {
        let s = self.snap;
        let mut acc = vec![(0u64, 0u64); s.types.len()];
        let mut stack = vec![v];
        while let Some(x) = stack.pop() {
            let e = &mut acc[s.ty[x as usize] as usize];
            e.0 += 1;
            e.1 += s.size[x as usize];
            let (a, b) = (
                self.child_start[x as usize],
                self.child_start[x as usize + 1],
            );
            stack.extend_from_slice(&self.children[a as usize..b as usize]);
        }
        let mut rows: Vec<TypeShare> = acc
            .into_iter()
            .enumerate()
            .filter(|(_, (count, _))| *count > 0)
            .map(|(t, (count, bytes))| TypeShare {
                type_name: s.strings.get(s.types[t]).to_string(),
                count,
                bytes,
            })
            .collect();
        largest_first(&mut rows, k);
        rows
    }

    /// MAT-style leak suspects: one object keeping at least `min_share` of the reachable bytes
    /// alive, or one type whose instances together keep at least that share (with their main
    /// holder).
    pub fn suspects(&self, min_share: f64) -> Vec<Suspect> {
        self.suspects_among(&self.top_dominator_nodes(10), min_share)
    }

    /// Suspects, given the top dominators already computed (the first ten are considered).
    pub(crate) fn suspects_among(&self, top: &[u32], min_share: f64) -> Vec<Suspect> {
        let s = self.snap;
        let n = s.node_count();
        let total = self.retained[n];
        if total == 0 {
            return Vec::new();
        }
        let threshold = ((total as f64) * min_share).ceil().max(1.0) as u64;
        let pct = |b: u64| 100.0 * b as f64 / total as f64;
        let mut out = Vec::new();
        let holders: Vec<u32> = top
            .iter()
            .take(10)
            .copied()
            .filter(|&v| self.retained[v as usize] >= threshold)
            .collect();
        for &v in &holders {
            let composition = self.composition(v, 3);
            let r = self.retained[v as usize];
            let ty = s.type_name(NodeId(v)).to_string();
            let path = self.render_path(NodeId(v), false);
            let mostly = composition
                .iter()
                .find(|c| c.type_name != ty)
                .map(|c| {
                    format!(
                        "; mostly `{}` ({}, {})",
                        escape::name(&c.type_name),
                        escape::plural(c.count, "object"),
                        escape::human_bytes(c.bytes)
                    )
                })
                .unwrap_or_default();
            out.push(Suspect {
                kind: SuspectKind::Holder,
                message: format!(
                    "one `{}` keeps {} ({:.1}% of reachable memory) alive in {}{mostly}",
                    escape::name(&ty),
                    escape::human_bytes(r),
                    pct(r),
                    escape::plural(u64::from(self.retained_count[v as usize]), "object"),
                ),
                type_name: ty,
                retained_bytes: r,
                share: r as f64 / total as f64,
                objects: u64::from(self.retained_count[v as usize]),
                path,
                alloc_site: self.site_of(v),
                composition,
            });
        }

        // Types whose instances accumulate: many instances, outside every holder suspect,
        // that share one retainer path once indices and plain dict keys are generalised
        // (`module app, global SESSIONS -> list, index * -> Session`). Instances spread over
        // unrelated places (the functions of every module, the strings of every class) share
        // no such path: nothing a user would act on, so no suspect.
        let mut count = vec![0u64; s.types.len()];
        for &t in &s.ty {
            count[t as usize] += 1;
        }
        let mut types: Vec<usize> = (0..s.types.len())
            .filter(|&t| self.type_retained[t] >= threshold && count[t] >= 2)
            .collect();
        types.sort_by(|&a, &b| self.type_retained[b].cmp(&self.type_retained[a]));
        types.truncate(5);
        // Instances of the candidate types, found in one pass over the objects.
        let mut slot_of = vec![u8::MAX; s.types.len()];
        for (i, &t) in types.iter().enumerate() {
            slot_of[t] = i as u8;
        }
        let mut instances_of: Vec<Vec<u32>> = vec![Vec::new(); types.len()];
        if !types.is_empty() {
            for (i, &ti) in s.ty.iter().enumerate() {
                let slot = slot_of[ti as usize];
                if slot != u8::MAX && self.idom[i] != NONE {
                    instances_of[slot as usize].push(i as u32);
                }
            }
        }
        let mut hasher = PathHasher::new(self);
        for (t, members) in types.into_iter().zip(instances_of) {
            if members
                .iter()
                .any(|&i| self.retained[i as usize] >= threshold)
            {
                continue; // a single instance: already a holder suspect
            }
            // The instances outside the holder suspects, and what they keep (nested instances
            // of the type counted once): too little, and no path of theirs can be a suspect.
            let outside: Vec<u32> = members
                .iter()
                .copied()
                .filter(|&i| {
                    !holders
                        .iter()
                        .any(|&h| self.dominates(NodeId(h), NodeId(i)))
                })
                .collect();
            let own = |i: u32| {
                if self.nested[i as usize] {
                    0
                } else {
                    self.retained[i as usize]
                }
            };
            if outside.iter().map(|&i| own(i)).sum::<u64>() < threshold {
                continue;
            }
            // Candidate paths from a sample (evenly spaced instances and the 64 that keep the
            // most), then exact counts for those candidates only: no map of every path.
            let step = (outside.len() / 4096).max(1);
            let mut sample: Vec<u32> = outside.iter().copied().step_by(step).collect();
            let mut by_size = outside.clone();
            if by_size.len() > 64 {
                by_size.select_nth_unstable_by_key(63, |&i| std::cmp::Reverse(own(i)));
                by_size.truncate(64);
            }
            sample.extend(by_size);
            let mut seen: HashMap<u64, u64, FxBuild> = HashMap::default();
            for &i in &sample {
                if let Some(sig) = hasher.signature(i) {
                    *seen.entry(sig).or_default() += own(i).max(1);
                }
            }
            let mut cands: Vec<(u64, u64)> = seen.into_iter().collect();
            cands.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            cands.truncate(3);
            // Per candidate: instances, bytes, first instance, holders by type.
            let nt = s.types.len();
            let mut found: Vec<Found> = cands
                .iter()
                .map(|_| (0, 0, u32::MAX, HashMap::default()))
                .collect();
            for &i in &outside {
                let Some(sig) = hasher.signature(i) else {
                    continue;
                };
                let Some(c) = cands.iter().position(|c| c.0 == sig) else {
                    continue;
                };
                let f = &mut found[c];
                f.0 += 1;
                f.1 += own(i);
                f.2 = f.2.min(i);
                let h = self.idom[i as usize] as usize;
                let k = if h == n { nt } else { s.ty[h] as usize };
                let e = f.3.entry(k).or_default();
                e.0 += 1;
                e.1 += self.retained[i as usize];
            }
            let Some((instances, bytes, first, by_type)) = found
                .into_iter()
                .max_by(|a, b| a.1.cmp(&b.1).then(b.2.cmp(&a.2)))
            else {
                continue;
            };
            let bytes = bytes.min(self.type_retained[t]);
            if bytes < threshold || instances < 2 {
                continue;
            }
            let ty = s.strings.get(s.types[t]).to_string();
            let mut composition: Vec<TypeShare> = by_type
                .into_iter()
                .map(|(k, (count, bytes))| TypeShare {
                    type_name: if k == nt {
                        "(roots)".to_string()
                    } else {
                        s.strings.get(s.types[k]).to_string()
                    },
                    count,
                    bytes,
                })
                .collect();
            largest_first(&mut composition, 3);
            let path = self.render_path(NodeId(first), true);
            out.push(Suspect {
                kind: SuspectKind::Accumulation,
                message: format!(
                    "{} instances of `{}` keep {} ({:.1}% of reachable memory) alive, all held \
                     the same way: {}",
                    escape::count(instances),
                    escape::name(&ty),
                    escape::human_bytes(bytes),
                    pct(bytes),
                    path,
                ),
                type_name: ty,
                retained_bytes: bytes,
                share: bytes as f64 / total as f64,
                objects: instances,
                path,
                alloc_site: self.site_of(first),
                composition,
            });
        }
        out
    }

    /// Groups of equal `str`/`bytes` values, most wasted bytes first. Objects the walker
    /// hashed (format 3+) are grouped by the hash of their whole value and their size: equal in
    /// full, whatever their previews. Objects of older snapshots, which have only a preview, are
    /// grouped by preview and size (marked `truncated` when a preview was cut).
    pub fn duplicate_strings(&self, k: usize) -> Vec<DuplicateString> {
        let s = self.snap;
        let string_types: Vec<bool> = s
            .types
            .iter()
            .map(|&t| {
                matches!(
                    s.strings.get(t),
                    "str" | "bytes" | "builtins.str" | "builtins.bytes"
                )
            })
            .collect();
        // Key: (type, hashed?, hash or preview id, size); value: copies, whether a preview was
        // cut, and one member (for the value shown).
        type Key = (u32, bool, u64, u64);
        let mut groups: HashMap<Key, (u64, bool, u32), FxBuild> = HashMap::default();
        let mut add = |key: Key, i: usize, cut: bool| {
            let e = groups.entry(key).or_insert((0, false, i as u32));
            e.0 += 1;
            e.1 |= cut;
        };
        let mut hashed = s.value_hash.iter().peekable();
        // Equal previews share a string id: count ids first (a dense array), so that only the
        // unhashed objects whose preview occurs twice or more reach the hash map.
        let mut seen = vec![0u8; s.strings.len()];
        for i in 0..s.node_count() {
            let p = s.preview[i];
            if p != NONE
                && s.flags[i] & NodeFlags::VALUE_HASH.0 == 0
                && string_types[s.ty[i] as usize]
            {
                let c = &mut seen[p as usize];
                *c = c.saturating_add(1);
            }
        }
        for i in 0..s.node_count() {
            if !string_types[s.ty[i] as usize] {
                continue;
            }
            if s.flags[i] & NodeFlags::VALUE_HASH.0 != 0 {
                while hashed.peek().is_some_and(|&&(id, _)| (id as usize) < i) {
                    hashed.next();
                }
                if let Some(&&(id, h)) = hashed.peek()
                    && id as usize == i
                {
                    add((s.ty[i], true, h, s.size[i]), i, false);
                }
                continue;
            }
            let p = s.preview[i];
            if p == NONE || seen[p as usize] < 2 {
                continue;
            }
            let cut = s.flags[i] & NodeFlags::PREVIEW_TRUNCATED.0 != 0;
            add((s.ty[i], false, u64::from(p), s.size[i]), i, cut);
        }
        let mut rows: Vec<DuplicateString> = groups
            .into_iter()
            .filter(|(_, (c, _, _))| *c >= 2)
            .map(|((t, _, _, size), (count, truncated, example))| {
                let cut = s.flags[example as usize] & NodeFlags::PREVIEW_TRUNCATED.0 != 0;
                // A preview the walker cut ends with `…` inside the quotes (as one that
                // `quoted` cuts for length).
                let value = s.preview(NodeId(example)).map(|p| {
                    if cut {
                        escape::quoted(&format!("{p}\u{2026}"))
                    } else {
                        escape::quoted(p)
                    }
                });
                DuplicateString {
                    type_name: s.strings.get(s.types[t as usize]).to_string(),
                    value_cut: value.is_some() && cut,
                    value,
                    count,
                    size,
                    wasted_bytes: (count - 1) * size,
                    truncated,
                }
            })
            .collect();
        rows.sort_by(|a, b| {
            b.wasted_bytes
                .cmp(&a.wasted_bytes)
                .then_with(|| a.value.cmp(&b.value))
                .then_with(|| a.size.cmp(&b.size))
        });
        rows.truncate(k);
        rows
    }

    /// Explains why objects matching `pattern` are alive: their retainer paths, grouped.
    ///
    /// A pattern is an allocation site (`app/cache.py:12`, or a file `app/cache.py`: matched as
    /// a path suffix), or a type name: the qualified name, its last dotted part, or a glob with
    /// `*` and `?` (`app.models.*`).
    pub fn why(&self, pattern: &str, k: usize) -> WhyReport {
        let s = self.snap;
        let matcher = Matcher::new(pattern);
        let type_match: Vec<bool> = s
            .types
            .iter()
            .map(|&t| matcher.matches_type(s.strings.get(t)))
            .collect();
        let site_match: Vec<bool> = s
            .sites
            .iter()
            .map(|&(f, l)| matcher.matches_site(s.strings.get(f), l))
            .collect();
        let is_match = |i: usize| {
            type_match[s.ty[i] as usize] || (s.site[i] != NONE && site_match[s.site[i] as usize])
        };
        let sig = self.path_hashes(true);
        let n = s.node_count();
        let mut report = WhyReport {
            pattern: pattern.to_string(),
            matched: 0,
            shallow_bytes: 0,
            retained_bytes: 0,
            unreachable: 0,
            groups: Vec::new(),
        };
        // Retained bytes of matched objects, nested matches counted once (dominator-tree walk).
        let mut matched = vec![false; n];
        for (i, m) in matched.iter_mut().enumerate() {
            if is_match(i) {
                *m = true;
                report.matched += 1;
                report.shallow_bytes += s.size[i];
                if self.idom[i] == NONE {
                    report.unreachable += 1;
                }
            }
        }
        let outer = self.outermost(&matched);
        let mut groups: HashMap<(u64, u32), (u32, u64, u64, u64), FxBuild> = HashMap::default();
        for i in 0..n {
            if !matched[i] || self.idom[i] == NONE {
                continue;
            }
            let g = groups
                .entry((sig[i], s.ty[i]))
                .or_insert((i as u32, 0, 0, 0));
            g.1 += 1;
            g.2 += s.size[i];
            if outer[i] {
                g.3 += self.retained[i];
                report.retained_bytes += self.retained[i];
            }
        }
        let mut rows: Vec<(u32, u64, u64, u64)> = groups.into_values().collect();
        rows.sort_by(|a, b| b.3.cmp(&a.3).then(b.1.cmp(&a.1)).then(a.0.cmp(&b.0)));
        rows.truncate(k);
        report.groups = rows
            .into_iter()
            .map(|(ex, count, shallow, retained)| WhyGroup {
                type_name: s.type_name(NodeId(ex)).to_string(),
                count,
                shallow_bytes: shallow,
                retained_bytes: retained,
                path: self.render_path(NodeId(ex), true),
                example: self.render_path(NodeId(ex), false),
            })
            .collect();
        report
    }

    /// For a set of nodes, marks those not dominated by another member of the set.
    fn outermost(&self, member: &[bool]) -> Vec<bool> {
        let n = self.snap.node_count();
        let mut out = vec![false; n];
        let mut stack: Vec<(u32, bool)> = vec![(n as u32, false)];
        while let Some((v, inside)) = stack.pop() {
            let here = v as usize != n && member[v as usize];
            if here && !inside {
                out[v as usize] = true;
            }
            let (a, b) = (
                self.child_start[v as usize],
                self.child_start[v as usize + 1],
            );
            for &c in &self.children[a as usize..b as usize] {
                stack.push((c, inside || here));
            }
        }
        out
    }

    /// A hash of each node's shortest retainer path, computed top-down in breadth-first order
    /// from label contents and type names (so it matches across snapshots, unlike addresses).
    /// With `generalize`, indices and plain dict keys are ignored. Unreachable nodes get 0.
    pub(crate) fn path_hashes(&self, generalize: bool) -> Vec<u64> {
        let s = self.snap;
        let e_count = s.edge_count();
        let type_hash: Vec<u64> = s
            .types
            .iter()
            .map(|&t| hash_str(s.strings.get(t)))
            .collect();
        let mut str_hash: HashMap<u32, u64, FxBuild> = HashMap::default();
        let mut h = vec![0u64; s.node_count()];
        // Whether the node was reached through a `__dict__` edge (its keys are attributes).
        let mut via_dict = vec![false; s.node_count()];
        for &v in &self.bfs {
            let via = self.via[v as usize] as usize;
            let tv = type_hash[s.ty[v as usize] as usize];
            if via >= e_count {
                let d = s.roots[via - e_count].description.0;
                let dh = *str_hash
                    .entry(d)
                    .or_insert_with(|| hash_str(s.strings.get(d)));
                h[v as usize] = mix(dh, tv);
                continue;
            }
            let from = self.bfs_parent[v as usize];
            let packed = s.edge_label[via] & !WEAK_BIT;
            let tag = tag_of(packed);
            let p = payload_of(packed);
            let label_hash = match tag {
                Tag::Index | Tag::IndexBig | Tag::IntKey | Tag::IntKeyBig | Tag::OtherKey
                    if generalize =>
                {
                    tag as u64
                }
                Tag::Key if generalize && !via_dict[from as usize] => tag as u64,
                Tag::Attr | Tag::Key | Tag::OtherKey | Tag::Cell | Tag::Local | Tag::Internal => {
                    let sh = *str_hash
                        .entry(p)
                        .or_insert_with(|| hash_str(s.strings.get(p)));
                    mix(tag as u64, sh)
                }
                Tag::IntKeyBig | Tag::IndexBig => mix(tag as u64, s.big[p as usize] as u64),
                Tag::None | Tag::Hidden => {
                    // Unnamed: tell siblings apart by position.
                    mix(
                        tag as u64,
                        (via - s.edge_start[from as usize] as usize) as u64,
                    )
                }
                Tag::Index | Tag::IntKey => mix(tag as u64, u64::from(p)),
            };
            if self.is_dict_edge(via) {
                via_dict[v as usize] = true;
            }
            h[v as usize] = mix(mix(h[from as usize], label_hash), tv);
        }
        h
    }
}

/// One candidate path of an accumulation: instances, bytes, first instance, and the holders'
/// (immediate dominators') types with their instance counts and bytes.
type Found = (u64, u64, u32, HashMap<usize, (u64, u64), FxBuild>);

/// Generalised retainer-path hashes of single objects, on demand: the same hash as
/// [`Analysis::path_hashes`] with `generalize`, computed only along the paths asked for, each
/// node once (a dense memo, allocated at the first question).
struct PathHasher<'a, 's> {
    a: &'a Analysis<'s>,
    type_hash: Vec<u64>,
    str_hash: HashMap<u32, u64, FxBuild>,
    /// Hash per node; 0: not computed yet.
    memo: Vec<u64>,
    /// Whether the node was reached through a `__dict__` edge (its keys are attributes).
    via_dict: Vec<bool>,
    path: Vec<u32>,
}

impl<'a, 's> PathHasher<'a, 's> {
    fn new(a: &'a Analysis<'s>) -> Self {
        PathHasher {
            a,
            type_hash: Vec::new(),
            str_hash: HashMap::default(),
            memo: Vec::new(),
            via_dict: Vec::new(),
            path: Vec::new(),
        }
    }

    fn text_hash(&mut self, id: u32) -> u64 {
        let s = self.a.snap;
        *self
            .str_hash
            .entry(id)
            .or_insert_with(|| hash_str(s.strings.get(id)))
    }

    /// The generalised path hash of `v`, or `None` when it is not strongly reachable.
    fn signature(&mut self, v: u32) -> Option<u64> {
        let a = self.a;
        let s = a.snap;
        if self.memo.is_empty() {
            self.memo = vec![0; s.node_count()];
            self.via_dict = vec![false; s.node_count()];
            self.type_hash = s
                .types
                .iter()
                .map(|&t| hash_str(s.strings.get(t)))
                .collect();
        }
        let e_count = s.edge_count();
        // Up the breadth-first tree to a node already hashed (or a root).
        self.path.clear();
        let mut x = v;
        while self.memo[x as usize] == 0 {
            let via = a.via[x as usize];
            if via == NONE {
                return None;
            }
            self.path.push(x);
            if via as usize >= e_count {
                break;
            }
            x = a.bfs_parent[x as usize];
        }
        // Down again, hashing each step.
        while let Some(x) = self.path.pop() {
            let via = a.via[x as usize] as usize;
            let tv = self.type_hash[s.ty[x as usize] as usize];
            let h = if via >= e_count {
                mix(self.text_hash(s.roots[via - e_count].description.0), tv)
            } else {
                let from = a.bfs_parent[x as usize];
                let packed = s.edge_label[via] & !WEAK_BIT;
                let tag = tag_of(packed);
                let p = payload_of(packed);
                let label = match tag {
                    Tag::Index | Tag::IndexBig | Tag::IntKey | Tag::IntKeyBig | Tag::OtherKey => {
                        tag as u64
                    }
                    Tag::Key if !self.via_dict[from as usize] => tag as u64,
                    Tag::Attr | Tag::Key | Tag::Cell | Tag::Local | Tag::Internal => {
                        mix(tag as u64, self.text_hash(p))
                    }
                    Tag::None | Tag::Hidden => mix(
                        tag as u64,
                        (via - s.edge_start[from as usize] as usize) as u64,
                    ),
                };
                self.via_dict[x as usize] = a.is_dict_edge(via);
                mix(mix(self.memo[from as usize], label), tv)
            };
            // 0 marks "not computed": never store it.
            self.memo[x as usize] = h.max(1);
        }
        Some(self.memo[v as usize])
    }
}

/// Keeps the `k` largest shares by bytes (ties by type name).
fn largest_first(rows: &mut Vec<TypeShare>, k: usize) {
    rows.sort_by(|a, b| {
        b.bytes
            .cmp(&a.bytes)
            .then_with(|| a.type_name.cmp(&b.type_name))
    });
    rows.truncate(k);
}

fn attr_text(owner: Owner, name: &str) -> String {
    let name = escape::name(name);
    match owner {
        Owner::Module => format!("global `{name}`"),
        Owner::Class => format!("class attribute `{name}`"),
        Owner::Instance => format!("attribute `{name}`"),
    }
}

fn is_dict_type(t: &str) -> bool {
    matches!(t, "dict" | "builtins.dict" | "mappingproxy")
}

/// Breadth-first search from the roots over strong edges.
/// Breadth-first search from the roots over strong edges: for each node the edge (or
/// `edges + root index`) it was reached by, the nodes in order, and each node's parent.
fn bfs(snap: &Snapshot, roots: &[u32]) -> (Vec<u32>, Vec<u32>, Vec<u32>) {
    let n = snap.node_count();
    let e_count = snap.edge_count() as u32;
    let mut via = vec![NONE; n];
    let mut parent = vec![NONE; n];
    let mut order = Vec::with_capacity(n);
    for (i, &r) in roots.iter().enumerate() {
        if via[r as usize] == NONE {
            via[r as usize] = e_count.saturating_add(i as u32);
            order.push(r);
        }
    }
    let mut head = 0;
    while head < order.len() {
        let v = order[head] as usize;
        head += 1;
        for e in snap.edge_start[v] as usize..snap.edge_start[v + 1] as usize {
            if snap.edge_label[e] & WEAK_BIT != 0 {
                continue;
            }
            let w = snap.edge_to[e] as usize;
            if via[w] == NONE {
                via[w] = e as u32;
                parent[w] = v as u32;
                order.push(w as u32);
            }
        }
    }
    (via, order, parent)
}

/// Matches `why` patterns against type names and allocation sites.
struct Matcher {
    pattern: String,
    site: Option<(String, Option<u32>)>,
}

impl Matcher {
    fn new(pattern: &str) -> Matcher {
        let site = match pattern.rsplit_once(':') {
            Some((file, line)) if !file.is_empty() && line.parse::<u32>().is_ok() => {
                Some((file.to_string(), line.parse().ok()))
            }
            _ if pattern.ends_with(".py") || pattern.contains('/') => {
                Some((pattern.to_string(), None))
            }
            _ => None,
        };
        Matcher {
            pattern: pattern.to_string(),
            site,
        }
    }

    fn matches_type(&self, name: &str) -> bool {
        if self.site.is_some() {
            return false;
        }
        let p = &self.pattern;
        if p.contains('*') || p.contains('?') {
            return glob(p.as_bytes(), name.as_bytes());
        }
        name == p || name.rsplit('.').next() == Some(p.as_str())
    }

    fn matches_site(&self, file: &str, line: u32) -> bool {
        match &self.site {
            Some((f, l)) => {
                (file == f || file.ends_with(&format!("/{f}"))) && l.is_none_or(|want| want == line)
            }
            None => false,
        }
    }
}

/// Glob matching with `*` (any run) and `?` (one byte), iterative with backtracking.
fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let (mut star, mut mark) = (usize::MAX, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = pi;
            mark = si;
            pi += 1;
        } else if star != usize::MAX {
            pi = star + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs() {
        assert!(glob(b"app.*", b"app.models.Record"));
        assert!(glob(b"*Record", b"app.models.Record"));
        assert!(glob(b"a?c", b"abc"));
        assert!(!glob(b"a?c", b"abbc"));
        assert!(!glob(b"app.*", b"lib.app"));
    }
}
