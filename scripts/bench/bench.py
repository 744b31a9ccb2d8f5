#!/usr/bin/env python3
"""Performance claims, measured side by side with their peers in one run and reported as medians and
ratios. Not a test: run it by hand on a quiet machine (numbers from a busy one are noisy). The entry
point is scripts/bench.sh, which runs this program with its arguments.

  scripts/bench.sh [--quick] [COMPARISON...]     (no COMPARISON, or `all`: every one of them)

  supervise      start-up overhead and deadline precision against GNU timeout, idle CPU
  fetch          one 100 MB download from a local nginx: watchdog -- fetch vs curl, and the CPU split
                 between supervisor and worker
  batch          2000 small files, 16 at a time (watchdog with and without its SHA-256), vs curl
                 --parallel, aria2c, wget2, xargs+curl, on tmpfs and on disk; the same list with 10%
                 misbehaving items and a 2 s deadline; then `memory`
  memory         the batch supervisor's memory against list length (1,000 and 1,000,000 lines), and
                 `watchdog report --list`'s
  report-memory  only `watchdog report --list`'s memory
  memory-10m     the batch supervisor's peak RSS on a 10,000,000-line list against 1,000 lines
  cpu            CPU per item (user+sys of every process) on the clean batch: watchdog vs curl
                 --parallel (and wget2), in microseconds per item, in turn round by round
  image          the cost of --expect image: the clean batch as images (JPEG, PNG), with and without the
                 check, CPU user+sys and wall time, in turn round by round
  metrics        the cost of --metrics FILE --progress-interval 1 on the clean batch, CPU and wall, in
                 turn round by round (skipped, with a note, for a binary without those options)
  proxy          the clean batch through a stock Squid on loopback (forward requests), watchdog batch -x
                 vs curl --parallel -x (BENCH_PROXY_RUNS, default 10)
  ab             with BENCH_BASELINE: the clean batch, this build and the baseline in turn for 25 rounds
  badnet         a bad network built in a network namespace (root only; see bench_badnet): 600 items
                 from slow, lossy, dead and misbehaving hosts and a silent resolver, watchdog vs curl,
                 aria2c, wget2

`all` is supervise, fetch, batch, memory-10m, cpu, image, metrics, proxy and (as root) badnet. A full
run (no argument, or `all`) also writes BENCHMARKS.md at the top of the repository: the date, the
machine (CPU model, cores, memory, kernel, load average at start), the tools' versions and every
figure; and it replaces README's short table (between its `bench summary` markers) with the run's
summary table, so README quotes only what a run wrote. BENCH_PUBLISH=1 does the same for a partial
run.

--quick (or BENCH_QUICK=1) runs every comparison with few rounds and small inputs (200 files, 10 MB,
10,000-line lists), to check in a few minutes that the program works; its figures mean nothing, and it
never writes BENCHMARKS.md.

Environment:
  BENCH_WATCHDOG=/path/to/watchdog   measure that binary instead of building this tree (release)
  BENCH_BASELINE=/path/to/watchdog   an older build beside this one in the same run (start-up, deadline,
                                     one large file, the batches, memory, CPU per item, image, metrics)
  BENCH_DL_DIR      where downloads go (default /dev/shm when writable: the tools, not the disk, set
                    the pace); BENCH_DISK_DIR for the on-disk batch; BENCH_MEM_DIR for the memory runs
  BENCH_FAULTY_CAP  seconds before a tool in the faulty batch is killed (30)
  BENCH_BADNET_CAP, BENCH_BADNET_TOOLS   the lab's cap (180 s) and which tools it runs
  STARTUP_ROUNDS, DEADLINE_ROUNDS, BENCH_AB_ROUNDS, BENCH_IMAGE_ROUNDS, BENCH_METRICS_ROUNDS,
  BENCH_CPU_ROUNDS, BENCH_PROXY_RUNS, BENCH_MEM10M_RUNS (1), BENCH_REPORT_MEM_BIG   rounds, runs and sizes

A binary's sibling `watchdog-fetch` (the download worker, when the build has one) goes with it
wherever the binary is copied.

Everything talks to 127.0.0.1 only: the program starts its own nginx (scripts/bench/nginx.sh) and its
own misbehaving server (scripts/testserver.py), generates the files it serves
(scripts/bench/make_corpus.py, fixed seed) and removes everything on exit. Run as root it installs what
is missing with apt-get; otherwise it names the package to install.

Adding a comparison: write `def bench_NAME(run)` that prints its lines with run.say() (a line starting
with "== " opens its section), add it to COMPARISONS, and, for a figure README quotes, run.summary().
"""
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the tree
import make_corpus  # noqa: E402

SIBLING = "watchdog-fetch"


class BenchError(Exception):
    """Ends the run with one line on stderr and exit code 1 (2 for a usage error)."""

    def __init__(self, message, code=1):
        super().__init__(message)
        self.code = code


def env_int(name, default, quick_default=None, quick=False):
    value = os.environ.get(name)
    if value:
        return int(value)
    return quick_default if quick and quick_default is not None else default


def median(values):
    values = list(values)
    return statistics.median(values) if values else float("nan")


def ratio(a, b):
    return f"{a / b:.2f}" if b else "nan"


def which(cmd):
    return shutil.which(cmd) or (f"/usr/sbin/{cmd}" if os.access(f"/usr/sbin/{cmd}", os.X_OK) else None)


def fs_type(path):
    return subprocess.run(["stat", "-f", "-c", "%T", path], capture_output=True, text=True).stdout.strip()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def copy_binary(src, dest_dir, name=None):
    """Copies a watchdog binary into dest_dir (as `name`, default its own), with its sibling
    watchdog-fetch when that exists beside it; returns the copy's path."""
    os.makedirs(dest_dir, exist_ok=True)
    dest = os.path.join(dest_dir, name or os.path.basename(src))
    shutil.copy2(src, dest)
    os.chmod(dest, 0o755)
    sibling = os.path.join(os.path.dirname(src), SIBLING)
    if os.path.exists(sibling):
        shutil.copy2(sibling, os.path.join(dest_dir, SIBLING))
        os.chmod(os.path.join(dest_dir, SIBLING), 0o755)
    return dest


def count_files(sizes_path, directory):
    """What a batch left in DIR against SIZES: (complete, truncated, missing, stray). Complete: at its
    final name with the expected size; truncated: at its final name with another size (a partial file
    a consumer would take for a finished download); missing: not at its final name; stray: any other
    file (temp files, control files, renamed copies), report.jsonl excepted."""
    expected = {}
    with open(sizes_path) as f:
        for line in f:
            name, size = line.split()
            expected[name] = int(size)
    complete = truncated = 0
    present = set()
    entries = list(os.scandir(directory))
    for entry in entries:
        if entry.name in expected and entry.is_file(follow_symlinks=False):
            present.add(entry.name)
            if entry.stat().st_size == expected[entry.name]:
                complete += 1
            else:
                truncated += 1
    stray = sum(1 for e in entries if e.name not in present and e.name != "report.jsonl")
    return complete, truncated, len(expected) - len(present), stray


