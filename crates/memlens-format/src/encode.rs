//! Record coding inside a chunk: one tag byte, then LEB128 varints, with addresses and stack ids
//! coded as deltas from the previous event so that the common case (an allocation at the same
//! stack, near the previous block) takes two or three bytes before compression.
//!
//! Allocation tag: `1 d d s k k k k` — `dd` the domain, `s` set when the stack equals the
//! previous event's, `kkkk` the size in 16-byte units when it is 1..=15 and a multiple of 16
//! (pymalloc size classes), else 0 and a varint size follows. Free tag: `0 1 0 0 0 0 0 0`.
//! Addresses: `zigzag((addr - prev) >> 4) << 1` when both are 16-byte aligned, else the same
//! with the low bit set and one more byte holding the low four bits of the delta. The delta
//! state starts at zero in every chunk.

use crate::{Domain, FormatError, Record};

const TAG_STRING: u8 = 0x01;
const TAG_FUNCTION: u8 = 0x02;
const TAG_FRAME: u8 = 0x03;
const TAG_STACK: u8 = 0x04;
const TAG_THREAD: u8 = 0x05;
const TAG_SWITCH_THREAD: u8 = 0x06;
const TAG_PEAK: u8 = 0x07;
const TAG_COUNTERS: u8 = 0x08;
const TAG_CHECKPOINT: u8 = 0x09;
const TAG_END: u8 = 0x0a;
const TAG_GC_START: u8 = 0x0b;
const TAG_GC_STOP: u8 = 0x0c;
const TAG_GC_ENABLED: u8 = 0x0d;
const TAG_GC_FINAL: u8 = 0x0e;
const TAG_GC_UNCOLLECTABLE: u8 = 0x0f;
const TAG_FREE: u8 = 0x40;
const TAG_ALLOC: u8 = 0x80;

/// Longest string a record may hold; longer names are cut by the tracker.
const MAX_STRING: u64 = 1 << 20;

/// Appends records to a byte buffer; the delta state lives for one chunk.
#[derive(Debug, Default)]
pub struct RecordEncoder {
    prev_addr: u64,
    prev_stack: u32,
}

impl RecordEncoder {
    /// A fresh encoder, as at the start of a chunk.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one record to `out`.
    pub fn encode(&mut self, record: &Record, out: &mut Vec<u8>) {
        match record {
            Record::String { id, text } => {
                out.push(TAG_STRING);
                put_varint(out, u64::from(*id));
                put_varint(out, text.len() as u64);
                out.extend_from_slice(text.as_bytes());
            }
            Record::Function {
                id,
                name,
                qualname,
                file,
                first_line,
            } => {
                out.push(TAG_FUNCTION);
                for v in [*id, *name, *qualname, *file, *first_line] {
                    put_varint(out, u64::from(v));
                }
            }
            Record::Frame { id, function, line } => {
                out.push(TAG_FRAME);
                for v in [*id, *function, *line] {
                    put_varint(out, u64::from(v));
                }
            }
            Record::Stack { id, parent, frame } => {
                out.push(TAG_STACK);
                for v in [*id, *parent, *frame] {
                    put_varint(out, u64::from(v));
                }
            }
            Record::Thread {
                id,
                native_id,
                name,
            } => {
                out.push(TAG_THREAD);
                put_varint(out, u64::from(*id));
                put_varint(out, *native_id);
                put_varint(out, u64::from(*name));
            }
            Record::SwitchThread(id) => {
                out.push(TAG_SWITCH_THREAD);
                put_varint(out, u64::from(*id));
            }
            Record::Alloc {
                addr,
                size,
                stack,
                domain,
            } => self.alloc(*addr, *size, *stack, *domain, out),
            Record::Free { addr } => self.free(*addr, out),
            Record::Peak => out.push(TAG_PEAK),
            Record::Counters {
                time_ns,
                live,
                peak,
                allocated,
                allocations,
                rss,
            } => {
                out.push(TAG_COUNTERS);
                for v in [*time_ns, *live, *peak, *allocated, *allocations, *rss] {
                    put_varint(out, v);
                }
            }
            Record::Checkpoint(label) => {
                out.push(TAG_CHECKPOINT);
                put_varint(out, u64::from(*label));
            }
            Record::GcStart {
                generation,
                time_ns,
                freed,
            } => {
                out.push(TAG_GC_START);
                out.push(*generation);
                put_varint(out, *time_ns);
                put_varint(out, *freed);
            }
            Record::GcStop {
                generation,
                time_ns,
                freed,
                collected,
            } => {
                out.push(TAG_GC_STOP);
                out.push(*generation);
                for v in [*time_ns, *freed, *collected] {
                    put_varint(out, v);
                }
            }
            Record::GcUncollectable(count) => {
                out.push(TAG_GC_UNCOLLECTABLE);
                put_varint(out, *count);
            }
            Record::GcEnabled { on, time_ns } => {
                out.push(TAG_GC_ENABLED);
                out.push(u8::from(*on));
                put_varint(out, *time_ns);
            }
            Record::GcFinal {
                garbage,
                frozen,
                enabled,
            } => {
                out.push(TAG_GC_FINAL);
                out.push(u8::from(*enabled));
                put_varint(out, *garbage);
                put_varint(out, *frozen);
            }
            Record::End => out.push(TAG_END),
        }
    }

