//! Getting a capture's bytes: a memory map when that is safe, a plain read otherwise.
//!
//! A map of a file that another process truncates turns the next access past the new end into
//! SIGBUS, which would kill the report. The tracker only ever appends to a capture, but a new
//! run writing to the same path truncates it first, and a capture being written may be
//! replaced. So a file is mapped only when it is large enough for copying to cost (at least
//! [`MAP_AT_LEAST`]) and has not been modified for [`QUIET_FOR`]; anything else is read into
//! memory, which no other process can pull away. A file truncated *while* a large quiet one is
//! being read is the remaining risk, as with every tool that maps files (ripgrep included).

use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
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
    /// Opens `path`, mapping it when that is safe (see the module documentation). Anything but
    /// a regular file (a device such as `/dev/zero`, a pipe, a directory) is refused before a
    /// byte is read: it could be endless, or block forever.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        // O_NONBLOCK: opening a FIFO for reading waits for a writer; the flag does not change
        // how a regular file reads.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("not a regular file ({})", file_type(&meta)),
            ));
        }
        let quiet = meta
            .modified()
            .ok()
            .and_then(|m| SystemTime::now().duration_since(m).ok())
            .is_some_and(|age| age >= QUIET_FOR);
        if meta.len() >= MAP_AT_LEAST && quiet {
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

/// What kind of file `meta` describes, in words.
fn file_type(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_fifo() {
        "a pipe"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, len: u64, age: Duration) -> std::path::PathBuf {
        let path = dir.join(name);
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(len).unwrap();
        file.set_modified(SystemTime::now() - age).unwrap();
        path
    }

    #[test]
    fn only_large_quiet_files_are_mapped() {
        let dir = std::env::temp_dir().join(format!("memlens-source-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let quiet = Duration::from_secs(60);
        let big = write(&dir, "big.mlens", MAP_AT_LEAST, quiet);
        let bytes = CaptureBytes::open(&big).unwrap();
        assert!(bytes.is_mapped());
        assert_eq!(bytes.len() as u64, MAP_AT_LEAST);
        // Still being written (modified just now): read, so truncation cannot SIGBUS us.
        let fresh = write(&dir, "fresh.mlens", MAP_AT_LEAST, Duration::ZERO);
        assert!(!CaptureBytes::open(&fresh).unwrap().is_mapped());
        let small = write(&dir, "small.mlens", 1000, quiet);
        let bytes = CaptureBytes::open(&small).unwrap();
        assert!(!bytes.is_mapped());
        assert_eq!(bytes.len(), 1000);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn devices_and_directories_are_refused_unread() {
        for path in ["/dev/zero", "/dev/null", "/"] {
            let err = CaptureBytes::open(Path::new(path)).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{path}");
            assert!(
                err.to_string().starts_with("not a regular file"),
                "{path}: {err}"
            );
        }
    }
}
