//! The help texts `--help`, the man pages and the README share: examples, the progress channel, the
//! batch list and report, and where watchdog differs from GNU timeout on purpose.

use crate::exit::{BATCH_EXIT_STATUS_HELP, EXIT_STATUS_HELP};

/// The supervisor's examples, shown by `--help` and the man page.
pub const SUPERVISE_EXAMPLES: &str = "\
Examples:
  watchdog --timeout 5 -- curl -sO https://host/a.jpg
      Run curl; at 5 s send SIGTERM to its whole process tree, and SIGKILL 2 s later if it is still there.
  watchdog 5 curl -sO https://host/a.jpg
      The same in GNU timeout's form: a script written for timeout(1) works as it is.
  watchdog --timeout 5 --stall 2 -- fetch https://host/a.jpg -o a.jpg
      Download with the built-in worker; stop it when no byte arrives for 2 s.
  watchdog -t 1m -s INT -k 5 --events run.jsonl -- ./train.sh
      Send SIGINT after a minute, SIGKILL 5 s later; log what watchdog did as JSON Lines.
  watchdog batch urls.txt --out imgs/ --jobs 16 --timeout 10
      Download a list of URLs, 16 at a time, each under its own 10 s deadline.";

/// The progress channel and events schema, shown by `--help` and the man page.
pub const PROTOCOL_HELP: &str = "\
Progress channel:
  Every command gets the write end of a pipe; its fd number is in WATCHDOG_PROGRESS_FD. Each line written there that is a JSON object counts as a heartbeat for --stall, e.g.
    {\"event\":\"progress\",\"bytes\":1024,\"total\":4096}
  Lines longer than 64 KiB, and lines that are not JSON objects, are ignored.

Events file:
  --events FILE writes one JSON object per line, each with \"event\" and \"time_ms\" (since start):
  {\"event\":\"start\",\"pid\":N,\"argv\":[...],
   \"contain\":\"pidns|userns|sentinel|group\"}
  {\"event\":\"progress\",\"data\":{...}}
      a line relayed from the progress channel
  {\"event\":\"signal\",\"signal\":\"TERM\",\"pids\":N,
   \"reason\":\"deadline|stall|forwarded|cleanup\"}
  {\"event\":\"exit\",\"reason\":\"exited|deadline|stall|forwarded\",
   \"exit_code\":N,\"status\":{\"code\":N} or {\"signal\":N},\"elapsed_ms\":N}
  Credentials in URLs (user:password@) are replaced by \"***\".";

/// The batch mode's examples, list format and report, shown by `batch --help` and its man page.
///
/// Paragraphs are single lines, which clap wraps to the terminal (keeping their indentation); only
/// tables and JSON samples are laid out by hand, in lines that fit in 80 columns.
pub const BATCH_HELP: &str = "\
Examples:
  watchdog batch urls.txt --out imgs/ --jobs 16 --timeout 10 --stall 3
      Fetch urls.txt into imgs/, 16 at a time; the report is imgs/report.jsonl.
  grep jpg urls.txt | watchdog batch - --out imgs/ --expect image --max-size 20M
      Read the list from stdin; refuse anything that is not an image or is over 20 MiB.
  watchdog batch urls.txt --out imgs/ --shard 3/8
      Take the third of eight disjoint shards (by a hash of the URL); run the other seven elsewhere.
  watchdog batch urls.txt --out imgs/ --shard auto
      Pick the shard from SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT, or from JOB_COMPLETION_INDEX with --shard-count N (a Kubernetes Indexed Job).

List format:
  One item per line: a URL; URL<TAB>RELATIVE/PATH to name the file; or a JSON object {\"url\":...,\"path\":...,\"sha256\":...}, whose other keys (ids, captions) go into the item's report line unchanged, as one object under extra. Blank lines and # comments are skipped; CRLF and a UTF-8 BOM are accepted. A line that is not an http(s) URL, is unparsable or is longer than 8 KiB is reported invalid. Names come from the URL's last path segment, percent-decoded and sanitized; no name ever leaves DIR. Name collisions get a short hash suffix; a URL listed twice is fetched once. Past 32,768 items, the index of names moves from memory to an unnamed file in DIR (up to 64 bytes of disk per item, and up to 96 more per item an earlier run finished), so DIR needs that room beside the downloads.

Report:
  One JSON object per item, appended and flushed as each finishes:
  {\"url\",\"path\",\"status\",\"http_status\",\"bytes\",\"sha256\",\"attempts\",
   \"elapsed_ms\",\"error\",\"finished_at\",\"run\",\"extra\"}
  status is one of ok, timeout, stalled, http_error, dns_error, connect_error, tls_error, proxy_error, truncated, rejected, invalid, io_error, skipped. io_error is a file that could not be written, or a worker process that died with the item (the error says how; a death is retried, a full disk is not). sha256 is null with --no-sha256 (unless the list gave one). finished_at is when the item finished (UTC, RFC 3339 with milliseconds), run names the batch invocation, and extra holds the list line's other keys (null without). Credentials in URLs are replaced by \"***\".
  A regular file is appended to, and read back by a rerun, which skips what is done. --report - (standard output), a pipe, a FIFO or a character device is a stream: one flushed line per item, never read back. DIR/report.jsonl is opened without following a symbolic link, as downloads inside DIR are: a link there is an error; an explicit --report PATH is opened as given.";

/// The status lines and the metrics file of a batch nobody watches on a terminal.
pub const BATCH_MONITORING_HELP: &str = "\
Status lines:
  When stderr is not a terminal (a log file), one line every --progress-interval, such as:
  watchdog: progress: elapsed=1m30s ended=120/1000 ok=110 skipped=0 failed=10
  timeout=6 http_error=4 in_flight=4 items_per_s=2.0 mb_per_s=1.30 eta=7m20s
  (one line in the log, wrapped here). The keys, always in this order: elapsed; ended, items that ended of the total (? until known: a list file is counted up front, stdin or a shard when the list ended); ok, skipped, failed, then one <status>=N per failure cause seen; in_flight; items_per_s and mb_per_s over the last interval; eta at the average rate so far (? until known). On a terminal the bar counts the same failures by cause.

Metrics (--metrics FILE):
  The Prometheus text format (for node_exporter's textfile collector), replaced atomically (a temporary .FILE.PID.tmp beside it, then a rename) at the start, every --progress-interval and at the end: watchdog_items_total{status}, watchdog_items_listed, watchdog_downloaded_bytes_total, watchdog_attempts_total, watchdog_retries_total, watchdog_items_in_flight, watchdog_hosts_tripped, watchdog_items_not_tried_total, watchdog_start_time_seconds, watchdog_end_time_seconds, watchdog_last_success_timestamp_seconds (a run with exit 0; carried over by one that fails) and watchdog_host_items_total{host,result=\"done\"|\"not_done\"} for the 20 hosts with the most items, the rest as host=\"(other)\". A FILE that cannot be written stops the batch before any download (exit 125).";

pub(super) fn batch_after_help() -> String {
    format!(
        "{BATCH_HELP}\n\n{BATCH_MONITORING_HELP}\n\n{DURATION_HELP}\n\n{BATCH_EXIT_STATUS_HELP}"
    )
}

/// DURATION's syntax, as GNU timeout reads it, shown by `--help`, `batch --help` and their man pages.
pub const DURATION_HELP: &str = "\
Durations:
  DURATION is a non-negative floating-point number as GNU timeout reads it (5, 0.5, .25, 1e-3, 0x1p-3, inf) with an optional unit: s for seconds (the default), m for minutes, h for hours, d for days, or ms for milliseconds (300ms, 1.5m). 0 disables the timer it sets; a positive value too small to represent rounds up to 1 ns, and one too large for a timer means for ever. Anything else is an error (exit 125) naming the value.";

/// The one place watchdog differs from GNU timeout on purpose, shown by `--help` and the man page.
pub const GNU_DIFFERENCES_HELP: &str = "\
Differences from GNU timeout:
  watchdog takes GNU timeout's command line (watchdog [OPTION]... DURATION COMMAND [ARG]...), its options, durations, signal names, exit codes, signal rules and messages, and differs only where it keeps a promise GNU does not make:
  - SIGKILL follows the first signal after a 2 s grace unless -k says otherwise, so a command that ignores the signal cannot hang the caller (GNU waits for ever). -k 0 means no SIGKILL, as in GNU.
  - The signals go to the command's whole process tree, including processes that left its group (setsid, double fork), and watchdog returns only when none of them is left; what the command leaves behind when it exits is stopped too (with -k 0, SIGKILL after 2 s).
  - The command is tied to watchdog with SIGKILL (PR_SET_PDEATHSIG), not with the --signal signal, so that it cannot outlive a killed watchdog by ignoring that signal.
  - Without --foreground watchdog leads a process group of its own, as GNU's does, but the command runs in another one: a signal to watchdog's group reaches the command once, through watchdog.
  - INT, QUIT, TERM, ALRM and the --signal signal are caught even when the caller ignored them, as in GNU; a HUP ignored by nohup is not, so the command inherits it ignored and a hangup does not end it (GNU would forward it). USR1 and USR2, forwarded beyond GNU's set, are left ignored too.
  - When watchdog has to SIGKILL the command it exits 137; GNU's group SIGKILL kills timeout too.
  - The deadline runs on CLOCK_BOOTTIME on Linux (suspended time counts, as with GNU's timer); elsewhere on the monotonic clock, which stops while the machine is asleep.
  - The command runs under watchdog's init (--contain), so that nothing survives even a SIGKILLed watchdog: as PID 2 of a PID namespace for root; for other users in a user namespace that maps only their own uid and gid, where a setuid program (sudo) runs without its privilege and other users' ids show as nobody (auto uses a sentinel instead for a setuid COMMAND; a script that calls sudo needs --contain sentinel). -vv and --events name the mechanism that was used.";

pub(super) fn after_help() -> String {
    format!(
        "{SUPERVISE_EXAMPLES}\n\n{DURATION_HELP}\n\n{EXIT_STATUS_HELP}\n\n{GNU_DIFFERENCES_HELP}\n\n{PROTOCOL_HELP}"
    )
}
