//! End-to-end tests of `memlens monitor`.
//!
//! The allocating programs are small `python3` scripts; JSON outputs are read back with
//! `python3 -c "import json ..."` (the test binary has no JSON parser of its own).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const MIB: f64 = 1024.0 * 1024.0;

fn memlens() -> Command {
    Command::new(env!("CARGO_BIN_EXE_memlens"))
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("the memlens binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A row of the CSV output.
#[derive(Debug, Clone, Copy)]
struct Row {
    t: f64,
    rss: u64,
    pss: Option<u64>,
    processes: u32,
}

fn read_csv(path: &Path) -> Vec<Row> {
    let text = fs::read_to_string(path).expect("the CSV was written");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("t,rss,pss,uss,swap,processes"));
    lines
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 6, "{line}");
            Row {
                t: f[0].parse().unwrap(),
                rss: f[1].parse().unwrap(),
                pss: (!f[2].is_empty()).then(|| f[2].parse().unwrap()),
                processes: f[5].parse().unwrap(),
            }
        })
        .collect()
}

/// Evaluates a Python expression over the JSON document `d` read from `path`.
fn json(path: &Path, expr: &str) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))",
        ])
        .arg(path)
        .arg(expr)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{expr}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn json_u64(path: &Path, expr: &str) -> u64 {
    json(path, expr).parse().unwrap()
}

fn pause(seconds: f64) {
    std::thread::sleep(Duration::from_secs_f64(seconds));
}

/// Starts `sleep` as a target for `--pid`, killed when the guard drops.
struct Sleeper(Child);

impl Sleeper {
    fn start() -> Self {
        Sleeper(Command::new("sleep").arg("60").spawn().expect("sleep runs"))
    }
    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until `path` holds at least `rows` CSV rows (generous: the machine may be busy).
fn wait_for_rows(path: &Path, rows: usize) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if fs::read_to_string(path).is_ok_and(|t| t.lines().count() > rows) {
            return;
        }
        pause(0.05);
    }
    panic!("{} never reached {rows} rows", path.display());
}

fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn peak_rss_matches_the_kernels_max_rss_and_the_drop_is_visible() {
    let dir = tempfile::tempdir().unwrap();
    let maxrss = dir.path().join("maxrss.txt");
    // Touch every page of 300 MiB, hold it, free it, then report the kernel's own high-water mark
    // of this process (ru_maxrss, the figure `/usr/bin/time -v` prints).
    let script = r#"
import resource, sys, time
b = b"x" * (300 * 1024 * 1024)
time.sleep(1.0)
del b
time.sleep(1.0)
open(sys.argv[1], "w").write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024))
"#;
    let out = run(memlens()
        .current_dir(dir.path())
        .args(["monitor", "-o", "m.csv", "-o", "m.json", "--"])
        .args(["python3", "-c", script])
        .arg(&maxrss));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let kernel: f64 = fs::read_to_string(&maxrss).unwrap().parse().unwrap();
    let json_path = dir.path().join("m.json");
    let peak = json_u64(&json_path, "d['peak_rss']") as f64;
    assert!(kernel > 300.0 * MIB, "kernel max RSS {kernel}");
    assert!(
        (peak - kernel).abs() / kernel < 0.05,
        "recorded peak {peak} vs kernel max RSS {kernel}"
    );
    // wait4's rusage, kept in the JSON, is the same kernel figure.
    let from_wait4 = json_u64(&json_path, "d['exit']['kernel_max_rss']") as f64;
    assert!(
        (from_wait4 - kernel).abs() / kernel < 0.05,
        "{from_wait4} vs {kernel}"
    );

    // Per process, the kernel's own high-water mark (VmHWM) is kept as well.
    let hwm = json_u64(
        &json_path,
        "max(p['kernel_peak_rss'] or 0 for p in d['processes'])",
    ) as f64;
    assert!((hwm - kernel).abs() / kernel < 0.05, "{hwm} vs {kernel}");

    // The CSV agrees, and the drop after `del` shows: a later sample at least 250 MiB lower.
    let rows = read_csv(&dir.path().join("m.csv"));
    let top = rows.iter().max_by_key(|r| r.rss).unwrap();
    assert_eq!(top.rss as f64, peak);
    assert!(
        rows.iter()
            .any(|r| r.t > top.t && (r.rss as f64) < peak - 250.0 * MIB),
        "no drop after the peak: {rows:?}"
    );
    assert!(stderr(&out).contains("peak RSS"), "{}", stderr(&out));
}

