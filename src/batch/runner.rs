//! The batch supervisor: streams the list, hands items to long-lived worker processes, watches each
//! item's deadline and stall timer, SIGKILLs and replaces a worker whose item overruns, retries what may
//! be transient, and writes one report line per item.
//!
//! Like the single-command supervisor, one thread decides everything, blocking in the process layer's
//! wait on the signal self-pipe and every worker's progress channel, with the nearest timer as timeout.
//! Spawning, reaping, signalling and the final sweep belong to [`crate::process`]. Memory is bounded by
//! `--jobs`: the list is read one item at a time, only when a worker is free or can take one ahead.
//!
//! Each busy worker is sent its next item ahead (a queue of one), so it goes from one download to
//! the next without waiting on its stdin for this loop; it still runs one download at a time. Workers
//! take items in the order sent, so the line that ends an item (`done`, `present`, `error`) also says
//! the worker took the next: that item's attempt, deadline and stall timer start there. A worker
//! killed or dead on an item hands the one queued behind it back, not attempted.
//!
//! Workers report the phase of an attempt before its answer (resolving, connecting, TLS, request
//! sent), so an attempt the deadline or the stall watch stops is reported for what failed: a host
//! that swallows SYNs is a `connect_error`, not a stall. Per host ([`super::hosts`]) the runner keeps
//! a circuit breaker (`--host-failures`) and the count of items in flight (`--per-host`); per
//! attempt, the body's rate over a window (`--min-speed`).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, ExitCode};
use std::time::{Duration, Instant};

use nix::unistd::Pid;

use super::hosts::{Hosts, Verdict};
use super::list::Extra;
use super::report::ReportEntry;
use super::resume::Expected;
use super::retry::{
    backoff, is_retriable, seed_from_clock, RETRY_AFTER_CAP, WORKER_DIED_WITH_ITEM,
};
use super::status::Status;
use super::worker::{worker_args, Assignment};
use super::BatchOptions;
use crate::duration::for_people;
use crate::exit::Exit;
use crate::failure::FailureKind;
use crate::process::{Ended, Processes, ProgressChannel, SpawnSpec};
use crate::protocol::{body_so_far, bytes_for_people, drain_fd, LineReader, Phase, ProgressLine};

/// An item waiting for a worker.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The list line it came from (seeds the retry jitter).
    pub line_no: u64,
    /// `host:port` of the URL ([`super::hosts::host_key`]), for the circuit breaker and `--per-host`.
    pub host: String,
    pub url: String,
    /// The path relative to the output directory, as reported.
    pub rel: String,
    /// Where the file goes.
    pub path: PathBuf,
    pub sha256: Option<String>,
    /// Attempts made so far.
    pub attempts: u32,
    pub first_started: Option<Instant>,
    /// Not to be retried before this.
    pub not_before: Instant,
    /// What an earlier run left, to be checked by the worker before the first attempt downloads.
    pub already: Option<Expected>,
    /// The other keys of the item's JSON list line, for its report line.
    pub extra: Option<Extra>,
}

impl Pending {
    /// The item's report entry with what every outcome shares: URL, path, attempts, time since the
    /// first attempt started.
    fn entry(&self, status: Status) -> ReportEntry {
        ReportEntry {
            path: Some(self.rel.clone()),
            attempts: self.attempts,
            elapsed_ms: self
                .first_started
                .map_or(0, |s| s.elapsed().as_millis() as u64),
            extra: self.extra.clone(),
            ..ReportEntry::new(&self.url, status)
        }
    }
}

/// Where items come from and where their outcomes go; the runner knows nothing of lists and reports.
pub trait Items {
    /// The next item to download, or `None` when the list is exhausted. Items that need no download
    /// (invalid lines, already done) are reported through `finish` by the implementation itself.
    fn next_item(&mut self) -> Option<Pending>;
    /// Records an item's final outcome.
    fn finish(&mut self, entry: ReportEntry);
    /// Worker `slot` (0 to jobs-1, stable while the worker is replaced) took the item `url`.
    fn worker_busy(&mut self, _slot: usize, _url: &str) {}
    /// Bytes so far of worker `slot`'s item.
    fn worker_progress(&mut self, _slot: usize, _bytes: u64, _total: Option<u64>) {}
    /// Worker `slot` has no item any more.
    fn worker_idle(&mut self, _slot: usize) {}
    /// An item was reported without an attempt: its host (`host:port`) is down (the circuit breaker).
    fn held_back(&mut self, _host: &str) {}
    /// When the items want the loop awake for something of their own (a status line), if ever.
    fn due_at(&self) -> Option<Instant> {
        None
    }
    /// The loop is awake: do what is due by now.
    fn tick(&mut self) {}
}

/// Per-item limits.
#[derive(Debug, Clone)]
pub struct Limits {
    pub jobs: usize,
    pub timeout: Option<Duration>,
    pub stall: Option<Duration>,
    pub retries: u32,
    /// See [`BatchOptions::host_failures`].
    pub host_failures: u32,
    /// The least bytes per second a body must arrive at, measured over the window.
    pub min_speed: Option<(u64, Duration)>,
    /// See [`BatchOptions::per_host`].
    pub per_host: Option<usize>,
}

/// How many items per worker may wait (for a retry, or for room on their host under `--per-host`)
/// before the list is read no further: memory stays bounded by `--jobs` whatever the list holds.
const WAITING_PER_JOB: usize = 16;

struct Job {
    item: Pending,
    started: Instant,
    last_activity: Instant,
    temp_path: Option<PathBuf>,
    http_status: Option<u16>,
    /// The server's `Retry-After` for this attempt.
    retry_after: Option<Duration>,
    /// Where the attempt is, from the worker's phase lines; `None` once the answer began (a `start`
    /// or `progress` line) or when no phase was reported (a pooled connection: the request went out).
    phase: Option<Phase>,
    /// The `host:port` of the last phase line.
    phase_host: Option<String>,
    /// The last phase line was about reaching the proxy.
    phase_proxy: bool,
    /// The response head or body bytes arrived, as far as the supervisor knows: a batch worker holds
    /// back the start line of a download's first tenth of a second (see `Fetcher::brief`) and sends
    /// it, with the bytes so far, once the body has paused for that long.
    answered: bool,
    /// Body bytes so far, from progress lines.
    bytes: u64,
    /// The body's announced size, from the start or progress lines.
    total: Option<u64>,
    /// For `--min-speed`: when the current window began and the bytes then (from the answer on).
    window: Option<(Instant, u64)>,
}

