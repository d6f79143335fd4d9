//! The one error type of this crate.

/// Everything that can go wrong while building, reading or writing a heap snapshot.
///
/// Messages are one lower-case line; reader errors name the byte offset in the input where the
/// problem was found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HeapError {
    /// The input does not start with the heap snapshot magic.
    #[error("not a memlens heap snapshot: bad magic at offset 0 (found {found})")]
    Magic {
        /// The first bytes of the input, escaped.
        found: String,
    },
    /// The input was written by a newer (or unknown) format version.
    #[error(
        "unsupported heap snapshot version {found} at offset 8 (this build reads versions 1 to {supported})"
    )]
    Version {
        /// Version found in the header.
        found: u16,
        /// Newest version this build reads (and the one it writes).
        supported: u16,
    },
    /// The input ends before the snapshot does.
    #[error("truncated heap snapshot at offset {offset}: {what}")]
    Truncated {
        /// Byte offset in the input where more data was expected.
        offset: u64,
        /// What was being read.
        what: String,
    },
    /// The input is damaged or inconsistent.
    #[error("corrupt heap snapshot at offset {offset}: {what}")]
    Corrupt {
        /// Byte offset in the input of the damaged block (or record).
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// The builder was used in a way that cannot produce a valid snapshot.
    #[error("heap snapshot builder: {0}")]
    Build(String),
    /// Writing the snapshot (or a rendering of it) failed.
    #[error("i/o error while {action}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl HeapError {
    pub(crate) fn io(action: &'static str) -> impl FnOnce(std::io::Error) -> HeapError {
        move |source| HeapError::Io { action, source }
    }
}

/// The result type of this crate.
pub type Result<T, E = HeapError> = std::result::Result<T, E>;
