//! The README's recipes, run as written: each block after a `<!-- recipe: NAME -->` line is taken from
//! README.md, `https://example.com/` becomes this test's loopback server, and the block runs in a
//! directory of its own with watchdog on PATH. A recipe that stops working fails here.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::{bin, run_bounded, tempdir, Marker, Run};
use crate::server::{file_body, TestServer};

/// The code block that follows `<!-- recipe: NAME -->` in README.md.
fn recipe(name: &str) -> String {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("read README.md");
    let marker = format!("<!-- recipe: {name} -->");
    let after = readme
        .split_once(&marker)
        .unwrap_or_else(|| panic!("README.md has no {marker}"))
        .1;
    let fence = after.find("```").expect("a code block after the marker");
    let body = &after[fence..];
    let start = body.find('\n').expect("an info string line") + 1;
    let end = body[start..]
        .find("```")
        .expect("the end of the code block");
    body[start..start + end].to_string()
}

struct Kitchen {
    marker: Marker,
    dir: tempfile::TempDir,
    server: TestServer,
}

impl Kitchen {
    fn new(name: &str) -> Kitchen {
        Kitchen {
            marker: Marker::new(name),
            dir: tempdir(),
            server: TestServer::start(),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A recipe's text with example.com pointing at the test server (as `/file/...`).
    fn localise(&self, text: &str) -> String {
        text.replace("https://example.com/", &self.server.url("/file/"))
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("make the directory");
        }
        std::fs::write(&path, text).expect("write");
        path
    }

    /// `program args` in the kitchen, with watchdog first on PATH, under the marker.
    fn run(&self, program: &str, args: &[&str]) -> Run {
        self.run_with_env(program, args, &[])
    }

    /// [`Kitchen::run`] with `env` set.
    fn run_with_env(&self, program: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
        let bin_dir = bin()
            .parent()
            .expect("the binary's directory")
            .to_path_buf();
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![bin_dir];
        dirs.extend(std::env::split_paths(&path));
        let mut cmd = Command::new(program);
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("PATH", std::env::join_paths(dirs).expect("PATH"))
            .env(crate::common::MARKER_ENV, self.marker.value());
        cmd.envs(env.iter().copied());
        for var in [
            "http_proxy",
            "https_proxy",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "all_proxy",
        ] {
            cmd.env_remove(var);
        }
        let run = run_bounded(&mut cmd, Duration::from_secs(60));
        self.marker.assert_no_survivors();
        run
    }

    fn urls(&self, paths: &[&str]) -> String {
        paths
            .iter()
            .map(|p| format!("{}\n", self.server.url(p)))
            .collect()
    }
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

#[test]
fn the_set_e_script_fetches_both_files_and_stops_at_the_first_failure() {
    let k = Kitchen::new("recipe-set-e");
    let script = k.write("get-models.sh", &k.localise(&recipe("set-e")));
    let run = k.run("sh", &[script.to_str().expect("path")]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stdout, "models ready\n");
    assert_eq!(
        read(&k.path("face.onnx")),
        file_body("/file/models/face.onnx")
    );
    assert_eq!(
        read(&k.path("labels.txt")),
        file_body("/file/models/labels.txt")
    );

    // With the server gone (a closed port), the first download fails and the script stops there.
    std::fs::remove_file(k.path("face.onnx")).expect("remove");
    let broken = recipe("set-e").replace("https://example.com/", "http://127.0.0.1:1/");
    let script = k.write("broken.sh", &broken);
    let run = k.run("sh", &[script.to_str().expect("path")]);
    assert_eq!(run.code, Some(12), "connect error: {}", run.stderr);
    assert!(!run.stdout.contains("models ready"));
    assert!(!k.path("face.onnx").exists());
}

#[test]
fn the_cron_line_runs_the_batch_once_at_a_time() {
    let k = Kitchen::new("recipe-cron");
    let text = recipe("cron");
    let line = text
        .lines()
        .find(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .expect("a crontab line");
    // Five time fields, then the command.
    let command = line
        .split_whitespace()
        .skip(5)
        .collect::<Vec<_>>()
        .join(" ");
    let command = command.replace("/srv/faces", k.dir.path().to_str().expect("path"));
    k.write("urls.txt", &k.urls(&["/file/a.jpg", "/file/b.jpg"]));
    let run = k.run("sh", &["-c", &command]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(read(&k.path("imgs/a.jpg")), file_body("/file/a.jpg"));
    let report = String::from_utf8_lossy(&read(&k.path("report.jsonl"))).into_owned();
    assert_eq!(report.lines().count(), 2, "{report}");

    // A second run while the first holds the lock does nothing and says so with flock's status.
    let mut hold = Command::new("flock")
        .args([k.path(".lock").to_str().expect("path"), "sleep", "30"])
        .env(crate::common::MARKER_ENV, k.marker.value())
        .spawn()
        .expect("start flock");
    let held = k.marker.wait_for_processes(1, Duration::from_secs(10));
    assert!(!held.is_empty(), "the lock holder did not start");
    std::fs::remove_file(k.path("report.jsonl")).expect("remove");
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &command]);
    let run = run_bounded(&mut cmd, Duration::from_secs(30));
    let _ = hold.kill();
    let _ = hold.wait();
    // The lock holder's `sleep` is the test's own, not watchdog's: killed here, not counted.
    k.marker.kill_survivors();
    assert_eq!(run.code, Some(1), "flock -n refuses: {}", run.stderr);
    assert!(!k.path("report.jsonl").exists());
}

#[test]
fn the_ci_step_fetches_the_images() {
    let k = Kitchen::new("recipe-ci");
    let text = recipe("ci");
    let command = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("run: "))
        .expect("a run: line");
    k.write(
        "ci/images.txt",
        &k.urls(&["/file/one.png", "/file/two.png"]),
    );
    let run = k.run("sh", &["-c", command]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    for name in ["one.png", "two.png"] {
        let path = format!("/file/{name}");
        assert_eq!(
            read(&k.path(&format!("ci/images/{name}"))),
            file_body(&path)
        );
    }
    // A missing image fails the step.
    k.write("ci/images.txt", &k.urls(&["/file/one.png", "/status/404"]));
    let run = k.run("sh", &["-c", command]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
}

#[test]
fn the_python_pipeline_works_on_the_images_that_arrived_and_names_the_rest() {
    let k = Kitchen::new("recipe-python");
    let script = k.write("pipeline.py", &recipe("python"));
    k.write(
        "urls.txt",
        &k.urls(&["/file/a.jpg", "/file/b.jpg", "/status/404", "/file/c.jpg"]),
    );
    let run = k.run("python3", &[script.to_str().expect("path")]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let detected: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("detect faces in imgs/"))
        .collect();
    assert_eq!(detected.len(), 3, "{}", run.stdout);
    let skipped: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("skip "))
        .collect();
    assert_eq!(skipped.len(), 1, "{}", run.stderr);
    assert!(skipped[0].contains("http_error"), "{}", skipped[0]);
}

#[test]
fn the_rerun_recipe_retries_only_what_failed_and_ends_complete() {
    let k = Kitchen::new("recipe-rerun");
    // /flaky/ answers 500 the first time each URL is asked for, then the file.
    k.write(
        "urls.txt",
        &k.urls(&["/file/a.jpg", "/flaky/b.jpg", "/file/c.jpg", "/flaky/d.jpg"]),
    );
    let script = k.write("rerun.sh", &recipe("rerun"));
    let run = k.run("sh", &["-e", script.to_str().expect("path")]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let retried = String::from_utf8_lossy(&read(&k.path("retry.jsonl"))).into_owned();
    assert_eq!(retried.lines().count(), 2, "{retried}");
    assert!(retried.lines().all(|l| l.contains("/flaky/")), "{retried}");
    for name in ["a.jpg", "b.jpg", "c.jpg", "d.jpg"] {
        assert!(k.path(&format!("imgs/{name}")).exists(), "{name}");
    }
}

#[test]
fn the_streaming_python_consumer_works_on_each_image_as_it_lands() {
    let k = Kitchen::new("recipe-python-stream");
    let script = k.write("consumer.py", &recipe("python-stream"));
    k.write(
        "urls.txt",
        &k.urls(&["/file/a.jpg", "/file/b.jpg", "/status/404", "/file/c.jpg"]),
    );
    let run = k.run("python3", &[script.to_str().expect("path")]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let detected: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("detect faces in imgs/"))
        .collect();
    // Each image was on disk, complete, when its line arrived (the consumer stats it then).
    assert_eq!(detected.len(), 3, "{}", run.stdout);
    for name in ["a.jpg", "b.jpg", "c.jpg"] {
        let size = file_body(&format!("/file/{name}")).len();
        assert!(
            detected.contains(&format!("detect faces in imgs/{name} {size} bytes").as_str()),
            "{}",
            run.stdout
        );
    }
    assert!(run.stdout.contains("batch exit status 1"), "{}", run.stdout);
    assert!(
        run.stderr.contains("skip ") && run.stderr.contains("http_error"),
        "{}",
        run.stderr
    );
    // The report went to the consumer only.
    assert!(!k.path("imgs/report.jsonl").exists());
    assert!(!k.path("-").exists());
}

#[test]
fn the_slurm_reconciliation_finds_the_shard_that_never_ran_and_fetches_its_items() {
    let k = Kitchen::new("recipe-slurm-reconcile");
    let paths: Vec<String> = (0..64).map(|i| format!("/file/slurm/{i}.jpg")).collect();
    let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
    k.write("urls.txt", &k.urls(&refs));
    let imgs = k.path("imgs");
    let imgs = imgs.to_str().expect("path");
    let array = k.write("fetch.sbatch", &recipe("slurm").replace("/data/imgs", imgs));
    // Tasks 0 to 14 of the array of 16 ran; task 15 never did.
    for task in 0..15 {
        let task = task.to_string();
        let run = k.run_with_env(
            "bash",
            &[array.to_str().expect("path")],
            &[
                ("SLURM_ARRAY_TASK_ID", task.as_str()),
                ("SLURM_ARRAY_TASK_COUNT", "16"),
            ],
        );
        assert_eq!(run.code, Some(0), "task {task}: {}", run.stderr);
    }
    let reported: usize = (0..15)
        .map(|t| {
            std::fs::read_to_string(k.path(&format!("imgs/report-{t}.jsonl")))
                .unwrap_or_default()
                .lines()
                .count()
        })
        .sum();
    let never_ran = 64 - reported;
    assert!(never_ran > 0, "shard 16 of 16 has items");

    let script = k.write(
        "reconcile.sh",
        &recipe("slurm-reconcile").replace("/data/imgs", imgs),
    );
    let run = k.run("bash", &[script.to_str().expect("path")]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout
            .contains(&format!("64 items, {never_ran} never tried (missing)")),
        "{}",
        run.stdout
    );
    let retry = std::fs::read_to_string(k.path("imgs/retry.jsonl")).expect("the retry list");
    assert_eq!(retry.lines().count(), never_ran, "{retry}");
    for path in &paths {
        let name = path.rsplit('/').next().unwrap_or("");
        assert_eq!(read(&k.path(&format!("imgs/{name}"))), file_body(path));
    }
    let run = k.run(
        "sh",
        &[
            "-c",
            &format!("watchdog report --list urls.txt {imgs}/report-*.jsonl"),
        ],
    );
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    assert!(
        run.stdout.contains("64 items, 0 never tried"),
        "{}",
        run.stdout
    );
}
