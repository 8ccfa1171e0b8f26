//! The process runner against real processes (`sh`, `sleep`, `cat`,
//! `head`): process groups killed on timeout, on cancel and on drop (the
//! grandchild included), errors that carry the command line, the status
//! and stderr, programs that are not installed, stdin, output caps, and
//! long-running services stopped politely or not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use harmony::infra::process::{ExitState, ProcessError, Program};

/// Whether `pid` no longer runs: no such process, or a zombie waiting for
/// its parent (dead all the same).
fn dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
    }
}

/// Waits (bounded) until every pid is dead; the ones still alive.
fn alive_after_wait(pids: &[i32]) -> Vec<i32> {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let alive: Vec<i32> = pids.iter().copied().filter(|p| !dead(*p)).collect();
        if alive.is_empty() || Instant::now() >= until {
            return alive;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads "SHELL_PID SLEEP_PID" written by the scripts below (bounded wait).
fn read_pids(file: &Path) -> Vec<i32> {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(s) = std::fs::read_to_string(file)
            && s.ends_with('\n')
        {
            let pids: Vec<i32> = s.split_whitespace().map(|p| p.parse().unwrap()).collect();
            assert_eq!(pids.len(), 2, "{s:?}");
            return pids;
        }
        assert!(Instant::now() < until, "{} never written", file.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `sh` that starts a grandchild `sleep`, records both pids, says so on
/// stderr and waits.
fn shell_with_grandchild(pid_file: &Path) -> Program {
    Program::new("sh").arg("-c").arg(format!(
        "sleep 30 & echo $$ $! > '{}'; echo 'grandchild started' >&2; wait",
        pid_file.display()
    ))
}

#[tokio::test]
async fn timeout_kills_the_whole_group_including_the_grandchild() {
    let d = tempfile::tempdir().unwrap();
    let pids = d.path().join("pids");
    let p = shell_with_grandchild(&pids).timeout(Duration::from_millis(500));
    let err = p.run().await.unwrap_err();
    assert!(matches!(err, ProcessError::Timeout { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("sh -c 'sleep 30 &"), "command line: {msg}");
    assert!(msg.contains("grandchild started"), "stderr: {msg}");
    assert!(msg.contains("500ms"), "{msg}");
    let pids = read_pids(&pids);
    assert_eq!(
        alive_after_wait(&pids),
        Vec::<i32>::new(),
        "shell and sleep"
    );
}

#[tokio::test]
async fn a_cancelled_run_kills_the_group() {
    let d = tempfile::tempdir().unwrap();
    let pid_file = d.path().join("pids");
    let p = shell_with_grandchild(&pid_file).timeout(Duration::from_secs(120));
    let task = tokio::spawn(async move { p.output().await });
    let pids = tokio::task::spawn_blocking(move || read_pids(&pid_file))
        .await
        .unwrap();
    assert!(pids.iter().all(|p| !dead(*p)), "running before the cancel");
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    let alive = tokio::task::spawn_blocking(move || alive_after_wait(&pids))
        .await
        .unwrap();
    assert_eq!(alive, Vec::<i32>::new());
}

#[tokio::test]
async fn a_dropped_future_kills_the_group() {
    let d = tempfile::tempdir().unwrap();
    let pid_file = d.path().join("pids");
    let p = shell_with_grandchild(&pid_file).timeout(Duration::from_secs(120));
    // select! drops the losing branch: the run, mid-flight.
    let pf = pid_file.clone();
    tokio::select! {
        r = p.output() => panic!("finished: {r:?}"),
        _ = tokio::task::spawn_blocking(move || read_pids(&pf)) => {}
    }
    let pids = read_pids(&pid_file);
    let alive = tokio::task::spawn_blocking(move || alive_after_wait(&pids))
        .await
        .unwrap();
    assert_eq!(alive, Vec::<i32>::new());
}

#[tokio::test]
async fn a_failure_carries_command_line_status_and_stderr() {
    let p = Program::new("sh")
        .arg("-c")
        .arg("echo 'first line' >&2; echo 'the real reason' >&2; exit 3")
        .arg("arg with space");
    let err = p.run().await.unwrap_err();
    assert_eq!(err.status(), Some(ExitState::Code(3)));
    let msg = err.to_string();
    assert!(msg.contains("`sh -c 'echo"), "{msg}");
    assert!(msg.contains("'arg with space'"), "quoted: {msg}");
    assert!(msg.contains("exit code 3"), "{msg}");
    assert!(msg.contains("first line\nthe real reason"), "{msg}");
    assert!(!msg.ends_with('\n'), "trimmed: {msg:?}");

    // output() gives the status without judging it.
    let out = p.output().await.unwrap();
    assert_eq!(out.status, ExitState::Code(3));

    let err = Program::new("sh")
        .args(["-c", "kill -TERM $$"])
        .run()
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(ExitState::Signal(15)));
    assert!(err.to_string().contains("SIGTERM"), "{err}");
}

#[tokio::test]
async fn stderr_in_errors_is_bounded_and_cleaned() {
    let err = Program::new("sh")
        .args([
            "-c",
            "printf 'evil\\033[31m\\n' >&2; head -c 200000 /dev/zero | tr '\\0' x >&2; echo END >&2; exit 1",
        ])
        .run()
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.len() < 6000, "bounded: {} bytes", msg.len());
    assert!(msg.contains("xEND"), "the end of stderr is kept: {msg}");
    assert!(!msg.contains('\u{1b}'), "no escape reaches a terminal");
}

#[tokio::test]
async fn secret_output_is_withheld_from_errors() {
    let err = Program::new("sh")
        .args(["-c", "echo \"pull secret $PULL\" >&2; exit 1"])
        .env("PULL", "s3cr3t")
        .withhold_output()
        .run()
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(!msg.contains("s3cr3t"), "{msg}");
    assert!(msg.contains("withheld"), "{msg}");
    assert!(!format!("{err:?}").contains("s3cr3t"));
}

#[tokio::test]
async fn a_missing_program_is_named() {
    for name in ["harmony-no-such-program", "/nonexistent/bin/tool"] {
        let err = Program::new(name).arg("x").run().await.unwrap_err();
        assert!(matches!(err, ProcessError::NotFound { .. }), "{err:?}");
        assert!(err.to_string().contains(name), "{err}");
        assert!(err.to_string().contains("not found"), "{err}");
    }
    let d = tempfile::tempdir().unwrap();
    let err = Program::new("harmony-no-such-program")
        .start(&d.path().join("log"))
        .unwrap_err();
    assert!(matches!(err, ProcessError::NotFound { .. }), "{err:?}");
    // A missing working directory is not a missing program.
    let err = Program::new("true")
        .current_dir(d.path().join("nope"))
        .run()
        .await
        .unwrap_err();
    assert!(matches!(err, ProcessError::Spawn { .. }), "{err:?}");
    assert!(err.to_string().contains("nope"), "{err}");
}

#[tokio::test]
async fn stdin_env_and_working_directory_pass_through() {
    // More than a pipe buffer, so writing and reading must overlap.
    let input: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let out = Program::new("cat")
        .stdin(input.clone())
        .run()
        .await
        .unwrap();
    assert_eq!(out.stdout, input);
    assert!(!out.stdout_truncated);

    let d = tempfile::tempdir().unwrap();
    let out = Program::new("sh")
        .args(["-c", "echo \"$HARMONY_T\"; pwd; echo \"${HOME:-unset}\""])
        .env("HARMONY_T", "value with spaces")
        .env_remove("HOME")
        .current_dir(d.path())
        .run()
        .await
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let canon = d.path().canonicalize().unwrap();
    assert_eq!(
        text,
        format!("value with spaces\n{}\nunset\n", canon.display())
    );

    // A program that exits without reading its input is not an error.
    let out = Program::new("true")
        .stdin(vec![0u8; 1 << 20])
        .run()
        .await
        .unwrap();
    assert!(out.status.success());
}

#[tokio::test]
async fn output_is_capped_and_the_rest_drained() {
    let out = Program::new("head")
        .args(["-c", "5000000", "/dev/zero"])
        .max_output(1000)
        .run()
        .await
        .unwrap();
    assert_eq!(out.stdout.len(), 1000);
    assert!(out.stdout_truncated);
    assert!(!out.stderr_truncated);
    assert!(
        out.status.success(),
        "the program was not blocked on a full pipe"
    );
}

#[tokio::test]
async fn the_blocking_variant_works_inside_a_runtime() {
    let out = Program::new("echo").arg("hi").run_blocking().unwrap();
    assert_eq!(out.stdout, b"hi\n");
    let err = Program::new("sleep")
        .arg("30")
        .timeout(Duration::from_millis(200))
        .run_blocking()
        .unwrap_err();
    assert!(matches!(err, ProcessError::Timeout { .. }), "{err}");
}

#[tokio::test]
async fn a_service_logs_runs_and_stops_with_sigterm() {
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("svc.log");
    let pid_file = d.path().join("pids");
    let mut svc = Program::new("sh")
        .arg("-c")
        .arg(format!(
            "echo 'service up'; echo 'on stderr' >&2; sleep 30 & echo $$ $! > '{}'; wait",
            pid_file.display()
        ))
        .start(&log)
        .unwrap();
    let pids = read_pids(&pid_file);
    assert_eq!(svc.pid(), Some(pids[0] as u32));
    assert!(svc.is_running());
    assert_eq!(svc.log_path(), log);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("service up") && text.contains("on stderr"),
        "{text}"
    );
    assert!(svc.log_tail(100).contains("on stderr"));

    let st = svc.stop(Duration::from_secs(10)).await.unwrap();
    assert_eq!(st, ExitState::Signal(15), "ended by SIGTERM");
    assert!(!svc.is_running());
    assert_eq!(svc.stop(Duration::from_secs(1)).await.unwrap(), st);
    assert_eq!(alive_after_wait(&pids), Vec::<i32>::new());
}

#[tokio::test]
async fn a_service_that_ignores_sigterm_is_killed_after_the_grace() {
    let d = tempfile::tempdir().unwrap();
    let pid_file = d.path().join("pids");
    // Ignored signals stay ignored across exec: the sleep ignores it too.
    let mut svc = Program::new("sh")
        .arg("-c")
        .arg(format!(
            "trap '' TERM; sleep 30 & echo $$ $! > '{}'; wait",
            pid_file.display()
        ))
        .start(&d.path().join("log"))
        .unwrap();
    let pids = read_pids(&pid_file);
    let st = svc.stop(Duration::from_millis(300)).await.unwrap();
    assert_eq!(st, ExitState::Signal(9));
    assert_eq!(alive_after_wait(&pids), Vec::<i32>::new());
}

#[test]
fn dropping_a_service_kills_its_group() {
    let d = tempfile::tempdir().unwrap();
    let pid_file = d.path().join("pids");
    let svc = Program::new("sh")
        .arg("-c")
        .arg(format!(
            "trap '' TERM; sleep 30 & echo $$ $! > '{}'; wait",
            pid_file.display()
        ))
        .start(&d.path().join("log"))
        .unwrap();
    let pids = read_pids(&pid_file);
    drop(svc);
    assert_eq!(alive_after_wait(&pids), Vec::<i32>::new());
}

#[test]
fn a_service_that_exits_is_seen_as_ended() {
    let d = tempfile::tempdir().unwrap();
    let mut svc = Program::new("sh")
        .args(["-c", "echo bye; exit 4"])
        .start(&d.path().join("log"))
        .unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    let st = loop {
        if let Some(st) = svc.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < until, "never exited");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(st, ExitState::Code(4));
    assert!(!svc.is_running());
    assert_eq!(svc.stop_blocking(Duration::from_secs(1)).unwrap(), st);
}