/// Which limit stopped an attempt.
#[derive(Debug, Clone, Copy)]
enum Overrun {
    Deadline(Duration),
    Stall(Duration),
    /// Slower than `min` bytes per second: `bytes` arrived in `window`.
    Slow {
        min: u64,
        bytes: u64,
        window: Duration,
    },
}

impl Job {
    /// The failure and the report's error for an attempt stopped by `limit`, named after the phase it
    /// was in: an attempt that never reached the server is a DNS or connect failure, not a stall.
    fn overrun(&self, limit: Overrun) -> (FailureKind, String) {
        let host = self.phase_host.clone().unwrap_or_else(|| {
            crate::url_parts::UrlParts::split(&self.item.url)
                .host_port
                .to_string()
        });
        let (limit_name, d) = match limit {
            Overrun::Deadline(d) => ("--timeout", d),
            Overrun::Stall(d) => ("--stall", d),
            Overrun::Slow { min, bytes, window } => {
                let rate = (bytes as f64 / window.as_secs_f64().max(0.001)) as u64;
                return (
                    FailureKind::Stalled,
                    format!(
                        "slower than --min-speed {}/s: {}/s over the last {} from {host}, {} bytes so far",
                        bytes_for_people(min),
                        bytes_for_people(rate),
                        for_people(window),
                        self.bytes
                    ),
                );
            }
        };
        let d = for_people(d);
        let deadline = matches!(limit, Overrun::Deadline(_));
        if self.phase_proxy && self.phase.is_some() {
            let doing = match self.phase {
                Some(Phase::Resolving) => "no DNS answer for the proxy",
                Some(Phase::Connecting) => "no connection to the proxy",
                Some(Phase::Tls) => "no TLS handshake with the proxy",
                _ => "no answer from the proxy",
            };
            return (
                FailureKind::Proxy,
                format!("{doing} {host} in {d} ({limit_name}); check the proxy setting (-x, HTTP_PROXY, HTTPS_PROXY, ALL_PROXY)"),
            );
        }
        match self.phase {
            Some(Phase::Resolving) => (
                FailureKind::Dns,
                format!("no DNS answer for {host} in {d} ({limit_name}); check the name and the DNS server"),
            ),
            Some(Phase::Connecting) => (
                FailureKind::Connect,
                format!(
                    "no connection to {host} in {d} ({limit_name}): the host does not answer (down, or its packets are dropped)"
                ),
            ),
            Some(Phase::Tls) => (
                FailureKind::Tls,
                format!("the TLS handshake with {host} did not finish in {d} ({limit_name})"),
            ),
            Some(Phase::Request) | None if !self.answered => (
                if deadline { FailureKind::TimedOut } else { FailureKind::Stalled },
                if deadline {
                    format!("deadline of {d} passed waiting for the answer of {host} ({limit_name})")
                } else {
                    format!("no answer from {host} for {d} after the request was sent ({limit_name})")
                },
            ),
            _ if deadline => (
                FailureKind::TimedOut,
                format!(
                    "deadline of {d} passed after {} from {host} ({limit_name})",
                    body_so_far(self.bytes, self.total, self.http_status)
                ),
            ),
            _ => (
                FailureKind::Stalled,
                format!(
                    "no data from {host} for {d} after {} ({limit_name})",
                    body_so_far(self.bytes, self.total, self.http_status)
                ),
            ),
        }
    }
}

/// The program a runner starts as its workers.
#[derive(Debug, Clone)]
pub struct WorkerCommand {
    pub program: std::ffi::OsString,
    pub args: Vec<std::ffi::OsString>,
}

/// How long a killed worker that has not died yet still counts against `--jobs`. Death after SIGKILL
/// takes microseconds, and waiting for it keeps the number of worker processes at `--jobs`; but a
/// process blocked in the kernel (on a hung network file system, say) cannot die until the kernel lets
/// go, and must not take its slot, and in the end the whole batch, with it.
const DYING_GRACE: Duration = Duration::from_secs(1);

struct Worker {
    /// A number from 0 to jobs-1 that a replacement worker inherits, for the progress display.
    slot: usize,
    pid: Pid,
    stdin: Option<ChildStdin>,
    progress: OwnedFd,
    lines: LineReader,
    /// The item the worker is downloading: it took it when it was sent to it idle, or when it ended
    /// the item before.
    job: Option<Job>,
    /// The next item, already sent while `job` runs (a queue of one): the worker takes it the moment
    /// it ends `job`, without waiting on its stdin for a round trip through this loop. Only one
    /// download runs at a time; this one has not started, and has no attempt counted, until then.
    queued: Option<Pending>,
    /// `queued` may still be in the stdin pipe, where [`Runner::reclaim`] can take it back.
    reclaimable: bool,
    /// The worker's last item ended well (downloaded, or found complete): only then is it sent
    /// items ahead, so that a failing host (the circuit breaker counts its failures in a row) gets
    /// no more attempts than it would without them.
    last_ok: bool,
    /// A non-blocking reader of the worker's stdin pipe (see [`crate::process::Spawned`]); without
    /// one (not Linux) nothing is sent ahead, as nothing sent could be taken back.
    stdin_reclaim: Option<OwnedFd>,
}

/// The longest assignment line sent ahead so that it can be taken back whole: a pipe write of at
/// most `PIPE_BUF` bytes is atomic, so the worker's read and the runner's see all of it or none.
const RECLAIMABLE_LINE: usize = 4096;

impl Worker {
    /// Whether the worker could be sent its next item: it is busy with one, and none is queued.
    fn may_queue(&self) -> bool {
        self.last_ok
            && self.stdin_reclaim.is_some()
            && self.stdin.is_some()
            && self.queued.is_none()
            && self.job.is_some()
    }

    /// Whether the worker has read its current item's line (its stdin pipe is empty), so that what
    /// is sent next is the only thing in the pipe and can be taken back. One `poll`.
    fn has_read_its_item(&self) -> bool {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        let Some(reclaim) = self.stdin_reclaim.as_ref() else {
            return false;
        };
        let mut fds = [PollFd::new(reclaim.as_fd(), PollFlags::POLLIN)];
        matches!(poll(&mut fds, PollTimeout::ZERO), Ok(0))
    }