    /// Appends an `Alloc` record: the same bytes as [`RecordEncoder::encode`] gives, without
    /// building a [`Record`].
    #[inline]
    pub fn alloc(&mut self, addr: u64, size: u64, stack: u32, domain: Domain, out: &mut Vec<u8>) {
        self.alloc_to(addr, size, stack, domain, out);
    }

    /// Appends a `Free` record (see [`RecordEncoder::alloc`]).
    #[inline]
    pub fn free(&mut self, addr: u64, out: &mut Vec<u8>) {
        self.free_to(addr, out);
    }

    #[inline(always)]
    fn alloc_to(&mut self, addr: u64, size: u64, stack: u32, domain: Domain, out: &mut impl Sink) {
        let same_stack = stack == self.prev_stack;
        let small = size.is_multiple_of(16) && (16..=240).contains(&size);
        let mut tag = TAG_ALLOC | (domain.code() << 5);
        if same_stack {
            tag |= 0x10;
        }
        if small {
            tag |= (size / 16) as u8;
        }
        out.byte(tag);
        if !small {
            out.varint(size);
        }
        self.put_addr(addr, out);
        if !same_stack {
            out.varint(zigzag(i64::from(stack) - i64::from(self.prev_stack)));
            self.prev_stack = stack;
        }
    }

    #[inline(always)]
    fn free_to(&mut self, addr: u64, out: &mut impl Sink) {
        out.byte(TAG_FREE);
        self.put_addr(addr, out);
    }

    #[inline(always)]
    fn put_addr(&mut self, addr: u64, out: &mut impl Sink) {
        let delta = addr.wrapping_sub(self.prev_addr) as i64;
        let aligned = (addr | self.prev_addr) & 15 == 0;
        out.varint((zigzag(delta >> 4) << 1) | u64::from(!aligned));
        if !aligned {
            out.byte((delta & 15) as u8);
        }
        self.prev_addr = addr;
    }
}

/// Where encoded bytes go.
trait Sink {
    fn byte(&mut self, b: u8);
    fn varint(&mut self, v: u64);
}

impl Sink for Vec<u8> {
    #[inline(always)]
    fn byte(&mut self, b: u8) {
        self.push(b);
    }

    #[inline(always)]
    fn varint(&mut self, v: u64) {
        put_varint(self, v);
    }
}

/// Bytes of the staging area of an [`EventsChunk`], and the room every event leaves free in
/// it (an allocation takes at most 27 bytes, and a varint is stored as a whole 8-byte word).
const STAGE: usize = 4096;
const STAGE_ROOM: usize = 48;

/// A fixed array the writer's hot path encodes into: plain stores, no growth checks; it is
/// moved into the chunk's buffer in one copy when nearly full.
#[derive(Debug)]
struct Stage {
    buf: Box<[u8; STAGE]>,
    len: usize,
}

