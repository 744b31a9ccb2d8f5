//! The supervisor's everyday command lines, read without clap: `watchdog [OPTION]... DURATION COMMAND
//! [ARG]...` and `watchdog [OPTION]... -- COMMAND [ARG]...` with the supervisor's own options, each
//! given once, by its full name or its letter. Building clap's description of every mode costs more
//! than the rest of watchdog's start-up put together, and a `timeout` replacement is started for every
//! command of a script.
//!
//! Anything else (help, version, a mode, an abbreviated or repeated option, any value the parsers
//! refuse, an unusual spelling) is left to clap: [`read`] returns `None` and the command line is parsed
//! as before, so every message and exit code stays clap's and [`super::gnu_form`]'s. The unit tests
//! check that whatever this reads, clap reads the same.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::ValueEnum;

use super::args::{ContainArg, SuperviseArgs};
use super::gnu_form::looks_numeric;
use crate::duration::{parse_duration, parse_optional_duration};
use crate::signals::parse_signal;

/// The most `-v` taken here; more is clap's.
const MOST_VERBOSE: u8 = 2;

/// The supervisor's options and the command, when `args` is one of the everyday forms (see the module
/// comment) and clap would read it so; `None` otherwise.
pub(super) fn read(args: &[OsString]) -> Option<(SuperviseArgs, &[OsString])> {
    let mut line = Line::default();
    let mut at = 1;
    let mut after_dashes = false;
    while let Some(word) = args.get(at) {
        let word = word.to_str()?;
        if word == "--" {
            after_dashes = true;
            at += 1;
            break;
        }
        if let Some(long) = word.strip_prefix("--") {
            at += 1;
            let (name, attached) = match long.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (long, None),
            };
            let option = Opt::by_name(name)?;
            let value = if option.takes_value() {
                match attached {
                    Some(value) => Some(value),
                    None => {
                        at += 1;
                        Some(args.get(at - 1)?.to_str()?)
                    }
                }
            } else if attached.is_some() {
                return None;
            } else {
                None
            };
            line.set(option, value)?;
            continue;
        }
        if word.len() > 1 && word.starts_with('-') {
            at += 1;
            for (i, letter) in word.char_indices().skip(1) {
                let option = Opt::by_letter(letter)?;
                if !option.takes_value() {
                    line.set(option, None)?;
                    continue;
                }
                let rest = &word[i + letter.len_utf8()..];
                let value = if rest.is_empty() {
                    at += 1;
                    args.get(at - 1)?.to_str()?
                } else {
                    rest
                };
                line.set(option, Some(value))?;
                break;
            }
            continue;
        }
        break;
    }
    let operands = args.get(at..)?;
    let (first, rest) = operands.split_first()?;
    let command = if line.timeout_given {
        // `watchdog -t 5 COMMAND`: clap's own reading of a command without `--` is left to it.
        if !after_dashes {
            return None;
        }
        operands
    } else {
        // A mode's name (`batch`) is no DURATION: clap reads that line.
        let text = first.to_str()?;
        if parse_duration(text).is_ok() {
            line.args.timeout = parse_optional_duration(text).ok()?;
            rest
        } else if after_dashes && !looks_numeric(text) {
            operands
        } else {
            return None;
        }
    };
    if command.is_empty() {
        return None;
    }
    Some((line.args, command))
}

/// The options read here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opt {
    Timeout,
    Stall,
    Signal,
    KillAfter,
    PreserveStatus,
    Foreground,
    Verbose,
    Quiet,
    Events,
    Contain,
}

