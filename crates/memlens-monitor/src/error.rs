//! The one error type of the crate.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while sampling, launching or writing.
///
/// Messages are lower-case and name the process or file involved, so the CLI can print them as one
/// line after `memlens: error: `.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No process has this pid (or it exited before it could be read).
    #[error("no process with pid {pid}")]
    NoSuchProcess {
        /// The pid asked for.
        pid: u32,
    },
    /// The process exists but none of its memory files can be read by this user.
    #[error("cannot read the memory of process {pid}: permission denied ({})", path.display())]
    PermissionDenied {
        /// The pid asked for.
        pid: u32,
        /// The file that was refused.
        path: PathBuf,
    },
    /// A /proc file could not be read for another reason.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating-system error.
        source: io::Error,
    },
    /// A /proc file did not have the expected shape.
    #[error("cannot parse {}: {detail}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// The command to monitor could not be started.
    #[error("cannot run `{program}`: {}", spawn_reason(source))]
    Spawn {
        /// The program name as given.
        program: String,
        /// The operating-system error.
        source: io::Error,
    },
    /// A size such as `--threshold 500MB` could not be understood.
    #[error("invalid size {input:?}: {reason}")]
    InvalidSize {
        /// The text given.
        input: String,
        /// What was wrong with it.
        reason: &'static str,
    },
    /// An option has a value the monitor cannot use (for example a zero interval).
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// An output file could not be created or written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The operating-system error.
        source: io::Error,
    },
    /// A system call the monitor relies on failed (signal handlers, wait4).
    #[error("{call} failed: {source}")]
    System {
        /// The call that failed.
        call: &'static str,
        /// The operating-system error.
        source: io::Error,
    },
}

impl Error {
    /// The exit status a command-line front end should use for this error.
    ///
    /// A command that cannot be found exits 127 and one that cannot be executed 126, as `env`,
    /// `timeout` and POSIX shells do; every other failure of the monitor itself is 2.
    pub fn exit_status(&self) -> u8 {
        match self {
            Error::Spawn { source, .. } if source.kind() == io::ErrorKind::NotFound => 127,
            Error::Spawn { .. } => 126,
            _ => 2,
        }
    }
}

fn spawn_reason(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::NotFound => "command not found".to_owned(),
        io::ErrorKind::PermissionDenied => "permission denied (not executable?)".to_owned(),
        _ => err.to_string(),
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
