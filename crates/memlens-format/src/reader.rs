use std::borrow::Cow;

use crate::encode::{DecoderState, RecordDecoder, get_varint};
use crate::header::{FORMAT_VERSION, MAGIC};
use crate::{FormatError, Header, Record};

/// Largest decompressed chunk accepted; the tracker writes far smaller ones.
const MAX_CHUNK_RAW: u32 = 256 << 20;

/// What a chunk holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkKind {
    /// [`Record`]s.
    Events,
    /// A heap snapshot (the memlens-heap format).
    HeapSnapshot,
    /// How many events the tracker has dropped so far because a thread's buffer stayed full:
    /// one LEB128 varint, a running count (the last such chunk holds the total). See
    /// [`Reader::dropped_events`].
    DroppedEvents,
    /// A chunk kind from a newer memlens; readers skip it.
    Unknown(u8),
}

impl ChunkKind {
    pub(crate) fn code(self) -> u8 {
        match self {
            ChunkKind::Events => 1,
            ChunkKind::HeapSnapshot => 2,
            ChunkKind::DroppedEvents => 3,
            ChunkKind::Unknown(c) => c,
        }
    }

    fn from_code(code: u8) -> Self {
        match code {
            1 => ChunkKind::Events,
            2 => ChunkKind::HeapSnapshot,
            3 => ChunkKind::DroppedEvents,
            c => ChunkKind::Unknown(c),
        }
    }
}

/// One chunk, checked and decompressed.
#[derive(Debug)]
pub struct Chunk<'a> {
    /// What it holds.
    pub kind: ChunkKind,
    /// File offset of the chunk header.
    pub offset: u64,
    /// The decompressed payload.
    pub data: Cow<'a, [u8]>,
}

impl Chunk<'_> {
    /// Decodes the records of an `Events` chunk.
    pub fn records(&self) -> RecordDecoder<'_> {
        RecordDecoder::new(&self.data, self.offset)
    }
}

/// Reads a capture held in memory (typically a memory map).
#[derive(Debug)]
pub struct Reader<'a> {
    data: &'a [u8],
    header: Header,
    first_chunk: usize,
}

impl<'a> Reader<'a> {
    /// Checks the magic and version and decodes the header.
    pub fn new(data: &'a [u8]) -> Result<Self, FormatError> {
        if data.len() < MAGIC.len() || data[..MAGIC.len()] != MAGIC {
            if MAGIC.starts_with(data) {
                return Err(FormatError::Truncated {
                    offset: data.len() as u64,
                    what: "magic",
                });
            }
            return Err(FormatError::BadMagic);
        }
        let fixed = data.get(8..14).ok_or(FormatError::Truncated {
            offset: data.len() as u64,
            what: "file header",
        })?;
        let version = u16::from_le_bytes([fixed[0], fixed[1]]);
        if version > FORMAT_VERSION {
            return Err(FormatError::NewerVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        if version == 0 {
            return Err(FormatError::corrupt(8, "format version 0"));
        }
        let len = u32::from_le_bytes([fixed[2], fixed[3], fixed[4], fixed[5]]) as usize;
        let body = data.get(14..14 + len).ok_or(FormatError::Truncated {
            offset: data.len() as u64,
            what: "file header",
        })?;
        let header = Header::decode(body, 14)?;
        Ok(Reader {
            data,
            header,
            first_chunk: 14 + len,
        })
    }

    /// The capture's header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Chunk byte ranges in file order, found without decompressing anything. Stops with an
    /// error at the first truncated or malformed chunk header.
    pub fn chunk_spans(&self) -> ChunkSpans<'a> {
        ChunkSpans {
            data: self.data,
            pos: self.first_chunk,
            done: false,
        }
    }

    /// Events the tracker dropped (its buffers stayed full, so they never reached the file):
    /// the count in the last readable [`ChunkKind::DroppedEvents`] chunk, 0 when there is none
    /// (nothing was dropped, or the capture predates the chunk). Reading stops at the first
    /// bad chunk, as [`Reader::records`] does; the chunks are small and cheap to find.
    pub fn dropped_events(&self) -> u64 {
        let mut count = 0;
        for span in self.chunk_spans() {
            let Ok(span) = span else { break };
            if span.kind() != ChunkKind::DroppedEvents {
                continue;
            }
            let Ok(chunk) = span.load() else { break };
            if let Ok(n) = get_varint(&chunk.data, &mut 0) {
                count = count.max(n);
            }
        }
        count
    }

    /// All records of all `Events` chunks in order.
    pub fn records(&self) -> Records<'a> {
        Records {
            spans: self.chunk_spans(),
            current: None,
        }
    }
}

