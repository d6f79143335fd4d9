//! The capture file as the writer sees it: a descriptor memlens owns, checked before every
//! write, and the first error kept for the summary.
//!
//! The profiled program shares the descriptor table with memlens. Daemonizing code closes
//! every descriptor (`os.closerange(3, 4096)`) and the next file it opens gets the number
//! memlens wrote to: writing on would put capture chunks into the program's own file. So the
//! descriptor is moved to a high number (programs get the lowest free one), marked
//! close-on-exec, and before each write its identity (device and inode) is compared with the
//! file memlens created. A descriptor that is no longer that file is never written to: the
//! capture is opened again by its absolute path, if that path still names the same file, and
//! writing goes on at memlens's own offset (`pwrite`, so no other descriptor's position
//! matters). Otherwise writing stops and the error says why.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Descriptors from this number up: far above what programs open by lowest-free-number.
const HIGH_FD: libc::c_int = 1000;

/// The capture file, written at memlens's own offset through a descriptor memlens checks.
pub(crate) struct CaptureFile {
    /// The descriptor, or `None` after it was found not to be the capture any more and could
    /// not be replaced.
    fd: Option<OwnedFd>,
    /// Absolute path the file was created at.
    path: PathBuf,
    /// `(st_dev, st_ino)` of the file created.
    identity: (u64, u64),
    /// Bytes written so far (the next write's offset).
    written: u64,
    /// The first write error, for the summary ("No space left on device", ...).
    error: Option<String>,
}

impl CaptureFile {
    /// Creates (or truncates) the capture at `path`.
    pub(crate) fn create(path: &Path) -> io::Result<Self> {
        let path = std::path::absolute(path)?;
        let file = std::fs::File::create(&path)?;
        let fd = OwnedFd::from(file);
        let fd = high_cloexec(fd)?;
        let (identity, _) = identity(fd.as_raw_fd()).ok_or_else(io::Error::last_os_error)?;
        Ok(CaptureFile {
            fd: Some(fd),
            path,
            identity,
            written: 0,
            error: None,
        })
    }

    /// Bytes written to the file so far.
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// The first write error, if writing failed.
    pub(crate) fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// The descriptor, checked to still be the capture (replaced by one opened by path when
    /// the program closed or reused ours).
    fn checked_fd(&mut self) -> io::Result<libc::c_int> {
        if let Some(fd) = &self.fd
            && identity(fd.as_raw_fd()) == Some((self.identity, self.written))
        {
            return Ok(fd.as_raw_fd());
        }
        // Not ours any more: forget the number without closing it (it may be the program's
        // file now; closing it would break the program).
        if let Some(fd) = self.fd.take() {
            std::mem::forget(fd);
        }
        let fd = reopen(&self.path, (self.identity, self.written))?;
        let raw = fd.as_raw_fd();
        self.fd = Some(fd);
        Ok(raw)
    }

    fn fail(&mut self, e: io::Error) -> io::Error {
        if self.error.is_none() {
            self.error = Some(e.to_string());
        }
        e
    }
}

impl io::Write for CaptureFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.error.is_some() {
            return Err(io::Error::other("the capture could not be written before"));
        }
        let fd = match self.checked_fd() {
            Ok(fd) => fd,
            Err(e) => return Err(self.fail(e)),
        };
        loop {
            // SAFETY: `fd` is open (checked above) and `buf` is a valid slice for reads.
            let n = unsafe {
                libc::pwrite(
                    fd,
                    buf.as_ptr().cast(),
                    buf.len(),
                    self.written as libc::off_t,
                )
            };
            if n >= 0 {
                self.written += n as u64;
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(self.fail(e));
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `((st_dev, st_ino), st_size)` of the open descriptor `fd`, or `None` when it is not open.
/// The size tells a file that took the place of a deleted capture under the same inode
/// number (file systems reuse them at once) from the capture, which nobody else writes.
fn identity(fd: libc::c_int) -> Option<((u64, u64), u64)> {
    // SAFETY: `st` is a plain struct that fstat fills; an invalid fd only makes it fail.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        (libc::fstat(fd, &mut st) == 0).then_some(((st.st_dev, st.st_ino), st.st_size as u64))
    }
}

/// `fd` moved to a close-on-exec descriptor numbered [`HIGH_FD`] or above (kept where it is
/// if the limit on descriptors is lower).
fn high_cloexec(fd: OwnedFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on an open descriptor returns a new descriptor or -1.
    let high = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, HIGH_FD) };
    if high >= 0 {
        // SAFETY: `high` was just returned by fcntl and is owned by nobody else.
        return Ok(unsafe { OwnedFd::from_raw_fd(high) });
    }
    // SAFETY: as above, for the flag of the descriptor we own.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// Opens `path` for writing again (without truncating or creating it) if it is still the
/// capture: the same file, as long as memlens wrote (`expected`, as [`identity`] gives it).
fn reopen(path: &Path, expected: ((u64, u64), u64)) -> io::Result<OwnedFd> {
    let mut bytes = path.as_os_str().as_bytes().to_vec();
    bytes.push(0);
    // SAFETY: `bytes` is NUL-terminated; open returns a new descriptor or -1.
    let fd = unsafe { libc::open(bytes.as_ptr().cast(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::other(format!(
            "the program closed the capture's descriptor and {} cannot be opened again: {}",
            path.display(),
            io::Error::last_os_error()
        )));
    }
    // SAFETY: `fd` was just returned by open.
    let fd = high_cloexec(unsafe { OwnedFd::from_raw_fd(fd) })?;
    if identity(fd.as_raw_fd()) != Some(expected) {
        return Err(io::Error::other(format!(
            "the program closed the capture's descriptor and {} is another file now",
            path.display()
        )));
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_closed_and_reused_descriptor_is_never_written_to() {
        let dir = std::env::temp_dir().join(format!("memlens-capfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let capture = dir.join("c.mlens");
        let mut file = CaptureFile::create(&capture).unwrap();
        file.write_all(b"first ").unwrap();
        let ours = file.fd.as_ref().unwrap().as_raw_fd();
        assert!(ours >= HIGH_FD);
        // The program closes the descriptor and its next file takes the number.
        // SAFETY: test only: closing our own descriptor behind the CaptureFile's back.
        unsafe { libc::close(ours) };
        let theirs_path = dir.join("theirs.txt");
        let theirs = std::fs::File::create(&theirs_path).unwrap();
        // SAFETY: dup2 onto the number the capture used, as a program reusing it would.
        assert_eq!(unsafe { libc::dup2(theirs.as_raw_fd(), ours) }, ours);
        file.write_all(b"second").unwrap();
        assert_eq!(std::fs::read(&capture).unwrap(), b"first second");
        assert_eq!(std::fs::read(&theirs_path).unwrap(), b"");
        // The program's descriptor is still open and still its file.
        assert!(identity(ours).is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_replaced_file_is_not_written_and_the_error_says_why() {
        let dir = std::env::temp_dir().join(format!("memlens-capfile2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let capture = dir.join("c.mlens");
        let mut file = CaptureFile::create(&capture).unwrap();
        let ours = file.fd.as_ref().unwrap().as_raw_fd();
        // SAFETY: test only, as above.
        unsafe { libc::close(ours) };
        std::fs::remove_file(&capture).unwrap();
        std::fs::write(&capture, b"someone else's").unwrap();
        assert!(file.write_all(b"x").is_err());
        assert!(
            file.error().unwrap().contains("another file"),
            "{:?}",
            file.error()
        );
        assert_eq!(std::fs::read(&capture).unwrap(), b"someone else's");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