impl Default for Stage {
    fn default() -> Self {
        Stage {
            buf: Box::new([0; STAGE]),
            len: 0,
        }
    }
}

impl Sink for Stage {
    #[inline(always)]
    fn byte(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    #[inline(always)]
    fn varint(&mut self, v: u64) {
        if v >= 1 << 56 {
            let mut bytes = Vec::with_capacity(10);
            put_varint_long(&mut bytes, v);
            self.buf[self.len..self.len + bytes.len()].copy_from_slice(&bytes);
            self.len += bytes.len();
            return;
        }
        let (packed, n) = pack_varint(v);
        self.buf[self.len..self.len + 8].copy_from_slice(&packed.to_le_bytes());
        self.len += n;
    }
}

/// The payload of one `Events` chunk, built record by record (the delta state starts afresh
/// with each chunk). [`crate::Writer::write_events`] writes it out and empties it.
///
/// Definitions ([`EventsChunk::define`]) are written at the start of the chunk, before every
/// event in it, so a writer may add them after the events that use them.
#[derive(Debug, Default)]
pub struct EventsChunk {
    encoder: RecordEncoder,
    defs: Vec<u8>,
    raw: Vec<u8>,
    /// The latest events, not yet moved to `raw`.
    stage: Stage,
    records: usize,
}

impl EventsChunk {
    /// An empty chunk.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a definition (string, function, frame, stack or thread record): it goes before
    /// every event of the chunk. Definitions carry no delta state.
    pub fn define(&mut self, record: &Record) {
        debug_assert!(matches!(
            record,
            Record::String { .. }
                | Record::Function { .. }
                | Record::Frame { .. }
                | Record::Stack { .. }
                | Record::Thread { .. }
        ));
        self.encoder.encode(record, &mut self.defs);
        self.records += 1;
    }

    /// Appends any record.
    pub fn push(&mut self, record: &Record) {
        self.unstage();
        self.encoder.encode(record, &mut self.raw);
        self.records += 1;
    }

    /// Appends an allocation (see [`Record::Alloc`]).
    #[inline]
    pub fn alloc(&mut self, addr: u64, size: u64, stack: u32, domain: Domain) {
        if self.stage.len > STAGE - STAGE_ROOM {
            self.unstage();
        }
        self.encoder
            .alloc_to(addr, size, stack, domain, &mut self.stage);
        self.records += 1;
    }

    /// Appends a free (see [`Record::Free`]).
    #[inline]
    pub fn free(&mut self, addr: u64) {
        if self.stage.len > STAGE - STAGE_ROOM {
            self.unstage();
        }
        self.encoder.free_to(addr, &mut self.stage);
        self.records += 1;
    }

    /// Moves the staged bytes to the chunk's buffer.
    #[inline(never)]
    fn unstage(&mut self) {
        self.raw
            .extend_from_slice(&self.stage.buf[..self.stage.len]);
        self.stage.len = 0;
    }

    /// Records appended since the chunk was last written.
    pub fn records(&self) -> usize {
        self.records
    }

    /// True when nothing was appended.
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// The encoded payload: definitions, then the rest in order.
    pub(crate) fn payload(&mut self) -> &[u8] {
        self.unstage();
        if self.defs.is_empty() {
            return &self.raw;
        }
        self.defs.extend_from_slice(&self.raw);
        self.raw.clear();
        std::mem::swap(&mut self.defs, &mut self.raw);
        &self.raw
    }

    /// Empties the chunk, keeping its buffers.
    pub(crate) fn clear(&mut self) {
        self.encoder = RecordEncoder::new();
        self.defs.clear();
        self.raw.clear();
        self.stage.len = 0;
        self.records = 0;
    }
}

/// Decodes the records of one chunk's payload.
#[derive(Debug)]
pub struct RecordDecoder<'a> {
    data: &'a [u8],
    pos: usize,
    /// File offset of the chunk payload, for error messages.
    base_offset: u64,
    prev_addr: u64,
    prev_stack: u32,
}

