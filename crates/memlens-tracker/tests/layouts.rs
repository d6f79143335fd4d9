//! Checks every offset in `src/python/` against `offsetof` in each installed CPython's own
//! headers (3.9-3.13 under /root/.pyenv/versions; 3.11 must be there). A version that is not
//! installed is reported on stderr, never passed silently.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use memlens_tracker::heap::{COMMON_OFFSETS, HeapExtra};
use memlens_tracker::python::{FrameModel, Layout, LocalsModel, ManagedDict};

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

        // The heap walker's offsets.
        let h = &layout.heap;
        let pairs: &[(&str, usize)] = &[
            ("interp.gc.generations", h.gc_generations),
            ("interp.gc.permanent_generation", h.gc_permanent),
            ("heaptype.ht_qualname", h.ht_qualname),
            ("tstate.thread_id", h.tstate_thread_id),
            ("tstate.exc_info", h.tstate_exc_info),
            ("tstate.dict", h.tstate_dict),
            ("tstate.async_exc", h.tstate_async_exc),
            ("tstate.context", h.tstate_context),
            ("stackitem.exc_value", h.stackitem_exc_value),
            ("stackitem.previous_item", h.stackitem_previous),
            ("code.co_consts", h.co_consts),
            ("code.co_names", h.co_names),
            ("func.func_code", h.func_code),
            ("func.func_globals", h.func_globals),
            ("func.func_closure", h.func_closure),
            ("func.func_defaults", h.func_defaults),
            ("func.func_dict", h.func_dict),
            ("exc.traceback", h.exc_traceback),
            ("exc.context", h.exc_context),
            ("exc.cause", h.exc_cause),
        ];
        for (key, value) in pairs {
            assert_eq!(*value, get(key), "{ctx} {key}");
        }
        for (key, value) in COMMON_OFFSETS {
            assert_eq!(*value, get(key), "{ctx} {key} (the same in every version)");
        }
        let extra = HeapExtra::of(minor).expect("heap walker extras for every supported version");
        for (key, value) in extra.probe_names() {
            assert_eq!(value, get(key), "{ctx} {key} (heap walker)");
        }
        let current_exception = if minor >= 12 {
            get("tstate.current_exception")
        } else {
            get("tstate.curexc_value")
        };
        assert_eq!(h.tstate_current_exception, current_exception, "{ctx}");
        assert_eq!(get("sizeof(gc_generation)"), 24, "{ctx} gc_generation");
        assert_eq!(get("NUM_GENERATIONS"), 3, "{ctx} generations");
        assert_eq!(get("sizeof(PyGC_Head)"), 16, "{ctx} PyGC_Head");
        match h.locals {
            LocalsModel::FrameObject {
                f_localsplus,
                co_nlocals,
                co_varnames,
                co_cellvars,
                co_freevars,
            } => {
                assert!(minor < 11, "{ctx}");
                assert_eq!(f_localsplus, get("frame.f_localsplus"), "{ctx}");
                assert_eq!(co_nlocals, get("code.co_nlocals"), "{ctx}");
                assert_eq!(co_varnames, get("code.co_varnames"), "{ctx}");
                assert_eq!(co_cellvars, get("code.co_cellvars"), "{ctx}");
                assert_eq!(co_freevars, get("code.co_freevars"), "{ctx}");
            }
            LocalsModel::Interpreter {
                f_frame,
                f_back,
                localsplus,
                frame_obj,
                f_locals,
                co_nlocalsplus,
                co_nfreevars,
                co_localsplusnames,
            } => {
                assert!(minor >= 11, "{ctx}");
                assert_eq!(f_frame, get("frameobj.f_frame"), "{ctx}");
                assert_eq!(f_back, get("frameobj.f_back"), "{ctx}");
                assert_eq!(localsplus, get("iframe.localsplus"), "{ctx}");
                assert_eq!(frame_obj, get("iframe.frame_obj"), "{ctx}");
                assert_eq!(f_locals, get("iframe.f_locals"), "{ctx}");
                assert_eq!(co_nlocalsplus, get("code.co_nlocalsplus"), "{ctx}");
                assert_eq!(co_nfreevars, get("code.co_nfreevars"), "{ctx}");
                assert_eq!(co_localsplusnames, get("code.co_localsplusnames"), "{ctx}");
            }
        }
        if minor >= 11 {
            assert_eq!(
                h.ht_cached_keys,
                Some(get("heaptype.ht_cached_keys")),
                "{ctx}"
            );
            assert_eq!(h.dictvalues_values, get("dictvalues.values"), "{ctx}");
            for (key, value) in [
                ("keys.dk_log2_size", 8),
                ("keys.dk_kind", 10),
                ("keys.dk_usable", 16),
                ("keys.dk_nentries", 24),
                ("keys.dk_indices", 32),
                ("sizeof(PyDictUnicodeEntry)", 16),
                ("keys.dk_log2_index_bytes", 9),
                ("Py_TPFLAGS_MANAGED_DICT", 16),
            ] {
                assert_eq!(get(key), value, "{ctx} {key}");
            }
        } else {
            assert_eq!(h.ht_cached_keys, None, "{ctx}");
        }
        let managed = match minor {
            9 | 10 => ManagedDict::None,
            11 => ManagedDict::Split311,
            12 => ManagedDict::Tagged312,
            _ => ManagedDict::Inline313,
        };
        assert_eq!(h.managed, managed, "{ctx}");
        if minor >= 13 {
            assert_eq!(get("Py_TPFLAGS_INLINE_VALUES"), 4, "{ctx}");
        }
        if minor >= 12 {
            assert_eq!(get("long.lv_tag"), 16, "{ctx}");
            assert_eq!(get("Py_TPFLAGS_MANAGED_WEAKREF"), 8, "{ctx}");
        }
        assert_eq!(h.long_tag, minor >= 12, "{ctx}");
        assert_eq!(h.immortal, minor >= 12, "{ctx}");
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
