//! `docs/cli.md` is the command line's own help, current.

use std::path::Path;

#[test]
fn docs_cli_md_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/cli.md");
    let expected = memlens_cli::cli_reference();
    if std::env::var_os("MEMLENS_BLESS").is_some() {
        std::fs::write(&path, &expected).unwrap();
        return;
    }
    let found = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        found == expected,
        "docs/cli.md is out of date with the command line; regenerate it with \
         MEMLENS_BLESS=1 cargo test -p memlens-cli --test cli reference"
    );
}
