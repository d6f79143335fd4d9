//! The snapshot file format: a header, then self-delimiting compressed blocks, then an end block.
//!
//! ```text
//! header   8 bytes magic "\x89MLHEAP\n", u16 LE version (3; 1 and 2 are read too), u16 LE reserved (0)
//! block    u8 kind, u32 LE raw length, u32 LE stored length, u32 LE crc32 of the stored bytes,
//!          stored bytes (zstd frame of the raw bytes)
//! end      a block of kind 0xFF whose raw bytes are the record counts; nothing may follow it
//! ```
//! Records inside a block are varint (LEB128) coded; addresses and edge endpoints are zigzag
//! deltas. Block kinds may interleave in any order; ids are assigned in order of appearance per
//! kind. See `docs/heap.md` for the record layouts.

use std::io::Write;

use crate::error::{HeapError, Result};
use crate::model::{
    NONE, NodeFlags, PAYLOAD_MAX, Root, RootKind, Snapshot, Tag, WEAK_BIT, pack, unzig,
};

/// The 8 bytes every heap snapshot starts with.
pub const MAGIC: [u8; 8] = *b"\x89MLHEAP\n";
/// The format version this build writes. It reads versions 1 (edge records code targets
/// against their source and indices as they are) and 2 (no value hashes: node flag 128 unused).
pub const VERSION: u16 = 3;
/// The oldest format version this build reads.
const OLDEST: u16 = 1;
pub(crate) const HEADER_LEN: usize = 12;
const BLOCK_HEADER_LEN: usize = 13;
/// Raw bytes gathered before a block is compressed and written.
pub(crate) const BLOCK_TARGET: usize = 1 << 20;
/// Largest raw block a reader accepts (a sanity bound against corrupt lengths).
const BLOCK_MAX: u32 = 64 << 20;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Strings = 1,
    Types = 2,
    Sites = 3,
    Nodes = 4,
    Edges = 5,
    Roots = 6,
    Meta = 7,
    End = 0xFF,
}

impl Kind {
    fn from_u8(v: u8) -> Option<Kind> {
        Some(match v {
            1 => Kind::Strings,
            2 => Kind::Types,
            3 => Kind::Sites,
            4 => Kind::Nodes,
            5 => Kind::Edges,
            6 => Kind::Roots,
            7 => Kind::Meta,
            0xFF => Kind::End,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Strings => "strings",
            Kind::Types => "types",
            Kind::Sites => "sites",
            Kind::Nodes => "nodes",
            Kind::Edges => "edges",
            Kind::Roots => "roots",
            Kind::Meta => "meta",
            Kind::End => "end",
        }
    }
}

#[inline]
pub(crate) fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    if v < 0x80 {
        buf.push(v as u8);
        return;
    }
    let mut tmp = [0u8; 10];
    let mut n = 0;
    while v >= 0x80 {
        tmp[n] = (v as u8) | 0x80;
        v >>= 7;
        n += 1;
    }
    tmp[n] = v as u8;
    buf.extend_from_slice(&tmp[..=n]);
}

/// Writes the header and compressed blocks to a sink, counting bytes.
pub(crate) struct BlockWriter<W: Write> {
    out: W,
    written: u64,
}

impl<W: Write> BlockWriter<W> {
    pub(crate) fn new(mut out: W) -> Result<Self> {
        let mut header = [0u8; HEADER_LEN];
        header[..8].copy_from_slice(&MAGIC);
        header[8..10].copy_from_slice(&VERSION.to_le_bytes());
        out.write_all(&header)
            .map_err(HeapError::io("writing the heap snapshot header"))?;
        Ok(BlockWriter {
            out,
            written: HEADER_LEN as u64,
        })
    }

