#!/usr/bin/env python3
"""Checks the Kubernetes Indexed Job in README.md: valid YAML, only fields that a batch/v1 Job has
(a hand-written schema of the part of the Job API the recipe uses: a misspelt or misplaced field fails),
and shard options that agree with the Job's completions.

Usage: scripts/check-k8s-manifest.py [README.md]   (needs PyYAML: apt-get install python3-yaml)
"""

import re
import sys

try:
    import yaml
except ImportError:
    sys.exit("check-k8s-manifest: PyYAML is missing: apt-get install python3-yaml (or pip install PyYAML)")

# Field name -> the schema of its value: a dict (an object with these fields), [schema] (a list of
# them), or a type. Taken from the Kubernetes API reference (batch/v1 Job, core/v1 PodSpec).
STR, INT = str, int
VOLUME_MOUNT = {"name": STR, "mountPath": STR, "readOnly": bool, "subPath": STR}
CONTAINER = {
    "name": STR,
    "image": STR,
    "imagePullPolicy": STR,
    "command": [STR],
    "args": [STR],
    "env": [{"name": STR, "value": STR}],
    "workingDir": STR,
    "volumeMounts": [VOLUME_MOUNT],
    "resources": {"requests": dict, "limits": dict},
}
VOLUME = {
    "name": STR,
    "persistentVolumeClaim": {"claimName": STR, "readOnly": bool},
    "configMap": {"name": STR, "items": list, "defaultMode": INT},
    "emptyDir": dict,
    "hostPath": {"path": STR, "type": STR},
}
POD_SPEC = {
    "restartPolicy": STR,
    "containers": [CONTAINER],
    "initContainers": [CONTAINER],
    "volumes": [VOLUME],
    "nodeSelector": dict,
    "serviceAccountName": STR,
}
METADATA = {"name": STR, "namespace": STR, "labels": dict, "annotations": dict}
JOB = {
    "apiVersion": STR,
    "kind": STR,
    "metadata": METADATA,
    "spec": {
        "completions": INT,
        "parallelism": INT,
        "completionMode": STR,
        "backoffLimit": INT,
        "backoffLimitPerIndex": INT,
        "activeDeadlineSeconds": INT,
        "ttlSecondsAfterFinished": INT,
        "template": {"metadata": METADATA, "spec": POD_SPEC},
    },
}


def check(value, schema, where, errors):
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            errors.append(f"{where}: expected an object, found {type(value).__name__}")
            return
        for key, item in value.items():
            if key not in schema:
                errors.append(f"{where}.{key}: not a field of this object")
            else:
                check(item, schema[key], f"{where}.{key}", errors)
    elif isinstance(schema, list):
        if not isinstance(value, list):
            errors.append(f"{where}: expected a list, found {type(value).__name__}")
            return
        for i, item in enumerate(value):
            check(item, schema[0], f"{where}[{i}]", errors)
    elif schema is INT and isinstance(value, bool) or not isinstance(value, schema):
        errors.append(f"{where}: expected {schema.__name__}, found {type(value).__name__}")


def main():
    readme = sys.argv[1] if len(sys.argv) > 1 else "README.md"
    text = open(readme, encoding="utf-8").read()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    jobs = [b for b in blocks if "kind: Job" in b]
    if len(jobs) != 1:
        sys.exit(f"check-k8s-manifest: expected one Job manifest in {readme}, found {len(jobs)}")
    try:
        job = yaml.safe_load(jobs[0])
    except yaml.YAMLError as e:
        sys.exit(f"check-k8s-manifest: the manifest is not valid YAML: {e}")
    errors = []
    check(job, JOB, "Job", errors)
    if errors:
        sys.exit("check-k8s-manifest: " + "\n  ".join(["unknown or mistyped fields:"] + errors))

    def need(cond, message):
        if not cond:
            errors.append(message)

    spec = job["spec"]
    pod = spec["template"]["spec"]
    need(job["apiVersion"] == "batch/v1", "apiVersion must be batch/v1")
    need(job["kind"] == "Job", "kind must be Job")
    need(spec.get("completionMode") == "Indexed", "completionMode must be Indexed (JOB_COMPLETION_INDEX)")
    need(pod.get("restartPolicy") in ("OnFailure", "Never"), "a Job's restartPolicy is OnFailure or Never")
    volumes = {v["name"] for v in pod.get("volumes", [])}
    for c in pod["containers"]:
        for m in c.get("volumeMounts", []):
            need(m["name"] in volumes, f"volumeMount {m['name']} names no volume")
        line = " ".join(c.get("command", []) + c.get("args", []))
        if "watchdog batch" not in line:
            continue
        count = re.search(r"--shard-count (\d+)", line)
        need("--shard auto" in line, "the batch must take --shard auto")
        need(count is not None and int(count.group(1)) == spec.get("completions"),
             "--shard-count must equal the Job's completions")
        need("$JOB_COMPLETION_INDEX" in line, "each index needs its own --report")
    if errors:
        sys.exit("check-k8s-manifest: " + "; ".join(errors))
    print(f"check-k8s-manifest: {readme}: the Indexed Job is valid ({spec['completions']} shards)")


main()
