//! `SnapshotBuilder`: the streaming writer the heap walker calls.

use std::collections::HashMap;
use std::io::Write;

use crate::error::{HeapError, Result};
use crate::file::{BLOCK_TARGET, BlockWriter, Counts, Kind, put_varint};
use crate::hash::{FxBuild, Interner};
use crate::model::{
    EdgeKind, EdgeLabel, NodeFlags, NodeId, Object, PAYLOAD_MAX, RootKind, SiteId, StrId, Tag,
    TypeId, zig,
};
use crate::pipeline::{Done, EdgeRec, Job, NodeRec, Pipeline};

/// Node records per block (about 0.5 MiB encoded).
const NODE_BLOCK: usize = 1 << 16;
/// Edge records per block (about 0.5 MiB encoded).
const EDGE_BLOCK: usize = 1 << 17;

/// Streams a heap snapshot into a writer as the walker discovers it.
///
/// Ids are handed out in order: the n-th [`add_object`](Self::add_object) call returns
/// `NodeId(n)`, so a walker that numbers objects as it discovers them may add edges to objects it
/// will add later (every edge must name existing objects by [`finish`](Self::finish)). Edges may
/// come in any order; a walker that adds each object's references right after the object (the
/// natural `tp_traverse` order) gets the smallest file. Strings, types and sites are interned:
/// adding the same name twice returns the same id. Memory held by the builder is the intern
/// tables plus about 1 MiB of buffers per record kind; records are compressed and written as
/// blocks fill up. Blocks are coded and compressed on a second thread (inline if none can be
/// started) while the caller goes on adding records; the sink is written from the caller's
/// thread only.
///
/// Nothing here panics on bad input: misuse is reported as [`HeapError::Build`].
pub struct SnapshotBuilder<W: Write> {
    sink: Sink<W>,
    pipeline: Pipeline,
    interned: Interner,
    type_ids: HashMap<u32, u32, FxBuild>,
    site_ids: HashMap<(u32, u32), u32, FxBuild>,
    counts: Counts,
    bufs: [Vec<u8>; 5],
    nodes: Vec<NodeRec>,
    edges: Vec<EdgeRec>,
    max_edge_node: Option<u32>,
}

/// The file, and the buffers finished blocks give back for the next ones.
struct Sink<W: Write> {
    out: BlockWriter<W>,
    nodes: Vec<Vec<NodeRec>>,
    edges: Vec<Vec<EdgeRec>>,
    bytes: Vec<Vec<u8>>,
}

impl<W: Write> Sink<W> {
    /// Writes a finished block and keeps its buffer for reuse.
    fn write(&mut self, d: Done) -> Result<()> {
        self.out.block(d.kind, d.raw_len, &d.stored)?;
        match d.recycled {
            Job::Nodes(v) if self.nodes.len() < 2 => self.nodes.push(v),
            Job::Edges(v) if self.edges.len() < 2 => self.edges.push(v),
            Job::Raw(_, v) if self.bytes.len() < 2 && v.capacity() >= BLOCK_TARGET => {
                self.bytes.push(v)
            }
            _ => {}
        }
        Ok(())
    }
}

/// Index of the strings buffer in `bufs`.
const STRINGS: usize = 0;

const SLOTS: [Kind; 5] = [
    Kind::Strings,
    Kind::Types,
    Kind::Sites,
    Kind::Roots,
    Kind::Meta,
];

impl<W: Write> SnapshotBuilder<W> {
    /// Starts a snapshot on `out` (zstd level 1: the walker runs inside the profiled process).
    pub fn new(out: W) -> Result<Self> {
        Self::with_level(out, 1)
    }

    /// Starts a snapshot on `out` with the given zstd compression level (1 to 19).
    pub fn with_level(out: W, level: i32) -> Result<Self> {
        Ok(SnapshotBuilder {
            sink: Sink {
                out: BlockWriter::new(out)?,
                nodes: Vec::new(),
                edges: Vec::new(),
                bytes: Vec::new(),
            },
            pipeline: Pipeline::new(level)?,
            interned: Interner::default(),
            type_ids: HashMap::default(),
            site_ids: HashMap::default(),
            counts: Counts::default(),
            bufs: Default::default(),
            nodes: Vec::new(),
            edges: Vec::new(),
            max_edge_node: None,
        })
    }

    /// Makes room for about `strings` more distinct strings (a walker that knows roughly how
    /// many objects it will add saves the intern table's rehashing).
    pub fn reserve_strings(&mut self, strings: usize) {
        self.interned.reserve(strings);
    }

    /// Number of objects added so far (the id the next object will get).
    pub fn object_count(&self) -> u32 {
        self.counts.nodes as u32
    }