    fn can_queue(&self) -> bool {
        self.may_queue() && self.has_read_its_item()
    }
}

/// How long the final sweep keeps killing before it names the processes that would not die.
const SWEEP_LIMIT: Duration = Duration::from_secs(2);

/// How a run ended.
pub enum RunEnd {
    /// Every item was handled.
    Complete,
    /// watchdog received this signal; the workers were killed, items in flight were not reported.
    Interrupted(i32),
}

pub struct Runner<'a> {
    limits: Limits,
    worker: WorkerCommand,
    processes: Processes,
    /// Children reaped since the last look (kept to spare an allocation per reap).
    ended: Vec<(Pid, Ended)>,
    /// Workers whose channels the last wait found readable (kept to spare an allocation per wake-up).
    ready: Vec<usize>,
    workers: Vec<Worker>,
    /// Workers killed and not reaped yet, with when they were killed (see [`DYING_GRACE`]).
    dying: Vec<(Pid, Instant)>,
    retry: VecDeque<Pending>,
    items: &'a mut dyn Items,
    list_done: bool,
    seed: u64,
    /// The circuit breaker, and items in flight per host.
    hosts: Hosts,
}

impl<'a> Runner<'a> {
    pub fn new(
        args: &BatchOptions,
        limits: Limits,
        items: &'a mut dyn Items,
    ) -> Result<Runner<'a>, String> {
        let exe = crate::fetch::worker_binary()?;
        let worker = WorkerCommand {
            program: exe.into_os_string(),
            args: worker_args(&args.download, !args.no_sha256)?,
        };
        Runner::with_worker(worker, limits, items)
    }

    /// A runner whose workers are `worker`: any program that takes [`Assignment`] lines on stdin and
    /// answers with progress lines, as watchdog's own batch worker does.
    pub fn with_worker(
        worker: WorkerCommand,
        limits: Limits,
        items: &'a mut dyn Items,
    ) -> Result<Runner<'a>, String> {
        let processes =
            Processes::start().map_err(|e| format!("cannot install signal handlers: {e}"))?;
        let hosts = Hosts::new(limits.host_failures);
        Ok(Runner {
            limits,
            worker,
            processes,
            ended: Vec::new(),
            ready: Vec::new(),
            workers: Vec::new(),
            dying: Vec::new(),
            retry: VecDeque::new(),
            items,
            list_done: false,
            seed: seed_from_clock(),
            hosts,
        })
    }

    pub fn run(mut self) -> RunEnd {
        // Signals (SIGCHLD included) arrive through the self-pipe: only when it was readable is there
        // anything to take or reap, which spares two system calls on every other wake-up.
        let mut signalled = true;
        let end = loop {
            if signalled {
                if let Some(signal) = self.processes.take_signals().first() {
                    break RunEnd::Interrupted(signal);
                }
                self.reap();
            }
            self.check_timers();
            self.items.tick();
            self.assign();
            if self.list_done
                && self.retry.is_empty()
                && self.workers.iter().all(|w| w.job.is_none())
            {
                break RunEnd::Complete;
            }
            signalled = self.wait_for_events();
        };
        self.shut_down();
        end
    }

    /// Worker processes that count against `--jobs`: the live ones, and the killed ones still dying
    /// within [`DYING_GRACE`].
    fn processes(&self, now: Instant) -> usize {
        let dying = self
            .dying
            .iter()
            .filter(|(_, killed)| now < *killed + DYING_GRACE)
            .count();
        self.workers.len() + dying
    }

    /// Hands items to idle workers, starting workers up to `--jobs`; once every worker is busy, sends
    /// each one its next item ahead (see [`Worker::queued`]).
    fn assign(&mut self) {
        loop {
            let idle = self
                .workers
                .iter()
                .position(|w| w.job.is_none() && w.stdin.is_some());
            let queue_on = match idle {
                Some(_) => None,
                None if self.processes(Instant::now()) < self.limits.jobs => None,
                None => match self.queue_target() {
                    Some(index) => Some(index),
                    None => return,
                },
            };
            let item = match self.next_pending() {
                Some(item) => item,
                // A worker is free and nothing waits: take back an item queued behind another.
                None if queue_on.is_none() && self.reclaim() => continue,
                None => return,
            };
            if let Verdict::Refuse(kind, message) = self.hosts.admit(&item.host, Instant::now()) {
                // An earlier attempt may have left a partial file for its retry.
                let _ = std::fs::remove_file(crate::fetch::temp_path_for(&item.path));
                self.items.held_back(&item.host);
                self.finish_failed(item, Status::from(kind), None, message);
                continue;
            }
            if let Some(index) = queue_on {
                self.queue(index, item);
                continue;
            }
            let index = match idle {
                Some(i) => i,
                None => match self.start_worker() {
                    Ok(i) => i,
                    Err(e) if self.workers.is_empty() => {
                        crate::report_error(format!("batch: cannot start a worker: {e}"));
                        self.finish_failed(
                            item,
                            Status::IoError,
                            None,
                            format!("cannot start a worker: {e}"),
                        );
                        continue;
                    }
                    // Out of processes for now (EAGAIN from fork): the workers there are carry on,
                    // and the item waits for one of them.
                    Err(_) => {
                        let mut item = item;
                        item.not_before = Instant::now() + Duration::from_millis(100);
                        self.retry.push_back(item);
                        return;
                    }
                },
            };
            self.give(index, item);
        }
    }

    /// A retry whose backoff has passed, else the next list item, whose host has room under
    /// `--per-host`. A list item whose host is full waits with the retries.
    fn next_pending(&mut self) -> Option<Pending> {
        let now = Instant::now();
        let (hosts, cap) = (&self.hosts, self.limits.per_host);
        let has_room = |host: &str| cap.is_none_or(|cap| hosts.in_flight(host) < cap);
        if let Some(pos) = self
            .retry
            .iter()
            .position(|p| p.not_before <= now && has_room(&p.host))
        {
            return self.retry.remove(pos);
        }
        let waiting_limit = self.limits.jobs.saturating_mul(WAITING_PER_JOB).max(64);
        while !self.list_done && self.retry.len() < waiting_limit {
            match self.items.next_item() {
                Some(item) if has_room(&item.host) => return Some(item),
                Some(item) => self.retry.push_back(item),
                None => self.list_done = true,
            }
        }
        None
    }

    /// The busy worker to send a next item to: the one heard from last (most often the one that
    /// just ended an item and took its next) that can take one ([`Worker::can_queue`]).
    fn queue_target(&self) -> Option<usize> {
        let mut candidates: Vec<(Instant, usize)> = self
            .workers
            .iter()
            .enumerate()
            .filter(|(_, w)| w.may_queue())
            .filter_map(|(i, w)| w.job.as_ref().map(|job| (job.last_activity, i)))
            .collect();
        candidates.sort_unstable_by(|a, b| b.cmp(a));
        candidates
            .into_iter()
            .map(|(_, i)| i)
            .find(|&i| self.workers[i].has_read_its_item())
    }

    /// Takes back an item sent ahead that its worker has not read yet, for a worker that would
    /// otherwise sit idle: nothing waits behind an item that hangs. Tries the workers whose items
    /// started first; returns whether an item came back.
    fn reclaim(&mut self) -> bool {
        let mut order: Vec<(Instant, usize)> = self
            .workers
            .iter()
            .enumerate()
            .filter(|(_, w)| w.reclaimable && w.queued.is_some())
            .filter_map(|(i, w)| w.job.as_ref().map(|job| (job.started, i)))
            .collect();
        order.sort_unstable();
        order.into_iter().any(|(_, index)| self.reclaim_from(index))
    }

    /// Takes back worker `index`'s queued item if the worker has not read it yet (one `read`);
    /// returns whether it came back.
    fn reclaim_from(&mut self, index: usize) -> bool {
        let Some(worker) = self.workers.get_mut(index) else {
            return false;
        };
        let (Some(fd), true, Some(_)) = (
            worker.stdin_reclaim.as_ref(),
            worker.reclaimable,
            worker.queued.as_ref(),
        ) else {
            return false;
        };
        let mut line = [0u8; RECLAIMABLE_LINE];
        let got = loop {
            match nix::unistd::read(fd.as_raw_fd(), &mut line) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => break other,
            }
        };
        // Taken back, or the worker read it first (it takes it once its item ends): either way
        // there is nothing more to try.
        worker.reclaimable = false;
        match (got, worker.queued.take()) {
            (Ok(n), Some(item)) if n > 0 => {
                self.hand_back(item);
                true
            }
            (_, item) => {
                worker.queued = item;
                false
            }
        }
    }

    fn start_worker(&mut self) -> io::Result<usize> {
        let spec = SpawnSpec {
            program: self.worker.program.clone(),
            args: &self.worker.args,
            arg0: Some("watchdog-batch-worker".into()),
            own_group: true,
            capture_output: false,
            pipe_stdin: true,
        };
        let mut spawned = self.processes.spawn(&spec, ProgressChannel::new()?)?;
        let stdin = spawned.child.stdin.take();
        let stdin_reclaim = spawned.stdin_reclaim.take();
        let pid = Pid::from_raw(spawned.child.id() as i32);
        let slot = (0..)
            .find(|n| self.workers.iter().all(|w| w.slot != *n))
            .unwrap_or(0);
        self.workers.push(Worker {
            slot,
            pid,
            stdin,
            progress: spawned.progress,
            lines: LineReader::new(),
            job: None,
            queued: None,
            reclaimable: false,
            last_ok: false,
            stdin_reclaim,
        });
        Ok(self.workers.len() - 1)
    }

    /// Writes `item`'s assignment to worker `index`'s stdin: one `write`; the line's length, or
    /// `None` if the worker is gone. The item counts as in flight on its host from now (so
    /// `--per-host` also counts a queued item).
    fn send(&mut self, index: usize, item: &Pending) -> Option<usize> {
        let assignment = Assignment {
            url: item.url.clone(),
            path: item.path.clone(),
            sha256: item.sha256.clone(),
            resume: item.attempts > 0,
            already: item.already,
        };
        self.hosts.started(&item.host);
        match (
            serde_json::to_vec(&assignment),
            self.workers[index].stdin.as_mut(),
        ) {
            (Ok(mut line), Some(stdin)) => {
                line.push(b'\n');
                let sent = stdin.write_all(&line).and_then(|_| stdin.flush());
                sent.ok().map(|_| line.len())
            }
            _ => None,
        }
    }

    /// Worker `index` has taken `item`: its attempt starts now, and so do its deadline and stall
    /// timer.
    fn take(&mut self, index: usize, mut item: Pending) {
        let now = Instant::now();
        item.attempts += 1;
        item.first_started.get_or_insert(now);
        // Checked once: a retry is a download.
        item.already = None;
        let worker = &mut self.workers[index];
        self.items.worker_busy(worker.slot, &item.url);
        worker.job = Some(Job {
            item,
            started: now,
            last_activity: now,
            temp_path: None,
            http_status: None,
            retry_after: None,
            phase: None,
            phase_host: None,
            phase_proxy: false,
            answered: false,
            bytes: 0,
            total: None,
            window: None,
        });
    }

    /// Sends `item` to busy worker `index` as its next (see [`Worker::queued`]).
    fn queue(&mut self, index: usize, item: Pending) {
        if let Some(len) = self.send(index, &item) {
            let worker = &mut self.workers[index];
            worker.queued = Some(item);
            worker.reclaimable = len <= RECLAIMABLE_LINE;
        } else {
            // The worker is dying: its current item's end comes from `reap`; this one never
            // reached it.
            self.workers[index].stdin = None;
            self.hand_back(item);
        }
    }

    /// An item sent ahead to a worker that never took it (the worker was killed or died on the item
    /// before): it waits for the next free worker as if never sent, its attempts unchanged and no
    /// report line written for it.
    fn hand_back(&mut self, item: Pending) {
        self.hosts.released(&item.host);
        self.retry.push_front(item);
    }

    /// The worker at `index` ended its item: it has taken its queued one, if it had one.
    fn take_queued(&mut self, index: usize) {
        if let Some(worker) = self.workers.get_mut(index) {
            worker.reclaimable = false;
            if let Some(item) = worker.queued.take() {
                self.take(index, item);
            }
        }
    }

    fn give(&mut self, index: usize, item: Pending) {
        let sent = self.send(index, &item).is_some();
        // An idle worker waits on its stdin: it takes the item at once.
        self.take(index, item);
        if !sent {
            // The worker died before it could take the item: treat it as a crash of this attempt.
            self.kill_worker(
                index,
                FailureKind::WorkerDied,
                "the worker process exited before it could take the item".into(),
            );
        }
    }

    /// Reaps exited children; a worker that died with an item in hand fails that attempt.
    fn reap(&mut self) {
        self.processes.reap(&mut self.ended);
        let ended = std::mem::take(&mut self.ended);
        for &(pid, how) in &ended {
            self.dying.retain(|(dying, _)| *dying != pid);
            if let Some(index) = self.workers.iter().position(|w| w.pid == pid) {
                // Read what it said before it died: its last line may be the item's outcome.
                self.read_progress(index);
                let worker = self.workers.remove(index);
                self.items.worker_idle(worker.slot);
                if let Some(job) = worker.job {
                    self.attempt_failed(job, FailureKind::WorkerDied, worker_death(how));
                }
                if let Some(item) = worker.queued {
                    self.hand_back(item);
                }
            }
        }
        self.ended = ended;
        self.ended.clear();
    }

    fn check_timers(&mut self) {
        let now = Instant::now();
        let mut overdue = Vec::new();
        for (index, worker) in self.workers.iter_mut().enumerate() {
            let Some(job) = &mut worker.job else { continue };
            let limit = match (self.limits.timeout, self.limits.stall) {
                (Some(t), _) if now >= job.started + t => Overrun::Deadline(t),
                (_, Some(s)) if now >= job.last_activity + s => Overrun::Stall(s),
                _ => match (self.limits.min_speed, job.window) {
                    (Some((min, window)), Some((since, at))) if now >= since + window => {
                        let elapsed = now - since;
                        let bytes = job.bytes.saturating_sub(at);
                        if (bytes as f64) < min as f64 * elapsed.as_secs_f64() {
                            Overrun::Slow {
                                min,
                                bytes,
                                window: elapsed,
                            }
                        } else {
                            // Fast enough over this window: measure the next one.
                            job.window = Some((now, job.bytes));
                            continue;
                        }
                    }
                    _ => continue,
                },
            };
            let (kind, detail) = job.overrun(limit);
            overdue.push((index, kind, detail));
        }
        for (index, kind, detail) in overdue.into_iter().rev() {
            self.kill_worker(index, kind, detail);
        }
    }

    /// SIGKILLs a worker's whole group and fails its attempt. The worker is reaped by `reap` later.
    fn kill_worker(&mut self, index: usize, kind: FailureKind, message: String) {
        let mut worker = self.workers.remove(index);
        self.processes.signal_group(worker.pid, libc::SIGKILL);
        self.dying.push((worker.pid, Instant::now()));
        self.items.worker_idle(worker.slot);
        worker.stdin = None;
        if let Some(job) = worker.job.take() {
            self.attempt_failed(job, kind, message);
        }
        if let Some(item) = worker.queued.take() {
            self.hand_back(item);
        }
        // Reaped in `reap`; dropping `Child` does not wait.
        drop(worker);
    }

    fn attempt_failed(&mut self, job: Job, kind: FailureKind, message: String) {
        let Job {
            mut item,
            temp_path,
            http_status,
            retry_after,
            ..
        } = job;
        self.hosts
            .ended(&item.host, Some((kind, &message)), Instant::now());
        let mut message = message;
        if item.attempts <= self.limits.retries && is_retriable(kind, http_status) {
            match retry_after {
                Some(wait) if wait > RETRY_AFTER_CAP => {
                    message.push_str(&format!(
                        "; not retried: that is longer than a batch waits ({} s), run it again later",
                        RETRY_AFTER_CAP.as_secs()
                    ));
                }
                _ => {
                    // The partial file is kept: the retry continues it with a Range request.
                    let seed = self.seed ^ item.line_no.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                    let wait = backoff(item.attempts, seed).max(retry_after.unwrap_or_default());
                    item.not_before = Instant::now() + wait;
                    self.retry.push_back(item);
                    return;
                }
            }
        }
        // This attempt may have failed before naming its temp file (a 503, a refused connection) while
        // an earlier one left a partial file there for resuming; the name follows from the final path.
        let temp = temp_path.unwrap_or_else(|| crate::fetch::temp_path_for(&item.path));
        let _ = std::fs::remove_file(temp);
        self.finish_failed(
            item,
            Status::from(kind),
            http_status,
            in_batch_terms(message),
        );
    }

    fn finish_failed(
        &mut self,
        item: Pending,
        status: Status,
        http_status: Option<u16>,
        message: String,
    ) {
        self.items.finish(ReportEntry {
            http_status,
            error: Some(message),
            ..item.entry(status)
        });
    }

    /// Blocks until a worker writes, a signal arrives or the nearest timer is due; returns whether the
    /// signal pipe was readable.
    fn wait_for_events(&mut self) -> bool {
        let now = Instant::now();
        // A retry that is due only matters when a worker can take it: otherwise the poll would return
        // at once, again and again, until a worker frees up (which wakes the loop by itself).
        // (Asked only when a retry waits: whether a worker can take one ahead costs a system call.)
        let can_take = !self.retry.is_empty()
            && (self.processes(now) < self.limits.jobs
                || self
                    .workers
                    .iter()
                    .any(|w| (w.job.is_none() && w.stdin.is_some()) || w.can_queue()));
        // Nor does one whose host is full under `--per-host`: an item of it ending wakes the loop.
        let (hosts, cap) = (&self.hosts, self.limits.per_host);
        let mut wake: Option<Instant> = if can_take {
            self.retry
                .iter()
                .filter(|p| cap.is_none_or(|cap| hosts.in_flight(&p.host) < cap))
                .map(|p| p.not_before)
                .min()
        } else {
            None
        };
        // A dying worker's slot frees when it is reaped (SIGCHLD wakes the loop), or at the end of
        // its grace.
        for (_, killed) in &self.dying {
            let at = *killed + DYING_GRACE;
            if at > now {
                wake = Some(wake.map_or(at, |w| w.min(at)));
            }
        }
        for job in self.workers.iter().filter_map(|w| w.job.as_ref()) {
            let timers = [
                self.limits.timeout.map(|t| job.started + t),
                self.limits.stall.map(|s| job.last_activity + s),
                self.limits
                    .min_speed
                    .zip(job.window)
                    .map(|((_, window), (since, _))| since + window),
            ];
            for at in timers.into_iter().flatten() {
                wake = Some(wake.map_or(at, |w| w.min(at)));
            }
        }
        if let Some(at) = self.items.due_at() {
            wake = Some(wake.map_or(at, |w| w.min(at)));
        }
        let signalled = self
            .processes
            .wait(self.workers.iter().map(|w| w.progress.as_raw_fd()), wake);
        // Indices shift only when a worker is removed, which reading never does.
        let mut ready = std::mem::take(&mut self.ready);
        ready.clear();
        ready.extend(self.processes.ready());
        for &index in &ready {
            self.read_progress(index);
        }
        self.ready = ready;
        signalled
    }

    fn read_progress(&mut self, index: usize) {
        let Some(worker) = self.workers.get_mut(index) else {
            return;
        };
        let mut lines = Vec::new();
        let _ = drain_fd(worker.progress.as_raw_fd(), &mut worker.lines, |line| {
            if let Some(parsed) = crate::protocol::decode_line(line) {
                lines.push(parsed);
            }
        });
        for line in lines {
            self.handle_line(index, line);
        }
    }

    fn handle_line(&mut self, index: usize, line: ProgressLine) {
        let Some(worker) = self.workers.get_mut(index) else {
            return;
        };
        let Some(job) = worker.job.as_mut() else {
            return;
        };
        job.last_activity = Instant::now();
        let slot = worker.slot;
        match line {
            ProgressLine::Start {
                http_status,
                temp_path,
                total,
                ..
            } => {
                job.http_status = Some(http_status);
                job.temp_path = temp_path.map(PathBuf::from);
                job.phase = None;
                job.answered = true;
                job.total = total;
                self.items.worker_progress(slot, 0, total);
            }
            ProgressLine::Progress { bytes, total } => {
                job.phase = None;
                job.answered = true;
                // The window starts at the first body bytes (a resumed download's count includes
                // what was on disk).
                job.window.get_or_insert((job.last_activity, bytes));
                job.bytes = bytes;
                job.total = total.or(job.total);
                self.items.worker_progress(slot, bytes, total)
            }
            ProgressLine::Phase { phase, host, proxy } => {
                job.phase = Some(phase);
                job.phase_proxy = proxy;
                if host.is_some() {
                    job.phase_host = host;
                }
            }
            ProgressLine::Done {
                bytes,
                sha256,
                http_status,
                ..
            } => {
                let Some(job) = worker.job.take() else { return };
                self.items.worker_idle(slot);
                self.hosts.ended(&job.item.host, None, Instant::now());
                self.items.finish(ReportEntry {
                    http_status: http_status.or(job.http_status),
                    bytes: Some(bytes),
                    sha256,
                    ..job.item.entry(Status::Ok)
                });
                if let Some(worker) = self.workers.get_mut(index) {
                    worker.last_ok = true;
                }
                self.take_queued(index);
            }
            ProgressLine::Present { bytes, .. } => {
                let Some(job) = worker.job.take() else { return };
                self.items.worker_idle(slot);
                // Checked on disk: nothing learnt about the host.
                self.hosts.released(&job.item.host);
                self.items.finish(ReportEntry {
                    bytes: Some(bytes),
                    // Nothing was downloaded: the check is not an attempt.
                    attempts: 0,
                    error: Some("already complete from an earlier run".to_string()),
                    ..job.item.entry(Status::Skipped)
                });
                if let Some(worker) = self.workers.get_mut(index) {
                    worker.last_ok = true;
                }
                self.take_queued(index);
            }
            ProgressLine::Error {
                kind,
                message,
                http_status,
                retry_after_s,
            } => {
                let Some(mut job) = worker.job.take() else {
                    return;
                };
                self.items.worker_idle(slot);
                job.http_status = http_status.or(job.http_status);
                job.retry_after = retry_after_s.map(Duration::from_secs);
                self.attempt_failed(job, kind, message);
                if let Some(worker) = self.workers.get_mut(index) {
                    worker.last_ok = false;
                }
                // The item sent ahead goes back to the pool if the worker has not read it yet:
                // its host may have just been tripped.
                self.reclaim_from(index);
                self.take_queued(index);
            }
        }
    }

    /// Closes every worker's stdin (idle workers exit), kills what is left, and sweeps the tree.
    fn shut_down(&mut self) {
        for worker in &mut self.workers {
            worker.stdin = None;
            if let Some(job) = worker.job.take() {
                self.processes.signal_group(worker.pid, libc::SIGKILL);
                // An interrupted item is not reported and starts afresh next run; its partial file
                // would only be clutter. (Its start line, which names the file, may be unread.)
                let temp = job
                    .temp_path
                    .unwrap_or_else(|| crate::fetch::temp_path_for(&job.item.path));
                let _ = std::fs::remove_file(temp);
            }
        }
        // So do items waiting for a retry, whose partial files were kept for it, and items sent
        // ahead that no worker took.
        let queued = self.workers.iter_mut().filter_map(|w| w.queued.take());
        for item in self.retry.drain(..).chain(queued) {
            let _ = std::fs::remove_file(crate::fetch::temp_path_for(&item.path));
        }
        // Idle workers exit by themselves once their stdin closes; give them a moment to.
        let until = Instant::now() + Duration::from_secs(2);
        while !self.workers.is_empty() && Instant::now() < until {
            let children_left = self.processes.reap(&mut self.ended);
            for (pid, _) in self.ended.drain(..) {
                self.workers.retain(|w| w.pid != pid);
            }
            if !children_left || self.workers.is_empty() {
                break;
            }
            self.processes.wait(std::iter::empty(), Some(until));
        }
        // Everything else watchdog started, wherever it went.
        let groups: Vec<Pid> = self.workers.drain(..).map(|w| w.pid).collect();
        if let Err(left) = self.processes.sweep(&groups, SWEEP_LIMIT, &mut self.ended) {
            let pids: Vec<String> = left.iter().map(|p| p.to_string()).collect();
            crate::report_error(format!(
                "batch: {} processes did not die after SIGKILL (blocked in the kernel?): pids {}",
                left.len(),
                pids.join(" ")
            ));
        }
    }
}