/// A chunk located in the file but not yet checked or decompressed.
#[derive(Debug, Clone, Copy)]
pub struct ChunkSpan<'a> {
    offset: u64,
    kind: u8,
    codec: u8,
    raw_len: u32,
    crc: u32,
    stored: &'a [u8],
}

impl<'a> ChunkSpan<'a> {
    /// Checks the CRC and decompresses.
    pub fn load(&self) -> Result<Chunk<'a>, FormatError> {
        let offset = self.offset;
        if crc32fast::hash(self.stored) != self.crc {
            return Err(FormatError::corrupt(offset, "chunk checksum mismatch"));
        }
        let data = match self.codec {
            0 => Cow::Borrowed(self.stored),
            1 => {
                // The frame states its size: one that contradicts the chunk header is refused
                // before anything is inflated (decompression never writes past `raw_len`).
                if let Ok(Some(n)) = zstd::zstd_safe::get_frame_content_size(self.stored)
                    && n != u64::from(self.raw_len)
                {
                    return Err(FormatError::corrupt(
                        offset,
                        format!(
                            "chunk declares {} bytes but its frame holds {n}",
                            self.raw_len
                        ),
                    ));
                }
                let out =
                    zstd::bulk::decompress(self.stored, self.raw_len as usize).map_err(|e| {
                        FormatError::corrupt(offset, format!("cannot decompress chunk: {e}"))
                    })?;
                if out.len() != self.raw_len as usize {
                    return Err(FormatError::corrupt(offset, "chunk length mismatch"));
                }
                Cow::Owned(out)
            }
            other => {
                return Err(FormatError::corrupt(
                    offset,
                    format!("unknown codec {other}"),
                ));
            }
        };
        Ok(Chunk {
            kind: ChunkKind::from_code(self.kind),
            offset,
            data,
        })
    }

    /// File offset of the chunk header.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// File offset just past the chunk.
    pub fn end(&self) -> u64 {
        self.offset + 16 + self.stored.len() as u64
    }

    /// Decompressed size its header declares (not yet checked).
    pub fn raw_len(&self) -> u32 {
        self.raw_len
    }

    /// What the chunk holds (read from its header, before any check).
    pub fn kind(&self) -> ChunkKind {
        ChunkKind::from_code(self.kind)
    }
}

/// Iterator over [`ChunkSpan`]s.
#[derive(Debug)]
pub struct ChunkSpans<'a> {
    data: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> Iterator for ChunkSpans<'a> {
    type Item = Result<ChunkSpan<'a>, FormatError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.data.len() {
            return None;
        }
        let offset = self.pos as u64;
        let result = (|| {
            let head = self
                .data
                .get(self.pos..self.pos + 16)
                .ok_or(FormatError::Truncated {
                    offset,
                    what: "chunk header",
                })?;
            if &head[0..2] != b"CK" {
                return Err(FormatError::corrupt(offset, "bad chunk marker"));
            }
            let stored_len = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes")) as usize;
            let raw_len = u32::from_le_bytes(head[8..12].try_into().expect("4 bytes"));
            let crc = u32::from_le_bytes(head[12..16].try_into().expect("4 bytes"));
            if raw_len > MAX_CHUNK_RAW {
                return Err(FormatError::corrupt(
                    offset,
                    format!("chunk claims {raw_len} bytes"),
                ));
            }
            let start = self.pos + 16;
            let stored =
                self.data
                    .get(start..start + stored_len)
                    .ok_or(FormatError::Truncated {
                        offset,
                        what: "chunk body",
                    })?;
            self.pos = start + stored_len;
            Ok(ChunkSpan {
                offset,
                kind: head[2],
                codec: head[3],
                raw_len,
                crc,
                stored,
            })
        })();
        if result.is_err() {
            self.done = true;
        }
        Some(result)
    }
}

/// Iterator over every record of every `Events` chunk, decoded as it goes: one decompressed
/// chunk is held at a time, never its records.
#[derive(Debug)]
pub struct Records<'a> {
    spans: ChunkSpans<'a>,
    current: Option<(Chunk<'a>, DecoderState)>,
}

impl Iterator for Records<'_> {
    type Item = Result<Record, FormatError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((chunk, state)) = &mut self.current {
                let mut decoder = RecordDecoder::resume(&chunk.data, chunk.offset, *state);
                match decoder.next() {
                    Some(Ok(r)) => {
                        *state = decoder.state();
                        return Some(Ok(r));
                    }
                    Some(Err(e)) => {
                        self.current = None;
                        self.spans.done = true;
                        return Some(Err(e));
                    }
                    None => self.current = None,
                }
            }
            let span = match self.spans.next()? {
                Ok(span) => span,
                Err(e) => return Some(Err(e)),
            };
            if span.kind() != ChunkKind::Events {
                continue;
            }
            match span.load() {
                Ok(c) => self.current = Some((c, DecoderState::default())),
                Err(e) => {
                    self.spans.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}