#[test]
fn tree_total_includes_both_workers() {
    let dir = tempfile::tempdir().unwrap();
    // Each worker touches 100 MiB, says so with a file, and holds it until both have, plus 1 s.
    let worker = r#"
import os, sys, time
b = b"w" * (100 * 1024 * 1024)
open(sys.argv[1], "w").close()
deadline = time.time() + 30
while not (os.path.exists("ready0") and os.path.exists("ready1")) and time.time() < deadline:
    time.sleep(0.05)
time.sleep(1.0)
"#;
    let parent = format!(
        "import subprocess, sys\nw = {worker:?}\nps = [subprocess.Popen([sys.executable, '-c', w, f'ready{{i}}']) for i in range(2)]\nsys.exit(sum(p.wait() for p in ps))\n"
    );
    let out = run(memlens()
        .current_dir(dir.path())
        .args([
            "monitor", "-o", "t.csv", "-o", "t.json", "--", "python3", "-c",
        ])
        .arg(&parent));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let rows = read_csv(&dir.path().join("t.csv"));
    let top = rows.iter().max_by_key(|r| r.rss).unwrap();
    assert!(top.rss as f64 > 200.0 * MIB, "tree peak {top:?}");
    assert!(top.processes >= 3, "{top:?}");
    let json_path = dir.path().join("t.json");
    // Both workers appear as processes of their own, children of the parent, each over 100 MiB.
    let workers = json(
        &json_path,
        "sorted(p['pid'] for p in d['processes'] if p['peak_rss'] > 100 * 2**20 and p['ppid'] == d['pid'])",
    );
    assert_eq!(workers.matches(',').count(), 1, "workers: {workers}");
    // The tree total at its peak is at least the sum of the two workers' RSS at that instant.
    let sum_at_peak = json_u64(
        &json_path,
        "sum(s['rss'] for p in d['processes'] for s in p['samples'] if s['t'] == d['peak_rss_t'])",
    );
    assert_eq!(sum_at_peak, top.rss);
}

#[test]
fn nonexistent_pid_is_reported_and_outputs_are_still_written() {
    let dir = tempfile::tempdir().unwrap();
    let pid_max: u64 = fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let pid = (pid_max + 1).to_string();
    let out = run(memlens().current_dir(dir.path()).args([
        "monitor", "--pid", &pid, "-o", "n.csv", "-o", "n.json", "--plot", "n.svg",
    ]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!("memlens: error: no process with pid {pid}")),
        "{}",
        stderr(&out)
    );
    assert!(read_csv(&dir.path().join("n.csv")).is_empty());
    let json_path = dir.path().join("n.json");
    assert_eq!(json(&json_path, "len(d['samples'])"), "0");
    assert_eq!(json(&json_path, "d['stop_reason']"), "failed");
    assert_eq!(
        json(&json_path, "d['error']"),
        format!("no process with pid {pid}")
    );
    let svg = fs::read_to_string(dir.path().join("n.svg")).unwrap();
    assert!(svg.contains("no samples were taken"));
}

#[test]
fn unreadable_pid_falls_back_to_rss_from_status() {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let me = fs::metadata("/proc/self").unwrap().uid();
    let sleeper;
    let mut cmd;
    let pid;
    if me == 0 {
        // As root everything is readable: monitor a root process as user `nobody` instead.
        sleeper = Some(Sleeper::start());
        pid = sleeper.as_ref().unwrap().pid();
        cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_memlens"));
    } else {
        // Not root: pid 1 belongs to someone else (root) on any ordinary system.
        sleeper = None;
        pid = 1;
        assert_ne!(
            fs::metadata("/proc/1").unwrap().uid(),
            me,
            "this test needs a process owned by another user"
        );
        cmd = memlens();
    }
    let out = run(cmd.current_dir(dir.path()).args([
        "monitor",
        "--pid",
        &pid.to_string(),
        "--duration",
        "0.5",
        "-o",
        "u.csv",
        "-o",
        "u.json",
    ]));
    drop(sleeper);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "cannot read /proc/{pid}/smaps_rollup (permission denied)"
        )) && err.contains("PSS and USS"),
        "{err}"
    );
    let rows = read_csv(&dir.path().join("u.csv"));
    assert!(!rows.is_empty());
    assert!(
        rows.iter().all(|r| r.rss > 0 && r.pss.is_none()),
        "{rows:?}"
    );
    let json_path = dir.path().join("u.json");
    assert_eq!(json(&json_path, "d['processes'][0]['source']"), "status");
    assert_eq!(json(&json_path, "d['peak_pss']"), "None");
    assert_eq!(json(&json_path, "len(d['warnings'])"), "1");
}

