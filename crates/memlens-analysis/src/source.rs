//! Getting a capture's bytes: a memory map when that is safe, a plain read otherwise.
//!
//! A map of a file that another process truncates turns the next access past the new end into
//! SIGBUS, which would kill the report. The tracker only ever appends to a capture, but a new
//! run writing to the same path truncates it first, and a capture being written may be
//! replaced. So a file is mapped only when it is large enough for copying to cost (at least
//! [`MAP_AT_LEAST`]) and has not been modified for [`QUIET_FOR`]; anything else is read into
//! memory, which no other process can pull away. A file truncated *while* a large quiet one is
//! being read is the remaining risk, as with every tool that maps files (ripgrep included).

use std::fs::File;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Smaller captures are read: a copy of tens of megabytes costs less than a few milliseconds.
pub const MAP_AT_LEAST: u64 = 64 << 20;
/// A capture modified more recently may still be written by a running tracker.
pub const QUIET_FOR: Duration = Duration::from_secs(10);

/// A capture's bytes, mapped or read.
#[derive(Debug)]
pub enum CaptureBytes {
    /// Mapped read-only.
    Mapped(memmap2::Mmap),
    /// Read into memory.
    Read(Vec<u8>),
}

impl std::ops::Deref for CaptureBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            CaptureBytes::Mapped(m) => m,
            CaptureBytes::Read(v) => v,
        }
    }
}

impl CaptureBytes {
    /// Opens `path`, mapping it when that is safe (see the module documentation).
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = File::open(path)?;
        let meta = file.metadata()?;
        let quiet = meta
            .modified()
            .ok()
            .and_then(|m| SystemTime::now().duration_since(m).ok())
            .is_some_and(|age| age >= QUIET_FOR);
        if meta.is_file() && meta.len() >= MAP_AT_LEAST && quiet {
            #[allow(unsafe_code)]
            // SAFETY: the map is read-only and private to this process; the file is a regular
            // file not modified for QUIET_FOR, so no tracker is appending to it and nothing is
            // expected to truncate it while we read (the residual risk is documented above).
            let map = unsafe { memmap2::Mmap::map(&file) };
            if let Ok(map) = map {
                return Ok(CaptureBytes::Mapped(map));
            }
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        std::io::Read::read_to_end(&mut &file, &mut bytes)?;
        Ok(CaptureBytes::Read(bytes))
    }

    /// True when the bytes are a memory map.
    pub fn is_mapped(&self) -> bool {
        matches!(self, CaptureBytes::Mapped(_))
    }
}
