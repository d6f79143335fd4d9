//! Checks every offset in `src/python/` against `offsetof` in each installed CPython's own
//! headers (3.9-3.13 under /root/.pyenv/versions; 3.11 must be there). A version that is not
//! installed is reported on stderr, never passed silently.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use memlens_tracker::python::{FrameModel, Layout};

fn interpreters() -> Vec<(u8, PathBuf)> {
    let root = std::env::var("PYENV_ROOT").unwrap_or_else(|_| "/root/.pyenv".into());
    let mut found = Vec::new();
    for minor in 9..=13u8 {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(Path::new(&root).join("versions"))
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        dirs.retain(|d| {
            d.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("3.{minor}.")) && !n.ends_with('t'))
        });
        dirs.sort();
        match dirs.pop() {
            Some(d) => found.push((minor, d)),
            None => eprintln!("note: CPython 3.{minor} not installed: its layout is not checked"),
        }
    }
    found
}

fn probe(minor: u8, prefix: &Path) -> HashMap<String, i64> {
    let include = prefix.join(format!("include/python3.{minor}"));
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let exe = out_dir.join(format!("layout_probe_3_{minor}"));
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/layout_probe.c");
    let status = Command::new("cc")
        .args(["-w", "-o"])
        .arg(&exe)
        .arg(&src)
        .arg(format!("-I{}", include.display()))
        .arg(format!("-I{}", include.join("internal").display()))
        .status()
        .expect("a C compiler (cc) is needed to read the interpreter's headers");
    assert!(
        status.success(),
        "compiling the probe against {} failed",
        include.display()
    );
    let out = Command::new(&exe).output().expect("probe runs");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

#[test]
fn layouts_match_the_interpreters_own_headers() {
    let found = interpreters();
    assert!(
        found.iter().any(|(m, _)| *m == 11),
        "CPython 3.11 is required for this test"
    );
    for (minor, prefix) in found {
        let p = probe(minor, &prefix);
        let layout = Layout::detect(3, minor).expect("supported version");
        let get = |k: &str| {
            *p.get(k)
                .unwrap_or_else(|| panic!("3.{minor}: probe lacks {k}")) as usize
        };
        let ctx = format!("CPython 3.{minor}");
        assert_eq!(
            layout.co_filename,
            get("code.co_filename"),
            "{ctx} co_filename"
        );
        assert_eq!(layout.co_name, get("code.co_name"), "{ctx} co_name");
        assert_eq!(
            layout.co_firstlineno,
            get("code.co_firstlineno"),
            "{ctx} co_firstlineno"
        );
        assert_eq!(
            layout.ascii_size,
            get("sizeof(PyASCIIObject)"),
            "{ctx} PyASCIIObject"
        );
        assert_eq!(
            layout.compact_size,
            get("sizeof(PyCompactUnicodeObject)"),
            "{ctx} compact"
        );
        assert_eq!(get("ascii.length"), 16, "{ctx} str length");
        assert_eq!(get("ascii.state"), 32, "{ctx} str state");
        assert_eq!(get("state.kind_mask"), 0b11100, "{ctx} kind bits");
        assert_eq!(get("state.compact_mask"), 1 << 5, "{ctx} compact bit");
        assert_eq!(get("state.ascii_mask"), 1 << 6, "{ctx} ascii bit");
        if minor >= 11 {
            assert_eq!(
                layout.co_qualname,
                Some(get("code.co_qualname")),
                "{ctx} co_qualname"
            );
            assert_eq!(
                layout.co_firsttraceable,
                Some(get("code._co_firsttraceable")),
                "{ctx}"
            );
            assert_eq!(
                layout.co_code_adaptive,
                Some(get("code.co_code_adaptive")),
                "{ctx}"
            );
        }
        match layout.frames {
            FrameModel::FrameObject {
                tstate_frame,
                f_back,
                f_code,
                f_lasti,
                ..
            } => {
                assert_eq!(tstate_frame, get("tstate.frame"), "{ctx} tstate.frame");
                assert_eq!(f_back, get("frame.f_back"), "{ctx} f_back");
                assert_eq!(f_code, get("frame.f_code"), "{ctx} f_code");
                assert_eq!(f_lasti, get("frame.f_lasti"), "{ctx} f_lasti");
            }
            FrameModel::Interpreter {
                tstate_cframe,
                current_frame,
                code,
                previous,
                instr,
                owner,
                ..
            } => {
                if minor < 13 {
                    assert_eq!(tstate_cframe, Some(get("tstate.cframe")), "{ctx} cframe");
                    assert_eq!(
                        current_frame,
                        get("cframe.current_frame"),
                        "{ctx} current_frame"
                    );
                    assert_eq!(code, get("iframe.f_code"), "{ctx} f_code");
                    assert_eq!(instr, get("iframe.prev_instr"), "{ctx} prev_instr");
                } else {
                    assert_eq!(tstate_cframe, None, "{ctx}");
                    assert_eq!(
                        current_frame,
                        get("tstate.current_frame"),
                        "{ctx} current_frame"
                    );
                    assert_eq!(code, get("iframe.f_executable"), "{ctx} f_executable");
                    assert_eq!(instr, get("iframe.instr_ptr"), "{ctx} instr_ptr");
                }
                assert_eq!(previous, get("iframe.previous"), "{ctx} previous");
                assert_eq!(owner, get("iframe.owner"), "{ctx} owner");
            }
        }
    }
}
