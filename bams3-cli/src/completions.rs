//! `bams3 completions SHELL` and `bams3 man [COMMAND]`: shell completions and man pages
//! generated from the clap definitions, so they never drift from the real options.

use std::io::Write;

use anyhow::{bail, Result};
use clap_complete::Shell;

#[derive(clap::Args)]
pub struct CompletionArgs {
    /// Shell to complete for: bash, zsh or fish (also elvish, powershell).
    shell: Shell,
}

#[derive(clap::Args)]
pub struct ManArgs {
    /// A subcommand's page (`bams3-convert(1)`...) instead of the main page `bams3(1)`.
    command: Option<String>,
}

/// Writes the completion script for `a.shell` to standard output.
///
/// Install, e.g.: `bams3 completions bash > ~/.local/share/bash-completion/completions/bams3`.
pub fn completions(a: CompletionArgs, mut cmd: clap::Command) -> Result<()> {
    let mut out = std::io::stdout().lock();
    clap_complete::generate(a.shell, &mut cmd, "bams3", &mut out);
    out.flush()?;
    Ok(())
}

/// Writes a man page (roff) to standard output: `bams3 man | man -l -`.
pub fn man(a: ManArgs, cmd: clap::Command) -> Result<()> {
    let cmd = cmd.version(env!("CARGO_PKG_VERSION"));
    let page = match a.command.as_deref() {
        None => cmd,
        Some(name) => {
            let Some(sub) = cmd.find_subcommand(name).cloned() else {
                let names: Vec<_> = cmd.get_subcommands().map(|s| s.get_name()).collect();
                bail!("man: no command '{name}' (one of {})", names.join(", "));
            };
            // Named as the page is (`bams3-convert`), with the version of the whole.
            let full = format!("bams3-{}", sub.get_name());
            let bin = format!("bams3 {}", sub.get_name());
            sub.display_name(full)
                .bin_name(bin)
                .version(env!("CARGO_PKG_VERSION"))
        }
    };
    let mut buf = Vec::new();
    clap_mangen::Man::new(page).render(&mut buf)?;
    let mut out = std::io::stdout().lock();
    out.write_all(&buf)?;
    out.flush()?;
    Ok(())
}
