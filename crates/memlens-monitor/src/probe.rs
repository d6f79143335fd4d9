//! Memory of one process, read from /proc.
//!
//! /proc is read by hand rather than through the `procfs` crate: the monitor needs five numbers
//! from three small files, read into a stack buffer without allocating (the tracker will call this
//! from inside the profiled process, where every allocation is seen by its own hooks), and the
//! hand-written parsers are a few dozen lines with unit tests. `procfs` would add a dependency tree
//! and allocate a map per read.
//!
//! Files are opened afresh at each sample instead of being kept open and re-read with `pread`: an
//! open `smaps_rollup` is bound to the address space that existed at `open`, so after an `exec` it
//! reports the process as gone. An open costs a few microseconds.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Where a [`ProcessMemory`] came from; the fallbacks know less.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `/proc/<pid>/smaps_rollup` (Linux 4.14+): RSS, PSS, USS and swap.
    SmapsRollup,
    /// `/proc/<pid>/status`: RSS and swap only (readable by any user, unlike `smaps_rollup`).
    Status,
    /// `/proc/<pid>/statm`: RSS only (one short line; the cheapest read).
    Statm,
}

impl Source {
    /// The file name under `/proc/<pid>/`.
    pub fn file_name(self) -> &'static str {
        match self {
            Source::SmapsRollup => "smaps_rollup",
            Source::Status => "status",
            Source::Statm => "statm",
        }
    }
}

/// Memory of one process at one instant, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessMemory {
    /// Resident set size: pages of this process in RAM, shared ones counted in full.
    pub rss: u64,
    /// Proportional set size: private pages plus each shared page divided by its sharers.
    /// `None` when only `status` or `statm` could be read.
    pub pss: Option<u64>,
    /// Unique set size: pages private to this process (what exiting it would free).
    /// `None` when only `status` or `statm` could be read.
    pub uss: Option<u64>,
    /// Anonymous memory of this process that is swapped out. `None` from `statm`.
    pub swap: Option<u64>,
    /// The kernel's high-water mark of this process's RSS (`VmHWM`), exact whatever the sampling
    /// interval. Only `status` gives it.
    pub peak_rss: Option<u64>,
    /// The file these figures were read from.
    pub source: Source,
}

/// Samples RSS, PSS, USS and swap of process `pid`.
///
/// Reads `/proc/<pid>/smaps_rollup`, whose cost grows with the size of the process (the kernel walks
/// its page tables: about 2 ms for 64 MiB resident on this project's CI machine); when that is refused (another user's process) or missing
/// (Linux before 4.14), falls back to `status` and then `statm`, which give RSS (and swap) only.
/// Holds no state, starts no thread and does not allocate.
///
/// # Errors
/// [`Error::NoSuchProcess`] when the process does not exist, has exited or is a zombie;
/// [`Error::PermissionDenied`] when none of the files can be read.
pub fn sample_process(pid: u32) -> Result<ProcessMemory> {
    sample_in(Path::new("/proc"), pid, Source::SmapsRollup)
}

/// Samples RSS, swap and the kernel's RSS high-water mark of `pid` from `/proc/<pid>/status`: an
/// O(1) read of the kernel's counters, unlike [`sample_process`], whose page-table walk costs time
/// in proportion to the process's size. PSS and USS are `None`.
///
/// # Errors
/// As [`sample_process`].
pub fn sample_process_fast(pid: u32) -> Result<ProcessMemory> {
    sample_in(Path::new("/proc"), pid, Source::Status)
}

/// Samples only the RSS of process `pid` from `/proc/<pid>/statm`: one short read, for callers
/// that sample often and need no PSS, USS or swap (such as the tracker's RSS timeline).
///
/// # Errors
/// As [`sample_process`].
pub fn sample_process_rss(pid: u32) -> Result<u64> {
    sample_in(Path::new("/proc"), pid, Source::Statm).map(|m| m.rss)
}