/// The report's error for an item whose worker died with it in hand: how it died, in words.
fn worker_death(how: Ended) -> String {
    match how {
        Ended::Signal(signal) | Ended::CoreDump(signal) => format!(
            "the worker process was killed by signal {signal} (SIG{}) {WORKER_DIED_WITH_ITEM}",
            crate::signals::signal_name(signal)
        ),
        Ended::Code(code) => {
            format!("the worker process exited with status {code} {WORKER_DIED_WITH_ITEM}")
        }
    }
}

/// Opens LIST (`-` is stdin) for streaming.
pub fn open_list(path: &Path) -> io::Result<Box<dyn BufRead>> {
    if path.as_os_str() == "-" {
        Ok(Box::new(BufReader::new(io::stdin())))
    } else {
        Ok(Box::new(BufReader::with_capacity(
            64 * 1024,
            File::open(path)?,
        )))
    }
}

/// The batch exit code for a failure of watchdog itself.
/// The worker's hint for a broken-off body names `fetch`'s `--resume`, which `batch` has not: a batch
/// resumes a partial file by itself, on its next attempt (`--retries`).
const FETCH_RESUME_HINT: &str = "try again, with --resume to continue where it stopped";

/// A worker's failure message as a batch user acts on it: its hints name batch's options.
fn in_batch_terms(message: String) -> String {
    if message.contains(FETCH_RESUME_HINT) {
        message.replace(
            FETCH_RESUME_HINT,
            "with --retries N, a batch tries again and continues where it stopped",
        )
    } else {
        message
    }
}

