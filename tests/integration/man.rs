//! The man pages in man/ and the shell completions in man/completions/ are generated from the CLI
//! definition; these tests fail when they drift. Regenerate both with
//! `WATCHDOG_UPDATE_MAN=1 cargo test --test integration man`.

use std::path::PathBuf;

use clap::CommandFactory;
use watchdog::{Cli, FetchArgs};

/// clap_mangen's standard sections, then the long help's trailing blocks ("Examples:", "Exit status:",
/// ...) as sections of their own, kept verbatim so their tables stay aligned.
fn render(command: clap::Command) -> String {
    let extra = command
        .get_after_long_help()
        .map(|h| h.to_string())
        .unwrap_or_default();
    let has_subcommands = command.get_subcommands().next().is_some();
    let man = clap_mangen::Man::new(command);
    let mut out = Vec::new();
    man.render_title(&mut out).expect("render");
    man.render_name_section(&mut out).expect("render");
    man.render_synopsis_section(&mut out).expect("render");
    man.render_description_section(&mut out).expect("render");
    man.render_options_section(&mut out).expect("render");
    if has_subcommands {
        man.render_subcommands_section(&mut out).expect("render");
    }
    let mut page = String::from_utf8(out).expect("man page is UTF-8");
    for block in extra.split("\n\n") {
        let Some((title, body)) = block.split_once('\n') else {
            continue;
        };
        page.push_str(&format!(
            ".SH \"{}\"\n.nf\n",
            title.trim_end_matches(':').to_uppercase()
        ));
        for line in body.lines() {
            let line = line.replace('\\', "\\e").replace('-', "\\-");
            if line.starts_with('.') || line.starts_with('\'') {
                page.push_str("\\&");
            }
            page.push_str(&line);
            page.push('\n');
        }
        page.push_str(".fi\n");
    }
    page
}

fn pages() -> Vec<(&'static str, String)> {
    let cli = Cli::command();
    let batch = cli
        .find_subcommand("batch")
        .expect("batch subcommand")
        .clone()
        .name("watchdog-batch")
        .bin_name("watchdog batch");
    let report = cli
        .find_subcommand("report")
        .expect("report subcommand")
        .clone()
        .name("watchdog-report")
        .bin_name("watchdog report");
    vec![
        ("watchdog.1", render(cli)),
        ("watchdog-fetch.1", render(FetchArgs::command())),
        ("watchdog-batch.1", render(batch)),
        ("watchdog-report.1", render(report)),
    ]
}

/// The completion scripts for bash, zsh and fish, named as each shell looks for them.
fn completions() -> Vec<(&'static str, String)> {
    use clap_complete::Shell;
    [
        ("watchdog.bash", Shell::Bash),
        ("_watchdog", Shell::Zsh),
        ("watchdog.fish", Shell::Fish),
    ]
    .into_iter()
    .map(|(name, shell)| {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "watchdog", &mut out);
        (name, String::from_utf8(out).expect("completions are UTF-8"))
    })
    .collect()
}

/// Writes `files` into `dir` under WATCHDOG_UPDATE_MAN, else checks they match what is there.
fn check_current(dir: &std::path::Path, files: Vec<(&'static str, String)>) {
    let update = std::env::var_os("WATCHDOG_UPDATE_MAN").is_some();
    for (name, text) in files {
        let path = dir.join(name);
        if update {
            std::fs::create_dir_all(dir).expect("make the directory");
            std::fs::write(&path, &text).expect("write generated file");
            continue;
        }
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            current == text,
            "{} is out of date: run `WATCHDOG_UPDATE_MAN=1 cargo test --test integration man`",
            path.display()
        );
    }
}

fn man_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("man")
}

#[test]
fn man_pages_are_current() {
    check_current(&man_dir(), pages());
}

#[test]
fn shell_completions_are_current() {
    check_current(&man_dir().join("completions"), completions());
}

#[test]
fn bash_completion_offers_the_options_and_subcommands() {
    let script = man_dir().join("completions/watchdog.bash");
    let complete = |words: &str| {
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source '{}'; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
                 _watchdog watchdog; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
                script.display()
            ))
            .output()
            .expect("run bash");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let options = complete("watchdog --ti");
    assert!(options.lines().any(|l| l == "--timeout"), "{options}");
    let subcommands = complete("watchdog ba");
    assert!(subcommands.lines().any(|l| l == "batch"), "{subcommands}");
    let batch = complete("watchdog batch --re");
    assert!(batch.lines().any(|l| l == "--retries"), "{batch}");
}

#[test]
fn man_page_documents_options_exit_codes_events_and_examples() {
    let (_, page) = &pages()[0];
    for needle in [
        "\\-\\-timeout",
        "\\-\\-stall",
        "\\-\\-kill\\-after",
        "\\-\\-events",
        "124",
        "125",
        "126",
        "127",
        "128+N",
        "WATCHDOG_PROGRESS_FD",
        "elapsed_ms",
        ".SH \"EXAMPLES\"",
        ".SH \"EXIT STATUS\"",
        ".SH \"DIFFERENCES FROM GNU TIMEOUT\"",
    ] {
        assert!(page.contains(needle), "man page lacks {needle}");
    }
}
