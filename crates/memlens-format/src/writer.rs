use std::io::Write;

use crate::encode::{EventsChunk, put_varint};
use crate::header::{FORMAT_VERSION, MAGIC};
use crate::reader::ChunkKind;
use crate::{FormatError, Header, Record};

/// zstd level 1: the fastest level still compresses event streams 3-5x.
const ZSTD_LEVEL: i32 = 1;

/// Appends chunks to a capture. Each `write_*` call produces one complete chunk, so whatever
/// was written before a crash stays readable.
#[derive(Debug)]
pub struct Writer<W: Write> {
    out: W,
    bytes_written: u64,
}

impl<W: Write> Writer<W> {
    /// Writes the file header and returns a writer positioned for the first chunk.
    pub fn new(mut out: W, header: &Header) -> Result<Self, FormatError> {
        let body = header.encode();
        out.write_all(&MAGIC)?;
        out.write_all(&FORMAT_VERSION.to_le_bytes())?;
        out.write_all(&(body.len() as u32).to_le_bytes())?;
        out.write_all(&body)?;
        out.flush()?;
        Ok(Writer {
            out,
            bytes_written: 14 + body.len() as u64,
        })
    }

    /// Encodes `records` into one compressed `Events` chunk (nothing when empty).
    pub fn write_records(&mut self, records: &[Record]) -> Result<(), FormatError> {
        let mut chunk = EventsChunk::new();
        for r in records {
            chunk.push(r);
        }
        self.write_events(&mut chunk)
    }

    /// Writes `chunk` as one compressed `Events` chunk (nothing when empty) and empties it.
    pub fn write_events(&mut self, chunk: &mut EventsChunk) -> Result<(), FormatError> {
        if chunk.is_empty() {
            return Ok(());
        }
        let result = self.write_chunk(ChunkKind::Events, chunk.payload());
        chunk.clear();
        result
    }

    /// Writes a [`ChunkKind::DroppedEvents`] chunk: `count` events dropped since tracking
    /// started (a running total; readers keep the last).
    pub fn write_dropped_events(&mut self, count: u64) -> Result<(), FormatError> {
        let mut raw = Vec::with_capacity(10);
        put_varint(&mut raw, count);
        self.write_chunk(ChunkKind::DroppedEvents, &raw)
    }

    /// Writes one chunk of `kind` holding `raw` (compressed when that pays) and flushes.
    pub fn write_chunk(&mut self, kind: ChunkKind, raw: &[u8]) -> Result<(), FormatError> {
        let compressed = zstd::bulk::compress(raw, ZSTD_LEVEL)?;
        let (codec, stored): (u8, &[u8]) = if compressed.len() < raw.len() {
            (1, &compressed)
        } else {
            (0, raw)
        };
        let stored_len = u32::try_from(stored.len())
            .map_err(|_| FormatError::corrupt(self.bytes_written, "chunk over 4 GiB"))?;
        let mut head = [0u8; 16];
        head[0..2].copy_from_slice(b"CK");
        head[2] = kind.code();
        head[3] = codec;
        head[4..8].copy_from_slice(&stored_len.to_le_bytes());
        head[8..12].copy_from_slice(&(raw.len() as u32).to_le_bytes());
        head[12..16].copy_from_slice(&crc32fast::hash(stored).to_le_bytes());
        self.out.write_all(&head)?;
        self.out.write_all(stored)?;
        self.out.flush()?;
        self.bytes_written += 16 + stored.len() as u64;
        Ok(())
    }

    /// Bytes written so far, header included.
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// The underlying writer.
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(mut self) -> Result<W, FormatError> {
        self.out.flush()?;
        Ok(self.out)
    }
}
