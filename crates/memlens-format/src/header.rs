use crate::FormatError;
use crate::encode::{VarintError, get_varint, put_varint};

/// The first eight bytes of every capture.
pub const MAGIC: [u8; 8] = *b"MLENS\0\r\n";

/// The newest format version this crate writes and reads.
pub const FORMAT_VERSION: u16 = 1;

/// Whether every allocation was recorded or a byte-weighted sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Poisson sampling by bytes; each sampled block stands for `size / (1 - e^(-size/rate))`.
    #[default]
    Sampling,
    /// Every allocation and free.
    Exact,
}

impl Mode {
    /// `"sampling"` or `"exact"`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Sampling => "sampling",
            Mode::Exact => "exact",
        }
    }
}

/// What the capture is of: written once at the start of the file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    /// Python version, e.g. `3.11.7`.
    pub python_version: String,
    /// Process id of the tracked process.
    pub pid: u32,
    /// The program's command line as the user gave it.
    pub command: Vec<String>,
    /// Sampling or exact.
    pub mode: Mode,
    /// Mean bytes between samples (sampling mode).
    pub sample_rate: u64,
    /// Wall-clock start, nanoseconds since the Unix epoch.
    pub start_unix_ns: u64,
    /// Path prefixes of the standard library and installed packages, folded into callers.
    pub library_prefixes: Vec<String>,
}

impl Header {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_str(&mut out, &self.python_version);
        put_varint(&mut out, u64::from(self.pid));
        put_varint(&mut out, self.command.len() as u64);
        for arg in &self.command {
            put_str(&mut out, arg);
        }
        out.push(match self.mode {
            Mode::Sampling => 0,
            Mode::Exact => 1,
        });
        put_varint(&mut out, self.sample_rate);
        put_varint(&mut out, self.start_unix_ns);
        put_varint(&mut out, self.library_prefixes.len() as u64);
        for p in &self.library_prefixes {
            put_str(&mut out, p);
        }
        out
    }

    pub(crate) fn decode(data: &[u8], offset: u64) -> Result<Self, FormatError> {
        let mut cur = Cursor {
            data,
            pos: 0,
            offset,
        };
        let python_version = cur.string()?;
        let pid = u32::try_from(cur.varint()?).map_err(|_| cur.bad("pid out of range"))?;
        let n = cur.count()?;
        let command = (0..n).map(|_| cur.string()).collect::<Result<_, _>>()?;
        let mode = match cur.byte()? {
            0 => Mode::Sampling,
            1 => Mode::Exact,
            other => return Err(cur.bad(&format!("unknown mode {other}"))),
        };
        let sample_rate = cur.varint()?;
        let start_unix_ns = cur.varint()?;
        let n = cur.count()?;
        let library_prefixes = (0..n).map(|_| cur.string()).collect::<Result<_, _>>()?;
        Ok(Header {
            python_version,
            pid,
            command,
            mode,
            sample_rate,
            start_unix_ns,
            library_prefixes,
        })
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    offset: u64,
}

impl Cursor<'_> {
    fn bad(&self, what: &str) -> FormatError {
        FormatError::corrupt(self.offset + self.pos as u64, format!("header: {what}"))
    }

    fn byte(&mut self) -> Result<u8, FormatError> {
        let b = *self
            .data
            .get(self.pos)
            .ok_or_else(|| self.bad("cut short"))?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, FormatError> {
        get_varint(self.data, &mut self.pos).map_err(|e| match e {
            VarintError::CutShort => self.bad("cut short"),
            VarintError::TooLong => self.bad("varint too long"),
        })
    }

    fn count(&mut self) -> Result<usize, FormatError> {
        let n = self.varint()?;
        if n > self.data.len() as u64 {
            return Err(self.bad(&format!("count {n} exceeds header size")));
        }
        Ok(n as usize)
    }

    fn string(&mut self) -> Result<String, FormatError> {
        let n = self.count()?;
        let bytes = self
            .data
            .get(self.pos..self.pos + n)
            .ok_or_else(|| self.bad("string cut short"))?;
        self.pos += n;
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }
}