    fn buf(&mut self, kind: Kind) -> &mut Vec<u8> {
        let i = SLOTS.iter().position(|&k| k == kind).unwrap_or(0);
        &mut self.bufs[i]
    }

    fn maybe_flush(&mut self, kind: Kind) -> Result<()> {
        let i = SLOTS.iter().position(|&k| k == kind).unwrap_or(0);
        if self.bufs[i].len() >= BLOCK_TARGET {
            self.flush_bytes(i)?;
        }
        Ok(())
    }

    fn flush_bytes(&mut self, i: usize) -> Result<()> {
        let fresh = self
            .sink
            .bytes
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(BLOCK_TARGET + (BLOCK_TARGET >> 3)));
        let full = std::mem::replace(&mut self.bufs[i], fresh);
        self.submit(Job::Raw(SLOTS[i], full))
    }

    fn flush_nodes(&mut self) -> Result<()> {
        let fresh = self
            .sink
            .nodes
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(NODE_BLOCK));
        let full = std::mem::replace(&mut self.nodes, fresh);
        self.submit(Job::Nodes(full))
    }

    fn flush_edges(&mut self) -> Result<()> {
        let fresh = self
            .sink
            .edges
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(EDGE_BLOCK));
        let full = std::mem::replace(&mut self.edges, fresh);
        self.submit(Job::Edges(full))
    }

    /// Hands a block to the encoder and writes the blocks it has finished.
    fn submit(&mut self, job: Job) -> Result<()> {
        let sink = &mut self.sink;
        self.pipeline.submit(job, &mut |d| sink.write(d))
    }

    /// Interns a string and returns its id (the same id for the same text).
    pub fn intern(&mut self, s: &str) -> Result<StrId> {
        if self.counts.strings > u64::from(PAYLOAD_MAX) {
            // Full: only strings interned before can still be named.
            return match self.interned.get(s) {
                Some(id) => Ok(StrId(id)),
                None => Err(HeapError::Build(format!(
                    "more than {PAYLOAD_MAX} distinct strings"
                ))),
            };
        }
        let (id, new) = self.interned.get_or_push(s);
        if new {
            let buf = &mut self.bufs[STRINGS];
            put_varint(buf, s.len() as u64);
            buf.extend_from_slice(s.as_bytes());
            self.counts.strings += 1;
            if buf.len() >= BLOCK_TARGET {
                self.flush_bytes(STRINGS)?;
            }
        }
        Ok(StrId(id))
    }

    fn check_str(&self, id: StrId) -> Result<u32> {
        if u64::from(id.0) < self.counts.strings {
            Ok(id.0)
        } else {
            Err(HeapError::Build(format!(
                "string id {} was not interned by this builder",
                id.0
            )))
        }
    }

    /// Declares a type by its qualified name (`builtins.dict`, `app.models.Record`); returns the
    /// existing id when the name was declared before.
    pub fn add_type(&mut self, name: &str) -> Result<TypeId> {
        let s = self.intern(name)?.0;
        if let Some(&t) = self.type_ids.get(&s) {
            return Ok(TypeId(t));
        }
        let t = self.counts.types as u32;
        put_varint(self.buf(Kind::Types), u64::from(s));
        self.counts.types += 1;
        self.type_ids.insert(s, t);
        self.maybe_flush(Kind::Types)?;
        Ok(TypeId(t))
    }

    /// Declares an allocation site (file, line); returns the existing id for a known site.
    pub fn add_site(&mut self, file: &str, line: u32) -> Result<SiteId> {
        let f = self.intern(file)?.0;
        if let Some(&s) = self.site_ids.get(&(f, line)) {
            return Ok(SiteId(s));
        }
        let s = self.counts.sites as u32;
        let buf = self.buf(Kind::Sites);
        put_varint(buf, u64::from(f));
        put_varint(buf, u64::from(line));
        self.counts.sites += 1;
        self.site_ids.insert((f, line), s);
        self.maybe_flush(Kind::Sites)?;
        Ok(SiteId(s))
    }

    /// Records a metadata pair (`python` = `3.12.1`, `pid` = `123`, ...).
    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<()> {
        let k = self.intern(key)?.0;
        let v = self.intern(value)?.0;
        let buf = self.buf(Kind::Meta);
        put_varint(buf, u64::from(k));
        put_varint(buf, u64::from(v));
        self.counts.meta += 1;
        self.maybe_flush(Kind::Meta)
    }

    /// Adds an object and returns its id (`NodeId(n)` for the n-th object).
    pub fn add_object(&mut self, obj: Object<'_>) -> Result<NodeId> {
        let id = self.counts.nodes;
        if id >= u64::from(u32::MAX - 1) {
            return Err(HeapError::Build("too many objects for one snapshot".into()));
        }
        if u64::from(obj.type_id.0) >= self.counts.types {
            return Err(HeapError::Build(format!(
                "object {id}: unknown type id {}",
                obj.type_id.0
            )));
        }
        let site = match obj.site {
            Some(s) if u64::from(s.0) >= self.counts.sites => {
                return Err(HeapError::Build(format!(
                    "object {id}: unknown site id {}",
                    s.0
                )));
            }
            Some(s) => u64::from(s.0) + 1,
            None => 0,
        };
        let preview = match obj.preview {
            Some(p) => self.intern(p)?.0 + 1,
            None => 0,
        };
        // The flag says whether a hash follows: it is set exactly when one is given.
        let mut flags = obj.flags.0 & !NodeFlags::VALUE_HASH.0;
        if obj.value_hash.is_some() {
            flags |= NodeFlags::VALUE_HASH.0;
        }
        self.push_node_rec(NodeRec {
            addr: obj.address,
            size: obj.size,
            ty: obj.type_id.0,
            site: site as u32,
            preview,
            flags,
            value_hash: obj.value_hash.unwrap_or(0),
        })?;
        Ok(NodeId(id as u32))
    }

    /// Adds a reference from `from` to `to`.
    pub fn add_edge(
        &mut self,
        from: NodeId,
        to: NodeId,
        label: EdgeLabel,
        kind: EdgeKind,
    ) -> Result<()> {
        if from.0 >= u32::MAX - 1 || to.0 >= u32::MAX - 1 {
            return Err(HeapError::Build("edge endpoint out of range".into()));
        }
        let (tag, payload): (Tag, Option<u64>) = match label {
            EdgeLabel::None => (Tag::None, None),
            EdgeLabel::Hidden => (Tag::Hidden, None),
            EdgeLabel::Attr(s) => (Tag::Attr, Some(u64::from(self.check_str(s)?))),
            EdgeLabel::Key(s) => (Tag::Key, Some(u64::from(self.check_str(s)?))),
            EdgeLabel::OtherKey(s) => (Tag::OtherKey, Some(u64::from(self.check_str(s)?))),
            EdgeLabel::Cell(s) => (Tag::Cell, Some(u64::from(self.check_str(s)?))),
            EdgeLabel::Local(s) => (Tag::Local, Some(u64::from(self.check_str(s)?))),
            EdgeLabel::Internal(s) => (Tag::Internal, Some(u64::from(self.check_str(s)?))),
            EdgeLabel::IntKey(i) => (Tag::IntKey, Some(zig(i))),
            EdgeLabel::Index(i) => (Tag::Index, Some(i)),
        };
        if self.counts.edges >= u64::from(u32::MAX - 1) {
            return Err(HeapError::Build("too many edges for one snapshot".into()));
        }
        let hi = from.0.max(to.0);
        self.max_edge_node = Some(self.max_edge_node.map_or(hi, |m| m.max(hi)));
        self.edges.push(EdgeRec {
            from: from.0,
            to: to.0,
            tag: tag as u8 | if kind == EdgeKind::Weak { 0x80 } else { 0 },
            has_payload: payload.is_some(),
            payload: payload.unwrap_or(0),
        });
        self.counts.edges += 1;
        if self.edges.len() >= EDGE_BLOCK {
            self.flush_edges()?;
        }
        Ok(())
    }

    fn push_node_rec(&mut self, rec: NodeRec) -> Result<()> {
        self.nodes.push(rec);
        self.counts.nodes += 1;
        if self.nodes.len() >= NODE_BLOCK {
            self.flush_nodes()?;
        }
        Ok(())
    }

    /// Convenience: adds a strong edge labelled with an attribute name.
    pub fn add_attr(&mut self, from: NodeId, to: NodeId, name: &str) -> Result<()> {
        let s = self.intern(name)?;
        self.add_edge(from, to, EdgeLabel::Attr(s), EdgeKind::Strong)
    }

    /// Convenience: adds a strong edge labelled with a `str` dict key.
    pub fn add_key(&mut self, from: NodeId, to: NodeId, key: &str) -> Result<()> {
        let s = self.intern(key)?;
        self.add_edge(from, to, EdgeLabel::Key(s), EdgeKind::Strong)
    }

    /// Convenience: adds a strong edge labelled with a sequence index.
    pub fn add_index(&mut self, from: NodeId, to: NodeId, index: u64) -> Result<()> {
        self.add_edge(from, to, EdgeLabel::Index(index), EdgeKind::Strong)
    }

    /// Convenience: adds a strong interpreter-internal edge (`__dict__`, `tb_frame`, ...).
    pub fn add_internal(&mut self, from: NodeId, to: NodeId, name: &str) -> Result<()> {
        let s = self.intern(name)?;
        self.add_edge(from, to, EdgeLabel::Internal(s), EdgeKind::Strong)
    }

    /// Declares `node` a root, held as `kind`, described for people (``module `app.cache` ``).
    pub fn add_root(&mut self, node: NodeId, kind: RootKind, description: &str) -> Result<()> {
        let d = self.intern(description)?.0;
        let buf = self.buf(Kind::Roots);
        put_varint(buf, u64::from(node.0));
        buf.push(kind.to_u8());
        put_varint(buf, u64::from(d));
        self.counts.roots += 1;
        if node.0 >= u32::MAX - 1 {
            return Err(HeapError::Build("root names an object out of range".into()));
        }
        self.max_edge_node = Some(self.max_edge_node.map_or(node.0, |m| m.max(node.0)));
        self.maybe_flush(Kind::Roots)
    }

    /// Writes the remaining blocks and the end block; returns the writer.
    ///
    /// Fails if an edge or root names an object that was never added.
    pub fn finish(mut self) -> Result<W> {
        if let Some(m) = self.max_edge_node
            && u64::from(m) >= self.counts.nodes
        {
            return Err(HeapError::Build(format!(
                "an edge or root names object {m}, but only {} objects were added",
                self.counts.nodes
            )));
        }
        for i in 0..SLOTS.len() {
            if !self.bufs[i].is_empty() {
                self.flush_bytes(i)?;
            }
        }
        if !self.nodes.is_empty() {
            self.flush_nodes()?;
        }
        if !self.edges.is_empty() {
            self.flush_edges()?;
        }
        let mut end = Vec::new();
        self.counts.encode(&mut end);
        self.submit(Job::Raw(Kind::End, end))?;
        let sink = &mut self.sink;
        self.pipeline.drain(&mut |d| sink.write(d))?;
        self.sink.out.finish()
    }
}

