//! `memlens explain`: print a rule's documentation.

/// Arguments of `memlens explain`.
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("what").required(true).args(["rule", "list"]))]
pub struct Args {
    /// The rule: a code such as ML101, or a name such as list-as-queue.
    #[arg(value_name = "RULE")]
    rule: Option<String>,
    /// List every rule with its one-line summary.
    #[arg(long)]
    list: bool,
}

/// Every registry `explain` can look a rule up in, in order: lint rules (ML...), then run-time
/// findings (MR...).
const REGISTRIES: &[fn(&str) -> Option<String>] = &[memlens_lint::explain, explain_runtime];

/// The page of a run-time rule: its code and title, then its documentation.
fn explain_runtime(code: &str) -> Option<String> {
    let rule = memlens_analysis::findings::explain(code)?;
    Some(format!(
        "# {}: {}\n\nA run-time finding of `memlens run` and `memlens report`.\n\n{}",
        rule.code, rule.title, rule.doc
    ))
}

/// Runs `memlens explain`: 0 with the rule's page, 2 for an unknown rule.
pub fn exec(args: Args) -> anyhow::Result<u8> {
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.list {
        for rule in memlens_lint::Rule::ALL {
            writeln!(
                out,
                "{}  {:<26} {}",
                rule.code(),
                rule.name(),
                rule.summary()
            )?;
        }
        for rule in memlens_analysis::findings::RULES {
            writeln!(
                out,
                "{}  {:<26} (run time)",
                rule.code,
                rule.title.replace(' ', "-")
            )?;
        }
        return Ok(0);
    }
    let code = args.rule.unwrap_or_default();
    match REGISTRIES.iter().find_map(|lookup| lookup(&code)) {
        Some(page) => {
            out.write_all(page.as_bytes())?;
            Ok(0)
        }
        None => {
            eprintln!(
                "memlens: error: unknown rule `{code}` (`memlens explain --list` lists them)"
            );
            Ok(2)
        }
    }
}