/// Samples `pid` under the /proc mount `root`, starting with the richest source allowed by `from`
/// and falling back to the next when a file is refused or missing.
pub(crate) fn sample_in(root: &Path, pid: u32, from: Source) -> Result<ProcessMemory> {
    let order: &[Source] = match from {
        Source::SmapsRollup => &[Source::SmapsRollup, Source::Status, Source::Statm],
        Source::Status => &[Source::Status, Source::Statm],
        Source::Statm => &[Source::Statm],
    };
    let mut refused: Option<PathBuf> = None;
    for &source in order {
        let mut buf = [0u8; 4096];
        let path = proc_path(root, pid, source.file_name());
        let text = match read_small(&path, &mut buf) {
            Ok(text) => text,
            Err(err) => match classify(&err) {
                Failure::Gone => return Err(Error::NoSuchProcess { pid }),
                Failure::Refused => {
                    refused.get_or_insert(path);
                    continue;
                }
                Failure::Missing if !root.join(pid.to_string()).exists() => {
                    return Err(Error::NoSuchProcess { pid });
                }
                Failure::Missing if source != Source::Statm => continue,
                Failure::Missing | Failure::Other => {
                    return Err(Error::Read { path, source: err });
                }
            },
        };
        let parsed = match source {
            Source::SmapsRollup => parse_smaps_rollup(text),
            Source::Status => parse_status(text),
            Source::Statm => parse_statm(text, page_size()),
        };
        return match parsed {
            Parsed::Memory(memory) => Ok(memory),
            // A zombie or a process in the middle of exiting has no address space left.
            Parsed::NoAddressSpace => Err(Error::NoSuchProcess { pid }),
            Parsed::Malformed(detail) => Err(Error::Parse { path, detail }),
        };
    }
    match refused {
        Some(path) => Err(Error::PermissionDenied { pid, path }),
        None => Err(Error::NoSuchProcess { pid }),
    }
}

pub(crate) fn proc_path(root: &Path, pid: u32, file: &str) -> PathBuf {
    root.join(pid.to_string()).join(file)
}

enum Failure {
    /// The process is not there (`ENOENT` on its directory, `ESRCH` on a read).
    Gone,
    /// The file exists but this user may not read it.
    Refused,
    /// The file is absent while the process may still be there (an older kernel).
    Missing,
    Other,
}

fn classify(err: &io::Error) -> Failure {
    const ESRCH: i32 = 3;
    match err.kind() {
        io::ErrorKind::PermissionDenied => Failure::Refused,
        io::ErrorKind::NotFound => Failure::Missing,
        _ if err.raw_os_error() == Some(ESRCH) => Failure::Gone,
        _ => Failure::Other,
    }
}

/// A process's `status` file kept open and re-read with `pread`, for a monitor that samples the
/// same process many times: it saves the open and close (and the path lookup in /proc) of every
/// sample. Unlike `smaps_rollup`, an open `status` follows its process across `exec`, and a reused
/// pid cannot be mistaken for it: once the process is gone, reads fail with `ESRCH`.
#[derive(Debug)]
pub(crate) struct StatusFile {
    pid: u32,
    file: File,
}

impl StatusFile {
    pub(crate) fn open(root: &Path, pid: u32) -> io::Result<Self> {
        Ok(StatusFile {
            pid,
            file: File::open(proc_path(root, pid, "status"))?,
        })
    }

    /// RSS, swap and the high-water mark, as [`sample_process_fast`].
    pub(crate) fn sample(&self) -> Result<ProcessMemory> {
        let mut buf = [0u8; 4096];
        let text = match read_at_start(&self.file, &mut buf) {
            Ok(text) => text,
            Err(err) => {
                return match classify(&err) {
                    Failure::Gone | Failure::Missing => Err(Error::NoSuchProcess { pid: self.pid }),
                    _ => Err(Error::Read {
                        path: PathBuf::from(format!("/proc/{}/status", self.pid)),
                        source: err,
                    }),
                };
            }
        };
        match parse_status(text) {
            Parsed::Memory(memory) => Ok(memory),
            Parsed::NoAddressSpace => Err(Error::NoSuchProcess { pid: self.pid }),
            Parsed::Malformed(detail) => Err(Error::Parse {
                path: PathBuf::from(format!("/proc/{}/status", self.pid)),
                detail,
            }),
        }
    }
}

/// Reads an open /proc file from its start (`pread` at offset 0, then on until the end).
pub(crate) fn read_at_start<'b>(file: &File, buf: &'b mut [u8]) -> io::Result<&'b str> {
    use std::os::unix::fs::FileExt;
    let mut len = 0;
    while len < buf.len() {
        match file.read_at(&mut buf[len..], len as u64) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(utf8_prefix(&buf[..len]))
}

fn utf8_prefix(bytes: &[u8]) -> &str {
    match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => std::str::from_utf8(&bytes[..err.valid_up_to()]).unwrap_or_default(),
    }
}