/// Where a [`RecordDecoder`] is in its payload, to stop and resume it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DecoderState {
    pos: usize,
    prev_addr: u64,
    prev_stack: u32,
}

impl<'a> RecordDecoder<'a> {
    /// Decodes `data`, a chunk payload that starts at `base_offset` in the file (errors name
    /// the offset of the chunk plus the position inside its decompressed payload).
    pub fn new(data: &'a [u8], base_offset: u64) -> Self {
        RecordDecoder {
            data,
            pos: 0,
            base_offset,
            prev_addr: 0,
            prev_stack: 0,
        }
    }

    pub(crate) fn resume(data: &'a [u8], base_offset: u64, state: DecoderState) -> Self {
        RecordDecoder {
            data,
            pos: state.pos,
            base_offset,
            prev_addr: state.prev_addr,
            prev_stack: state.prev_stack,
        }
    }

    pub(crate) fn state(&self) -> DecoderState {
        DecoderState {
            pos: self.pos,
            prev_addr: self.prev_addr,
            prev_stack: self.prev_stack,
        }
    }

    #[cold]
    fn err(&self, what: impl Into<String>) -> FormatError {
        FormatError::corrupt(
            self.base_offset,
            format!("{} (payload byte {})", what.into(), self.pos),
        )
    }

    #[inline]
    fn byte(&mut self) -> Result<u8, FormatError> {
        let b = *self
            .data
            .get(self.pos)
            .ok_or_else(|| self.err("record cut short"))?;
        self.pos += 1;
        Ok(b)
    }

    #[inline]
    fn varint(&mut self) -> Result<u64, FormatError> {
        match get_varint(self.data, &mut self.pos) {
            Ok(v) => Ok(v),
            Err(VarintError::CutShort) => Err(self.err("record cut short")),
            Err(VarintError::TooLong) => Err(self.err("varint longer than 64 bits")),
        }
    }

    /// A GC generation: 0, 1 or 2.
    fn generation(&mut self) -> Result<u8, FormatError> {
        match self.byte()? {
            g @ 0..=2 => Ok(g),
            g => Err(self.err(format!("GC generation {g} out of range"))),
        }
    }

