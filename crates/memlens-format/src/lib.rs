//! The memlens capture file: the one contract between the tracker and everything that reads it.
//!
//! A capture is a [`Header`] followed by self-delimiting chunks. Each chunk carries a kind, a
//! codec, its lengths and a CRC-32 of its stored bytes, so a reader can tell a clean end, a
//! truncated tail (a killed process) and corruption apart, and say at which offset.
//!
//! ```text
//! file    = magic "MLENS\0\r\n" (8) | format version u16 LE | header length u32 LE | header
//!           | chunk*
//! chunk   = "CK" | kind u8 | codec u8 (0 raw, 1 zstd) | stored length u32 LE
//!           | raw length u32 LE | crc32(stored bytes) u32 LE | stored bytes
//! ```
//!
//! An `Events` chunk holds a sequence of [`Record`]s, varint coded with deltas (see
//! [`encode`]): interned strings, functions, frames and stack nodes appear before the first event
//! that uses them; allocation and free events appear in the order they happened across all
//! threads. Ids are implicit: the n-th `Function` record defines function n, and so on.
//!
//! Chunk kinds: 1 `Events`; 2 a heap snapshot; 3 the running count of events the tracker
//! dropped (a varint; written with the next chunk after it grows, so the last one is the
//! total). A reader skips kinds it does not know, so a kind is added without a new format
//! version and older readers still read newer captures.
//!
//! Main types: [`Header`], [`Record`], [`Writer`] (append chunks to any `Write`; an
//! [`EventsChunk`] encodes events without building [`Record`]s), and [`Reader`] (iterate the
//! chunks of a byte slice, e.g. a memory map).
//!
//! ```
//! use memlens_format::{Header, Mode, Record, Reader, Writer};
//! let header = Header { mode: Mode::Exact, ..Header::default() };
//! let mut bytes = Vec::new();
//! let mut writer = Writer::new(&mut bytes, &header).unwrap();
//! writer.write_records(&[Record::Free { addr: 0x1000 }]).unwrap();
//! writer.finish().unwrap();
//! let reader = Reader::new(&bytes).unwrap();
//! assert_eq!(reader.header().mode, Mode::Exact);
//! let records: Vec<Record> = reader.records().collect::<Result<_, _>>().unwrap();
//! assert_eq!(records, vec![Record::Free { addr: 0x1000 }]);
//! ```
#![deny(missing_docs)]

mod addr_hash;
mod encode;
mod error;
mod header;
mod reader;
mod record;
mod writer;

pub use addr_hash::{AddrHasher, AddrMap};
pub use encode::{EventsChunk, RecordDecoder, RecordEncoder};
pub use error::FormatError;
pub use header::{FORMAT_VERSION, Header, MAGIC, Mode};
pub use reader::{Chunk, ChunkKind, ChunkSpan, ChunkSpans, Reader, Records};
pub use record::{Domain, Record};
pub use writer::Writer;