impl Opt {
    /// Each option with its long name and its letter, as `SuperviseArgs` declares them.
    const ALL: [(Opt, &'static str, Option<char>); 10] = [
        (Opt::Timeout, "timeout", Some('t')),
        (Opt::Stall, "stall", None),
        (Opt::Signal, "signal", Some('s')),
        (Opt::KillAfter, "kill-after", Some('k')),
        (Opt::PreserveStatus, "preserve-status", Some('p')),
        (Opt::Foreground, "foreground", Some('f')),
        (Opt::Verbose, "verbose", Some('v')),
        (Opt::Quiet, "quiet", Some('q')),
        (Opt::Events, "events", None),
        (Opt::Contain, "contain", None),
    ];

    fn by_name(name: &str) -> Option<Opt> {
        Opt::ALL
            .iter()
            .find(|(_, long, _)| *long == name)
            .map(|(opt, _, _)| *opt)
    }

    fn by_letter(letter: char) -> Option<Opt> {
        Opt::ALL
            .iter()
            .find(|(_, _, short)| *short == Some(letter))
            .map(|(opt, _, _)| *opt)
    }

    fn takes_value(self) -> bool {
        !matches!(
            self,
            Opt::PreserveStatus | Opt::Foreground | Opt::Verbose | Opt::Quiet
        )
    }
}

/// The options read so far.
struct Line {
    args: SuperviseArgs,
    seen: Vec<Opt>,
    timeout_given: bool,
}

impl Default for Line {
    /// The defaults `SuperviseArgs` declares for clap.
    fn default() -> Line {
        Line {
            args: SuperviseArgs {
                timeout: None,
                stall: None,
                signal: libc::SIGTERM,
                kill_after: Duration::from_secs(2),
                preserve_status: false,
                foreground: false,
                verbose: 0,
                quiet: false,
                events: None,
                contain: ContainArg::Auto,
            },
            seen: Vec::new(),
            timeout_given: false,
        }
    }
}

impl Line {
    /// Takes `option` with `value`; `None` when clap is to read the line: a second time (only `-v`
    /// counts), or a value that is empty, looks like an option, or is refused.
    fn set(&mut self, option: Opt, value: Option<&str>) -> Option<()> {
        if option == Opt::Verbose {
            if self.args.verbose == MOST_VERBOSE {
                return None;
            }
            self.args.verbose += 1;
            return Some(());
        }
        if self.seen.contains(&option) {
            return None;
        }
        self.seen.push(option);
        let value = match value {
            Some(value) if value.is_empty() || value.starts_with(['-', '=']) => return None,
            value => value,
        };
        let args = &mut self.args;
        match (option, value) {
            (Opt::Timeout, Some(text)) => {
                args.timeout = parse_optional_duration(text).ok()?;
                self.timeout_given = true;
            }
            (Opt::Stall, Some(text)) => args.stall = parse_optional_duration(text).ok()?,
            (Opt::Signal, Some(text)) => args.signal = parse_signal(text).ok()?,
            (Opt::KillAfter, Some(text)) => args.kill_after = parse_duration(text).ok()?,
            (Opt::Events, Some(text)) => args.events = Some(PathBuf::from(text)),
            (Opt::Contain, Some(text)) => args.contain = ContainArg::from_str(text, false).ok()?,
            (Opt::PreserveStatus, None) => args.preserve_status = true,
            (Opt::Foreground, None) => args.foreground = true,
            (Opt::Quiet, None) => args.quiet = true,
            _ => return None,
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn words(line: &[&str]) -> Vec<OsString> {
        std::iter::once("watchdog")
            .chain(line.iter().copied())
            .map(OsString::from)
            .collect()
    }

    /// What this module reads of `line`, and what clap reads of it, both as text; clap's only when
    /// this module read something.
    fn both(line: &[String]) -> Option<(String, String)> {
        let args: Vec<OsString> = std::iter::once("watchdog".to_string())
            .chain(line.iter().cloned())
            .map(OsString::from)
            .collect();
        let (fast, command) = read(&args)?;
        let fast = format!("{fast:?} {command:?}");
        let clap = match super::super::parse(args.clone()) {
            Ok((cli, _)) if cli.mode.is_none() => format!("{:?} {:?}", cli.supervise, cli.command),
            Ok((cli, _)) => format!("a mode: {:?}", cli.mode),
            Err(code) => format!("an error: {code:?}"),
        };
        Some((fast, clap))
    }

    #[test]
    fn the_everyday_forms_are_read_here() {
        for line in [
            &["5", "true"][..],
            &["--contain", "group", "--timeout", "10", "--", "true"],
            &[
                "-k",
                "1",
                "-s",
                "INT",
                "--preserve-status",
                "0.5",
                "sleep",
                "9",
            ],
            &["-vv", "--foreground", "1m", "make", "-j4"],
            &["-s9", "-k1s", "5", "true"],
            &["--signal=HUP", "--kill-after=3", "2", "sh", "-c", "exit 3"],
            &[
                "--stall=2",
                "--events",
                "ev.jsonl",
                "-q",
                "--",
                "3",
                "fetch",
                "URL",
            ],
            &["--", "sleep", "5"],
            &["-t", "0", "--", "-x"],
        ] {
            let line: Vec<String> = line.iter().map(|w| w.to_string()).collect();
            let (fast, clap) = both(&line).unwrap_or_else(|| panic!("not read here: {line:?}"));
            assert_eq!(fast, clap, "{line:?}");
        }
    }

    #[test]
    fn anything_unusual_is_left_to_clap() {
        for line in [
            &[][..],
            &["--help"],
            &["-h"],
            &["--version"],
            &["batch", "list"],
            &["report", "r.jsonl"],
            &["5x", "true"],
            &["5"],
            &["--", "5"],
            &["--", "-1", "true"],
            &["--kill=1", "5", "true"],
            &["--pres", "5", "true"],
            &["-p", "-p", "5", "true"],
            &["-s", "INT", "-s", "TERM", "5", "true"],
            &["-s", "BOGUS", "5", "true"],
            &["-s=9", "5", "true"],
            &["-k", "-1", "5", "true"],
            &["--events=", "5", "true"],
            &["--preserve-status=yes", "5", "true"],
            &["--contain", "GROUP", "5", "true"],
            &["-t", "5", "true"],
            &["-z", "5", "true"],
            &["--bogus", "5", "true"],
            &["-vvv", "5", "true"],
            &["--timeout"],
        ] {
            assert!(read(&words(line)).is_none(), "{line:?}");
        }
    }

    fn word() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "--",
            "-",
            "",
            "5",
            "0",
            "1.5",
            "2s",
            "-1",
            "+3",
            ".5",
            "5x",
            "1e3",
            "inf",
            "true",
            "sleep",
            "batch",
            "report",
            "fetch",
            "-t",
            "-s",
            "-k",
            "-p",
            "-f",
            "-v",
            "-q",
            "-vv",
            "-pf",
            "-vk1",
            "-s9",
            "-sINT",
            "-k0",
            "-tv",
            "-x",
            "--timeout",
            "--timeout=3",
            "--stall",
            "--stall=1",
            "--signal",
            "--signal=KILL",
            "--signal=0",
            "--kill-after",
            "--kill-after=1",
            "--preserve-status",
            "--foreground",
            "--verbose",
            "--quiet",
            "--events",
            "--events=e",
            "--contain",
            "--contain=group",
            "group",
            "pidns",
            "auto",
            "INT",
            "TERM",
            "RTMIN+1",
            "--pres",
            "--s",
            "--help",
            "-h",
            "--version",
            "--bogus",
        ])
        .prop_map(str::to_string)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// Whatever this module reads, clap reads the same options and command: lines of any words,
        /// and lines of options (some with their values) before anything.
        #[test]
        fn what_is_read_here_is_what_clap_reads(
            options in prop::collection::vec(prop::collection::vec(word(), 1..3), 0..4),
            rest in prop::collection::vec(word(), 0..5),
        ) {
            let line: Vec<String> = options.into_iter().flatten().chain(rest).collect();
            if let Some((fast, clap)) = both(&line) {
                prop_assert_eq!(fast, clap, "{:?}", line);
            }
        }
    }
}
