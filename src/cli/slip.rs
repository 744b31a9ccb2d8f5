//! The likely slips of a first command line, and the line that says what was probably meant: the
//! built-in worker written without `--` (`watchdog fetch URL`), `watchdog help`, a mode misspelt
//! (`watchdog bacth`). Each would otherwise read as a DURATION and fail as `invalid duration`.

/// What `word`, found where GNU's form wants a DURATION, was probably meant to be, as a line for the
/// user; `None` when it looks like nothing in particular.
pub(super) fn did_you_mean(command: &clap::Command, word: &str) -> Option<String> {
    let line = match word {
        "fetch" => "did you mean `watchdog [OPTIONS] -- fetch URL -o FILE`? The built-in download \
                    worker follows `--`, e.g. `watchdog --timeout 30 --stall 5 -- fetch URL -o FILE`"
            .to_string(),
        "help" | "-help" | "h" | "usage" => "did you mean `watchdog --help` (or `watchdog batch \
                                             --help`, `watchdog report --help`)?"
            .to_string(),
        _ => {
            let mode = command
                .get_subcommands()
                .filter(|s| !s.is_hide_set())
                .map(|s| s.get_name())
                .filter(|name| word.len() >= 3 && edit_distance(name, word) <= 2)
                .min_by_key(|name| edit_distance(name, word))?;
            format!("did you mean `watchdog {mode}`?")
        }
    };
    Some(line)
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn slips_get_a_line_saying_what_was_meant() {
        let command = super::super::Cli::command();
        let line = |word| did_you_mean(&command, word).unwrap_or_default();
        assert!(line("fetch").contains("-- fetch URL"));
        assert!(line("help").contains("watchdog --help"));
        assert_eq!(line("bacth"), "did you mean `watchdog batch`?");
        assert_eq!(line("reprot"), "did you mean `watchdog report`?");
        assert_eq!(did_you_mean(&command, "5x"), None);
        assert_eq!(did_you_mean(&command, "sleep"), None);
        assert_eq!(edit_distance("batch", "batch"), 0);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