    /// Writes one block: `stored` is the zstd frame of `raw_len` raw bytes.
    pub(crate) fn block(&mut self, kind: Kind, raw_len: u32, stored: &[u8]) -> Result<()> {
        let mut head = [0u8; BLOCK_HEADER_LEN];
        head[0] = kind as u8;
        head[1..5].copy_from_slice(&raw_len.to_le_bytes());
        head[5..9].copy_from_slice(&(stored.len() as u32).to_le_bytes());
        head[9..13].copy_from_slice(&crc32fast::hash(stored).to_le_bytes());
        self.out
            .write_all(&head)
            .map_err(HeapError::io("writing a heap snapshot block"))?;
        self.out
            .write_all(stored)
            .map_err(HeapError::io("writing a heap snapshot block"))?;
        self.written += (BLOCK_HEADER_LEN + stored.len()) as u64;
        Ok(())
    }

    pub(crate) fn finish(mut self) -> Result<W> {
        self.out
            .flush()
            .map_err(HeapError::io("flushing the heap snapshot"))?;
        Ok(self.out)
    }
}

/// A cursor over the raw bytes of one block; errors name the block's offset in the file.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    block_offset: u64,
    kind: Kind,
}

impl Cursor<'_> {
    fn fail(&self, what: &str) -> HeapError {
        HeapError::Corrupt {
            offset: self.block_offset,
            what: format!(
                "{} block, payload byte {}: {what}",
                self.kind.name(),
                self.pos
            ),
        }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    #[inline(always)]
    fn byte(&mut self) -> Result<u8> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| self.fail("record runs past the block"))?;
        self.pos += 1;
        Ok(b)
    }

    #[inline(always)]
    fn varint(&mut self) -> Result<u64> {
        // Most values (type ids, small sizes, label tags' payloads) take one byte.
        if let Some(&b) = self.buf.get(self.pos)
            && b < 0x80
        {
            self.pos += 1;
            return Ok(u64::from(b));
        }
        self.varint_multi()
    }

    /// A varint of two or more bytes.
    #[inline(never)]
    fn varint_multi(&mut self) -> Result<u64> {
        // Away from the end of the block: no per-byte bounds checks.
        if let Some(chunk) = self.buf.get(self.pos..self.pos + 10) {
            let mut v = 0u64;
            for (i, &b) in chunk.iter().enumerate() {
                v |= u64::from(b & 0x7F) << (7 * i);
                if b < 0x80 {
                    if i == 9 && b > 1 {
                        break; // overflow: the slow path reports it
                    }
                    self.pos += i + 1;
                    return Ok(v);
                }
            }
        }
        self.varint_slow()
    }

    fn varint_slow(&mut self) -> Result<u64> {
        let mut v: u64 = 0;
        let mut shift = 0u32;
        loop {
            let b = self.byte()?;
            if shift == 63 && b > 1 {
                return Err(self.fail("varint overflows 64 bits"));
            }
            v |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                return Err(self.fail("varint overflows 64 bits"));
            }
        }
    }

    #[inline(always)]
    fn u32(&mut self, what: &str) -> Result<u32> {
        let v = self.varint()?;
        match u32::try_from(v) {
            Ok(v) => Ok(v),
            Err(_) => Err(self.out_of_range(what, v)),
        }
    }

    #[cold]
    fn out_of_range(&self, what: &str, v: u64) -> HeapError {
        self.fail(&format!("{what} {v} out of range"))
    }

    fn bytes(&mut self, len: usize) -> Result<&[u8]> {
        if self.buf.len() - self.pos < len {
            return Err(self.fail("string runs past the block"));
        }
        let s = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok(s)
    }

    fn u64_le(&mut self, what: &str) -> Result<u64> {
        match self.buf.get(self.pos..self.pos + 8) {
            Some(b) => {
                self.pos += 8;
                Ok(u64::from_le_bytes(b.try_into().unwrap_or_default()))
            }
            None => Err(self.fail(&format!("{what} runs past the block"))),
        }
    }
}

/// Record counts stored in the end block.
#[derive(Default, Debug, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) strings: u64,
    pub(crate) types: u64,
    pub(crate) sites: u64,
    pub(crate) nodes: u64,
    pub(crate) edges: u64,
    pub(crate) roots: u64,
    pub(crate) meta: u64,
}