    fn flag(&mut self) -> Result<bool, FormatError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(self.err(format!("flag byte {b:#x} is neither 0 nor 1"))),
        }
    }

    fn u32(&mut self) -> Result<u32, FormatError> {
        let v = self.varint()?;
        u32::try_from(v).map_err(|_| self.err(format!("id {v} out of range")))
    }

    #[inline]
    fn addr(&mut self) -> Result<u64, FormatError> {
        let v = self.varint()?;
        let mut delta = unzigzag(v >> 1) << 4;
        if v & 1 == 1 {
            delta |= i64::from(self.byte()? & 15);
        }
        self.prev_addr = self.prev_addr.wrapping_add(delta as u64);
        Ok(self.prev_addr)
    }

    fn decode(&mut self) -> Result<Record, FormatError> {
        let tag = self.byte()?;
        if tag & TAG_ALLOC != 0 {
            let domain = Domain::from_code((tag >> 5) & 3)
                .ok_or_else(|| self.err(format!("unknown allocation domain in tag {tag:#x}")))?;
            let size = match tag & 0x0f {
                0 => self.varint()?,
                units => u64::from(units) * 16,
            };
            let addr = self.addr()?;
            if tag & 0x10 == 0 {
                let delta = unzigzag(self.varint()?);
                let stack = i64::from(self.prev_stack).checked_add(delta);
                self.prev_stack = stack
                    .and_then(|s| u32::try_from(s).ok())
                    .ok_or_else(|| self.err("stack id out of range"))?;
            }
            return Ok(Record::Alloc {
                addr,
                size,
                stack: self.prev_stack,
                domain,
            });
        }
        Ok(match tag {
            TAG_FREE => Record::Free { addr: self.addr()? },
            TAG_STRING => {
                let id = self.u32()?;
                let len = self.varint()?;
                if len > MAX_STRING {
                    return Err(self.err(format!("string of {len} bytes")));
                }
                let end = self.pos + len as usize;
                let bytes = self
                    .data
                    .get(self.pos..end)
                    .ok_or_else(|| self.err("string cut short"))?;
                self.pos = end;
                Record::String {
                    id,
                    text: String::from_utf8_lossy(bytes).into_owned(),
                }
            }
            TAG_FUNCTION => Record::Function {
                id: self.u32()?,
                name: self.u32()?,
                qualname: self.u32()?,
                file: self.u32()?,
                first_line: self.u32()?,
            },
            TAG_FRAME => Record::Frame {
                id: self.u32()?,
                function: self.u32()?,
                line: self.u32()?,
            },
            TAG_STACK => Record::Stack {
                id: self.u32()?,
                parent: self.u32()?,
                frame: self.u32()?,
            },
            TAG_THREAD => Record::Thread {
                id: self.u32()?,
                native_id: self.varint()?,
                name: self.u32()?,
            },
            TAG_SWITCH_THREAD => Record::SwitchThread(self.u32()?),
            TAG_PEAK => Record::Peak,
            TAG_COUNTERS => Record::Counters {
                time_ns: self.varint()?,
                live: self.varint()?,
                peak: self.varint()?,
                allocated: self.varint()?,
                allocations: self.varint()?,
                rss: self.varint()?,
            },
            TAG_CHECKPOINT => Record::Checkpoint(self.u32()?),
            TAG_GC_START => Record::GcStart {
                generation: self.generation()?,
                time_ns: self.varint()?,
                freed: self.varint()?,
            },
            TAG_GC_STOP => Record::GcStop {
                generation: self.generation()?,
                time_ns: self.varint()?,
                freed: self.varint()?,
                collected: self.varint()?,
            },
            TAG_GC_UNCOLLECTABLE => Record::GcUncollectable(self.varint()?),
            TAG_GC_ENABLED => {
                let on = self.flag()?;
                Record::GcEnabled {
                    on,
                    time_ns: self.varint()?,
                }
            }
            TAG_GC_FINAL => {
                let enabled = self.flag()?;
                Record::GcFinal {
                    garbage: self.varint()?,
                    frozen: self.varint()?,
                    enabled,
                }
            }
            TAG_END => Record::End,
            other => return Err(self.err(format!("unknown record tag {other:#x}"))),
        })
    }
}

impl Iterator for RecordDecoder<'_> {
    type Item = Result<Record, FormatError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.data.len() {
            return None;
        }
        let result = self.decode();
        if result.is_err() {
            self.pos = self.data.len();
        }
        Some(result)
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Why a varint could not be read.
pub(crate) enum VarintError {
    /// The data ends inside it.
    CutShort,
    /// More than 64 bits.
    TooLong,
}

/// Reads a LEB128 varint at `*pos`, advancing it.
#[inline]
pub(crate) fn get_varint(data: &[u8], pos: &mut usize) -> Result<u64, VarintError> {
    // Most varints in an event stream are one byte (small deltas, sizes, ids).
    if let Some(&b) = data.get(*pos)
        && b < 0x80
    {
        *pos += 1;
        return Ok(u64::from(b));
    }
    get_varint_long(data, pos)
}

#[cold]
fn get_varint_long(data: &[u8], pos: &mut usize) -> Result<u64, VarintError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *data.get(*pos).ok_or(VarintError::CutShort)?;
        *pos += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(VarintError::TooLong)
}

/// Appends `v` as a LEB128 varint. Values below 2^56 (nearly all) are packed in a register
/// and stored as one 8-byte write, then the length is cut back: no byte-by-byte stores, no
/// `memcpy` call.
#[inline(always)]
pub(crate) fn put_varint(out: &mut Vec<u8>, v: u64) {
    if v >= 1 << 56 {
        return put_varint_long(out, v);
    }
    let (packed, n) = pack_varint(v);
    let len = out.len();
    out.extend_from_slice(&packed.to_le_bytes());
    out.truncate(len + n);
}

