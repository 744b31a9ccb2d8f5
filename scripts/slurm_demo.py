#!/usr/bin/env python3
"""Helpers of scripts/slurm-demo.sh: the lists it serves and the checks of the reports. The server is
scripts/testserver.py (--port-file, --log), whose /img/NAME and /slow/NAME these lists name.

  slurm_demo.py list BASE N [SLOW [PREFIX]]    print a list of N items on BASE, every SLOW-th one slow
                                               (0: none), names starting with PREFIX
  slurm_demo.py check-array LIST OUT SHARDS    the shard reports are disjoint, cover LIST, files intact
  slurm_demo.py check-requeue LIST OUT TASK LOG  the requeued TASK resumed without fetching again

The body of NAME is testserver.named_body(NAME), so every file can be checked byte for byte.
"""
import hashlib
import json
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the tree
from testserver import named_body as body  # noqa: E402


def read_list(path):
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def read_report(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def fail(message):
    sys.exit(f"slurm-demo: FAILED: {message}")


def check_files(out, lines):
    for line in lines:
        if line["status"] != "ok":
            continue
        name = line["url"].rsplit("/", 1)[1]
        with open(os.path.join(out, line["path"]), "rb") as f:
            got = f.read()
        if got != body(name):
            fail(f"{line['path']} is not what {line['url']} served")
        if hashlib.sha256(got).hexdigest() != line["sha256"]:
            fail(f"{line['path']}: the report's sha256 is not the file's")


def check_array(list_path, out, shards):
    """Every item is in the report of exactly one task, whose lines for it end ok or skipped after an
    ok (a requeued task reports again what it had finished, as skipped); every file is intact."""
    urls = set(read_list(list_path))
    owner = {}
    statuses = {}
    for k in range(int(shards)):
        report = os.path.join(out, f"report-{k}.jsonl")
        if not os.path.exists(report):
            fail(f"task {k} wrote no report ({report})")
        lines = read_report(report)
        for line in lines:
            url = line["url"]
            if owner.setdefault(url, k) != k:
                fail(f"{url} is in the reports of tasks {owner[url]} and {k}")
            statuses.setdefault(url, []).append(line["status"])
        check_files(out, lines)
    for url, got in statuses.items():
        if "ok" not in got or got[-1] not in ("ok", "skipped"):
            fail(f"{url} (task {owner[url]}) ended {got}")
    if set(owner) != urls:
        fail(f"{len(urls - set(owner))} items of the list are in no report")
    print(f"slurm-demo: {len(urls)} of {len(urls)} items in {shards} disjoint reports, every file intact",
          file=sys.stderr)


def check_requeue(list_path, out, task, log_path):
    report = os.path.join(out, f"report-{task}.jsonl")
    lines = read_report(report)
    by_url = {}
    for line in lines:
        by_url.setdefault(line["url"], []).append(line["status"])
    resumed = [u for u, s in by_url.items() if s[:1] == ["ok"] and "skipped" in s[1:]]
    twice = [u for u, s in by_url.items() if s.count("ok") > 1]
    if not resumed:
        fail(f"task {task}: no item finished before the requeue was skipped after it: {by_url}")
    if twice:
        fail(f"task {task}: downloaded twice: {twice}")
    with open(log_path, encoding="utf-8") as f:
        requests = [line.split(" ", 1)[1].strip() for line in f if line.startswith("GET ")]
    for url in resumed:
        path = "/" + url.split("/", 3)[3]
        if requests.count(path) != 1:
            fail(f"{url} finished before the requeue but was requested {requests.count(path)} times")
    check_files(out, lines)
    print(f"slurm-demo: task {task} requeued mid-run: {len(resumed)} finished item(s) skipped after it and "
          f"not requested again, {len(by_url) - len(resumed)} other(s) fetched after it",
          file=sys.stderr)


def make_list(base, n, slow=0, prefix=""):
    for i in range(int(n)):
        kind = "slow" if int(slow) and i % int(slow) == 0 else "img"
        print(f"{base}/{kind}/{prefix}{i:04d}.jpg")


def main():
    commands = {"list": make_list, "check-array": check_array, "check-requeue": check_requeue}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]](*sys.argv[2:])


main()
