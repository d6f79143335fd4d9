//! `docs/cli.md`: every command's `--help`, as clap renders it, in one page. Generated, so it
//! cannot drift from the code: a test compares the file with this output.

use clap::CommandFactory;

/// The command-line reference in Markdown: the top-level help, then each listed command's
/// long help.
pub fn cli_reference() -> String {
    let mut cli = crate::Cli::command().term_width(100);
    let mut out = String::from(
        "# Command-line reference\n\n\
         Generated from the command line's own definitions (`memlens COMMAND --help` prints \
         the same); regenerate with\n`MEMLENS_BLESS=1 cargo test -p memlens-cli --test cli \
         reference`.\n\n",
    );
    out.push_str(&format!(
        "## memlens\n\n```text\n{}```\n",
        cli.render_long_help()
    ));
    let names: Vec<String> = cli
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(|c| c.get_name().to_owned())
        .collect();
    for name in names {
        let Some(sub) = cli.find_subcommand_mut(&name) else {
            continue;
        };
        let mut sub = sub.clone().bin_name(format!("memlens {name}"));
        let help = sub.render_long_help().to_string();
        out.push_str(&format!(
            "\n## memlens {name}\n\n```text\n{}\n```\n",
            help.trim_end()
        ));
    }
    out
}