/// `v < 2^56` as LEB128 bytes packed little-endian in a word, and how many bytes they are.
#[inline(always)]
fn pack_varint(v: u64) -> (u64, usize) {
    if v < 1 << 7 {
        return (v, 1);
    }
    if v < 1 << 14 {
        return ((v & 0x7f) | 0x80 | (v >> 7) << 8, 2);
    }
    if v < 1 << 21 {
        return (
            (v & 0x7f) | 0x80 | ((v >> 7) & 0x7f | 0x80) << 8 | (v >> 14) << 16,
            3,
        );
    }
    let (mut rest, mut packed, mut n) = (v >> 7, v & 0x7f, 1);
    while rest != 0 {
        packed |= 0x80 << (8 * (n - 1));
        packed |= (rest & 0x7f) << (8 * n);
        rest >>= 7;
        n += 1;
    }
    (packed, n)
}

#[cold]
fn put_varint_long(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(records: &[Record]) -> Vec<u8> {
        let mut enc = RecordEncoder::new();
        let mut out = Vec::new();
        for r in records {
            enc.encode(r, &mut out);
        }
        let back: Vec<Record> = RecordDecoder::new(&out, 0)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(back, records);
        out
    }

    #[test]
    fn gc_records_round_trip() {
        round_trip(&[
            Record::GcEnabled {
                on: true,
                time_ns: 5,
            },
            Record::GcStart {
                generation: 2,
                time_ns: 1_000_000,
                freed: 123_456,
            },
            Record::GcStop {
                generation: 2,
                time_ns: 1_250_000,
                freed: 9_123_456,
                collected: 40_000,
            },
            Record::GcUncollectable(3),
            Record::GcFinal {
                garbage: 3,
                frozen: 0,
                enabled: false,
            },
        ]);
    }

    #[test]
    fn a_gc_generation_past_2_is_refused() {
        let mut out = Vec::new();
        RecordEncoder::new().encode(
            &Record::GcStart {
                generation: 7,
                time_ns: 1,
                freed: 1,
            },
            &mut out,
        );
        let err = RecordDecoder::new(&out, 0).next().unwrap().unwrap_err();
        assert!(err.to_string().contains("GC generation 7"), "{err}");
    }

    #[test]
    fn small_pymalloc_alloc_and_free_take_few_bytes() {
        let recs = [
            Record::Alloc {
                addr: 0x7f00_0000_1000,
                size: 32,
                stack: 7,
                domain: Domain::Python,
            },
            Record::Alloc {
                addr: 0x7f00_0000_1020,
                size: 32,
                stack: 7,
                domain: Domain::Python,
            },
            Record::Free {
                addr: 0x7f00_0000_1000,
            },
        ];
        let bytes = round_trip(&recs);
        // First alloc pays for the absolute address; the second and the free are 2 bytes each.
        assert_eq!(bytes.len() - 2 - 2, 1 + 7 + 1);
    }

    /// The writer's direct path must give exactly the bytes of the general encoder, so old
    /// and new captures read alike.
    #[test]
    fn direct_alloc_and_free_match_the_general_encoder() {
        let mut state = 0x1234_5678_9abc_def1u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut records = Vec::new();
        for _ in 0..10_000 {
            let r = next();
            let addr = match r % 4 {
                0 => next(),
                1 => 0x7f00_0000_0000 + (next() % 4096) * 16,
                2 => 0x7f00_0000_0000 + next() % 65536,
                _ => r & 0xffff_fff0,
            };
            records.push(if r % 3 == 0 {
                Record::Free { addr }
            } else {
                let domain = [Domain::Python, Domain::Native, Domain::Mmap][(r % 7 % 3) as usize];
                let size = match r % 5 {
                    0 => next(),
                    1 => (next() % 16) * 16,
                    _ => next() % 300,
                };
                let stack = if r % 11 == 0 {
                    u32::MAX
                } else {
                    (next() % 9) as u32
                };
                Record::Alloc {
                    addr,
                    size,
                    stack,
                    domain,
                }
            });
        }
        let (mut general, mut direct) = (RecordEncoder::new(), RecordEncoder::new());
        let (mut a, mut b) = (Vec::new(), Vec::new());
        // The chunk's staged path too, over many stage lengths.
        let mut chunk = EventsChunk::new();
        for r in &records {
            general.encode(r, &mut a);
            match *r {
                Record::Alloc {
                    addr,
                    size,
                    stack,
                    domain,
                } => {
                    direct.alloc(addr, size, stack, domain, &mut b);
                    chunk.alloc(addr, size, stack, domain);
                }
                Record::Free { addr } => {
                    direct.free(addr, &mut b);
                    chunk.free(addr);
                }
                _ => unreachable!(),
            }
        }
        assert_eq!(a, b);
        assert!(a.len() > 4 * STAGE);
        assert_eq!(chunk.payload(), &a[..]);
        round_trip(&records);
    }

    #[test]
    fn varints_round_trip_at_every_length() {
        let mut values = vec![0, 1, 127, 128, 255, 16_383, 16_384, u64::MAX];
        for bits in 1..64 {
            values.extend([(1u64 << bits) - 1, 1u64 << bits, (1u64 << bits) + 1]);
        }
        let mut out = Vec::new();
        for &v in &values {
            let before = out.len();
            put_varint(&mut out, v);
            assert_eq!(
                out.len() - before,
                (64 - v.leading_zeros() as usize).max(1).div_ceil(7)
            );
        }
        let mut pos = 0;
        for &v in &values {
            assert_eq!(get_varint(&out, &mut pos).ok(), Some(v));
        }
        assert_eq!(pos, out.len());
    }

    /// Definitions added after an event still come before it in the payload.
    #[test]
    fn definitions_go_first_in_a_chunk() {
        let mut chunk = EventsChunk::new();
        chunk.alloc(0x1000, 32, 1, Domain::Python);
        chunk.define(&Record::Stack {
            id: 1,
            parent: 0,
            frame: 0,
        });
        chunk.free(0x1000);
        assert_eq!(chunk.records(), 3);
        let back: Vec<Record> = RecordDecoder::new(chunk.payload(), 0)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            back,
            [
                Record::Stack {
                    id: 1,
                    parent: 0,
                    frame: 0
                },
                Record::Alloc {
                    addr: 0x1000,
                    size: 32,
                    stack: 1,
                    domain: Domain::Python
                },
                Record::Free { addr: 0x1000 },
            ]
        );
    }

    #[test]
    fn unaligned_addresses_and_large_sizes_round_trip() {
        round_trip(&[
            Record::Alloc {
                addr: 0x1003,
                size: 1 << 40,
                stack: 0,
                domain: Domain::Mmap,
            },
            Record::Alloc {
                addr: 0x10,
                size: 17,
                stack: 9,
                domain: Domain::Native,
            },
            Record::Free { addr: 0x1003 },
            Record::String {
                id: 3,
                text: "<script>é".into(),
            },
            Record::Counters {
                time_ns: 5,
                live: 6,
                peak: 7,
                allocated: 8,
                allocations: 9,
                rss: 10,
            },
            Record::End,
        ]);
    }

    /// Found by `cargo fuzz run records`: a stack delta near `i64::MAX` overflowed the addition
    /// (a panic in debug builds, a wrong id in release ones).
    #[test]
    fn fuzz_huge_stack_delta_is_an_error() {
        let mut payload = vec![TAG_ALLOC | 1, 0];
        put_varint(&mut payload, zigzag(i64::MAX));
        let err = RecordDecoder::new(&payload, 7).next().unwrap().unwrap_err();
        assert_eq!(
            err.to_string(),
            "capture corrupt at offset 7: stack id out of range (payload byte 12)"
        );
    }

    #[test]
    fn unknown_tag_is_an_error_with_position() {
        let err = RecordDecoder::new(&[0x3f], 100)
            .next()
            .unwrap()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "capture corrupt at offset 100: unknown record tag 0x3f (payload byte 1)"
        );
    }
}
