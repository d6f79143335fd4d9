//! Discovery of a process tree from /proc.
//!
//! Each scan lists `/proc` and reads `/proc/<pid>/stat` only for pids that were not there at the
//! previous scan: a process can join the tree only by being forked by a member, so a pid seen before
//! and judged outside the tree stays outside. After the first scan this costs one directory listing
//! plus one small read per new process, which is cheaper than reading `task/*/children` of every
//! thread of every member (and works where `CONFIG_PROC_CHILDREN` is off, as on this project's CI).
//!
//! Listing `/proc` is the largest fixed cost of a sample (about 75 µs of kernel time for 150
//! processes here), so the scanner first reads the last pid the kernel handed out (the fifth
//! field of `/proc/loadavg`): when it has not moved since the previous scan, no process or thread
//! was created, and the listing is skipped.
//!
//! Members stay members until they exit, even when their parent dies first and they are re-parented
//! to init: the tree is "everything this process started", as a user means it.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::probe::{proc_path, read_at_start, read_small};

/// Facts read once about a process when it is first seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcStat {
    pub(crate) ppid: u32,
    /// Start time in clock ticks after boot: with the pid, identifies the process.
    pub(crate) start_ticks: u64,
    /// The short name from `stat` (`comm`).
    pub(crate) comm: String,
}

/// Parses `/proc/<pid>/stat`; the name may contain spaces and parentheses, so fields are counted
/// from the last `)`.
pub(crate) fn parse_stat(text: &str) -> Option<ProcStat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_owned();
    let mut fields = text.get(close + 1..)?.split_whitespace();
    // After the name: state(3) ppid(4) ... starttime(22).
    let _state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    let start_ticks = fields.nth(17)?.parse().ok()?;
    Some(ProcStat {
        ppid,
        start_ticks,
        comm,
    })
}

pub(crate) fn read_stat(root: &Path, pid: u32) -> Option<ProcStat> {
    let mut buf = [0u8; 1024];
    let text = read_small(&proc_path(root, pid, "stat"), &mut buf).ok()?;
    parse_stat(text)
}

/// The command line of `pid` (`cmdline` split at NULs), or its `[comm]` when that is empty
/// (kernel threads, zombies).
pub(crate) fn read_cmdline(root: &Path, pid: u32, comm: &str) -> Vec<String> {
    let args: Vec<String> = fs::read(proc_path(root, pid, "cmdline"))
        .unwrap_or_default()
        .split(|&b| b == 0)
        .filter(|arg| !arg.is_empty())
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect();
    if args.is_empty() {
        vec![format!("[{comm}]")]
    } else {
        args
    }
}

/// A newly found member of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Joined {
    pub(crate) pid: u32,
    pub(crate) stat: ProcStat,
}

/// Finds the descendants of one root process as they appear.
#[derive(Debug)]
pub(crate) struct TreeScanner {
    root: PathBuf,
    /// Pids present at the previous scan.
    seen: HashSet<u32>,
    /// The last pid allocated at the previous scan (`None` when unknown).
    last_pid: Option<u32>,
    /// `/proc/loadavg`, kept open and re-read with `pread`.
    loadavg: Option<fs::File>,
}

/// The most recently allocated pid in our pid namespace: the last field of `/proc/loadavg`
/// (`0.20 0.18 0.12 1/80 11206`).
fn last_pid(loadavg: &fs::File) -> Option<u32> {
    let mut buf = [0u8; 256];
    let text = read_at_start(loadavg, &mut buf).ok()?;
    text.split_whitespace().nth(4)?.parse().ok()
}

impl TreeScanner {
    pub(crate) fn new(proc_root: impl Into<PathBuf>) -> Self {
        let root: PathBuf = proc_root.into();
        TreeScanner {
            loadavg: fs::File::open(root.join("loadavg")).ok(),
            root,
            seen: HashSet::new(),
            last_pid: None,
        }
    }

    /// Lists /proc and returns the processes that joined the tree whose current members are
    /// `members`, parents before children. New children of `adopter` (the monitor itself, when it
    /// is the subreaper of the tree) join too.
    pub(crate) fn scan(&mut self, members: &HashSet<u32>, adopter: Option<u32>) -> Vec<Joined> {
        let last = self.loadavg.as_ref().and_then(last_pid);
        if last.is_some() && last == self.last_pid {
            return Vec::new();
        }
        self.last_pid = last;
        let Ok(entries) = fs::read_dir(&self.root) else {
            return Vec::new();
        };
        let mut now = HashSet::with_capacity(self.seen.len() + 8);
        let mut fresh: HashMap<u32, ProcStat> = HashMap::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            now.insert(pid);
            if !self.seen.contains(&pid)
                && !members.contains(&pid)
                && let Some(stat) = read_stat(&self.root, pid)
            {
                fresh.insert(pid, stat);
            }
        }
        self.seen = now;

