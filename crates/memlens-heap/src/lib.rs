//! Heap snapshots of Python programs: a compact graph file, and the analysis that answers
//! "who keeps this memory alive?".
//!
//! The in-process heap walker streams objects, references and roots into a
//! [`SnapshotBuilder`], which writes a compact, versioned, checksummed file (zstd blocks of
//! varint records; see `docs/heap.md`). Offline, [`Snapshot::read_from`] loads it into CSR
//! arrays; [`Analysis`] computes dominators (Semi-NCA), retained sizes and shortest strong
//! retainer paths; [`HeapReport`] gathers the views (types histogram, top dominators, leak
//! suspects, `why`, duplicate strings, growth across snapshots) that renderers format as text or
//! JSON, and [`Snapshot::write_heapsnapshot`] exports Chrome DevTools' format.
//!
//! ```
//! use memlens_heap::{Analysis, EdgeKind, EdgeLabel, HeapReport, Object, ReportOptions, RootKind,
//!                    Snapshot, SnapshotBuilder};
//!
//! let mut b = SnapshotBuilder::new(Vec::new())?;
//! let module = b.add_type("module")?;
//! let list = b.add_type("list")?;
//! let bytes = b.add_type("bytes")?;
//! let m = b.add_object(Object::new(0x1000, module, 72))?;
//! let l = b.add_object(Object::new(0x2000, list, 56))?;
//! let x = b.add_object(Object::new(0x3000, bytes, 1_000_033))?;
//! let name = b.intern("_RESULTS")?;
//! b.add_edge(m, l, EdgeLabel::Attr(name), EdgeKind::Strong)?;
//! b.add_index(l, x, 0)?;
//! b.add_root(m, RootKind::Module, "module `app.cache`")?;
//! let bytes_written = b.finish()?;
//!
//! let snap = Snapshot::read_from(&bytes_written)?;
//! let analysis = Analysis::new(&snap);
//! assert_eq!(analysis.retained_size(l), 1_000_089);
//! assert_eq!(
//!     analysis.render_path(x, false),
//!     "module `app.cache`, global `_RESULTS` -> list, index 0 -> bytes"
//! );
//! let report = HeapReport::new(&[&analysis], &ReportOptions::new());
//! // The list only passes its element through: the bytes object is the top dominator.
//! assert_eq!(report.dominators[0].type_name, "bytes");
//! assert_eq!(report.dominators[0].retained_bytes, 1_000_033);
//! # Ok::<(), memlens_heap::HeapError>(())
//! ```

mod analysis;
mod builder;
mod diff;
mod dominators;
mod error;
mod escape;
mod file;
mod hash;
mod model;
mod pipeline;
mod render;
mod report;

use std::io::Write;

pub use analysis::{
    Analysis, DominatorRow, DuplicateString, Site, Suspect, SuspectKind, TypeRow, TypeShare,
    WhyGroup, WhyReport,
};
pub use builder::SnapshotBuilder;
pub use diff::{Diff, HolderGrowth, PathDelta, TypeDelta, diff};
pub use error::{HeapError, Result};
pub use escape::human_bytes;
pub use file::{MAGIC, VERSION};
pub use model::{
    Edge, EdgeKind, EdgeLabel, NodeFlags, NodeId, Object, Root, RootKind, SiteId, Snapshot, StrId,
    TypeId,
};
pub use report::{Finding, Format, HeapReport, ReportOptions};

impl Snapshot {
    /// Reads a snapshot from its bytes: a whole snapshot file, or the same bytes embedded as one
    /// chunk of a capture file.
    ///
    /// Truncated, corrupt or foreign input gives one error line naming the byte offset; it never
    /// panics.
    pub fn read_from(bytes: &[u8]) -> Result<Snapshot> {
        file::read(bytes)
    }

    /// Sets the allocation site of objects after the fact (the join with an exact capture):
    /// `sites` lists `(file, line)` pairs and `site_of(node)` names an index into it, or `None`
    /// to leave the node's site as it is. Ids of existing sites are kept.
    pub fn set_alloc_sites(
        &mut self,
        sites: &[(String, u32)],
        mut site_of: impl FnMut(NodeId) -> Option<usize>,
    ) {
        let base = self.sites.len() as u32;
        for (file, line) in sites {
            let f = self.strings.push(file);
            self.sites.push((f, *line));
        }
        for n in 0..self.addr.len() {
            if let Some(i) = site_of(NodeId(n as u32))
                && i < sites.len()
            {
                self.site[n] = base + i as u32;
            }
        }
    }

    /// Whether `bytes` start like a heap snapshot (the magic).
    pub fn is_snapshot(bytes: &[u8]) -> bool {
        bytes.starts_with(&MAGIC)
    }

    /// Writes the snapshot in the memlens heap format (the inverse of [`Snapshot::read_from`]).
    pub fn write_to<W: Write>(&self, out: W) -> Result<W> {
        let mut b = SnapshotBuilder::new(out)?;
        // Re-intern every string in order so ids are preserved.
        for i in 0..self.strings.len() {
            b.intern_raw(self.strings.get(i as u32))?;
        }
        for &t in &self.types {
            b.push_type(t)?;
        }
        for &(f, l) in &self.sites {
            b.push_site(f, l)?;
        }
        for &(k, v) in &self.meta {
            b.set_meta(self.strings.get(k), self.strings.get(v))?;
        }
        for i in 0..self.node_count() {
            let id = NodeId(i as u32);
            let rec = pipeline::NodeRec {
                addr: self.addr[i],
                size: self.size[i],
                ty: self.ty[i],
                site: self.site[i],
                preview: self.preview[i],
                flags: self.flags[i],
                value_hash: 0,
            };
            b.push_node(rec, self.value_hash(id))?;
            for e in self.edges(id) {
                b.add_edge(id, e.to, e.label, e.kind)?;
            }
        }
        for r in &self.roots {
            b.push_root(r.node, r.kind, r.description)?;
        }
        b.finish()
    }

    /// Writes the snapshot as a Chrome DevTools / MemLab `.heapsnapshot` (V8 JSON).
    pub fn write_heapsnapshot(&self, out: &mut dyn Write) -> Result<()> {
        render::heapsnapshot::write(self, out)
            .map_err(error::HeapError::io("writing the .heapsnapshot"))
    }
}

/// Entry points for the benchmarks in `benches/heap/` (not a stable API).
#[doc(hidden)]
pub mod bench {
    use crate::Snapshot;

    /// Computes dominators only and returns the number of strongly reachable nodes.
    pub fn dominators(snap: &Snapshot) -> usize {
        let roots: Vec<u32> = snap.roots.iter().map(|r| r.node.0).collect();
        let d = crate::dominators::compute(
            snap.node_count(),
            &snap.edge_start,
            &snap.edge_to,
            &snap.edge_label,
            &roots,
        );
        d.order.len() - 1
    }
}