impl Counts {
    pub(crate) fn encode(&self, buf: &mut Vec<u8>) {
        for v in [
            self.strings,
            self.types,
            self.sites,
            self.nodes,
            self.edges,
            self.roots,
            self.meta,
        ] {
            put_varint(buf, v);
        }
    }
}

fn hex_prefix(bytes: &[u8]) -> String {
    let shown: String = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
    if shown.is_empty() {
        "an empty input".to_string()
    } else {
        format!("0x{shown}")
    }
}

/// One block located by the structural scan.
struct BlockRef<'a> {
    kind: Kind,
    offset: u64,
    raw_len: u32,
    crc: u32,
    stored: &'a [u8],
}

impl BlockRef<'_> {
    /// Checks the checksum and decompresses into `raw`.
    fn open(&self, dec: &mut zstd::bulk::Decompressor<'_>, raw: &mut Vec<u8>) -> Result<()> {
        let (offset, kind) = (self.offset, self.kind);
        if crc32fast::hash(self.stored) != self.crc {
            return Err(HeapError::Corrupt {
                offset,
                what: format!("checksum mismatch in the {} block", kind.name()),
            });
        }
        raw.clear();
        raw.reserve(self.raw_len as usize);
        let n = dec
            .decompress_to_buffer(self.stored, raw)
            .map_err(|e| HeapError::Corrupt {
                offset,
                what: format!("cannot decompress the {} block: {e}", kind.name()),
            })?;
        if n != self.raw_len as usize {
            return Err(HeapError::Corrupt {
                offset,
                what: format!(
                    "the {} block holds {n} bytes, not {}",
                    kind.name(),
                    self.raw_len
                ),
            });
        }
        Ok(())
    }
}

/// Checks the header and walks the block headers (no decompression): truncation, unknown
/// kinds, absurd lengths and trailing bytes are found here, before any work.
fn scan(data: &[u8]) -> Result<Vec<BlockRef<'_>>> {
    if data.len() < HEADER_LEN {
        let n = data.len().min(8);
        if n > 0 && data[..n] == MAGIC[..n] {
            return Err(HeapError::Truncated {
                offset: data.len() as u64,
                what: "the file ends inside the header".into(),
            });
        }
        return Err(HeapError::Magic {
            found: hex_prefix(data),
        });
    }
    if data[..8] != MAGIC {
        return Err(HeapError::Magic {
            found: hex_prefix(data),
        });
    }
    let version = u16::from_le_bytes([data[8], data[9]]);
    if !(OLDEST..=VERSION).contains(&version) {
        return Err(HeapError::Version {
            found: version,
            supported: VERSION,
        });
    }
    let mut blocks = Vec::new();
    let mut pos = HEADER_LEN;
    loop {
        let offset = pos as u64;
        if data.len() - pos < BLOCK_HEADER_LEN {
            let what = if data.len() == pos {
                "the end block is missing".to_string()
            } else {
                "the file ends inside a block header".to_string()
            };
            return Err(HeapError::Truncated {
                offset: data.len() as u64,
                what,
            });
        }
        let head = &data[pos..pos + BLOCK_HEADER_LEN];
        let kind = Kind::from_u8(head[0]).ok_or_else(|| HeapError::Corrupt {
            offset,
            what: format!("unknown block kind 0x{:02x}", head[0]),
        })?;
        let raw_len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
        let stored_len = u32::from_le_bytes([head[5], head[6], head[7], head[8]]) as usize;
        let crc = u32::from_le_bytes([head[9], head[10], head[11], head[12]]);
        if raw_len > BLOCK_MAX {
            return Err(HeapError::Corrupt {
                offset,
                what: format!("{} block claims {raw_len} bytes", kind.name()),
            });
        }
        pos += BLOCK_HEADER_LEN;
        if data.len() - pos < stored_len {
            return Err(HeapError::Truncated {
                offset: data.len() as u64,
                what: format!(
                    "the {} block at offset {offset} needs {stored_len} bytes, {} remain",
                    kind.name(),
                    data.len() - pos
                ),
            });
        }
        blocks.push(BlockRef {
            kind,
            offset,
            raw_len,
            crc,
            stored: &data[pos..pos + stored_len],
        });
        pos += stored_len;
        if kind == Kind::End {
            if pos != data.len() {
                return Err(HeapError::Corrupt {
                    offset: pos as u64,
                    what: format!("{} unexpected bytes after the end block", data.len() - pos),
                });
            }
            return Ok(blocks);
        }
    }
}

