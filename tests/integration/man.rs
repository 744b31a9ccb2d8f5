//! The man pages in man/ and the shell completions in man/completions/ are generated from the CLI
//! definition; these tests fail when they drift. Regenerate both with
//! `WATCHDOG_UPDATE_MAN=1 cargo test --test integration man`.

use std::path::PathBuf;

use clap::CommandFactory;
use watchdog::{Cli, FetchArgs};

/// clap_mangen's standard sections, then the long help's trailing blocks ("Examples:", "Exit status:",
/// ...) as sections of their own: their tables verbatim, so that they stay aligned, and their
/// paragraphs (single long lines) filled to the reader's width.
fn render(command: clap::Command) -> String {
    let extra = command
        .get_after_long_help()
        .map(|h| h.to_string())
        .unwrap_or_default();
    let has_subcommands = command.get_subcommands().next().is_some();
    let command_for_synopsis = command.clone();
    let man = clap_mangen::Man::new(command);
    let mut out = Vec::new();
    man.render_title(&mut out).expect("render");
    man.render_name_section(&mut out).expect("render");
    out.extend_from_slice(synopsis(&command_for_synopsis).as_bytes());
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
            let indent = line.len() - line.trim_start().len();
            // A paragraph (one long line, which --help lets clap wrap) is filled by the pager, at
            // its indentation; tables and samples stay as laid out.
            let trimmed = line.trim_start();
            let paragraph = line.chars().count() > 80
                || (line.chars().count() > 60
                    && trimmed.starts_with(|c: char| c.is_ascii_uppercase())
                    && !trimmed.contains("  "));
            let line = line.replace('\\', "\\e").replace('-', "\\-");
            let text = if paragraph { line.trim_start() } else { &line };
            if paragraph {
                page.push_str(&format!(".fi\n.RS {indent}n\n"));
            }
            if text.starts_with('.') || text.starts_with('\'') {
                page.push_str("\\&");
            }
            page.push_str(text);
            page.push('\n');
            if paragraph {
                page.push_str(".RE\n.nf\n");
            }
        }
        page.push_str(".fi\n");
    }
    page
}

/// Roff for plain text: backslashes and hyphens escaped.
fn roff(text: &str) -> String {
    text.replace('\\', "\\e").replace('-', "\\-")
}

/// The SYNOPSIS as GNU's pages write it: each form of the command line (the usage `--help` prints, in
/// GNU's words: `watchdog [OPTION]... DURATION COMMAND [ARG]...`, `watchdog batch [OPTION]... LIST`),
/// then every option with the
/// placeholder of its value (`[-t|--timeout DURATION]`), which clap_mangen's synopsis leaves out.
fn synopsis(command: &clap::Command) -> String {
    let usage = command.clone().render_usage().to_string();
    let usage = usage
        .trim_start_matches("Usage:")
        .replace("[OPTIONS]", "[OPTION]...")
        .replace(['<', '>'], "");
    let mut text = String::from(".SH SYNOPSIS\n.nf\n");
    for form in usage.lines() {
        text.push_str(&roff(form.trim()));
        text.push('\n');
    }
    text.push_str(".fi\n.PP\nOptions:\n");
    let options: Vec<String> = command
        .get_arguments()
        .filter(|arg| !arg.is_positional() && !arg.is_hide_set())
        .map(|arg| {
            let names: Vec<String> = arg
                .get_short()
                .map(|c| format!("-{c}"))
                .into_iter()
                .chain(arg.get_long().map(|l| format!("--{l}")))
                .collect();
            let value = arg
                .get_value_names()
                .and_then(|names| names.first())
                .filter(|_| arg.get_action().takes_values())
                .map(|n| format!(" \\fI{}\\fR", roff(n)))
                .unwrap_or_default();
            format!("[\\fB{}\\fR{value}]", roff(&names.join("|")))
        })
        .collect();
    text.push_str(&options.join(" "));
    text.push('\n');
    text
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
        // GNU's synopsis, every option with its placeholder, and DURATION's syntax.
        "watchdog [OPTION]... DURATION COMMAND [ARG]...",
        "[\\fB\\-t|\\-\\-timeout\\fR \\fIDURATION\\fR]",
        "[\\fB\\-s|\\-\\-signal\\fR \\fISIGNAL\\fR]",
        ".SH \"DURATIONS\"",
        "unit: s for seconds (the default), m for minutes",
    ] {
        assert!(page.contains(needle), "man page lacks {needle}");
    }
    for (name, page) in pages() {
        assert!(
            !page.contains("README"),
            "{name} sends the reader to the README"
        );
        assert!(page.contains("[OPTION]..."), "{name}: no GNU synopsis");
    }
}

/// The lines of `text` that hold a lone word of a wrapped paragraph: one word, no heading (`Options:`),
/// no JSON sample, and at the indentation of the line before it, which it continues.
fn stranded_words(text: &str) -> Vec<String> {
    let indent = |line: &str| line.len() - line.trim_start().len();
    text.lines()
        .zip(text.lines().skip(1))
        .filter(|(before, line)| {
            let word = line.trim();
            !word.is_empty()
                && !word.contains(' ')
                && !word.ends_with(':')
                && !word.starts_with(['{', '['])
                && !before.trim().is_empty()
                && indent(before) == indent(line)
        })
        .map(|(before, line)| format!("{before}\n{line}"))
        .collect()
}

/// Every `--help` a user can ask for (the main one, batch's, report's, the fetch worker's, and the
/// short `-h`) reads at 80 and at 120 columns: clap wraps the paragraphs, so no word is left alone on a
/// line, as it was when paragraphs wrapped by hand at 100 columns were wrapped again; and no line is
/// wider than the terminal.
#[test]
fn every_help_reads_at_80_and_120_columns() {
    let helps: [&[&str]; 6] = [
        &["--help"],
        &["-h"],
        &["batch", "--help"],
        &["report", "--help"],
        &["--", "fetch", "--help"],
        &["batch", "-h"],
    ];
    for columns in ["80", "120"] {
        for args in helps {
            let out = std::process::Command::new(crate::common::bin())
                .args(args)
                .env("COLUMNS", columns)
                .output()
                .expect("run watchdog");
            assert_eq!(out.status.code(), Some(0), "{args:?}");
            let text = String::from_utf8_lossy(&out.stdout);
            let stranded = stranded_words(&text);
            assert!(
                stranded.is_empty(),
                "{args:?} at {columns} columns strands words:\n{}",
                stranded.join("\n--\n")
            );
            let width: usize = columns.parse().unwrap_or(80);
            for line in text.lines() {
                assert!(
                    line.chars().count() <= width,
                    "{args:?} at {columns} columns: {line:?}"
                );
            }
        }
    }
}
