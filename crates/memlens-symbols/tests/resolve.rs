//! Resolving addresses in shared objects built here with gcc/g++: debug info, inline frames,
//! C++ names, stripped files, deleted and rebuilt ones.

use std::path::{Path, PathBuf};
use std::process::Command;

use memlens_symbols::{Module, Symbolizer, Unavailable, build_id};
use object::{Object, ObjectSymbol};

const C_SOURCE: &str = r#"#include <stdlib.h>

static inline __attribute__((always_inline)) void *grow(size_t n) {
    return malloc(n * 2);  /* GROW LINE */
}

__attribute__((noinline)) void *memlens_test_alloc(size_t n) {
    void *p = grow(n);  /* CALL LINE */
    return p;
}

__attribute__((noinline)) static void *hidden_alloc(size_t n) {
    return calloc(n, 1);
}

void *memlens_test_hidden(size_t n) { return hidden_alloc(n); }
"#;

const CPP_SOURCE: &str = r#"#include <vector>
namespace shapes {
__attribute__((noinline)) std::vector<double> *make_buffer(unsigned long n) {
    return new std::vector<double>(n);  // NEW LINE
}
}
"#;

fn line_of(source: &str, marker: &str) -> u32 {
    source.lines().position(|l| l.contains(marker)).unwrap() as u32 + 1
}

fn build(dir: &Path, name: &str, source: &str, compiler: &str, flags: &[&str]) -> PathBuf {
    let ext = if compiler == "g++" { "cpp" } else { "c" };
    let src = dir.join(format!("{name}.{ext}"));
    std::fs::write(&src, source).unwrap();
    let out = dir.join(format!("lib{name}.so"));
    let status = Command::new(compiler)
        .args(["-shared", "-fPIC", "-Wl,--build-id"])
        .args(flags)
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .status()
        .expect("gcc/g++ is needed to build the test libraries");
    assert!(status.success());
    out
}

/// The stated address of `symbol` in the file (its load bias is 0 for these lookups).
fn address_of(path: &Path, symbol: &str) -> u64 {
    let data = std::fs::read(path).unwrap();
    let file = object::File::parse(&*data).unwrap();
    file.symbols()
        .chain(file.dynamic_symbols())
        .find(|s| s.name() == Ok(symbol))
        .map(|s| s.address())
        .unwrap_or_else(|| panic!("{symbol} not in {}", path.display()))
}

/// An address inside the body of the function at `start`: the return address of its first
/// call, as an unwinder would see it, is a few instructions in.
fn call_site(path: &Path, start: u64, lib: &str) -> u64 {
    // The first `call` instruction in the function, from objdump.
    let out = Command::new("objdump")
        .args(["-d", "--no-show-raw-insn"])
        .arg(path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with(&format!("{start:016x}")) {
            inside = true;
            continue;
        }
        if inside && line.contains("call") {
            let addr = line.trim().split(':').next().unwrap();
            return u64::from_str_radix(addr, 16).unwrap();
        }
        if inside && line.is_empty() {
            break;
        }
    }
    panic!("no call in the function at {start:#x} of {lib}");
}

fn module(path: &Path) -> Module {
    Module {
        path: path.to_owned(),
        bias: 0x7f00_0000_0000,
        build_id: build_id(path).unwrap(),
    }
}

#[test]
fn debug_info_gives_function_file_line_and_inline_frames() {
    let dir = tempfile::tempdir().unwrap();
    let lib = build(
        dir.path(),
        "alloc",
        C_SOURCE,
        "gcc",
        &["-g", "-O2", "-fno-optimize-sibling-calls"],
    );
    let start = address_of(&lib, "memlens_test_alloc");
    let at = call_site(&lib, start, "alloc");
    let m = module(&lib);
    let frames = Symbolizer::default().resolve(&m, m.bias + at);
    // malloc is called from the inlined `grow`, inside memlens_test_alloc.
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(frames[0].function.as_deref(), Some("grow"));
    assert!(frames[0].inlined);
    assert_eq!(frames[0].line, Some(line_of(C_SOURCE, "GROW LINE")));
    assert!(frames[0].file.as_deref().unwrap().ends_with("alloc.c"));
    assert_eq!(frames[1].function.as_deref(), Some("memlens_test_alloc"));
    assert!(!frames[1].inlined);
    assert_eq!(frames[1].line, Some(line_of(C_SOURCE, "CALL LINE")));
    assert_eq!(frames[1].offset, at);
}

#[test]
fn cpp_names_are_demangled() {
    let dir = tempfile::tempdir().unwrap();
    let lib = build(dir.path(), "shapes", CPP_SOURCE, "g++", &["-g", "-O1"]);
    let start = address_of(&lib, "_ZN6shapes11make_bufferEm");
    let at = call_site(&lib, start, "shapes");
    let m = module(&lib);
    let frames = Symbolizer::default().resolve(&m, m.bias + at);
    let outer = frames.last().unwrap();
    assert_eq!(
        outer.function.as_deref(),
        Some("shapes::make_buffer(unsigned long)"),
        "{frames:?}"
    );
    assert_eq!(outer.line, Some(line_of(CPP_SOURCE, "NEW LINE")));
}

#[test]
fn without_debug_info_the_symbol_table_names_the_function() {
    let dir = tempfile::tempdir().unwrap();
    let lib = build(dir.path(), "nodebug", C_SOURCE, "gcc", &["-O2"]);
    let start = address_of(&lib, "memlens_test_alloc");
    let m = module(&lib);
    let frames = Symbolizer::default().resolve(&m, m.bias + start + 1);
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0].function.as_deref(), Some("memlens_test_alloc"));
    assert_eq!((frames[0].file.as_deref(), frames[0].line), (None, None));
}

#[test]
fn a_stripped_static_function_is_module_plus_offset() {
    let dir = tempfile::tempdir().unwrap();
    let lib = build(dir.path(), "stripped", C_SOURCE, "gcc", &["-O2"]);
    let start = address_of(&lib, "hidden_alloc");
    assert!(
        Command::new("strip")
            .arg("--strip-all")
            .arg(&lib)
            .status()
            .unwrap()
            .success()
    );
    let m = module(&lib);
    let frames = Symbolizer::default().resolve(&m, m.bias + start + 1);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].function, None);
    assert_eq!(
        frames[0].display_name(),
        format!("libstripped.so+{:#x}", start + 1)
    );
}

#[test]
fn a_deleted_or_rebuilt_library_gives_module_plus_offset() {
    let dir = tempfile::tempdir().unwrap();
    let lib = build(dir.path(), "gone", C_SOURCE, "gcc", &["-g"]);
    let start = address_of(&lib, "memlens_test_alloc");
    let m = module(&lib);
    // Rebuilt from other code at the same path: its symbols would lie.
    build(
        dir.path(),
        "gone",
        &C_SOURCE.replace("n * 2", "n * 3 + 1"),
        "gcc",
        &["-g"],
    );
    let mut symbols = Symbolizer::default();
    assert_eq!(symbols.unavailable(&m), Some(Unavailable::OtherBuild));
    let frames = symbols.resolve(&m, m.bias + start);
    assert_eq!(frames[0].function, None);
    assert_eq!(frames[0].display_name(), format!("libgone.so+{start:#x}"));
    // Deleted.
    std::fs::remove_file(&lib).unwrap();
    let frames = Symbolizer::default().resolve(&m, m.bias + start);
    assert_eq!(frames[0].display_name(), format!("libgone.so+{start:#x}"));
    assert!(matches!(
        Symbolizer::default().unavailable(&m),
        Some(Unavailable::Unreadable(_))
    ));
}