fn decompressor() -> Result<zstd::bulk::Decompressor<'static>> {
    zstd::bulk::Decompressor::new().map_err(HeapError::io("starting the zstd decompressor"))
}

/// Reads a snapshot from its bytes (a whole file, or one chunk of a capture file).
///
/// A structural scan first finds every block and the end block's counts (so arrays are sized
/// once); then edge blocks are decoded on a second thread while the others are decoded here.
pub(crate) fn read(data: &[u8]) -> Result<Snapshot> {
    let blocks = scan(data)?;
    let end = &blocks[blocks.len() - 1];
    let mut dec = decompressor()?;
    let mut raw = Vec::new();
    end.open(&mut dec, &mut raw)?;
    let mut cur = Cursor {
        buf: &raw,
        pos: 0,
        block_offset: end.offset,
        kind: Kind::End,
    };
    let mut counts = Counts::default();
    for slot in [
        &mut counts.strings,
        &mut counts.types,
        &mut counts.sites,
        &mut counts.nodes,
        &mut counts.edges,
        &mut counts.roots,
        &mut counts.meta,
    ] {
        *slot = cur.varint()?;
    }
    // Capacities are hints bounded by the input size (a corrupt count must not allocate much):
    // at most one element per 8 input bytes, so the ~10 arrays reserved here stay within a few
    // times the file's size (one per input byte reserved ~45 bytes per byte, enough to abort a
    // reader of a 40 MiB file under a 1.5 GiB limit). Real data grows them as it decodes.
    let cap = |n: u64| (n as usize).min(data.len() / 8);
    let mut st = ReadState {
        value_hashes: u16::from_le_bytes([data[8], data[9]]) >= 3,
        ..ReadState::default()
    };
    st.snap.addr.reserve(cap(counts.nodes));
    st.snap.ty.reserve(cap(counts.nodes));
    st.snap.size.reserve(cap(counts.nodes));
    st.snap.site.reserve(cap(counts.nodes));
    st.snap.flags.reserve(cap(counts.nodes));
    st.snap.preview.reserve(cap(counts.nodes));
    st.snap.strings.ends.reserve(cap(counts.strings));
    let body = &blocks[..blocks.len() - 1];
    let edge_cap = cap(counts.edges);
    let (edges, rest) = std::thread::scope(|scope| {
        let edges = scope.spawn(move || -> Result<EdgeState> {
            let mut es = EdgeState {
                relative: u16::from_le_bytes([data[8], data[9]]) >= 2,
                from: Vec::with_capacity(edge_cap),
                to: Vec::with_capacity(edge_cap),
                label: Vec::with_capacity(edge_cap),
                ..EdgeState::default()
            };
            let mut dec = decompressor()?;
            let mut raw = Vec::new();
            for b in body.iter().filter(|b| b.kind == Kind::Edges) {
                b.open(&mut dec, &mut raw)?;
                es.decode(&mut Cursor {
                    buf: &raw,
                    pos: 0,
                    block_offset: b.offset,
                    kind: b.kind,
                })?;
            }
            Ok(es)
        });
        let mut rest = Ok(());
        for b in body.iter().filter(|b| b.kind != Kind::Edges) {
            if b.kind == Kind::End {
                rest = Err(HeapError::Corrupt {
                    offset: b.offset,
                    what: "an end block before the end".into(),
                });
                break;
            }
            let r = b.open(&mut dec, &mut raw).and_then(|()| {
                st.decode(&mut Cursor {
                    buf: &raw,
                    pos: 0,
                    block_offset: b.offset,
                    kind: b.kind,
                })
            });
            if r.is_err() {
                rest = r;
                break;
            }
        }
        (
            edges
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p)),
            rest,
        )
    });
    // Of two errors, report the one earlier in the file.
    match (edges, rest) {
        (Ok(es), Ok(())) => st.finish(es, counts, end.offset),
        (Err(a), Err(b)) => Err(if error_offset(&a) <= error_offset(&b) {
            a
        } else {
            b
        }),
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

fn error_offset(e: &HeapError) -> u64 {
    match e {
        HeapError::Corrupt { offset, .. } | HeapError::Truncated { offset, .. } => *offset,
        _ => 0,
    }
}

/// Edge records, decoded on their own thread.
#[derive(Default)]
struct EdgeState {
    /// Version 2 coding: targets against the previous target, indices against the previous
    /// index (both plus one).
    relative: bool,
    last_from: u64,
    last_to: i64,
    last_index: i64,
    from: Vec<u32>,
    to: Vec<u32>,
    label: Vec<u32>,
    big: Vec<i64>,
}

impl EdgeState {
    fn decode(&mut self, cur: &mut Cursor<'_>) -> Result<()> {
        while !cur.at_end() {
            let from = (self.last_from as i64).wrapping_add(unzig(cur.varint()?));
            let to = if self.relative {
                self.last_to
                    .wrapping_add(1)
                    .wrapping_add(unzig(cur.varint()?))
            } else {
                from.wrapping_add(unzig(cur.varint()?))
            };
            if !(0..=i64::from(u32::MAX - 1)).contains(&from)
                || !(0..=i64::from(u32::MAX - 1)).contains(&to)
            {
                return Err(cur.fail("edge endpoint out of range"));
            }
            self.last_from = from as u64;
            self.last_to = to;
            let lab = cur.byte()?;
            let weak = lab & 0x80 != 0;
            let tag = Tag::from_u8(lab & 0x7F).ok_or_else(|| cur.fail("bad edge label"))?;
            let packed = match tag {
                Tag::None | Tag::Hidden => pack(tag, 0, crate::EdgeKind::Strong),
                Tag::Attr | Tag::Key | Tag::OtherKey | Tag::Cell | Tag::Local | Tag::Internal => {
                    let id = cur.u32("label string")?;
                    if id > PAYLOAD_MAX {
                        return Err(cur.fail("label string id out of range"));
                    }
                    pack(tag, id, crate::EdgeKind::Strong)
                }
                Tag::IntKey | Tag::IntKeyBig => {
                    let z = cur.varint()?;
                    if z <= u64::from(PAYLOAD_MAX) {
                        pack(Tag::IntKey, z as u32, crate::EdgeKind::Strong)
                    } else {
                        self.big.push(unzig(z));
                        pack(
                            Tag::IntKeyBig,
                            big_index(cur, &self.big)?,
                            crate::EdgeKind::Strong,
                        )
                    }
                }
                Tag::Index | Tag::IndexBig => {
                    let i = if self.relative {
                        let i = self
                            .last_index
                            .wrapping_add(1)
                            .wrapping_add(unzig(cur.varint()?));
                        self.last_index = i;
                        i as u64
                    } else {
                        cur.varint()?
                    };
                    if i <= u64::from(PAYLOAD_MAX) {
                        pack(Tag::Index, i as u32, crate::EdgeKind::Strong)
                    } else {
                        self.big.push(i as i64);
                        pack(
                            Tag::IndexBig,
                            big_index(cur, &self.big)?,
                            crate::EdgeKind::Strong,
                        )
                    }
                }
            };
            self.from.push(from as u32);
            self.to.push(to as u32);
            self.label
                .push(if weak { packed | WEAK_BIT } else { packed });
        }
        Ok(())
    }
}

#[derive(Default)]
struct ReadState {
    snap: Snapshot,
    last_addr: u64,
    /// Version 3+: a node flagged `VALUE_HASH` is followed by 8 bytes of hash.
    value_hashes: bool,
}

impl ReadState {
    fn decode(&mut self, cur: &mut Cursor<'_>) -> Result<()> {
        let s = &mut self.snap;
        while !cur.at_end() {
            match cur.kind {
                Kind::Strings => {
                    let len = cur.varint()? as usize;
                    let at = cur.pos;
                    let bytes = cur.bytes(len)?;
                    match std::str::from_utf8(bytes) {
                        Ok(text) => {
                            s.strings.push(text);
                        }
                        Err(_) => {
                            cur.pos = at;
                            return Err(cur.fail("string is not utf-8"));
                        }
                    }
                }
                Kind::Types => s.types.push(cur.u32("type name")?),
                Kind::Sites => {
                    let file = cur.u32("site file")?;
                    let line = cur.u32("site line")?;
                    s.sites.push((file, line));
                }
                Kind::Meta => {
                    let k = cur.u32("meta key")?;
                    let v = cur.u32("meta value")?;
                    s.meta.push((k, v));
                }
                Kind::Nodes => {
                    let delta = unzig(cur.varint()?);
                    self.last_addr = self.last_addr.wrapping_add(delta as u64);
                    s.addr.push(self.last_addr);
                    s.ty.push(cur.u32("type id")?);
                    s.size.push(cur.varint()?);
                    s.site.push(cur.u32("site id")?.wrapping_sub(1));
                    let flags = cur.byte()?;
                    s.preview.push(cur.u32("preview")?.wrapping_sub(1));
                    if flags & NodeFlags::VALUE_HASH.0 != 0 {
                        if !self.value_hashes {
                            return Err(cur.fail("node flag 128 in a version 1 or 2 snapshot"));
                        }
                        let id = s.flags.len() as u32;
                        s.value_hash.push((id, cur.u64_le("value hash")?));
                    }
                    s.flags.push(flags);
                }
                Kind::Edges | Kind::End => {
                    unreachable!("edge and end blocks are decoded elsewhere")
                }
                Kind::Roots => {
                    let node = cur.u32("root node")?;
                    let kind = RootKind::from_u8(cur.byte()?)
                        .ok_or_else(|| cur.fail("unknown root kind"))?;
                    let description = cur.u32("root description")?;
                    s.roots.push(Root {
                        node: crate::NodeId(node),
                        kind,
                        description: crate::StrId(description),
                    });
                }
            }
        }
        Ok(())
    }

    fn finish(self, edges: EdgeState, counts: Counts, end_offset: u64) -> Result<Snapshot> {
        let ReadState { mut snap, .. } = self;
        let EdgeState {
            from,
            to,
            label,
            big,
            ..
        } = edges;
        snap.big = big;
        let corrupt = |what: String| HeapError::Corrupt {
            offset: end_offset,
            what,
        };
        let found = Counts {
            strings: snap.strings.len() as u64,
            types: snap.types.len() as u64,
            sites: snap.sites.len() as u64,
            nodes: snap.addr.len() as u64,
            edges: from.len() as u64,
            roots: snap.roots.len() as u64,
            meta: snap.meta.len() as u64,
        };
        if found != counts {
            return Err(corrupt(format!(
                "the end block counts {counts:?} but the blocks hold {found:?}"
            )));
        }
        let n = snap.addr.len();
        if n >= NONE as usize {
            return Err(corrupt(format!("{n} objects exceed the format's limit")));
        }
        let ns = snap.strings.len() as u32;
        let check_str = |id: u32, what: &str| {
            if id < ns {
                Ok(())
            } else {
                Err(corrupt(format!("{what} names string {id} of {ns}")))
            }
        };
        for &t in &snap.types {
            check_str(t, "a type")?;
        }
        for &(f, _) in &snap.sites {
            check_str(f, "a site")?;
        }
        for &(k, v) in &snap.meta {
            check_str(k, "a meta key")?;
            check_str(v, "a meta value")?;
        }
        let (nt, nsite) = (snap.types.len() as u32, snap.sites.len() as u32);
        for i in 0..n {
            if snap.ty[i] >= nt {
                return Err(corrupt(format!(
                    "object {i} has type {} of {nt}",
                    snap.ty[i]
                )));
            }
            if snap.site[i] != NONE && snap.site[i] >= nsite {
                return Err(corrupt(format!(
                    "object {i} has site {} of {nsite}",
                    snap.site[i]
                )));
            }
            if snap.preview[i] != NONE {
                check_str(snap.preview[i], "a preview")?;
            }
        }
        for r in &snap.roots {
            if r.node.0 as usize >= n {
                return Err(corrupt(format!("a root names object {} of {n}", r.node.0)));
            }
            check_str(r.description.0, "a root")?;
        }
        // Counting sort of the edges by source: CSR arrays, stable within a source.
        let mut start = vec![0u32; n + 1];
        for (i, (&f, &t)) in from.iter().zip(&to).enumerate() {
            if f as usize >= n || t as usize >= n {
                return Err(corrupt(format!(
                    "edge {i} joins objects {f} and {t} of {n}"
                )));
            }
            let tag = crate::model::tag_of(label[i]);
            if matches!(
                tag,
                Tag::Attr | Tag::Key | Tag::OtherKey | Tag::Cell | Tag::Local | Tag::Internal
            ) {
                check_str(crate::model::payload_of(label[i]), "an edge label")?;
            }
            start[f as usize + 1] += 1;
        }
        if from.len() >= u32::MAX as usize {
            return Err(corrupt("too many edges".into()));
        }
        for i in 0..n {
            start[i + 1] += start[i];
        }
        // Edges in source order but for a few late ones (a walker adds some references after
        // their source, as memlens does for value stacks): merge the late ones in, in one
        // sequential pass. Otherwise a counting sort. Both keep edges stable within a source.
        let mut late: Vec<u32> = Vec::new();
        let mut high = 0u32;
        for (i, &f) in from.iter().enumerate() {
            if f < high {
                late.push(i as u32);
                if late.len() > from.len() / 64 {
                    break;
                }
            } else {
                high = f;
            }
        }
        if late.is_empty() {
            snap.edge_to = to;
            snap.edge_label = label;
        } else if late.len() <= from.len() / 64 {
            // The others, in order (slices between the late ones), then the late ones put
            // after the edges of their source (found by binary search): all block copies.
            let mut kf = Vec::with_capacity(from.len());
            let mut kt = Vec::with_capacity(from.len());
            let mut kl = Vec::with_capacity(from.len());
            let mut prev = 0;
            for &j in late.iter().chain(std::iter::once(&(from.len() as u32))) {
                let j = j as usize;
                kf.extend_from_slice(&from[prev..j]);
                kt.extend_from_slice(&to[prev..j]);
                kl.extend_from_slice(&label[prev..j]);
                prev = j + 1;
            }
            late.sort_by_key(|&i| (from[i as usize], i));
            let mut sto = Vec::with_capacity(from.len());
            let mut slab = Vec::with_capacity(from.len());
            let mut at = 0;
            for &j in &late {
                let f = from[j as usize];
                let pos = kf.partition_point(|&x| x <= f);
                sto.extend_from_slice(&kt[at..pos]);
                slab.extend_from_slice(&kl[at..pos]);
                at = pos;
                sto.push(to[j as usize]);
                slab.push(label[j as usize]);
            }
            sto.extend_from_slice(&kt[at..]);
            slab.extend_from_slice(&kl[at..]);
            snap.edge_to = sto;
            snap.edge_label = slab;
        } else {
            let mut fill = start.clone();
            let mut sto = vec![0u32; from.len()];
            let mut slab = vec![0u32; from.len()];
            for i in 0..from.len() {
                let slot = &mut fill[from[i] as usize];
                sto[*slot as usize] = to[i];
                slab[*slot as usize] = label[i];
                *slot += 1;
            }
            snap.edge_to = sto;
            snap.edge_label = slab;
        }
        snap.edge_start = start;
        Ok(snap)
    }
}

fn big_index(cur: &Cursor<'_>, big: &[i64]) -> Result<u32> {
    let i = big.len() - 1;
    if i > PAYLOAD_MAX as usize {
        return Err(cur.fail("too many large integer labels"));
    }
    Ok(i as u32)
}