/// Reads a /proc file of at most `buf.len()` bytes into `buf` without allocating.
pub(crate) fn read_small<'b>(path: &Path, buf: &'b mut [u8]) -> io::Result<&'b str> {
    let mut file = File::open(path)?;
    let mut len = 0;
    while len < buf.len() {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    // /proc text is ASCII apart from process names, which these files do not contain past the
    // fields we read; cut at the last valid character rather than fail.
    Ok(match std::str::from_utf8(&buf[..len]) {
        Ok(text) => text,
        Err(err) => std::str::from_utf8(&buf[..err.valid_up_to()]).unwrap_or_default(),
    })
}

pub(crate) enum Parsed {
    Memory(ProcessMemory),
    NoAddressSpace,
    Malformed(String),
}

/// Value in bytes of a `Key:   123 kB` line.
fn kb_field(line: &str) -> Option<(&str, u64)> {
    let (key, rest) = line.split_once(':')?;
    let mut words = rest.split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    let scale = match words.next() {
        Some("kB") => 1024,
        None => 1,
        Some(_) => return None,
    };
    Some((key, value * scale))
}

/// Parses `smaps_rollup`. USS is `Private_Clean + Private_Dirty + Private_Hugetlb`.
pub(crate) fn parse_smaps_rollup(text: &str) -> Parsed {
    let (mut rss, mut pss, mut private, mut swap) = (None, None, 0u64, None);
    for (key, bytes) in text.lines().filter_map(kb_field) {
        match key {
            "Rss" => rss = Some(bytes),
            "Pss" => pss = Some(bytes),
            "Private_Clean" | "Private_Dirty" | "Private_Hugetlb" => private += bytes,
            "Swap" => swap = Some(bytes),
            _ => {}
        }
    }
    match (rss, pss) {
        (Some(rss), Some(pss)) => Parsed::Memory(ProcessMemory {
            rss,
            pss: Some(pss),
            uss: Some(private),
            swap: Some(swap.unwrap_or(0)),
            peak_rss: None,
            source: Source::SmapsRollup,
        }),
        // An exiting process or a kernel thread yields an empty file.
        _ if text.trim().is_empty() || !text.contains("Rss:") => Parsed::NoAddressSpace,
        _ => Parsed::Malformed("no Pss line".to_owned()),
    }
}

/// Parses `status`: `VmRSS` and `VmSwap`. A zombie has neither.
pub(crate) fn parse_status(text: &str) -> Parsed {
    let (mut rss, mut swap, mut hwm) = (None, None, None);
    for line in text.lines() {
        if let Some(state) = line.strip_prefix("State:") {
            let state = state.trim_start();
            if state.starts_with('Z') || state.starts_with('X') {
                return Parsed::NoAddressSpace;
            }
        }
        match kb_field(line) {
            Some(("VmRSS", bytes)) => rss = Some(bytes),
            Some(("VmSwap", bytes)) => swap = Some(bytes),
            Some(("VmHWM", bytes)) => hwm = Some(bytes),
            _ => {}
        }
    }
    match rss {
        Some(rss) => Parsed::Memory(ProcessMemory {
            rss,
            pss: None,
            uss: None,
            swap: Some(swap.unwrap_or(0)),
            peak_rss: hwm,
            source: Source::Status,
        }),
        None if text.contains("Name:") => Parsed::NoAddressSpace,
        None => Parsed::Malformed("no VmRSS line".to_owned()),
    }
}

/// Parses `statm`: `size resident shared text lib data dt`, in pages.
pub(crate) fn parse_statm(text: &str, page_size: u64) -> Parsed {
    let mut fields = text.split_whitespace().map(str::parse::<u64>);
    match (fields.next(), fields.next()) {
        (Some(Ok(0)), Some(Ok(0))) => Parsed::NoAddressSpace,
        (Some(Ok(_)), Some(Ok(resident))) => Parsed::Memory(ProcessMemory {
            rss: resident * page_size,
            pss: None,
            uss: None,
            swap: None,
            peak_rss: None,
            source: Source::Statm,
        }),
        _ => Parsed::Malformed("expected numbers".to_owned()),
    }
}

