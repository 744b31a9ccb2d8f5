//! GNU timeout's command line, `watchdog [OPTION]... DURATION COMMAND [ARG]...`, rewritten into
//! watchdog's own (`--timeout DURATION -- COMMAND...`) before clap sees it.

use std::ffi::OsString;
use std::process::ExitCode;

use crate::duration::parse_duration;
use crate::exit::Exit;

/// Whether an operand was meant as a number: what follows `--` is only taken for a DURATION if it
/// parses as one, or is a number that does not (a negative one, typically), which is then an error.
pub(super) fn looks_numeric(text: &str) -> bool {
    let text = text.trim_start();
    let text = text
        .strip_prefix('-')
        .or_else(|| text.strip_prefix('+'))
        .unwrap_or(text);
    text.starts_with(|c: char| c.is_ascii_digit() || c == '.')
}

/// GNU timeout's own long options: where a prefix is ambiguous among watchdog's options but not among
/// these (`--s` is GNU's `--signal`, though watchdog also has `--stall`), it means what it means to GNU,
/// so that a script written for timeout(1) keeps working.
const GNU_LONG_OPTIONS: [&str; 7] = [
    "kill-after",
    "signal",
    "verbose",
    "preserve-status",
    "foreground",
    "help",
    "version",
];

/// The full name of the long option `name` stands for, as GNU's getopt_long reads it: the option of
/// that exact name, else the only one whose name starts with it (GNU timeout's own first, see
/// [`GNU_LONG_OPTIONS`]). `Ok(None)` when no option starts with it (clap reports it); `Err` with
/// getopt's message when several do.
fn long_option<'a>(command: &'a clap::Command, name: &str) -> Result<Option<&'a str>, String> {
    let mut names: Vec<&'a str> = command
        .get_arguments()
        .filter_map(|arg| arg.get_long())
        .chain(["help", "version"])
        .collect();
    names.sort_unstable();
    names.dedup();
    if let Some(exact) = names.iter().find(|n| **n == name) {
        return Ok(Some(exact));
    }
    if name.is_empty() {
        return Ok(None);
    }
    let matching: Vec<&'a str> = names.into_iter().filter(|n| n.starts_with(name)).collect();
    let gnu: Vec<&'a str> = matching
        .iter()
        .copied()
        .filter(|n| GNU_LONG_OPTIONS.contains(n))
        .collect();
    match (matching.as_slice(), gnu.as_slice()) {
        ([], _) => Ok(None),
        ([only], _) | (_, [only]) => Ok(Some(only)),
        (several, _) => Err(format!(
            "option '--{name}' is ambiguous; possibilities:{}",
            several
                .iter()
                .map(|n| format!(" '--{n}'"))
                .collect::<String>()
        )),
    }
}

/// GNU timeout's form. The options before the first operand are skipped (clap knows which take a
/// value); then, unless `--timeout` was given or the operand names a mode (`batch`, `report`), the
/// first operand is the DURATION and the rest the command: `watchdog -k 1 5 curl URL` becomes
/// `watchdog -k 1 --timeout 5 -- curl URL`. Without `--` the first operand must be a DURATION, as in
/// GNU; after `--` it is one only if it reads as a number, so `watchdog -- sleep 5` still runs `sleep`
/// with no deadline. Long options may be abbreviated to any unambiguous prefix (`--kill=1`, `--pres`),
/// as getopt_long takes them; they are given to clap by their full names. Anything clap would reject
/// (an unknown option) is left for clap to report.
pub(super) fn gnu_form(
    command: &clap::Command,
    args: Vec<OsString>,
) -> Result<Vec<OsString>, ExitCode> {
    let takes_value = |arg: &clap::Arg| arg.get_action().takes_values();
    let is_timeout = |arg: &clap::Arg| arg.get_id() == "timeout";
    let mut timeout_given = false;
    let mut after_dashes = false;
    // The options, with every short one on its own and its value apart (`-vk1` is `-v -k 1`): clap
    // takes a glued value for the command when the command's argument accepts hyphens.
    let mut options: Vec<OsString> = args.iter().take(1).cloned().collect();
    let mut at = 1;
    while at < args.len() {
        let Some(word) = args[at].to_str() else {
            break; // not UTF-8: an operand
        };
        if word == "--" {
            after_dashes = true;
            at += 1;
            break;
        }
        if let Some(long) = word.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (long, None),
            };
            let name = match long_option(command, name) {
                Ok(Some(full)) => full,
                Ok(None) => return Ok(args),
                Err(message) => {
                    crate::report_error(message);
                    return Err(Exit::Failure.into());
                }
            };
            // The option by its full name: clap takes no abbreviations.
            options.push(OsString::from(match value {
                Some(value) => format!("--{name}={value}"),
                None => format!("--{name}"),
            }));
            at += 1;
            let Some(arg) = command.get_arguments().find(|a| a.get_long() == Some(name)) else {
                continue; // --help, --version
            };
            timeout_given |= is_timeout(arg);
            if takes_value(arg) && value.is_none() {
                if let Some(value) = args.get(at) {
                    options.push(value.clone());
                    at += 1;
                }
            }
            continue;
        }
        if word.len() > 1 && word.starts_with('-') {
            at += 1;
            for (i, c) in word.char_indices().skip(1) {
                let Some(arg) = command.get_arguments().find(|a| a.get_short() == Some(c)) else {
                    return Ok(args);
                };
                options.push(OsString::from(format!("-{c}")));
                if takes_value(arg) {
                    timeout_given |= is_timeout(arg);
                    let rest = &word[i + c.len_utf8()..];
                    if !rest.is_empty() {
                        options.push(OsString::from(rest));
                    } else if let Some(value) = args.get(at) {
                        options.push(value.clone());
                        at += 1;
                    }
                    break;
                }
            }
            continue;
        }
        break;
    }
    let mut rewritten = options;
    let Some(operand) = args.get(at) else {
        if after_dashes {
            rewritten.push(OsString::from("--"));
        }
        return Ok(rewritten);
    };
    let text = operand.to_string_lossy();
    let keep = |mut rewritten: Vec<OsString>| {
        if after_dashes {
            rewritten.push(OsString::from("--"));
        }
        rewritten.extend_from_slice(&args[at..]);
        Ok(rewritten)
    };
    if timeout_given || (!after_dashes && command.get_subcommands().any(|s| s.get_name() == text)) {
        return keep(rewritten);
    }
    match parse_duration(&text) {
        Ok(_) => {
            rewritten.push(OsString::from("--timeout"));
            rewritten.push(operand.clone());
            rewritten.push(OsString::from("--"));
            rewritten.extend_from_slice(&args[at + 1..]);
            Ok(rewritten)
        }
        Err(_) if after_dashes && !looks_numeric(&text) => keep(rewritten),
        Err(_) => {
            crate::report_error(format!("invalid time interval '{text}'"));
            if let Some(line) = super::slip::did_you_mean(command, &text) {
                crate::say(format!("watchdog: {line}"));
            }
            Err(Exit::Failure.into())
        }
    }
}