pub fn failure(message: impl std::fmt::Display) -> ExitCode {
    crate::report_error(format!("batch: {message}"));
    Exit::Failure.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// A worker in a few lines of bash that acts on words in the item's URL: `ok`, `flaky` (refused
    /// until retried), `crash-once` (dies until retried), `crash-always`, `hang-always`,
    /// `hang-peeking` (hangs after writing the next assignment it was sent to PATH.next), `down`
    /// (refused after 0.3 s),
    /// `slow-1500ms` (done after 1.5 s, first touching PATH.next-waiting if its next assignment is
    /// already waiting on stdin). The last three say when they begin (a phase line, as a worker sends on
    /// a new connection): the runner then sees that the worker has read its item and sends the next.
    const FAKE_WORKER: &str = r#"
        done='{"event":"done","path":"p","bytes":3}'
        begun='{"event":"phase","phase":"request"}'
        while IFS= read -r line; do
          [[ $line =~ \"path\":\"([^\"]*)\" ]] && path=${BASH_REMATCH[1]}
          case "$line" in
            *crash-always*) kill -9 $$ ;;
            *hang-always*) sleep 60 ;;
            *hang-peeking*)
              echo "$begun" >&$WATCHDOG_PROGRESS_FD
              IFS= read -r next; printf '%s\n' "$next" > "$path.next"; sleep 60 ;;
            *slow-1500ms*)
              echo "$begun" >&$WATCHDOG_PROGRESS_FD
              sleep 1.5
              read -t 0 && : > "$path.next-waiting"
              echo "$done" >&$WATCHDOG_PROGRESS_FD ;;
            *'"resume":true'*) echo "$done" >&$WATCHDOG_PROGRESS_FD ;;
            *flaky*) echo '{"event":"error","kind":"connect_error","message":"refused"}' >&$WATCHDOG_PROGRESS_FD ;;
            *down*)
              echo "$begun" >&$WATCHDOG_PROGRESS_FD
              sleep 0.3
              echo '{"event":"error","kind":"connect_error","message":"refused"}' >&$WATCHDOG_PROGRESS_FD ;;
            *crash-once*) kill -9 $$ ;;
            *) echo "$done" >&$WATCHDOG_PROGRESS_FD ;;
          esac
        done
    "#;

    /// Items from a fixed list, outcomes collected, and the most workers seen busy at once.
    struct FakeItems {
        queue: VecDeque<Pending>,
        finished: Vec<ReportEntry>,
        busy: HashSet<usize>,
        most_busy: usize,
    }

    impl Items for FakeItems {
        fn next_item(&mut self) -> Option<Pending> {
            self.queue.pop_front()
        }
        fn finish(&mut self, entry: ReportEntry) {
            self.finished.push(entry);
        }
        fn worker_busy(&mut self, slot: usize, _url: &str) {
            self.busy.insert(slot);
            self.most_busy = self.most_busy.max(self.busy.len());
        }
        fn worker_idle(&mut self, slot: usize) {
            self.busy.remove(&slot);
        }
    }

    fn run(urls: &[&str], limits: Limits) -> FakeItems {
        run_in(&tempfile::tempdir().unwrap(), urls, limits)
    }

    /// [`run`] with the items' files in `dir`.
    fn run_in(dir: &tempfile::TempDir, urls: &[&str], limits: Limits) -> FakeItems {
        let _serial = crate::process::PROCESS_TESTS
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let queue = urls
            .iter()
            .enumerate()
            .map(|(n, url)| Pending {
                line_no: n as u64 + 1,
                url: format!("http://127.0.0.1:9/{url}/{n}"),
                host: "127.0.0.1:9".to_string(),
                rel: format!("{n}"),
                path: dir.path().join(format!("{n}")),
                sha256: None,
                attempts: 0,
                first_started: None,
                not_before: now,
                already: None,
                extra: None,
            })
            .collect();
        let mut items = FakeItems {
            queue,
            finished: Vec::new(),
            busy: HashSet::new(),
            most_busy: 0,
        };
        let worker = WorkerCommand {
            // bash, not sh: in a test process the progress fd may be above 9, which dash refuses.
            program: "bash".into(),
            args: vec!["-c".into(), FAKE_WORKER.into()],
        };
        let runner = Runner::with_worker(worker, limits, &mut items).unwrap();
        assert!(matches!(runner.run(), RunEnd::Complete));
        items
    }

    fn limits(jobs: usize, timeout_ms: u64, retries: u32) -> Limits {
        Limits {
            jobs,
            timeout: Some(Duration::from_millis(timeout_ms)),
            stall: None,
            retries,
            host_failures: 0,
            min_speed: None,
            per_host: None,
        }
    }

    fn outcome<'a>(items: &'a FakeItems, word: &str) -> &'a ReportEntry {
        let found: Vec<_> = items
            .finished
            .iter()
            .filter(|e| e.url.contains(word))
            .collect();
        assert_eq!(found.len(), 1, "{word} reported once: {:?}", items.finished);
        found[0]
    }

    #[test]
    fn every_item_is_reported_once_by_at_most_jobs_workers() {
        let urls = ["ok"; 24];
        let items = run(&urls, limits(4, 30_000, 0));
        assert_eq!(items.finished.len(), urls.len());
        assert!(
            items
                .finished
                .iter()
                .all(|e| e.status == Status::Ok && e.attempts == 1),
            "{:?}",
            items.finished
        );
        let urls: HashSet<_> = items.finished.iter().map(|e| &e.url).collect();
        assert_eq!(urls.len(), 24, "each item once");
        assert!(items.most_busy <= 4, "{} busy at once", items.most_busy);
    }

    #[test]
    fn a_hung_item_is_killed_at_its_deadline_and_the_rest_go_on() {
        let mut urls = vec!["hang-always"];
        urls.extend(["ok"; 10]);
        let items = run(&urls, limits(2, 300, 1));
        let hung = outcome(&items, "hang-always");
        assert_eq!(hung.status, Status::Timeout);
        assert_eq!(hung.attempts, 2, "retried once");
        let ok = items
            .finished
            .iter()
            .filter(|e| e.status == Status::Ok)
            .count();
        assert_eq!(ok, 10);
    }

    #[test]
    fn a_refused_connection_and_a_dead_worker_are_retried() {
        let items = run(&["flaky", "crash-once", "ok"], limits(2, 30_000, 1));
        for word in ["flaky", "crash-once"] {
            let entry = outcome(&items, word);
            assert_eq!(entry.status, Status::Ok, "{word}: {entry:?}");
            assert_eq!(entry.attempts, 2, "{word}");
        }
    }

    #[test]
    fn a_worker_that_dies_on_the_last_attempt_is_reported_with_how() {
        let items = run(&["crash-always", "ok"], limits(1, 30_000, 0));
        let entry = outcome(&items, "crash-always");
        assert_eq!(entry.status, Status::IoError);
        let error = entry.error.as_deref().unwrap_or_default();
        assert!(error.contains("killed by signal 9"), "{error}");
        assert_eq!(outcome(&items, "/ok/").status, Status::Ok);
    }

    #[test]
    fn a_worker_killed_on_an_item_hands_the_next_one_back_unattempted() {
        let dir = tempfile::tempdir().unwrap();
        // (A worker is sent items ahead once an item of its went well: the first.)
        let items = run_in(&dir, &["ok", "hang-peeking", "ok", "ok"], limits(1, 500, 0));
        // The third item was sent to the worker while it hung on the second...
        let next = std::fs::read_to_string(dir.path().join("1.next")).unwrap_or_default();
        assert!(
            next.contains("/ok/2"),
            "queued behind the hung item: {next:?}"
        );
        let hung = outcome(&items, "hang-peeking");
        assert_eq!(hung.status, Status::Timeout);
        assert_eq!(hung.attempts, 1);
        // ...and came back when it was killed: not attempted there, reported once, by the worker
        // that replaced it.
        let handed_back = outcome(&items, "/ok/2");
        assert_eq!(handed_back.status, Status::Ok, "{handed_back:?}");
        assert_eq!(handed_back.attempts, 1, "{handed_back:?}");
        assert_eq!(outcome(&items, "/ok/3").status, Status::Ok);
        assert_eq!(items.finished.len(), 4, "{:?}", items.finished);
    }

    #[test]
    fn a_queued_item_s_deadline_starts_when_the_worker_takes_it() {
        let dir = tempfile::tempdir().unwrap();
        // After a quick first item, each takes 1.5 s of a 2.5 s deadline; the third and fourth wait
        // behind the one before for 1.5 s, which would leave them 1 s had their clocks started when
        // they were sent.
        let items = run_in(
            &dir,
            &["ok", "slow-1500ms", "slow-1500ms", "slow-1500ms"],
            limits(1, 2_500, 0),
        );
        for n in 1..3 {
            assert!(
                dir.path().join(format!("{n}.next-waiting")).exists(),
                "item {} was sent while item {n} ran",
                n + 1
            );
        }
        assert_eq!(items.finished.len(), 4);
        for entry in &items.finished {
            assert_eq!(entry.status, Status::Ok, "{entry:?}");
            assert_eq!(entry.attempts, 1, "{entry:?}");
        }
    }

    #[test]
    fn an_item_queued_behind_a_hung_one_goes_to_a_free_worker_instead() {
        // Two quick items first: then both workers are sent items ahead.
        let mut urls = vec!["ok", "ok", "hang-always"];
        urls.extend(["ok"; 11]);
        let items = run(&urls, limits(2, 4_000, 0));
        // Every other item was done while the third hung: none waited for its deadline.
        let hung = items
            .finished
            .iter()
            .position(|e| e.url.contains("hang-always"));
        assert_eq!(
            hung,
            Some(13),
            "the hung item ends last: {:?}",
            items.finished
        );
        for entry in &items.finished[..13] {
            assert_eq!(entry.status, Status::Ok, "{entry:?}");
            assert_eq!(entry.attempts, 1, "{entry:?}");
            assert!(entry.elapsed_ms < 3_000, "{entry:?}");
        }
    }

    #[test]
    fn items_sent_ahead_give_a_tripped_host_no_more_attempts_than_without() {
        // Nothing answers: the host trips after two failures in a row, and the rest are not tried.
        let mut limits = limits(1, 30_000, 0);
        limits.host_failures = 2;
        let items = run(&["down"; 6], limits);
        let attempts: u32 = items.finished.iter().map(|e| e.attempts).sum();
        assert_eq!(attempts, 2, "{:?}", items.finished);
        assert_eq!(items.finished.len(), 6);
    }
}
