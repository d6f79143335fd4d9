use thiserror::Error;

/// Everything that can be wrong with a capture file; each variant names the byte offset.
#[derive(Debug, Error)]
pub enum FormatError {
    /// The file does not start with the memlens magic bytes.
    #[error("not a memlens capture (bad magic at offset 0)")]
    BadMagic,
    /// The file was written by a newer memlens.
    #[error("capture format version {found} is newer than this memlens understands ({supported})")]
    NewerVersion {
        /// Version found in the file.
        found: u16,
        /// Newest version this build reads.
        supported: u16,
    },
    /// The file ends in the middle of a structure.
    #[error("capture truncated at offset {offset}: {what}")]
    Truncated {
        /// Byte offset where more data was expected.
        offset: u64,
        /// What was being read.
        what: &'static str,
    },
    /// A structure has impossible contents.
    #[error("capture corrupt at offset {offset}: {what}")]
    Corrupt {
        /// Byte offset of the bad structure.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// Writing failed.
    #[error("cannot write capture: {0}")]
    Io(#[from] std::io::Error),
}

impl FormatError {
    pub(crate) fn corrupt(offset: u64, what: impl Into<String>) -> Self {
        FormatError::Corrupt {
            offset,
            what: what.into(),
        }
    }

    /// True when the file is intact up to a point and merely ends early (a killed writer).
    pub fn is_truncation(&self) -> bool {
        matches!(self, FormatError::Truncated { .. })
    }
}
