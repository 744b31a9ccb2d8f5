# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_watchdog_global_optspecs
    string join \n t/timeout= stall= s/signal= k/kill-after= p/preserve-status f/foreground v/verbose q/quiet events= contain= h/help V/version
end

function __fish_watchdog_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_watchdog_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_watchdog_using_subcommand
    set -l cmd (__fish_watchdog_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c watchdog -n "__fish_watchdog_needs_command" -s t -l timeout -d 'Hard deadline for the command; 0 disables it' -r
complete -c watchdog -n "__fish_watchdog_needs_command" -l stall -d 'Stop the command when it shows no sign of life for this long (no line on the progress channel, no output on stdout or stderr, which watchdog relays); 0 disables it' -r
complete -c watchdog -n "__fish_watchdog_needs_command" -s s -l signal -d 'Signal sent first when the command overruns: a name as GNU timeout takes it (TERM, SIGINT, int, RTMIN, RTMIN+1, RTMAX-2) or a number (also a shell\'s 128+N); 0 (EXIT) sends nothing, so only the SIGKILL that follows stops the command' -r
complete -c watchdog -n "__fish_watchdog_needs_command" -s k -l kill-after -d 'Grace period between the first signal and SIGKILL; 0 sends no SIGKILL (as GNU timeout)' -r
complete -c watchdog -n "__fish_watchdog_needs_command" -l events -d 'Write watchdog\'s own events (start, progress, signals, exit) to FILE as JSON Lines' -r -F
complete -c watchdog -n "__fish_watchdog_needs_command" -l contain -d 'How the command\'s process tree is held: one of the values below; -vv and --events name the one used' -r -f -a "auto\t'The strongest the system allows, silently: pidns (root), else userns, else sentinel (also for a command that is setuid, setgid or has file capabilities), else group'
pidns\t'The command runs under watchdog\'s init as PID 2 of a new PID namespace (needs CAP_SYS_ADMIN, Linux): nothing it starts can leave it, and nothing survives even a SIGKILLed watchdog, since the kernel kills the namespace with its init. An error (125) when it cannot be had'
userns\t'pidns for an ordinary user: the PID namespace is owned by a new user namespace that maps only your own uid and gid, so `id`, file ownership and $HOME are unchanged, but setuid programs (sudo) cannot gain privilege inside and other users\' ids show as nobody. Needs unprivileged user namespaces; an error (125) when they cannot be had'
sentinel\t'The command runs under a sentinel process (a subreaper, in its own process group) that kills every descendant when watchdog dies, even by SIGKILL. Changes nothing the command sees; no guarantee if the sentinel itself is SIGKILLed'
group\t'The command runs in its own process group and watchdog is its subreaper: every descendant is swept while watchdog lives, but if watchdog is SIGKILLed only the command itself dies with it'"
complete -c watchdog -n "__fish_watchdog_needs_command" -s p -l preserve-status -d 'When the command is stopped, exit with its own status instead of 124 (137 stays 137)'
complete -c watchdog -n "__fish_watchdog_needs_command" -s f -l foreground -d 'Keep the command in watchdog\'s process group, so that it can read from the terminal. Only the command itself gets the first signal; its descendants are swept all the same before watchdog exits'
complete -c watchdog -n "__fish_watchdog_needs_command" -s v -l verbose -d 'Print a line on stderr whenever watchdog sends a signal, exactly as GNU timeout does (the reason is in --events). Given twice, also a line that names the --contain mechanism used'
complete -c watchdog -n "__fish_watchdog_needs_command" -s q -l quiet -d 'Show no progress bar for the built-in fetch worker'
complete -c watchdog -n "__fish_watchdog_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c watchdog -n "__fish_watchdog_needs_command" -s V -l version -d 'Print version'
complete -c watchdog -n "__fish_watchdog_needs_command" -a "batch" -d 'Download a list of URLs, each in a supervised worker process, and report on every item'
complete -c watchdog -n "__fish_watchdog_needs_command" -a "report" -d 'Sum up batch reports (shards, reruns): the latest outcome of every item, what is still missing'
complete -c watchdog -n "__fish_watchdog_using_subcommand batch" -s o -l out -d 'Directory the files are written to (created if missing); one that no file can be created in fails before any request is sent' -r -F
complete -c watchdog -n "__fish_watchdog_using_subcommand batch" -s j -l jobs -d 'Concurrent downloads (at most 1024)' -r
complete -c watchdog -n "__fish_watchdog_using_subcommand batch" -s t -l timeout -d 'Deadline of each attempt of each item; 0 disables it. The default bounds a batch that nobody tuned: no item can hold a worker for more than ten minutes per attempt' -r
complete -c watchdog -n "__fish_watchdog_using_subcommand batch" -l stall -d 'Stop an attempt when no data arrives for this long; 0 disables it' -r
complete -c watchdog -n "__fish_watchdog_using_subcommand batch" -l retries -d 'Retries per item after a failure that may be transient, with exponential backoff and jitter, and at least the server\'s Retry-After (up to 60 s: an item asked to wait longer is left for a later run)' -r
complete -c watchdog -n "__fish_watchdog_using_subcommand batch" -l report -d 'JSON Lines report, one line per item (default: DIR/report.jsonl); `-` is stdout, and a pipe, FIFO or device is written as a stream, never read back' -r -F
complete -c watchdog -n "__fish_watchdog_using_subcommand batch" -l shard -d 'Take only shard K of N (1-based, by a hash of the URL), or `auto` from Slurm / Kubernetes variables' -r
complete -c watchdog -n "__fish_watchdog_using_subcommand batch" -l shard-count -d 'With `--shard auto` under a Kubernetes Indexed Job (JOB_COMPLETION_INDEX set): the number of shards' -r
complete -c watchdog -n "__fish_watchdog_using_subcommand batch" -l progress-interval -d 'When stderr is not a terminal (a log file), write a status line to it this often: elapsed, items ended of the total, ok, failed by cause, in flight, items/s and MB/s over the interval, ETA; also how often --metrics is rewritten. 0 turns both off (the metrics file is then written only at the start and at the end); -q turns the status lines off too' -r
complete -c watchdog -n "__fish_watchdog_using_subcommand batch" -l metrics -d 'Write Prometheus metrics to FILE (text format, for node_exporter\'s textfile collector): the file is replaced atomically at the start, at every --progress-interval and when the run ends' -r -F
complete -c watchdog -n "__fish_watchdog_using_subcommand batch" -l min-speed -d 'Stop an attempt whose body arrives slower than RATE bytes per second (K, M suffixes: 1K is 1024) over --min-speed-window, as `stalled` with the measured rate; retried like a stall. Catches a server that drips a byte now and then, which the stall watch never sees. 0 (the default) disables it' -r
complete -c watchdog -n "__fish_watchdog_using_subcommand batch" -l min-speed-window -d 'The window over which --min-speed is measured, from the first body bytes on' -r
complete -c watchdog -n "__fish_watchdog_using_subcommand batch" -l host-failures -d 'Circuit breaker: after N attempts in a row on one host (name and port) fail at DNS or connect, its remaining items get no worker and are reported at once with that status and an error naming the host, but for one probe every 10 s that lets a host that came back in again. A rerun tries them as usual. 0 disables it' -r
complete -c watchdog -n "__fish_watchdog_using_subcommand batch" -l per-host -d 'At most N items of one host (name and port) at a time; the others wait while items of other hosts go ahead. 0 (the default) leaves only --jobs as the limit, as curl --parallel does' -r
complete -c watchdog -n "__fish_watchdog_using_subcommand batch" -l connect-timeout -d 'Give up connecting after this long (the whole transfer is bounded by the supervisor\'s --timeout)' -r
complete -c watchdog -n "__fish_watchdog_using_subcommand batch" -l max-size -d 'Refuse a body larger than this (suffixes K, M, G)' -r
complete -c watchdog -n "__fish_watchdog_using_subcommand batch" -l expect -d 'Accept only a body of this kind' -r -f -a "image\t'A whole JPEG, PNG, GIF, WebP, BMP or TIFF: its structure is followed to its end as it arrives; an image cut short is truncated (and retried), a broken one rejected'"
complete -c watchdog -n "__fish_watchdog_using_subcommand batch" -s H -l header -d 'Extra request header, \'Name: value\' (repeatable)' -r
complete -c watchdog -n "__fish_watchdog_using_subcommand batch" -l max-redirects -d 'Follow at most this many redirects (http and https only)' -r
complete -c watchdog -n "__fish_watchdog_using_subcommand batch" -l cacert -d 'Also trust the CA certificates in this PEM file (the system trust store is always used)' -r -F
complete -c watchdog -n "__fish_watchdog_using_subcommand batch" -s x -l proxy -d 'Use this proxy for every request, over HTTP_PROXY, HTTPS_PROXY and ALL_PROXY: [SCHEME://][USER:PASSWORD@]HOST[:PORT] with SCHEME http (the default), https, socks4, socks4a, socks5 or socks5h (the proxy resolves the name); "" turns proxies off' -r
complete -c watchdog -n "__fish_watchdog_using_subcommand batch" -l noproxy -d 'Reach these hosts directly, over NO_PROXY: host names (with their subdomains), IP addresses, CIDR ranges and HOST:PORT, separated by commas; \'*\' for every host' -r
complete -c watchdog -n "__fish_watchdog_using_subcommand batch" -l no-sha256 -d 'Do not compute the SHA-256 of each download (the report\'s sha256 is then null, and a rerun checks finished files by size alone); items whose list line gives a sha256 are still checked. Hashing takes about a sixth of the CPU time of a batch of small files from a fast server'
complete -c watchdog -n "__fish_watchdog_using_subcommand batch" -s q -l quiet -d 'Show no progress, and no summary when every item is done; a run with failures, or one that was interrupted, still prints its summary'
complete -c watchdog -n "__fish_watchdog_using_subcommand batch" -l insecure -d 'Do not verify TLS certificates or host names'
complete -c watchdog -n "__fish_watchdog_using_subcommand batch" -l fsync -d 'fsync the file and its directory before reporting success (durability across power loss)'
complete -c watchdog -n "__fish_watchdog_using_subcommand batch" -l proxy-basic -d 'Authenticate to the proxy with Basic, the credentials from the proxy URL (the default)'
complete -c watchdog -n "__fish_watchdog_using_subcommand batch" -l proxy-digest -d 'Authenticate to the proxy with Digest'
complete -c watchdog -n "__fish_watchdog_using_subcommand batch" -l proxy-ntlm -d 'Authenticate to the proxy with NTLM'
complete -c watchdog -n "__fish_watchdog_using_subcommand batch" -l proxy-anyauth -d 'Authenticate to the proxy with the most secure scheme its 407 answer offers, at the cost of one more round trip per connection to the proxy'
complete -c watchdog -n "__fish_watchdog_using_subcommand batch" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c watchdog -n "__fish_watchdog_using_subcommand report" -l index-dir -d 'Where the index of items goes past 32,768 items (default: the first FILE\'s directory)' -r -F
complete -c watchdog -n "__fish_watchdog_using_subcommand report" -l list -d 'The list the batches were given (`-` is stdin): its items that no report mentions were never tried, and count as `missing`' -r -F
complete -c watchdog -n "__fish_watchdog_using_subcommand report" -l shard -d 'Check only shard K of N of the list (as batch --shard does), or `auto` from Slurm or Kubernetes variables; needs --list' -r
complete -c watchdog -n "__fish_watchdog_using_subcommand report" -l shard-count -d 'With `--shard auto` under a Kubernetes Indexed Job (JOB_COMPLETION_INDEX set): the number of shards' -r
complete -c watchdog -n "__fish_watchdog_using_subcommand report" -l metrics -d 'Also write the outcome as Prometheus metrics to FILE (as `batch --metrics` writes them), replaced atomically, so a reconciliation job can publish its result' -r -F
complete -c watchdog -n "__fish_watchdog_using_subcommand report" -l html -d 'Also write the outcome as one self-contained web page to FILE (no network needed to view it): bars per status and per host, items done and not done over time, the slowest hosts, and a filterable table of the items not done (the first 1000)' -r -F
complete -c watchdog -n "__fish_watchdog_using_subcommand report" -l failed -d 'Print the items not done that a retry may fix (timeouts, stalls, 5xx, never tried), one JSON object {"url","path"} a line, for `watchdog batch`, which must be given the same --out (the paths are relative to it); the summary goes to stderr'
complete -c watchdog -n "__fish_watchdog_using_subcommand report" -l include-permanent -d 'With --failed, also list the items a retry will not fix (a 404, a body --expect or --sha256 refused, a local I/O error), once their cause is dealt with'
complete -c watchdog -n "__fish_watchdog_using_subcommand report" -l json -d 'Print the summary as one JSON object; its not_done lists every item not done'
complete -c watchdog -n "__fish_watchdog_using_subcommand report" -s h -l help -d 'Print help (see more with \'--help\')'