/// Raw pushes that keep existing ids, for [`Snapshot::write_to`](crate::Snapshot::write_to).
impl<W: Write> SnapshotBuilder<W> {
    pub(crate) fn intern_raw(&mut self, s: &str) -> Result<()> {
        // Duplicate strings may exist in foreign files: keep them as separate ids.
        let buf = self.buf(Kind::Strings);
        put_varint(buf, s.len() as u64);
        buf.extend_from_slice(s.as_bytes());
        self.counts.strings += 1;
        // Interner ids follow the string ids one for one (a duplicate gets its own id, which
        // lookups of its text never return: they find the first).
        self.interned.push(s);
        self.maybe_flush(Kind::Strings)
    }

    pub(crate) fn push_type(&mut self, name: u32) -> Result<()> {
        let t = self.counts.types as u32;
        put_varint(self.buf(Kind::Types), u64::from(name));
        self.counts.types += 1;
        self.type_ids.entry(name).or_insert(t);
        self.maybe_flush(Kind::Types)
    }

    pub(crate) fn push_site(&mut self, file: u32, line: u32) -> Result<()> {
        let s = self.counts.sites as u32;
        let buf = self.buf(Kind::Sites);
        put_varint(buf, u64::from(file));
        put_varint(buf, u64::from(line));
        self.counts.sites += 1;
        self.site_ids.entry((file, line)).or_insert(s);
        self.maybe_flush(Kind::Sites)
    }

    /// Adds a node record as a reader decoded it (site and preview ids, `NONE` for none).
    pub(crate) fn push_node(&mut self, mut rec: NodeRec, value_hash: Option<u64>) -> Result<()> {
        rec.site = rec.site.wrapping_add(1);
        rec.preview = rec.preview.wrapping_add(1);
        rec.flags &= !NodeFlags::VALUE_HASH.0;
        if let Some(h) = value_hash {
            rec.flags |= NodeFlags::VALUE_HASH.0;
            rec.value_hash = h;
        }
        self.push_node_rec(rec)
    }

    pub(crate) fn push_root(&mut self, node: NodeId, kind: RootKind, desc: StrId) -> Result<()> {
        let buf = self.buf(Kind::Roots);
        put_varint(buf, u64::from(node.0));
        buf.push(kind.to_u8());
        put_varint(buf, u64::from(desc.0));
        self.counts.roots += 1;
        self.max_edge_node = Some(self.max_edge_node.map_or(node.0, |m| m.max(node.0)));
        self.maybe_flush(Kind::Roots)
    }
}