        // Closure over the fresh pids: a new grandchild's parent may itself be new.
        let mut joined = Vec::new();
        let mut inside: HashSet<u32> = members.clone();
        inside.extend(adopter);
        loop {
            let mut round: Vec<u32> = fresh
                .iter()
                .filter(|(_, stat)| inside.contains(&stat.ppid))
                .map(|(&pid, _)| pid)
                .collect();
            if round.is_empty() {
                break;
            }
            round.sort_unstable();
            for pid in round {
                if let Some(stat) = fresh.remove(&pid) {
                    inside.insert(pid);
                    joined.push(Joined { pid, stat });
                }
            }
        }
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_name() {
        let text = "1234 (py (worker) x) S 77 1234 1 0 -1 4194560 100 0 0 0 5 6 0 0 20 0 3 0 987654 1000 200";
        let stat = parse_stat(text).unwrap();
        assert_eq!(stat.ppid, 77);
        assert_eq!(stat.start_ticks, 987654);
        assert_eq!(stat.comm, "py (worker) x");
        assert_eq!(parse_stat("garbage"), None);
    }

    fn fake_proc(dir: &Path, pid: u32, ppid: u32) {
        fs::create_dir_all(dir.join(pid.to_string())).unwrap();
        let stat =
            format!("{pid} (p{pid}) S {ppid} 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 {pid}00 0 0");
        fs::write(dir.join(format!("{pid}/stat")), stat).unwrap();
    }

    #[test]
    fn finds_descendants_as_they_appear_and_ignores_strangers() {
        let dir = std::env::temp_dir().join(format!("memlens-tree-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fake_proc(&dir, 1, 0);
        fake_proc(&dir, 10, 1); // the root
        fake_proc(&dir, 11, 10);
        fake_proc(&dir, 12, 11); // grandchild, listed in the same scan as its parent
        fake_proc(&dir, 20, 1); // a stranger
        fs::create_dir_all(dir.join("self")).unwrap();
        let mut scanner = TreeScanner::new(&dir);
        let mut members: HashSet<u32> = [10].into();
        let joined: Vec<u32> = scanner.scan(&members, None).iter().map(|j| j.pid).collect();
        assert_eq!(joined, vec![11, 12]);
        members.extend(joined);

        // Nothing new: nothing joins, and no stat is read again.
        assert!(scanner.scan(&members, None).is_empty());

        // While the last pid handed out does not move, /proc is not even listed.
        fs::write(dir.join("loadavg"), "0.1 0.1 0.1 1/80 40\n").unwrap();
        scanner.loadavg = fs::File::open(dir.join("loadavg")).ok();
        assert!(scanner.scan(&members, None).is_empty());
        fake_proc(&dir, 30, 12);
        assert!(
            scanner.scan(&members, None).is_empty(),
            "listed although pid 40 was last"
        );
        fs::write(dir.join("loadavg"), "0.1 0.1 0.1 1/80 41\n").unwrap();
        let joined: Vec<u32> = scanner.scan(&members, None).iter().map(|j| j.pid).collect();
        assert_eq!(joined, vec![30]);
        fs::remove_dir_all(dir.join("30")).unwrap();
        fs::remove_file(dir.join("loadavg")).unwrap();
        scanner.loadavg = None;

        // 11 exits; its child 12 is re-parented to init but stays a member. 13 is a new child of 12,
        // 21 a new child of the stranger.
        fs::remove_dir_all(dir.join("11")).unwrap();
        members.remove(&11);
        fake_proc(&dir, 12, 1);
        fake_proc(&dir, 13, 12);
        fake_proc(&dir, 21, 20);
        let joined: Vec<u32> = scanner.scan(&members, None).iter().map(|j| j.pid).collect();
        assert_eq!(joined, vec![13]);

        // An orphan re-parented to the monitor (pid 5, a subreaper) before it was ever seen.
        fake_proc(&dir, 14, 5);
        fake_proc(&dir, 22, 6);
        let joined: Vec<u32> = scanner
            .scan(&members, Some(5))
            .iter()
            .map(|j| j.pid)
            .collect();
        assert_eq!(joined, vec![14]);
        fs::remove_dir_all(&dir).unwrap();
    }
}