fn page_size() -> u64 {
    crate::sys::page_size()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLLUP: &str = "556d61fc4000-7fff9ab8e000 ---p 00000000 00:00 0     [rollup]
Rss:                1696 kB
Pss:                 333 kB
Pss_Dirty:           112 kB
Pss_Anon:            112 kB
Shared_Clean:       1532 kB
Shared_Dirty:          0 kB
Private_Clean:        52 kB
Private_Dirty:       112 kB
Private_Hugetlb:       4 kB
Swap:                 16 kB
SwapPss:               8 kB
";

    fn memory(parsed: Parsed) -> ProcessMemory {
        match parsed {
            Parsed::Memory(m) => m,
            Parsed::NoAddressSpace => panic!("no address space"),
            Parsed::Malformed(d) => panic!("malformed: {d}"),
        }
    }

    #[test]
    fn rollup_gives_all_four_figures() {
        let m = memory(parse_smaps_rollup(ROLLUP));
        assert_eq!(m.rss, 1696 * 1024);
        assert_eq!(m.pss, Some(333 * 1024));
        assert_eq!(m.uss, Some((52 + 112 + 4) * 1024));
        assert_eq!(m.swap, Some(16 * 1024));
        assert_eq!(m.source, Source::SmapsRollup);
    }

    #[test]
    fn empty_rollup_means_no_address_space() {
        assert!(matches!(parse_smaps_rollup(""), Parsed::NoAddressSpace));
        assert!(matches!(
            parse_smaps_rollup("Rss: 12 kB\n"),
            Parsed::Malformed(_)
        ));
    }

    #[test]
    fn status_gives_rss_and_swap_and_spots_zombies() {
        let text = "Name:\tpython3\nState:\tS (sleeping)\nVmHWM:\t  9000 kB\nVmRSS:\t   12540 kB\nVmSwap:\t 2 kB\n";
        let m = memory(parse_status(text));
        assert_eq!((m.rss, m.swap, m.pss), (12540 * 1024, Some(2048), None));
        assert_eq!(m.peak_rss, Some(9000 * 1024));
        let zombie = "Name:\tpython3\nState:\tZ (zombie)\n";
        assert!(matches!(parse_status(zombie), Parsed::NoAddressSpace));
        let kernel_thread = "Name:\tkthreadd\nState:\tS (sleeping)\n";
        assert!(matches!(
            parse_status(kernel_thread),
            Parsed::NoAddressSpace
        ));
    }

    #[test]
    fn statm_is_in_pages() {
        let m = memory(parse_statm("5000 300 100 10 0 200 0\n", 4096));
        assert_eq!(m.rss, 300 * 4096);
        assert!(matches!(
            parse_statm("0 0 0 0 0 0 0\n", 4096),
            Parsed::NoAddressSpace
        ));
        assert!(matches!(parse_statm("x", 4096), Parsed::Malformed(_)));
    }

    #[test]
    fn samples_this_process() {
        let m = sample_process(std::process::id()).unwrap();
        assert!(m.rss > 0);
        assert!(m.pss.unwrap() <= m.rss);
        assert!(m.uss.unwrap() <= m.pss.unwrap());
        let rss = sample_process_rss(std::process::id()).unwrap();
        assert!(rss > 0);
    }

    #[test]
    fn an_open_status_file_is_reread_and_notices_the_exit() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let status = StatusFile::open(Path::new("/proc"), child.id()).unwrap();
        let first = status.sample().unwrap();
        let second = status.sample().unwrap();
        assert!(first.rss > 0 && second.rss > 0 && first.peak_rss.is_some());
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(matches!(status.sample(), Err(Error::NoSuchProcess { .. })));
    }

    #[test]
    fn missing_process_is_reported_as_such() {
        let dir = std::env::temp_dir().join(format!("memlens-probe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = sample_in(&dir, 4_000_000, Source::SmapsRollup).unwrap_err();
        assert!(
            matches!(err, Error::NoSuchProcess { pid: 4_000_000 }),
            "{err}"
        );
    }

    #[test]
    fn falls_back_to_status_when_rollup_is_missing() {
        let dir = std::env::temp_dir().join(format!("memlens-probe-old-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("42")).unwrap();
        std::fs::write(dir.join("42/status"), "Name:\tx\nVmRSS:\t 8 kB\n").unwrap();
        std::fs::write(dir.join("42/statm"), "1 1 0 0 0 0 0\n").unwrap();
        let m = sample_in(&dir, 42, Source::SmapsRollup).unwrap();
        assert_eq!((m.rss, m.source), (8192, Source::Status));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