def measure(argv, cwd=None, cap=None, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
    """Runs argv to its end and reaps it with wait4: (exit code, wall s, user+sys s of it and every
    descendant it reaped, peak RSS KiB of the largest of them). Given a cap in seconds, a run still going
    then is stopped as `timeout -k 5 CAP` would (SIGTERM to its process group, SIGKILL 5 s later) and
    its exit code is 124."""
    start = time.monotonic()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=stdout, stderr=stderr, start_new_session=cap is not None)
    expired = threading.Event()
    timers = []

    def signal_group(sig):
        expired.set()
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass

    if cap is not None:
        timers = [threading.Timer(cap, signal_group, (signal.SIGTERM,)),
                  threading.Timer(cap + 5, signal_group, (signal.SIGKILL,))]
        for t in timers:
            t.start()
    _, status, usage = os.wait4(proc.pid, 0)
    for t in timers:
        t.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if expired.is_set():
        signal_group(signal.SIGKILL)  # whatever of the group outlived its leader
    # A death by signal N reads 128+N, as a shell reports it.
    code = 124 if expired.is_set() else proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
    return code, time.monotonic() - start, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def cpu_split(argv):
    """Runs argv and splits its CPU between the process itself and its children: (self s, children s).
    The process is waited for with waitid(WNOWAIT): exited, not yet reaped, so /proc/PID/schedstat
    still gives its own on-CPU time (ns; the supervisor of `watchdog -q -- fetch` runs one thread);
    reaping it with wait4 then gives it plus every child it reaped, and the children's share is the
    difference."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
    with open(f"/proc/{proc.pid}/schedstat") as f:
        self_s = int(f.read().split()[0]) / 1e9
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    total = usage.ru_utime + usage.ru_stime
    return self_s, max(0.0, total - self_s)


class Run:
    """One run of the program: the binaries, the temp directories, the servers, and what was printed."""

    def __init__(self, quick):
        self.quick = quick
        self.apt_updated = False
        self.lines = []
        self.summaries = []
        self.procs = []
        self.badnet_ns = None
        self.nginx_base = None
        self.faulty_base = None
        self.squid_url = None
        self.base = os.environ.get("BENCH_BASELINE") or None
        if self.base and not (os.path.isfile(self.base) and os.access(self.base, os.X_OK)):
            raise BenchError(f"BENCH_BASELINE='{self.base}' is not an executable file", 2)
        self.need("hyperfine", "hyperfine")
        if os.environ.get("BENCH_WATCHDOG"):
            self.watchdog = os.environ["BENCH_WATCHDOG"]
            if not (os.path.isfile(self.watchdog) and os.access(self.watchdog, os.X_OK)):
                raise BenchError(f"BENCH_WATCHDOG='{self.watchdog}' is not an executable file", 2)
        else:
            subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
            self.watchdog = os.path.join(REPO, "target", "release", "watchdog")
        self.out = tempfile.mkdtemp(prefix="watchdog-bench.", dir="/tmp")
        os.chmod(self.out, 0o711)
        dl_parent = os.environ.get("BENCH_DL_DIR")
        if not dl_parent and os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
            dl_parent = "/dev/shm"
        if dl_parent:
            self.dl = tempfile.mkdtemp(prefix="watchdog-bench-dl.", dir=dl_parent)
        else:
            self.dl = os.path.join(self.out, "dl")
            os.makedirs(self.dl)
        self.srv = os.path.join(self.out, "srv")
        self.batch_n = 200 if quick else 2000
        self.load_at_start = open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else []

    # --- output

    def say(self, line=""):
        print(line, flush=True)
        self.lines.append(line)

    def summary(self, what, watchdog, peer, ratio_text):
        """A row of the short table at the top of BENCHMARKS.md (the one README quotes)."""
        self.summaries.append((what, watchdog, peer, ratio_text))

    def rounds(self, env, default, quick_default):
        return env_int(env, default, quick_default, self.quick)

    # --- tools

    def apt_install(self, package):
        if os.geteuid() != 0:
            return False
        if not self.apt_updated:
            subprocess.run(["apt-get", "update", "-qq"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.apt_updated = True
        return subprocess.run(["apt-get", "install", "-y", "-qq", package], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive")
                              ).returncode == 0

    def want(self, cmd, package):
        """Whether cmd can be had (installing package as root when missing)."""
        return bool(which(cmd) or (self.apt_install(package) and which(cmd)))

    def need(self, cmd, package):
        if not self.want(cmd, package):
            raise BenchError(f"{cmd} is missing: install the {package} package")

    def baselines(self):
        """(label, binary) of this build, then of the baseline when there is one."""
        return [("", self.watchdog)] + ([("baseline", self.base)] if self.base else [])

    def has_options(self, binary, *options):
        """Whether `binary batch --help` names every option (a binary of another branch may lack them)."""
        text = subprocess.run([binary, "batch", "--help"], capture_output=True, text=True).stdout
        return all(o in text for o in options)

    # --- servers

    def spawn(self, argv, **kwargs):
        proc = subprocess.Popen(argv, **kwargs)
        self.procs.append(proc)
        return proc

    def wait_port(self, port, proc, host="127.0.0.1"):
        for _ in range(200):
            try:
                socket.create_connection((host, port), timeout=1).close()
                return
            except OSError:
                if proc.poll() is not None:
                    break
                time.sleep(0.05)
        raise BenchError(f"the server on port {port} did not start")

    def start_nginx(self):
        if self.nginx_base:
            return self.nginx_base
        self.need("nginx", "nginx")
        self.need("curl", "curl")
        os.makedirs(os.path.join(self.srv, "www"), exist_ok=True)
        port = free_port()
        proc = self.spawn([os.path.join(HERE, "nginx.sh"), self.srv, str(port)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            self.wait_port(port, proc)
        except BenchError:
            log = os.path.join(self.srv, "error.log")
            sys.stderr.write(open(log).read() if os.path.exists(log) else "")
            raise
        self.nginx_base = f"http://127.0.0.1:{port}"
        return self.nginx_base

    def start_testserver(self, host="127.0.0.1", port=0, runner=(), extra=()):
        """scripts/testserver.py on host (and port, or a free one); returns its port."""
        proc = self.spawn(list(runner) + [sys.executable, os.path.join(REPO, "scripts", "testserver.py"),
                                          "--host", host, "--port", str(port), *extra],
                          stdout=subprocess.PIPE, stderr=open(os.path.join(self.out, "testserver.log"), "a"))
        line = proc.stdout.readline().strip()
        if not line.isdigit():
            raise BenchError(f"scripts/testserver.py did not start (see {self.out}/testserver.log)")
        return int(line)

    def start_faulty(self):
        if not self.faulty_base:
            self.faulty_base = f"http://127.0.0.1:{self.start_testserver()}"
        return self.faulty_base

    def start_squid(self):
        """Squid on a free loopback port with Debian's stock rules (CONNECT only to 443, plain requests
        from localhost allowed) and no cache, so every request reaches nginx."""
        if self.squid_url:
            return self.squid_url
        self.need("squid", "squid")
        d = os.path.join(self.out, "squid")
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o777)
        port = free_port()
        with open(os.path.join(d, "squid.conf"), "w") as f:
            f.write(f"""http_port 127.0.0.1:{port}