#[test]
fn command_not_found_exits_127_and_outputs_are_still_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(memlens().current_dir(dir.path()).args([
        "monitor",
        "-o",
        "c.json",
        "--html",
        "c.html",
        "--",
        "memlens-no-such-command",
        "arg",
    ]));
    assert_eq!(out.status.code(), Some(127));
    assert!(
        stderr(&out)
            .contains("memlens: error: cannot run `memlens-no-such-command`: command not found"),
        "{}",
        stderr(&out)
    );
    let json_path = dir.path().join("c.json");
    assert_eq!(json(&json_path, "d['samples']"), "[]");
    assert_eq!(
        json(&json_path, "d['command']"),
        "['memlens-no-such-command', 'arg']"
    );
    assert!(json(&json_path, "d['error']").contains("command not found"));
    let html = fs::read_to_string(dir.path().join("c.html")).unwrap();
    assert!(html.contains("command not found"));
}

#[test]
fn not_executable_exits_126() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("script.sh");
    fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o644)).unwrap();
    let out = run(memlens().args(["monitor", "--"]).arg(&script));
    // As root, exec of a file without any x bit still fails with EACCES.
    assert_eq!(out.status.code(), Some(126), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("permission denied"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn process_exiting_within_the_first_interval_still_gets_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(memlens().current_dir(dir.path()).args([
        "monitor",
        "--interval",
        "5",
        "-o",
        "q.json",
        "-o",
        "q.csv",
        "--",
        "true",
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("exited before the first sample") || err.contains("peak RSS"),
        "{err}"
    );
    // Even with no sample, the kernel's figure for the command is reported and kept.
    assert!(
        err.contains("the kernel's peak RSS for the command"),
        "{err}"
    );
    let json_path = dir.path().join("q.json");
    assert!(json_u64(&json_path, "d['exit']['kernel_max_rss']") > 0);
    assert_eq!(json(&json_path, "d['stop_reason']"), "exited");
    assert!(json_u64(&json_path, "len(d['samples'])") <= 1);
    assert!(read_csv(&dir.path().join("q.csv")).len() <= 1);
}

#[test]
fn exit_status_of_the_command_is_passed_through() {
    let out = run(memlens().args(["monitor", "-q", "--", "sh", "-c", "exit 7"]));
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(stderr(&out), "");
    let out = run(memlens().args(["monitor", "-q", "--", "sh", "-c", "kill -9 $$"]));
    assert_eq!(out.status.code(), Some(128 + 9));
}

#[test]
fn threshold_warns_when_crossed_and_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let script = "import time\nb = b'x' * (80 * 1024 * 1024)\ntime.sleep(0.6)\n";
    let out = run(memlens().current_dir(dir.path()).args([
        "monitor",
        "--threshold",
        "50MB",
        "-o",
        "th.json",
        "--",
        "python3",
        "-c",
        script,
    ]));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("warning: the tree's RSS reached")
            && err.contains("over the threshold of 47.7 MiB"),
        "{err}"
    );
    let json_path = dir.path().join("th.json");
    assert_eq!(json(&json_path, "d['threshold']['exceeded']"), "True");
    assert_eq!(json_u64(&json_path, "d['threshold']['bytes']"), 50_000_000);

    // Not reached: status 0. A command that fails keeps its own status.
    let out = run(memlens().args([
        "monitor",
        "--threshold",
        "1.5 GiB",
        "--",
        "python3",
        "-c",
        script,
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let failing = format!("{script}raise SystemExit(5)\n");
    let out = run(memlens().args([
        "monitor",
        "--threshold",
        "1MiB",
        "--",
        "python3",
        "-c",
        &failing,
    ]));
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
}

#[test]
fn bad_arguments_fail_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [&[&str]; 5] = [
        &["monitor", "--threshold", "12 parsecs", "--", "touch", "ran"],
        &["monitor", "-o", "out.txt", "--", "touch", "ran"],
        &["monitor", "--interval", "0", "--", "touch", "ran"],
        &["monitor", "--pid", "1", "--", "touch", "ran"],
        &["monitor", "-o", "no/such/dir/x.csv", "--", "touch", "ran"],
    ];
    let messages = [
        "invalid size \"12 parsecs\": unknown unit",
        "cannot tell the format of -o out.txt: name it .csv or .json",
        "--interval must be a positive number of seconds",
        "cannot be used with",
        "cannot create no/such/dir/x.csv",
    ];
    for (args, message) in cases.iter().zip(messages) {
        let out = run(memlens().current_dir(dir.path()).args(*args));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
        assert!(!dir.path().join("ran").exists(), "{args:?} ran the command");
    }
}

#[test]
fn sigint_stops_a_pid_monitor_and_writes_what_was_measured() {
    let dir = tempfile::tempdir().unwrap();
    let target = Sleeper::start();
    let monitor = memlens()
        .current_dir(dir.path())
        .args(["monitor", "--pid", &target.pid().to_string()])
        .args([
            "--interval",
            "0.05",
            "-o",
            "s.csv",
            "-o",
            "s.json",
            "--html",
            "s.html",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_rows(&dir.path().join("s.csv"), 3);
    send_signal(monitor.id(), "INT");
    let out = monitor.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json_path = dir.path().join("s.json");
    assert_eq!(json(&json_path, "d['stop_reason']"), "interrupted");
    assert!(json_u64(&json_path, "len(d['samples'])") >= 3);
    assert_eq!(json(&json_path, "d['processes'][0]['exited']"), "False");
    assert!(read_csv(&dir.path().join("s.csv")).len() >= 3);
    assert!(dir.path().join("s.html").metadata().unwrap().len() > 1000);
}

#[test]
fn sigint_to_the_monitor_is_passed_to_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let monitor = memlens()
        .current_dir(dir.path())
        .args([
            "monitor", "-o", "i.csv", "-o", "i.json", "--", "sleep", "60",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_rows(&dir.path().join("i.csv"), 2);
    send_signal(monitor.id(), "INT");
    let out = monitor.wait_with_output().unwrap();
    // sleep dies of the forwarded SIGINT; its status (128 + 2) is passed through.
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let json_path = dir.path().join("i.json");
    assert_eq!(json(&json_path, "d['stop_reason']"), "interrupted");
    assert_eq!(json(&json_path, "d['exit']['signal']"), "2");
    assert!(read_csv(&dir.path().join("i.csv")).len() >= 2);
}

#[test]
fn duration_ends_a_pid_monitor() {
    let dir = tempfile::tempdir().unwrap();
    let target = Sleeper::start();
    let out = run(memlens().current_dir(dir.path()).args([
        "monitor",
        "--pid",
        &target.pid().to_string(),
        "--duration",
        "0.5",
        "-o",
        "d.json",
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json_path = dir.path().join("d.json");
    assert_eq!(json(&json_path, "d['stop_reason']"), "duration");
    assert!(json_u64(&json_path, "len(d['samples'])") >= 2);
    assert_eq!(json(&json_path, "d['command']"), "['sleep', '60']");
    assert_eq!(json(&json_path, "d['exit']"), "None");
}

#[test]
fn duration_stops_recording_but_the_command_runs_to_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(memlens().current_dir(dir.path()).args([
        "monitor",
        "--duration",
        "0.3",
        "-o",
        "r.json",
        "--",
        "sh",
        "-c",
        "sleep 1; exit 4",
    ]));
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("recording stopped (--duration reached); waiting for the command"),
        "{}",
        stderr(&out)
    );
    let json_path = dir.path().join("r.json");
    assert_eq!(json(&json_path, "d['stop_reason']"), "duration");
    assert!(json(&json_path, "d['duration_s']").parse::<f64>().unwrap() < 1.0);
}

#[test]
fn children_that_come_and_go_are_followed() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(memlens().current_dir(dir.path()).args([
        "monitor",
        "--interval",
        "0.05",
        "-o",
        "g.json",
        "--",
        "sh",
        "-c",
        "for i in 1 2 3; do sleep 0.5; done",
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json_path = dir.path().join("g.json");
    let sleeps = "[p for p in d['processes'] if p['command'][0].endswith('sleep')]";
    assert_eq!(json(&json_path, &format!("len({sleeps})")), "3");
    assert_eq!(
        json(&json_path, &format!("all(p['exited'] for p in {sleeps})")),
        "True"
    );
    // They lived one after the other: each first seen after the previous one's last sample.
    assert_eq!(
        json(
            &json_path,
            &format!(
                "all(a['last_seen'] < b['first_seen'] for a, b in zip({sleeps}, {sleeps}[1:]))"
            )
        ),
        "True"
    );
}

#[test]
fn descendants_that_outlive_the_command_are_followed_to_their_end() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(memlens().current_dir(dir.path()).args([
        "monitor",
        "-o",
        "o.json",
        "--",
        "sh",
        "-c",
        // The shell lives a moment so that the first sample sees the tree even on a loaded
        // machine; an orphan whose parent exits before the first sample is a known gap.
        "sleep 1.5 & sleep 0.4; exit 0",
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("still following "),
        "{}",
        stderr(&out)
    );
    let json_path = dir.path().join("o.json");
    let sleep_last = json(
        &json_path,
        "[p['last_seen'] for p in d['processes'] if p['command'][0].endswith('sleep')][0]",
    );
    assert!(sleep_last.parse::<f64>().unwrap() >= 0.5, "{sleep_last}");
    assert_eq!(json(&json_path, "d['stop_reason']"), "exited");
}

#[test]
fn html_and_plot_are_self_contained_and_escape_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(memlens().current_dir(dir.path()).args([
        "monitor",
        "--html",
        "h.html",
        "--plot",
        "h.svg",
        "--threshold",
        "1GiB",
        "--",
        "sh",
        "-c",
        "sleep 0.3 # <script>alert('x')</script> & \"q\"",
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let html = fs::read_to_string(dir.path().join("h.html")).unwrap();
    let svg = fs::read_to_string(dir.path().join("h.svg")).unwrap();
    for doc in [&html, &svg] {
        assert!(!doc.contains("<script>alert"), "unescaped command");
        assert!(
            doc.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;")
        );
        for remote in ["src=\"http", "href=\"http", "@import", "<link"] {
            assert!(!doc.contains(remote), "{remote}");
        }
    }
    assert!(html.contains("<svg id=\"totals\""));
    assert!(html.contains("threshold"));
    assert!(svg.starts_with("<?xml") && svg.contains("<path d=\"M"));
    let ok = Command::new("python3")
        .args([
            "-c",
            "import sys, xml.dom.minidom as m; m.parse(sys.argv[1])",
        ])
        .arg(dir.path().join("h.svg"))
        .status()
        .unwrap();
    assert!(ok.success(), "the SVG is not well-formed XML");
}

#[test]
fn pss_is_read_at_every_sample_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(memlens().current_dir(dir.path()).args([
        "monitor",
        "--pss-interval",
        "0",
        "-o",
        "p.csv",
        "--",
        "sleep",
        "0.5",
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows = read_csv(&dir.path().join("p.csv"));
    assert!(rows.len() >= 2, "{rows:?}");
    assert!(
        rows.iter()
            .all(|r| r.pss.is_some_and(|p| p > 0 && p <= r.rss)),
        "{rows:?}"
    );
}

#[test]
fn no_live_view_when_stderr_is_not_a_terminal() {
    let out = run(memlens().args(["monitor", "--", "sleep", "0.4"]));
    assert_eq!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(!err.contains('\r') && !err.contains("\x1b["), "{err:?}");
    assert!(err.starts_with("memlens: peak RSS"), "{err}");
}
