#!/usr/bin/env python3
"""What a batch left in DIR, against SIZES ("file size" per line, from make_corpus.py):

  count_files.py SIZES DIR   ->   "COMPLETE TRUNCATED MISSING STRAY"

complete: at its final name with the expected size; truncated: at its final name with another size
(a partial file a consumer would take for a finished download); missing: not at its final name;
stray: any other file in DIR (temp files, control files, renamed copies), report.jsonl excepted.
"""
import os
import sys

expected = {}
with open(sys.argv[1]) as f:
    for line in f:
        name, size = line.split()
        expected[name] = int(size)
directory = sys.argv[2]
complete = truncated = 0
present = set()
for entry in os.scandir(directory):
    if entry.name in expected and entry.is_file(follow_symlinks=False):
        present.add(entry.name)
        if entry.stat().st_size == expected[entry.name]:
            complete += 1
        else:
            truncated += 1
stray = sum(1 for e in os.scandir(directory) if e.name not in present and e.name != "report.jsonl")
print(complete, truncated, len(expected) - len(present), stray)