pid_filename {d}/squid.pid
cache_log {d}/cache.log
access_log none
cache deny all
cache_mem 8 MB
dns_nameservers 127.0.0.1
visible_hostname localhost
pinger_enable off
shutdown_lifetime 0 seconds
acl SSL_ports port 443
acl CONNECT method CONNECT
http_access deny CONNECT !SSL_ports
http_access allow localhost
http_access deny all
""")
        proc = self.spawn([which("squid"), "-N", "-f", os.path.join(d, "squid.conf")],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.wait_port(port, proc)
        self.squid_url = f"http://127.0.0.1:{port}"
        return self.squid_url

    def corpus_batch(self):
        """The batch corpus (clean and faulty lists) under srv; returns the lists' common prefix."""
        make_corpus.batch(self.srv, self.batch_n, self.start_nginx(), self.start_faulty())
        return os.path.join(self.srv, "clean"), os.path.join(self.srv, "faulty")

    def stop_servers(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = []
        self.nginx_base = self.faulty_base = self.squid_url = None
        if self.badnet_ns:
            ns = self.badnet_ns
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
            shutil.rmtree(f"/etc/netns/{ns}", ignore_errors=True)
            self.badnet_ns = None

    def cleanup(self):
        self.stop_servers()
        log = os.path.join(self.out, "testserver.log")
        if os.path.exists(log) and os.path.getsize(log):
            print(f"bench: scripts/testserver.py printed:\n{open(log).read()}", file=sys.stderr)
        for d in (self.out, self.dl):
            shutil.rmtree(d, ignore_errors=True)

    # --- hyperfine

    def hyperfine(self, name, cmds, runs, warmup, shell=True, prepare=(), ignore_failure=False, runner=()):
        """Runs hyperfine on cmds; returns its results (one dict per command, in order)."""
        # A directory anyone can write to: hyperfine may run as another user (runner).
        export_dir = tempfile.mkdtemp(prefix=f"{name}.", dir=self.out)
        os.chmod(export_dir, 0o777)
        export = os.path.join(export_dir, f"{name}.json")
        argv = list(runner) + ["hyperfine", "--warmup", str(warmup), "--runs", str(runs), "--export-json",
                               export, "--style", "none"]
        if not shell:
            argv.append("-N")
        if ignore_failure:
            argv.append("-i")
        for p in prepare:
            argv += ["--prepare", p]
        done = subprocess.run(argv + list(cmds), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            raise BenchError(f"hyperfine failed: {done.stderr.strip()}")
        with open(export) as f:
            return json.load(f)["results"]


# --- the comparisons -----------------------------------------------------------------------------------


def startup_rounds(run, label, watchdog, base, runner=()):
    """Start-up of watchdog under each --contain mechanism that can be had, GNU timeout and the baseline,
    in one hyperfine run per round (hyperfine itself run through runner, e.g. setpriv, so that every
    command runs as that user with nothing in between); the median of the rounds' medians and of the
    rounds' ratios to GNU, so that load drift falls on all alike, and the CPU time each start costs."""
    rounds = run.rounds("STARTUP_ROUNDS", 10, 2)
    cmds, names = [], []
    for m in ("auto", "pidns", "userns", "sentinel", "group"):
        ok = subprocess.run(list(runner) + [watchdog, "--contain", m, "--", "true"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
        if ok:
            cmds.append(f"{watchdog} --contain {m} --timeout 10 -- true")
            names.append(m)
        else:
            run.say(f"   {m}: not available here{(' ' + label) if label else ''}")
    cmds.append("timeout 10 true")
    names.append("GNU")
    if base:
        cmds.append(f"{base} --timeout 10 -- true")
        names.append("baseline")
    warmup, runs = (2, 5) if run.quick else (10, 40)
    results = [run.hyperfine("startup", cmds, runs, warmup, shell=False, runner=runner) for _ in range(rounds)]
    gnu = names.index("GNU")
    cpu = lambda r, i: r[i]["user"] + r[i]["system"]  # noqa: E731
    for i, name in enumerate(names):
        med = median(r[i]["median"] * 1e3 for r in results)
        rat = median(r[i]["median"] / r[gnu]["median"] for r in results)
        c = median(cpu(r, i) * 1e3 for r in results)
        c_rat = median(cpu(r, i) / cpu(r, gnu) for r in results)
        run.say(f"   {name:<9} median {med:6.3f} ms  {rat:.2f}x GNU   CPU {c:5.2f} ms  {c_rat:.2f}x GNU")
        if not label and name in ("auto", "group"):
            gnu_ms = median(r[gnu]["median"] * 1e3 for r in results)
            run.summary(f"start-up, `--contain {name}`", f"{med:.2f} ms ({c:.2f} ms CPU)",
                        f"GNU `timeout` {gnu_ms:.2f} ms", f"{rat:.2f}x ({c_rat:.2f}x CPU)")


def bench_supervise(run):
    run.say("== start-up: watchdog --contain X --timeout 10 -- true  vs  timeout 10 true "
            "(targets: default as root <= 1.5x, group <= 1.3x)")
    startup_rounds(run, "", run.watchdog, run.base)
    if os.geteuid() == 0 and which("setpriv"):
        run.say("== the same as nobody (setpriv runs hyperfine; the binary copied where nobody can run it)")
        copy = tempfile.mkdtemp(prefix="nobody.", dir=run.out)
        os.chmod(copy, 0o755)
        new = copy_binary(run.watchdog, os.path.join(copy, "new"))
        base = copy_binary(run.base, os.path.join(copy, "base")) if run.base else None
        for d in ("new", "base"):
            if os.path.isdir(os.path.join(copy, d)):
                os.chmod(os.path.join(copy, d), 0o755)
        group = subprocess.run(["id", "-gn", "nobody"], capture_output=True, text=True).stdout.strip()
        startup_rounds(run, "for nobody", new, base,
                       runner=("setpriv", "--reuid=nobody", f"--regid={group}", "--clear-groups"))

    run.say("== deadline precision: --contain X --timeout 0.2 -- sleep 5 "
            "(time past the 200 ms deadline; target: within 5 ms of GNU)")
    rounds = run.rounds("DEADLINE_ROUNDS", 4, 1)
    cmds, names = [], []
    for m in ("auto", "group"):
        cmds.append(f"{run.watchdog} --contain {m} --timeout 0.2 -- sleep 5")
        names.append(m)
    cmds.append("timeout 0.2 sleep 5")
    names.append("GNU")
    if run.base:
        cmds.append(f"{run.base} --timeout 0.2 -- sleep 5")
        names.append("baseline")
    warmup, runs = (0, 3) if run.quick else (2, 10)
    results = [run.hyperfine("deadline", cmds, runs, warmup, shell=False, ignore_failure=True)
               for _ in range(rounds)]
    gnu = names.index("GNU")
    for i, name in enumerate(names):
        late = median(r[i]["median"] * 1e3 - 200 for r in results)
        diff = median((r[i]["median"] - r[gnu]["median"]) * 1e3 for r in results)
        run.say(f"   {name:<9} +{late:6.2f} ms late   {diff:+6.2f} ms beside GNU")

    limit, sleep = ("1", "2") if run.quick else ("3", "5")
    run.say(f"== idle CPU: watchdog --timeout {limit} -- sleep {sleep} (user+sys of the supervisor alone)")
    proc = subprocess.Popen([run.watchdog, "--timeout", limit, "--", "sleep", sleep], stdout=subprocess.DEVNULL)
    start = time.monotonic()
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    run.say(f"   {usage.ru_utime:.2f} s user, {usage.ru_stime:.2f} s sys over {time.monotonic() - start:.2f} s wall")


def bench_fetch(run):
    """One large download: wall time and throughput beside curl, then the supervisor's share of the CPU."""
    size = 10_000_000 if run.quick else 100_000_000
    base_url = run.start_nginx()
    make_corpus.big(run.srv, size)
    url, file = f"{base_url}/big.bin", os.path.join(run.dl, "fetch.bin")
    mb = f"{size / 1e6:.0f} MB"
    run.say(f"== fetch: {mb} from nginx on loopback: watchdog -q -- fetch URL -o F  vs  curl -s -o F URL")
    cmds = [f"{run.watchdog} -q -- fetch {url} -o {file}", f"curl -s -o {file} {url}"]
    if run.base:
        cmds.append(f"{run.base} -q -- fetch {url} -o {file}")
    warmup, runs = (0, 2) if run.quick else (2, 10)
    r = run.hyperfine("fetch", cmds, runs, warmup, shell=False, prepare=[f"rm -f {file}"])
    subprocess.run([run.watchdog, "-q", "--", "fetch", url, "-o", file], check=True)
    with open(file, "rb") as a, open(os.path.join(run.srv, "www", "big.bin"), "rb") as b:
        if a.read() != b.read():
            raise BenchError("watchdog's download differs from the served file")
    w, c = r[0]["median"] * 1e3, r[1]["median"] * 1e3
    run.say(f"   median watchdog {w:.1f} ms ({size / 1e6 / (w / 1000):.0f} MB/s), curl {c:.1f} ms "
            f"({size / 1e6 / (c / 1000):.0f} MB/s), ratio {ratio(w, c)}x (target <= 1.10x)")
    if run.base:
        b = r[2]["median"] * 1e3
        run.say(f"   baseline        {b:.1f} ms, ratio {ratio(b, c)}x to curl; this build / baseline {ratio(w, b)}x")
    run.summary(f"one {mb} download from nginx", f"{w:.0f} ms ({size / 1e6 / (w / 1000):.0f} MB/s)",
                f"`curl -o` {c:.0f} ms", f"{ratio(w, c)}x")

    # Supervisor CPU vs worker CPU: (a) directly, with cpu_split; (b) as a cross-check, the worker run
    # alone (no progress channel) against the whole `watchdog -- fetch`, both measured the same way.
    rounds = 2 if run.quick else 5
    run.say(f"== fetch CPU: supervisor vs worker for one {mb} download (medians of {rounds})")
    sibling = os.path.join(os.path.dirname(run.watchdog), SIBLING)
    worker = sibling if os.path.exists(sibling) else run.watchdog
    sup, wrk, whole, alone = [], [], [], []
    for _ in range(rounds):
        os.unlink(file)
        s, k = cpu_split([run.watchdog, "-q", "--", "fetch", url, "-o", file])
        sup.append(s * 1e3)
        wrk.append(k * 1e3)
        whole.append((s + k) * 1e3)
        os.unlink(file)
        # The worker run directly (no progress channel); an old single binary took a hidden argument.
        s, k = cpu_split([worker, url, "-o", file] if worker == sibling else [worker, "__fetch-worker", url, "-o", file])
        alone.append((s + k) * 1e3)
    s, k, t, a = median(sup), median(wrk), median(whole), median(alone)
    run.say(f"   (a) supervisor {s:.2f} ms CPU, worker {k:.1f} ms CPU: supervisor = {100 * s / k:.2f}% of worker "
            "(target < 5%)")
    run.say(f"   (b) whole watchdog -- fetch {t:.1f} ms CPU, worker alone {a:.1f} ms CPU, difference {t - a:.1f} ms")
    os.unlink(file)


def batch_peers(run, clean, dl, wget2):
    """(name, command) of every tool on the clean batch, each writing into dl/NAME."""
    tools = [
        ("watchdog", f"{run.watchdog} batch {clean}.urls --out {dl}/watchdog -j 16 -t 10 -q"),
        ("watchdog-no-sha256", f"{run.watchdog} batch {clean}.urls --out {dl}/watchdog-no-sha256 -j 16 -t 10 -q "
                               "--no-sha256"),
        ("curl-parallel", f"cd {dl}/curl-parallel && curl -s --no-progress-meter --parallel --parallel-max 16 "
                          f"-K {clean}.curl"),
        ("aria2c", f"aria2c -q -i {clean}.urls -d {dl}/aria2c -j 16 -x1 --allow-overwrite=true "
                   "--auto-file-renaming=false --file-allocation=none --summary-interval=0"),
    ]
    if wget2:
        tools.append(("wget2", f"wget2 -q --max-threads 16 -i {clean}.urls -P {dl}/wget2"))
    tools.append(("xargs-curl", f"cd {dl}/xargs-curl && xargs -P16 -n1 curl -s -O < {clean}.urls"))
    if run.base:
        tools.append(("baseline", f"{run.base} batch {clean}.urls --out {dl}/baseline -j 16 -t 10 -q"))
        tools.append(("baseline-no-sha256", f"{run.base} batch {clean}.urls --out {dl}/baseline-no-sha256 -j 16 "
                                            "-t 10 -q --no-sha256"))
    return tools


def clean_batch(run, clean, dl, where, wget2, after=""):
    """The clean batch, every tool side by side, downloading into dl; `after` (e.g. sync) runs after
    each command, inside its timing. Each tool writes to its own directory, emptied before each run;
    what is left after the last run is checked against the expected names and sizes."""
    runs = 2 if run.quick else 10
    run.say(f"== batch on {where}: {run.batch_n} files of 20-80 KB from nginx on loopback, 16 at a time "
            f"(median of {runs} runs)")
    tools = batch_peers(run, clean, dl, wget2)
    cmds = [c + (f" && {after}" if after else "") for _, c in tools]
    prepare = [f"rm -rf {dl}/{n} && mkdir {dl}/{n}" for n, _ in tools]
    r = run.hyperfine("batch", cmds, runs, 0 if run.quick else 1, prepare=prepare)
    ms = {n: r[i]["median"] * 1e3 for i, (n, _) in enumerate(tools)}
    curl_ms = ms["curl-parallel"]
    for name, _ in tools:
        t = ms[name]
        complete = count_files(f"{clean}.sizes", f"{dl}/{name}")[0]
        run.say(f"   {name:<19} median {t:7.0f} ms  {run.batch_n / (t / 1000):6.0f} files/s  time ratio to curl "
                f"--parallel {ratio(t, curl_ms)}x  (last run: {complete}/{run.batch_n} complete)")
        shutil.rmtree(f"{dl}/{name}", ignore_errors=True)
    if run.base:
        run.say(f"   this build / baseline: {ratio(ms['watchdog'], ms['baseline'])}x with SHA-256, "
                f"{ratio(ms['watchdog-no-sha256'], ms['baseline-no-sha256'])}x without")
    peers = "; ".join(f"{n.replace('curl-parallel', '`curl --parallel`')} {ms[n]:.0f} ms"
                      for n in ("curl-parallel", "wget2", "aria2c") if n in ms)
    run.summary(f"{run.batch_n} files of 20-80 KB, 16 at a time, on {where}",
                f"{ms['watchdog']:.0f} ms; `--no-sha256` {ms['watchdog-no-sha256']:.0f} ms", peers,
                f"{ratio(ms['watchdog'], curl_ms)}x curl; {ratio(ms['watchdog-no-sha256'], curl_ms)}x")


def faulty_batch(run, faulty, wget2):
    cap = env_int("BENCH_FAULTY_CAP", 30)
    rounds = 1 if run.quick else 3
    slow = run.batch_n // 10 * 3 // 4
    run.say(f"== batch with faults: the same {run.batch_n} items, 10% misbehaving (stall after headers, drip "
            "1 byte/s,")
    run.say(f"   close before Content-Length, never answer), 2 s per item, no retries; {rounds} rounds, tools "
            "side by")
    run.say(f"   side in each; a tool still running after {cap} s is killed (exit 124). A truncated file is one at")
    run.say(f"   its final name with the wrong size. Lower bound: {slow} slow items x 2 s / 16 = "
            f"{slow * 2 / 16:.1f} s.")
    d = os.path.join(run.dl, "f")
    tools = [("watchdog", [run.watchdog, "batch", f"{faulty}.urls", "--out", d, "-j", "16", "-t", "2",
                           "--retries", "0", "-q"], None)]
    if run.base:
        tools.append(("baseline", [run.base, "batch", f"{faulty}.urls", "--out", d, "-j", "16", "-t", "2",
                                   "--retries", "0", "-q"], None))
    tools.append(("curl-parallel", ["curl", "-s", "--no-progress-meter", "--parallel", "--parallel-max", "16",
                                    "--max-time", "2", "-K", f"{faulty}.curl"], d))
    tools.append(("aria2c", ["aria2c", "-q", "-i", f"{faulty}.urls", "-d", d, "-j", "16", "-x1",
                             "--allow-overwrite=true", "--auto-file-renaming=false", "--file-allocation=none",
                             "--summary-interval=0", "--timeout=2", "--connect-timeout=2", "--max-tries=1"], None))
    if wget2:
        tools.append(("wget2", ["wget2", "-q", "--max-threads", "16", "-i", f"{faulty}.urls", "-P", d,
                                "--timeout=2", "--tries=1"], None))
    results = {name: [] for name, _, _ in tools}
    for _ in range(rounds):
        for name, argv, cwd in tools:
            shutil.rmtree(d, ignore_errors=True)
            os.makedirs(d)
            code, wall, _, _ = measure(argv, cwd=cwd, cap=cap)
            results[name].append((wall, code) + count_files(f"{faulty}.sizes", d))
    shutil.rmtree(d, ignore_errors=True)
    for name, _, _ in tools:
        runs = results[name]
        run.say(f"   {name:<14} median {median(r[0] for r in runs):5.1f} s (runs "
                f"{' '.join(f'{r[0]:.1f}' for r in runs)} s)  exit {' '.join(str(r[1]) for r in runs)}")
        col = lambda k: "/".join(str(r[k]) for r in runs)  # noqa: E731
        run.say(f"   {'':<14} per run: complete {col(2)} | truncated at final name {col(3)} | missing {col(4)} | "
                f"other files {col(5)}")
    w = results["watchdog"]
    c = results["curl-parallel"]
    run.summary("the same with 10% stalling, dripping, truncating or silent items, 2 s deadline",
                f"{median(r[0] for r in w):.1f} s, {median(r[3] for r in w):.0f} truncated files",
                f"curl {median(r[0] for r in c):.1f} s, {median(r[3] for r in c):.0f} truncated", "")


def bench_batch(run):
    run.need("aria2c", "aria2")
    wget2 = run.want("wget2", "wget2")
    if not wget2:
        run.say("   (wget2 is not installed and could not be: left out)")
    clean, faulty = run.corpus_batch()
    clean_batch(run, clean, run.dl, fs_type(run.dl), wget2)
    # Users write to disks: the same run with the files on the file system of this run's temp directory
    # (BENCH_DISK_DIR to choose), each run followed by a sync inside the timing so the write-back counts.
    disk = tempfile.mkdtemp(prefix="watchdog-bench-disk.", dir=os.environ.get("BENCH_DISK_DIR", run.out))
    clean_batch(run, clean, disk, f"disk ({fs_type(disk)}, synced)", wget2, after="sync")
    shutil.rmtree(disk, ignore_errors=True)
    faulty_batch(run, faulty, wget2)
    bench_batch_memory(run)
    bench_report_memory(run)


def peak_rss(run, argv, want_rc, what, stdout=subprocess.DEVNULL):
    """Runs argv under GNU time and returns its peak RSS (KiB) and wall time (s); the exit code must be
    want_rc. (wait4's own ru_maxrss would count the forked copy of this Python process before exec.)"""
    run.need("/usr/bin/time", "time")
    rss_file, err = os.path.join(run.out, "rss"), os.path.join(run.out, "mem.err")
    code, _, _, _ = measure(["/usr/bin/time", "-f", "%M %e", "-o", rss_file] + list(argv), stdout=stdout,
                            stderr=open(err, "w"))
    if code != want_rc:
        raise BenchError(f"{what}: exit {code}, expected {want_rc}: {open(err).read().strip()}")
    rss, wall = open(rss_file).read().split("\n")[-2].split()
    return int(rss), float(wall)


def batch_memory(run, big, binaries, big_runs=3):
    """Peak RSS of the batch supervisor against list length, with lists that start no worker and no
    download, so the figure is the supervisor's alone (each run checks the report holds what it should):
      stream:  lines that are not http(s) URLs, of another shard (--shard 1/4294967295, the largest
               count): each is read, found invalid and hashed for the shard. The list stream alone.
      shard:   valid URLs, all of another shard: each is read, parsed, named by the name allocator (every
               shard names every item, so that shards sharing a directory agree on names) and dropped.
      own:     URL<TAB>blocked/NAME, all of this shard: each is planned and named, then creating its
               directory fails ('blocked' is a plain file) and it is reported io_error. Adds the report
               writer.
      resume:  the shard list again, with an earlier report (--report) holding an `ok` line for every one
               of its URLs: the run reads it into the resume index, then plans the list.
    Past 32,768 entries the allocator and the resume index keep their entries in a file in the output
    directory, which must therefore be on disk: the output directory is under BENCH_MEM_DIR (default this
    run's temp directory under /tmp), not on the tmpfs the downloads go to."""
    mem_dir = tempfile.mkdtemp(prefix="watchdog-bench-mem.", dir=os.environ.get("BENCH_MEM_DIR", run.out))
    fs = fs_type(mem_dir)
    d = os.path.join(mem_dir, "out")
    note = ": RAM-backed, set BENCH_MEM_DIR to a disk" if fs == "tmpfs" else ""
    run.say(f"   output directory on {fs} ({mem_dir}){note}")
    mem_list, mem_report = os.path.join(run.out, "mem.list"), os.path.join(run.out, "mem.report")
    rows = {}
    for mode in ("stream", "shard", "own", "resume"):
        for n in (1000, big):
            extra, expect, want_rc, report = ["--shard", "1/4294967295"], 0, 0, os.path.join(d, "report.jsonl")
            kind = {"stream": "invalid", "shard": "urls", "own": "named", "resume": "urls"}[mode]
            if mode == "own":
                extra, expect, want_rc = [], n, 1
            if mode == "resume":
                report = mem_report
                extra += ["--report", report]
                expect = n
                make_corpus.memreport(report, n)
            make_corpus.memlist(mem_list, n, kind)
            for label, binary in binaries:
                rss = []
                for _ in range(3 if n == 1000 else big_runs):
                    shutil.rmtree(d, ignore_errors=True)
                    os.makedirs(d)
                    open(os.path.join(d, "blocked"), "w").close()
                    rss.append(peak_rss(run, [binary, "batch", mem_list, "--out", d, "-j", "16", "-t", "10", "-q",
                                              *extra], want_rc, f"{label or 'watchdog'} {mode} {n}")[0])
                    with open(report) as f:
                        lines = sum(1 for _ in f)
                    if lines != expect:
                        raise BenchError(f"{mode} {n}: {lines} report lines, expected {expect}")
                rows[(mode, n, label)] = median(rss)
        for label, _ in binaries:
            small, large = rows[(mode, 1000, label)], rows[(mode, big, label)]
            name = f"{mode}{(' ' + label) if label else ''}"
            width = 15 if len(binaries) > 1 else 7
            run.say(f"   {name:<{width}} 1,000 lines {small / 1024:5.1f} MB, {big:,} lines {large / 1024:5.1f} MB, "
                    "ratio "
                    f"{ratio(large, small)}x, {(large - small) * 1024 / (big - 1000):.1f} bytes per extra line")
    shutil.rmtree(mem_dir, ignore_errors=True)
    for path in (mem_list, mem_report):
        if os.path.exists(path):
            os.unlink(path)
    return rows


def bench_batch_memory(run):
    big = 10_000 if run.quick else 1_000_000
    run.say("== batch supervisor memory vs list length: peak RSS (/usr/bin/time -f %M), median of 3, no downloads")
    rows = batch_memory(run, big, [("", run.watchdog)])
    run.summary(f"batch supervisor peak RSS, 1,000 vs {big:,} list lines (resuming)",
                f"{rows[('resume', 1000, '')] / 1024:.1f} MB vs {rows[('resume', big, '')] / 1024:.1f} MB", "",
                f"{ratio(rows[('resume', big, '')], rows[('resume', 1000, '')])}x for {big // 1000}x the lines")


def bench_memory(run):
    bench_batch_memory(run)
    bench_report_memory(run)


def bench_memory_10m(run):
    """The supervisor's memory stays flat: the same lists at 10,000,000 lines, the baseline beside."""
    big = 10_000 if run.quick else 10_000_000
    runs = env_int("BENCH_MEM10M_RUNS", 1)
    run.say(f"== batch supervisor memory on a {big:,}-line list: peak RSS, median of 3 at 1,000 lines and "
            f"of {runs} at {big:,} (BENCH_MEM10M_RUNS), no downloads{', baseline beside' if run.base else ''}")
    rows = batch_memory(run, big, run.baselines(), runs)
    run.summary(f"batch supervisor peak RSS, 1,000 vs {big:,} list lines (resuming)",
                f"{rows[('resume', 1000, '')] / 1024:.1f} MB vs {rows[('resume', big, '')] / 1024:.1f} MB",
                f"baseline {rows[('resume', big, 'baseline')] / 1024:.1f} MB" if run.base else "",
                f"{ratio(rows[('resume', big, '')], rows[('resume', 1000, '')])}x for {big // 1000}x the lines")


def bench_report_memory(run):
    """Peak RSS of `watchdog report --list LIST REPORT` against the list's length, with a report of every
    tenth item, so that nine in ten are missing. Each run checks the counts it printed."""
    big = env_int("BENCH_REPORT_MEM_BIG", 1_000_000, 10_000, run.quick)
    d = tempfile.mkdtemp(prefix="watchdog-bench-report.", dir=os.environ.get("BENCH_MEM_DIR", run.out))
    run.say("== report --list memory vs list length: peak RSS (/usr/bin/time -f '%M %e'), median of 3")
    run.say(f"   index directory on {fs_type(d)} ({d})")
    got = {}
    for n in (1000, big):
        with open(os.path.join(d, "list"), "w", buffering=1 << 20) as f:
            for i in range(n):
                f.write(f"https://h{i % 100}.example/img/{i}.jpg\n")
        with open(os.path.join(d, "report.jsonl"), "w", buffering=1 << 20) as f:
            for i in range(0, n, 10):
                f.write(f'{{"url":"https://h{i % 100}.example/img/{i}.jpg","path":"{i}.jpg","status":"ok",'
                        '"http_status":200,"bytes":1000,"sha256":null,"attempts":1,"elapsed_ms":5,"error":null}\n')
        rss, wall = [], []
        for _ in range(3):
            out = os.path.join(run.out, "report.json")
            r, w = peak_rss(run, [run.watchdog, "report", "--json", "--list", os.path.join(d, "list"),
                                  os.path.join(d, "report.jsonl")], 1, f"report --list {n}", stdout=open(out, "w"))
            j = json.load(open(out))
            if (j["items"], j["statuses"]["missing"]) != (n, n - n // 10):
                raise BenchError(f"report --list {n}: items and missing {j['items']} {j['statuses']['missing']}")
            rss.append(r)
            wall.append(w)
        got[n] = (median(rss), median(wall))
    small, (large, wall) = got[1000][0], got[big]
    run.say(f"   1,000 lines {small / 1024:5.1f} MB; {big} lines {large / 1024:5.1f} MB in {wall:.2f} s; "
            f"ratio {ratio(large, small)}x")
    shutil.rmtree(d, ignore_errors=True)


def in_turn(run, rounds, variants, sizes, directory):
    """Runs each variant (name, argv) once per round, in turn, so that load drift falls on all alike;
    every run must leave every file of `sizes` complete. Returns {name: [(wall s, user+sys s)]}."""
    got = {name: [] for name, _ in variants}
    for _ in range(rounds):
        for name, argv in variants:
            shutil.rmtree(directory, ignore_errors=True)
            os.makedirs(directory)
            err = os.path.join(run.out, "in_turn.err")
            code, wall, cpu, _ = measure(argv, stderr=open(err, "w"))
            counts = count_files(sizes, directory)
            if code != 0 or counts[0] != run.batch_n:
                raise BenchError(f"{name}: exit {code}, {counts} (complete truncated missing stray): "
                                 f"{open(err).read().strip()}")
            got[name].append((wall, cpu))
    shutil.rmtree(directory, ignore_errors=True)
    return got


def print_in_turn(run, got, names, reference):
    ref = median(c for _, c in got[reference])
    for name in names:
        cpu = median(c for _, c in got[name])
        wall = median(w for w, _ in got[name])
        run.say(f"   {name:<17} CPU user+sys median {cpu:6.2f} s ({ratio(cpu, ref)}x {reference}), "
                f"wall median {wall:5.2f} s")


def bench_image(run):
    """The cost of --expect image on the clean batch made of images (JPEGs and PNGs of 20-80 KB): this
    build without and with the check and, given BENCH_BASELINE, the baseline likewise, in turn."""
    nginx = run.start_nginx()
    make_corpus.images(run.srv, run.batch_n, nginx)
    rounds = run.rounds("BENCH_IMAGE_ROUNDS", 11, 2)
    run.say(f"== --expect image: {run.batch_n} images (JPEG, PNG) of 20-80 KB from nginx, 16 at a time, in turn "
            f"for {rounds} rounds")
    d = os.path.join(run.dl, "img")
    variants = []
    for label, binary in run.baselines():
        prefix = f"{label}-" if label else ""
        argv = [binary, "batch", os.path.join(run.srv, "images.urls"), "--out", d, "-j", "16", "-t", "10", "-q"]
        variants += [(f"{prefix}unchecked", argv), (f"{prefix}checked", argv + ["--expect", "image"])]
    got = in_turn(run, rounds, variants, os.path.join(run.srv, "images.sizes"), d)
    print_in_turn(run, got, [n for n, _ in variants], "unchecked")


def bench_metrics(run):
    """The cost of --metrics FILE --progress-interval 1 on the clean batch: CPU and wall, in turn."""
    options = ("--metrics", "--progress-interval")
    binaries = [(label, b) for label, b in run.baselines() if run.has_options(b, *options)]
    if not any(label == "" for label, _ in binaries):
        run.say("== --metrics: skipped: this watchdog has no --metrics and --progress-interval "
                f"({run.watchdog} batch --help)")
        return
    clean, _ = run.corpus_batch()
    rounds = run.rounds("BENCH_METRICS_ROUNDS", 11, 2)
    run.say(f"== --metrics FILE --progress-interval 1: the clean batch ({run.batch_n} files from nginx, 16 at a "
            f"time, stderr to a file), with and without, in turn for {rounds} rounds")
    if run.base and len(binaries) == 1:
        run.say("   (the baseline has no --metrics: left out)")
    # Without -q: stderr goes to a file, not a terminal, so --progress-interval writes its lines there,
    # as in a batch job's log.
    d = os.path.join(run.dl, "metrics")
    variants, files = [], []
    for label, binary in binaries:
        prefix = f"{label}-" if label else ""
        argv = [binary, "batch", f"{clean}.urls", "--out", d, "-j", "16", "-t", "10"]
        files.append(os.path.join(run.out, f"{prefix}metrics.prom"))
        variants += [(f"{prefix}plain", argv),
                     (f"{prefix}metrics", argv + ["--metrics", files[-1], "--progress-interval", "1"])]
    got = in_turn(run, rounds, variants, f"{clean}.sizes", d)
    for path in files:
        if not os.path.exists(path):
            raise BenchError(f"--metrics {path}: no file was written")
    print_in_turn(run, got, [n for n, _ in variants], "plain")


def bench_cpu(run):
    """CPU per item on the clean batch: user+sys of every process each tool runs (wait4 on the tool: it
    and every descendant it reaped, as watchdog reaps its workers), in turn round by round."""
    clean, _ = run.corpus_batch()
    rounds = run.rounds("BENCH_CPU_ROUNDS", 11, 2)
    wget2 = run.want("wget2", "wget2")
    run.say(f"== CPU per item: the clean batch ({run.batch_n} files of 20-80 KB from nginx, 16 at a time, on "
            f"{fs_type(run.dl)}), user+sys of all processes, in turn for {rounds} rounds")
    d = os.path.join(run.dl, "cpu")
    variants = []
    for label, binary in run.baselines():
        name = label or "watchdog"
        argv = [binary, "batch", f"{clean}.urls", "--out", d, "-j", "16", "-t", "10", "-q"]
        variants += [(name, argv), (f"{name}-no-sha256", argv + ["--no-sha256"])]
    variants.append(("curl-parallel", ["sh", "-c", f"cd {d} && exec curl -s --no-progress-meter --parallel "
                                                   f"--parallel-max 16 -K {clean}.curl"]))
    if wget2:
        variants.append(("wget2", ["wget2", "-q", "--max-threads", "16", "-i", f"{clean}.urls", "-P", d]))
    got = in_turn(run, rounds, variants, f"{clean}.sizes", d)
    per_item = {n: median(c for _, c in got[n]) / run.batch_n * 1e6 for n, _ in variants}
    for name, _ in variants:
        to_curl = ratio(per_item[name], per_item["curl-parallel"])
        run.say(f"   {name:<19} {per_item[name]:6.0f} µs CPU per item  {to_curl}x "
                f"curl --parallel   (wall median {median(w for w, _ in got[name]) * 1e3:5.0f} ms)")
    run.summary("CPU per item (user+sys, all processes), clean batch",
                f"{per_item['watchdog']:.0f} µs; `--no-sha256` {per_item['watchdog-no-sha256']:.0f} µs",
                f"`curl --parallel` {per_item['curl-parallel']:.0f} µs"
                + (f"; wget2 {per_item['wget2']:.0f} µs" if wget2 else ""),
                f"{ratio(per_item['watchdog'], per_item['curl-parallel'])}x curl")


def bench_proxy(run):
    clean, _ = run.corpus_batch()
    squid = run.start_squid()
    runs = run.rounds("BENCH_PROXY_RUNS", 10, 2)
    run.say(f"== batch through Squid: {run.batch_n} files of 20-80 KB from nginx on loopback via a stock Squid "
            "(forward")
    run.say(f"   requests, no cache), 16 at a time (median of {runs} runs)")
    dl = run.dl
    tools = [
        ("watchdog", f"{run.watchdog} batch {clean}.urls --out {dl}/watchdog -j 16 -t 10 -q -x {squid}"),
        ("watchdog-no-sha256", f"{run.watchdog} batch {clean}.urls --out {dl}/watchdog-no-sha256 -j 16 -t 10 -q "
                               f"--no-sha256 -x {squid}"),
        ("curl-parallel", f"cd {dl}/curl-parallel && curl -s --no-progress-meter --parallel --parallel-max 16 "
                          f"-x {squid} -K {clean}.curl"),
    ]
    # An older watchdog tunnels http:// through CONNECT, which the stock rules refuse: no baseline here.
    prepare = [f"rm -rf {dl}/{n} && mkdir {dl}/{n}" for n, _ in tools]
    r = run.hyperfine("proxy", [c for _, c in tools], runs, 0 if run.quick else 1, prepare=prepare)
    curl_ms = r[2]["median"] * 1e3
    for i, (name, _) in enumerate(tools):
        t = r[i]["median"] * 1e3
        complete = count_files(f"{clean}.sizes", f"{dl}/{name}")[0]
        run.say(f"   {name:<19} median {t:7.0f} ms  {run.batch_n / (t / 1000):6.0f} files/s  time ratio to curl "
                f"--parallel -x {ratio(t, curl_ms)}x  (last run: {complete}/{run.batch_n} complete)")
        shutil.rmtree(f"{dl}/{name}", ignore_errors=True)


def bench_ab(run):
    """This build against the baseline on the clean batch, taking turns round by round: hyperfine runs
    each command's runs together, so a machine whose load drifts favours one side; here both see it."""
    if not run.base:
        raise BenchError("ab needs BENCH_BASELINE=/path/to/an/older/watchdog", 2)
    clean, _ = run.corpus_batch()
    rounds = run.rounds("BENCH_AB_ROUNDS", 25, 2)
    run.say(f"== batch A/B: {run.batch_n} files from nginx, 16 at a time, this build and the baseline in turn, "
            f"{rounds} rounds")
    d = os.path.join(run.dl, "ab")
    variants = []
    for name, binary in (("new", run.watchdog), ("base", run.base)):
        argv = [binary, "batch", f"{clean}.urls", "--out", d, "-j", "16", "-t", "10", "-q"]
        variants += [(name, argv), (f"{name}-no-sha256", argv + ["--no-sha256"])]
    variants = [variants[0], variants[2], variants[1], variants[3]]
    got = in_turn(run, rounds, variants, f"{clean}.sizes", d)
    ms = {n: median(w for w, _ in got[n]) * 1e3 for n, _ in variants}
    run.say(f"   with SHA-256: this build {ms['new']:.0f} ms, baseline {ms['base']:.0f} ms, ratio "
            f"{ratio(ms['new'], ms['base'])}x")
    run.say(f"   --no-sha256:  this build {ms['new-no-sha256']:.0f} ms, baseline {ms['base-no-sha256']:.0f} ms, ratio "
            f"{ratio(ms['new-no-sha256'], ms['base-no-sha256'])}x")


def bench_badnet(run):
    """The bad-network lab. A network namespace of its own (ip netns) in which loopback addresses act as
    hosts; nothing leaves it, and it is removed on exit with everything in it:
      127.0.0.1:8080  nginx, the origin of every good file
      127.0.0.2:80    normal host: 40 ms RTT (testserver.py --delay-proxy, 20 ms each way)
      127.0.0.3:80    slow host: 300 ms RTT, 3% loss (iptables statistic), 2 Mbit/s (tc htb)
      127.0.0.4:80    lossy host: 40 ms RTT, 10% loss
      127.0.0.5:80    dead host: SYNs dropped (iptables)
      127.0.0.6:80    the misbehaving server (testserver.py: stall, drip, close, never)
      *.silent.test   a name the resolver never answers (the namespace's resolv.conf names 127.0.0.53,
                      where DNS packets are dropped)
    This kernel has no sch_netem, so delay is a userspace proxy, loss an iptables rule and rate a tc htb
    class; loss and rate apply to what the host sends. 600 items, 16 at a time, each tool with the same
    limits: 10 s per attempt, 3 s without data (or below 1 KiB/s for 3 s), 2 retries."""
    if os.geteuid() != 0:
        raise BenchError("badnet builds a network namespace: run it as root")
    for cmd, package in (("ip", "iproute2"), ("tc", "iproute2"), ("iptables", "iptables"), ("nginx", "nginx"),
                         ("curl", "curl")):
        run.need(cmd, package)
    aria2 = run.want("aria2c", "aria2")
    if not aria2:
        run.say("   (aria2c is not installed and could not be: left out)")
    wget2 = run.want("wget2", "wget2")
    if not wget2:
        run.say("   (wget2 is not installed and could not be: left out)")
    n = 120 if run.quick else 600
    ns = f"watchdog-badnet-{os.getpid()}"
    if subprocess.run(["ip", "netns", "add", ns]).returncode != 0:
        raise BenchError("cannot create a network namespace (ip netns add): see above")
    run.badnet_ns = ns
    os.makedirs(f"/etc/netns/{ns}", exist_ok=True)
    with open(f"/etc/netns/{ns}/resolv.conf", "w") as f:
        f.write("nameserver 127.0.0.53\noptions timeout:5 attempts:2\n")
    with open(f"/etc/netns/{ns}/hosts", "w") as f:
        f.write("127.0.0.1 localhost\n")
    x = ["ip", "netns", "exec", ns]

    def inside(*argv, fail=None):
        if subprocess.run(x + list(argv)).returncode != 0 and fail:
            raise BenchError(fail)

    inside("ip", "link", "set", "lo", "up")
    # Rate: everything at 10 Gbit/s but what 127.0.0.3 sends, at 2 Mbit/s.
    inside("tc", "qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb", "default", "10", "r2q", "10000",
           fail="tc htb is not available in this kernel (sch_htb)")
    inside("tc", "class", "add", "dev", "lo", "parent", "1:", "classid", "1:10", "htb", "rate", "10gbit")
    inside("tc", "class", "add", "dev", "lo", "parent", "1:", "classid", "1:20", "htb", "rate", "2mbit",
           "quantum", "1514")
    inside("tc", "filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip", "u32", "match", "ip", "src",
           "127.0.0.3/32", "flowid", "1:20", fail="tc u32 filters are not available in this kernel (cls_u32)")
    inside("iptables", "-A", "INPUT", "-s", "127.0.0.3", "-p", "tcp", "-m", "statistic", "--mode", "random",
           "--probability", "0.03", "-j", "DROP", fail="iptables statistic is not available in this kernel")
    inside("iptables", "-A", "INPUT", "-s", "127.0.0.4", "-p", "tcp", "-m", "statistic", "--mode", "random",
           "--probability", "0.10", "-j", "DROP")
    inside("iptables", "-A", "INPUT", "-d", "127.0.0.5", "-p", "tcp", "--syn", "-j", "DROP")
    # Dropped on the way in: a packet dropped on the way out fails its sendto() at once (EPERM).
    inside("iptables", "-A", "INPUT", "-d", "127.0.0.53", "-j", "DROP")

    srv = os.path.join(run.out, "badnet")
    os.makedirs(os.path.join(srv, "www"), exist_ok=True)
    make_corpus.batch(srv, n, "http://127.0.0.1:8080", "http://127.0.0.6")
    make_corpus.badnet(srv, n)
    run.spawn(x + [os.path.join(HERE, "nginx.sh"), srv, "8080"], stdout=subprocess.DEVNULL,
              stderr=subprocess.DEVNULL)
    for host, delay in (("127.0.0.2", 20), ("127.0.0.3", 150), ("127.0.0.4", 20)):
        run.start_testserver(host, 80, runner=x, extra=("--delay-proxy", "127.0.0.1:8080", "--delay-ms", str(delay)))
    run.start_testserver("127.0.0.6", 80, runner=x)
    for host, port in (("127.0.0.1", 8080),):
        for _ in range(100):
            if subprocess.run(x + ["bash", "-c", f"exec 3<>/dev/tcp/{host}/{port}"],
                              stderr=subprocess.DEVNULL).returncode == 0:
                break
            time.sleep(0.1)
    if subprocess.run(x + ["curl", "-sf", "-o", "/dev/null", "http://127.0.0.2/b/f00000.bin"]).returncode != 0:
        raise BenchError("the lab's normal host does not serve")

    cap = env_int("BENCH_BADNET_CAP", 180, 60, run.quick)
    base = os.path.join(srv, "badnet")
    d = os.path.join(run.dl, "bn")
    with open(f"{base}.expect") as f:
        expect = dict(line.split() for line in f)
    deliverable = n - len(expect)
    curl_common = ["--parallel", "--parallel-max", "16", "--max-time", "10", "--speed-limit", "1024",
                   "--speed-time", "3", "--retry", "2"]
    run.say(f"== bad network: {n} items ({deliverable} deliverable), 16 at a time, 10 s per attempt, 3 s stall or")
    run.say(f"   below 1 KiB/s for 3 s, 2 retries; killed after {cap} s (exit 124)")
    tools = {
        "watchdog": ([run.watchdog, "batch", f"{base}.urls", "--out", d, "-j", "16", "-t", "10", "--stall", "3",
                      "--min-speed", "1K", "--min-speed-window", "3", "--retries", "2", "-q"], None),
        "curl-remove-on-error": (["curl", "-s", *curl_common, "--remove-on-error", "-K", f"{base}.curl"], d),
        "curl": (["curl", "-s", *curl_common, "-K", f"{base}.curl"], d),
        "aria2c": (["aria2c", "-q", "-i", f"{base}.urls", "-d", d, "-j", "16", "-x1", "--timeout=3",
                    "--connect-timeout=3", "--max-tries=3", "--lowest-speed-limit=1K", "--allow-overwrite=true",
                    "--auto-file-renaming=false", "--file-allocation=none", "--summary-interval=0"], None),
        "wget2": (["wget2", "-q", "--max-threads", "16", "-i", f"{base}.urls", "-P", d, "--timeout=3",
                   "--tries=3"], None),
    }
    chosen = os.environ.get("BENCH_BADNET_TOOLS", "watchdog curl-remove-on-error curl aria2c wget2").split()
    for name in chosen:
        if name not in tools or (name == "aria2c" and not aria2) or (name == "wget2" and not wget2):
            continue
        argv, cwd = tools[name]
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        code, wall, _, _ = measure(x + (["sh", "-c", f"cd {cwd} && exec \"$@\"", "sh"] if cwd else []) + argv,
                                 cap=cap)
        named = "no"
        if name == "watchdog":
            got = {}
            with open(os.path.join(d, "report.jsonl")) as f:
                for line in f:
                    e = json.loads(line)
                    got[e["url"]] = e["status"]
            right = sum(1 for url, ok in expect.items() if got.get(url) in ok.split("|"))
            named = f"{right}/{len(expect)}"
        counts = "/".join(str(c) for c in count_files(f"{base}.sizes", d))
        run.say(f"   {name:<22} {wall:6.1f} s  exit {code:<3}  intact/truncated/missing/other files: {counts}  "
                f"named: {named}")
        if name == "watchdog":
            # What bounds the wall time: per host, its items, their statuses, the slowest and the sum.
            hosts = {}
            with open(os.path.join(d, "report.jsonl")) as f:
                for line in f:
                    e = json.loads(line)
                    hosts.setdefault(e["url"].split("/")[2], []).append(e)
            for host, items in sorted(hosts.items()):
                statuses = {}
                for e in items:
                    statuses[e["status"]] = statuses.get(e["status"], 0) + 1
                slowest = max(e["elapsed_ms"] for e in items) / 1000
                run.say(f"     {host:<16} {len(items):>3} items  slowest {slowest:5.1f} s"
                        f"  sum {sum(e['elapsed_ms'] for e in items) / 1000:6.1f} s  "
                        + ", ".join(f"{c} {s}" for s, c in sorted(statuses.items())))
    shutil.rmtree(d, ignore_errors=True)
    run.say("   (truncated: at its final name with the wrong size; other: temp and control files left behind;")
    run.say("   named: bad items whose report status names their cause; no peer writes a per-item report)")


COMPARISONS = {
    "supervise": bench_supervise,
    "fetch": bench_fetch,
    "batch": bench_batch,
    "memory": bench_memory,
    "report-memory": bench_report_memory,
    "memory-10m": bench_memory_10m,
    "cpu": bench_cpu,
    "image": bench_image,
    "metrics": bench_metrics,
    "proxy": bench_proxy,
    "ab": bench_ab,
    "badnet": bench_badnet,
}
ALL = ["supervise", "fetch", "batch", "memory-10m", "cpu", "image", "metrics", "proxy", "badnet"]


def version(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.splitlines()[0].strip() if out.strip() else None


def describe_machine(run, command):
    cpu = platform.machine()
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "unknown"
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1048576:.0f} GiB"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip() or "unknown"
    if subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True,
                      text=True).stdout.strip():
        commit += " with uncommitted changes"
    tools = [version([run.watchdog, "--version"]), version(["timeout", "--version"]),
             " ".join((version(["curl", "--version"]) or "").split()[:2]) or None,
             version(["aria2c", "--version"]), " ".join((version(["wget2", "--version"]) or "").split()[:3]) or None,
             version(["nginx", "-v"]) or subprocess.run([which("nginx") or "nginx", "-v"], capture_output=True,
                                                        text=True).stderr.strip() or None,
             version(["hyperfine", "--version"]), f"Python {platform.python_version()}"]
    lines = [
        f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(run.started))} to "
        f"{time.strftime('%H:%M UTC', time.gmtime())}; commit {commit}",
        f"- CPU: {os.cpu_count()} x {cpu}",
        f"- Memory: {mem}; kernel {platform.release()}",
        f"- Load average at start: {' '.join(run.load_at_start) or 'unknown'}",
        f"- Tools: {'; '.join(t for t in tools if t)}",
        f"- Downloads on {fs_type(run.dl)}; the on-disk runs on {fs_type(run.out)}",
    ]
    if run.base:
        lines.append(f"- Baseline binary beside this build: {run.base} ({version([run.base, '--version'])})")
    return lines


def write_benchmarks(run, command):
    # Before the file is opened: git would see it truncated and call the commit changed.
    machine = describe_machine(run, command)
    with open(os.path.join(REPO, "BENCHMARKS.md"), "w") as f:
        f.write("# Benchmarks\n\n")
        f.write(f"Written by `{command}`.\nEvery comparison ran side by side in the same run; figures are "
                "medians (of hyperfine's runs, or of\nrounds taken in turn) with ratios to the peer named on the "
                "line. Only loopback addresses were contacted.\n\n")
        f.write("\n".join(machine) + "\n\n")
        if run.summaries:
            f.write("## Summary (README quotes this table)\n\n"
                    "| what | watchdog | peer | ratio |\n| --- | --- | --- | --- |\n")
            for row in run.summaries:
                f.write("| " + " | ".join(row) + " |\n")
            f.write("\n")
        section = []

        def flush():
            if section:
                f.write(f"## {section[0][3:]}\n\n```\n" + "\n".join(section) + "\n```\n\n")
                section.clear()

        for line in run.lines:
            if line.startswith("== "):
                flush()
            if not section and not line.startswith("== "):
                section.append("== (notes)")
            section.append(line)
        flush()
    print("bench: wrote BENCHMARKS.md", file=sys.stderr)
    if run.summaries:
        write_readme_summary(run, machine)


README_START = "<!-- bench summary: written by scripts/bench.sh from its run; do not edit by hand -->"
README_END = "<!-- end of bench summary -->"


def write_readme_summary(run, machine):
    """Replaces what lies between README's two markers with this run's summary table, headed by when,
    where and from which commit it was measured: the figures README quotes are the ones a run wrote."""
    path = os.path.join(REPO, "README.md")
    with open(path) as f:
        text = f.read()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise BenchError(f"README.md has no '{README_START}' ... '{README_END}' markers to write the summary between")
    # The machine as BENCHMARKS.md describes it: asked again, git would see that file changed.
    commit = machine[0].rsplit("commit ", 1)[-1]
    cpu = machine[1].removeprefix("- CPU: ")
    mem = machine[2].removeprefix("- Memory: ").split(";")[0]
    load = machine[3].removeprefix("- Load average at start: ")
    block = [README_START,
             f"From the run of {time.strftime('%Y-%m-%d', time.gmtime(run.started))} (commit {commit}; {cpu}, "
             f"{mem}, load average {load} at start); every figure is a median from it:",
             "",
             "| what | watchdog | peer | ratio |",
             "| --- | --- | --- | --- |"]
    block += ["| " + " | ".join(row) + " |" for row in run.summaries]
    text = text[:start] + "\n".join(block) + "\n" + text[end:]
    with open(path, "w") as f:
        f.write(text)
    print("bench: wrote README.md's summary table", file=sys.stderr)


def main(argv):
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    args = []
    for a in argv:
        if a == "--quick":
            quick = True
        elif a in ("-h", "--help"):
            print(__doc__)
            return 0
        else:
            args.append(a)
    which_ = args or ["all"]
    for name in which_:
        if name != "all" and name not in COMPARISONS:
            raise BenchError(f"unknown benchmark '{name}' ({', '.join(list(COMPARISONS) + ['all'])})", 2)
    if "ab" in which_ and not os.environ.get("BENCH_BASELINE"):
        raise BenchError("ab needs BENCH_BASELINE=/path/to/an/older/watchdog", 2)
    run = Run(quick)
    run.started = time.time()
    publish = not quick and (which_ == ["all"] or os.environ.get("BENCH_PUBLISH"))
    try:
        if publish:
            run.need("aria2c", "aria2")
            run.want("wget2", "wget2")
        for name in which_:
            for each in (ALL if name == "all" else [name]):
                if each == "badnet" and name == "all" and os.geteuid() != 0:
                    run.say("== badnet: left out (needs root)")
                    continue
                COMPARISONS[each](run)
                run.stop_servers()
        if publish:
            # Every knob that was set, so that the page says how many rounds its figures are of.
            env = " ".join(f"{k}={v}" for k, v in sorted(os.environ.items())
                           if v and (k.startswith("BENCH_") or k in ("STARTUP_ROUNDS", "DEADLINE_ROUNDS")))
            write_benchmarks(run, f"{env + ' ' if env else ''}scripts/bench.sh {' '.join(argv)}".strip())
    finally:
        run.cleanup()
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    try:
        sys.exit(main(sys.argv[1:]))
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        sys.exit(e.code)
    except KeyboardInterrupt:
        sys.exit(130)
