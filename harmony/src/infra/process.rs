//! The one way Harmony starts a program: every external tool (bsdtar,
//! xorriso, ignition-validate, openshift-install; later dnsmasq, Caddy,
//! HAProxy, OVS, QEMU) goes through [`Program`].
//!
//! - A child always leads its own process group. The whole group (the
//!   program and anything it started) is killed with SIGKILL when the time
//!   limit passes, when the awaiting future is dropped (cancelled) and when a
//!   [`Service`] guard is dropped. When a one-shot program exits, whatever it
//!   left running in its group is killed too, so no straggler holds its
//!   pipes open.
//! - stdout and stderr are captured up to a bound; the rest is read and
//!   dropped (the flags in [`Output`] say so).
//! - A failure is one [`ProcessError`] carrying the whole command line
//!   (shell-quoted, for people), the exit status or signal, and the end of
//!   stderr (trimmed, bounded, control characters replaced), unless the
//!   caller marked the output as secret ([`Program::withhold_output`]). A
//!   program that is not installed is [`ProcessError::NotFound`], naming it.
//! - Long-running services are started with [`Program::start`]: the
//!   [`Service`] guard owns the process group, sends its output to a log
//!   file, can tell whether it still runs, and stops it with SIGTERM then
//!   SIGKILL after a grace period.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// Time limit of a one-shot program unless [`Program::timeout`] says
/// otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Bytes kept of each of stdout and stderr unless
/// [`Program::max_output`] says otherwise.
pub const DEFAULT_MAX_OUTPUT: usize = 1 << 20;
/// Characters of stderr put in an error (its end: where tools say why).
const SHOWN_STDERR: usize = 4000;
/// Characters of a command line put in an error.
const SHOWN_COMMAND: usize = 2000;
/// How long to wait for pipes to close after the group was killed.
const DRAIN_AFTER_KILL: Duration = Duration::from_secs(5);
/// How long a drop waits to reap a killed service.
const REAP_ON_DROP: Duration = Duration::from_secs(2);
/// How often a stop looks whether the program has ended.
const STOP_POLL: Duration = Duration::from_millis(20);

/// Where a [`Service::stop`] is: SIGTERM sent, when SIGKILL is due, and
/// when to give up waiting after it.
#[derive(Debug)]
struct StopClock {
    term_sent: bool,
    kill_at: Instant,
    give_up: Option<Instant>,
}

impl StopClock {
    fn new(grace: Duration) -> Self {
        Self {
            term_sent: false,
            kill_at: Instant::now() + grace,
            give_up: None,
        }
    }
}

/// How a program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitState {
    /// It exited with this code.
    Code(i32),
    /// A signal ended it.
    Signal(i32),
}

impl ExitState {
    fn from_status(s: ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        match (s.code(), s.signal()) {
            (Some(c), _) => ExitState::Code(c),
            (None, Some(sig)) => ExitState::Signal(sig),
            // Neither: only for stopped/continued children, which wait()
            // does not report. Treat as a failure code.
            (None, None) => ExitState::Code(-1),
        }
    }

    pub fn success(self) -> bool {
        self == ExitState::Code(0)
    }
}

impl fmt::Display for ExitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitState::Code(c) => write!(f, "exit code {c}"),
            ExitState::Signal(s) => match Signal::try_from(*s) {
                Ok(sig) => write!(f, "killed by signal {s} ({})", sig.as_str()),
                Err(_) => write!(f, "killed by signal {s}"),
            },
        }
    }
}

/// What a finished program printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub status: ExitState,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// stdout was longer than the bound; `stdout` holds its beginning.
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
}

/// Why a program could not be run or did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("{program}: program not found (not installed, or not on PATH)")]
    NotFound { program: String },
    #[error("could not start `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "`{command}` did not finish within {}; its process group was killed{}",
        humantime::format_duration(*after),
        shown(stderr)
    )]
    Timeout {
        command: String,
        after: Duration,
        stderr: String,
    },
    #[error("`{command}` failed ({status}){}", shown(stderr))]
    Failed {
        command: String,
        status: ExitState,
        stderr: String,
    },
    #[error("`{command}`: {source}")]
    Io {
        command: String,
        #[source]
        source: io::Error,
    },
    #[error("{}: cannot open the log file: {source}", path.display())]
    LogFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl ProcessError {
    /// The exit state, for [`ProcessError::Failed`].
    pub fn status(&self) -> Option<ExitState> {
        match self {
            ProcessError::Failed { status, .. } => Some(*status),
            _ => None,
        }
    }
}

fn shown(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!("; stderr: {stderr}")
    }
}

/// A program with its arguments, environment, working directory, input
/// and limits. Built once, run any number of times.
#[derive(Clone)]
pub struct Program {
    program: OsString,
    args: Vec<OsString>,
    /// `None` removes the variable.
    env: Vec<(OsString, Option<OsString>)>,
    cwd: Option<PathBuf>,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
    max_output: usize,
    withhold_output: bool,
}

impl fmt::Debug for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Input and environment values may be secrets: sizes and names only.
        f.debug_struct("Program")
            .field("command", &self.command_line())
            .field("env", &self.env.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("cwd", &self.cwd)
            .field("stdin_len", &self.stdin.as_ref().map(Vec::len))
            .field("timeout", &self.timeout)
            .field("max_output", &self.max_output)
            .field("withhold_output", &self.withhold_output)
            .finish()
    }
}

impl Program {
    /// `program` is a path or a name looked up on `PATH`.
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Self {
            program: program.as_ref().to_os_string(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            stdin: None,
            timeout: DEFAULT_TIMEOUT,
            max_output: DEFAULT_MAX_OUTPUT,
            withhold_output: false,
        }
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_os_string());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// Sets a variable (the rest of the environment is inherited).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env.push((
            key.as_ref().to_os_string(),
            Some(value.as_ref().to_os_string()),
        ));
        self
    }

    /// Removes an inherited variable.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().to_os_string(), None));
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Bytes written to the program's stdin (otherwise stdin is
    /// `/dev/null`). One-shot runs only.
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// Time limit of a one-shot run; the group is killed when it passes.
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = limit;
        self
    }

    /// Bytes kept of each of stdout and stderr.
    pub fn max_output(mut self, bytes: usize) -> Self {
        self.max_output = bytes;
        self
    }

    /// The output may carry secrets: errors never quote it.
    pub fn withhold_output(mut self) -> Self {
        self.withhold_output = true;
        self
    }

    /// The program as given, for messages.
    pub fn program_name(&self) -> String {
        self.program.to_string_lossy().into_owned()
    }

    /// The command line, shell-quoted, for people (bounded).
    pub fn command_line(&self) -> String {
        let mut s = shell_quote(&self.program);
        for a in &self.args {
            s.push(' ');
            s.push_str(&shell_quote(a));
        }
        if s.chars().count() > SHOWN_COMMAND {
            let mut cut: String = s.chars().take(SHOWN_COMMAND).collect();
            cut.push('…');
            return cut;
        }
        s
    }

    /// The command in its own process group (what every runner here
    /// owns and kills as a group).
    fn std_command(&self) -> std::process::Command {
        use std::os::unix::process::CommandExt;
        let mut c = self.command_in_this_group();
        c.process_group(0);
        c
    }

    /// Program, arguments, environment and working directory, in this
    /// process's group.
    fn command_in_this_group(&self) -> std::process::Command {
        let mut c = std::process::Command::new(&self.program);
        c.args(&self.args);
        for (k, v) in &self.env {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        if let Some(d) = &self.cwd {
            c.current_dir(d);
        }
        c
    }

    fn spawn_error(&self, source: io::Error) -> ProcessError {
        if source.kind() == io::ErrorKind::NotFound {
            // ENOENT from exec is also what a missing working directory gives.
            if let Some(d) = self.cwd.as_ref().filter(|d| !d.is_dir()) {
                return ProcessError::Spawn {
                    command: self.command_line(),
                    source: io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("working directory {} does not exist", d.display()),
                    ),
                };
            }
            return ProcessError::NotFound {
                program: self.program_name(),
            };
        }
        ProcessError::Spawn {
            command: self.command_line(),
            source,
        }
    }

    fn io_error(&self, source: io::Error) -> ProcessError {
        ProcessError::Io {
            command: self.command_line(),
            source,
        }
    }

    fn stderr_for_error(&self, stderr: &[u8], truncated: bool) -> String {
        if self.withhold_output {
            return "(withheld: it may carry secrets)".into();
        }
        shown_stderr(stderr, truncated)
    }

    /// Runs to completion; any exit status is `Ok`. Errors: not found,
    /// could not start, timeout (group killed), I/O on the pipes.
    pub async fn output(&self) -> Result<Output, ProcessError> {
        let mut cmd = tokio::process::Command::from(self.std_command());
        cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
        let mut child = spawn_retrying_async(|| cmd.spawn())
            .await
            .map_err(|e| self.spawn_error(e))?;
        // Armed before anything can fail or be cancelled.
        let group = GroupGuard::new(child.id());
        tracing::debug!(command = %self.command_line(), pid = ?child.id(), "started");

        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let input = self.stdin.clone().unwrap_or_default();
        let max = self.max_output;
        let group_ref = &group;
        let work = async {
            let feed = async move {
                if let Some(mut w) = stdin {
                    // A program may exit without reading all of it.
                    match w.write_all(&input).await {
                        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => return Err(e),
                        _ => {}
                    }
                    drop(w);
                }
                Ok(())
            };
            let exited = async {
                let status = child.wait().await;
                // Stragglers left in the group would hold the pipes open.
                group_ref.kill();
                status
            };
            let both = async { tokio::join!(exited, feed) };
            tokio::join!(both, read_capped(stdout, max), read_capped(stderr, max))
        };
        tokio::pin!(work);
        let outcome = tokio::select! {
            r = &mut work => Ok(r),
            () = tokio::time::sleep(self.timeout) => Err(()),
        };
        let ((status, fed), out, err) = match outcome {
            Ok(r) => r,
            Err(()) => {
                group.kill();
                // The group is dead, so the pipes close; bounded anyway in
                // case a process escaped the group and holds them.
                let stderr = match tokio::time::timeout(DRAIN_AFTER_KILL, &mut work).await {
                    Ok((_, _, err)) => {
                        // Reaped, and the group killed again: done with it.
                        group.disarm();
                        err.map(|e| self.stderr_for_error(&e.0, e.1))
                            .unwrap_or_default()
                    }
                    // Not reaped yet: the guard and kill_on_drop act on
                    // return.
                    Err(_) => String::new(),
                };
                tracing::warn!(command = %self.command_line(), after = ?self.timeout, "timed out; process group killed");
                return Err(ProcessError::Timeout {
                    command: self.command_line(),
                    after: self.timeout,
                    stderr,
                });
            }
        };
        group.disarm();
        let status = status.map_err(|e| self.io_error(e))?;
        fed.map_err(|e| self.io_error(e))?;
        let (stdout, stdout_truncated) = out.map_err(|e| self.io_error(e))?;
        let (stderr, stderr_truncated) = err.map_err(|e| self.io_error(e))?;
        Ok(Output {
            status: ExitState::from_status(status),
            stdout,
            stderr,
            stdout_truncated,
            stderr_truncated,
        })
    }

    /// [`Program::output`], and a non-zero exit or a signal is
    /// [`ProcessError::Failed`] with the end of stderr.
    pub async fn run(&self) -> Result<Output, ProcessError> {
        let out = self.output().await?;
        self.check(out)
    }

    fn check(&self, out: Output) -> Result<Output, ProcessError> {
        if out.status.success() {
            return Ok(out);
        }
        Err(ProcessError::Failed {
            command: self.command_line(),
            status: out.status,
            stderr: self.stderr_for_error(&out.stderr, out.stderr_truncated),
        })
    }

    /// [`Program::output`] for synchronous callers: runs on a thread of its
    /// own (with a small runtime), so it works inside or outside an async
    /// runtime. Blocks the caller until the program ends or times out.
    pub fn output_blocking(&self) -> Result<Output, ProcessError> {
        let this = self.clone();
        let handle = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| this.io_error(e))?;
            rt.block_on(this.output())
        });
        handle
            .join()
            .unwrap_or_else(|_| Err(self.io_error(io::Error::other("runner thread panicked"))))
    }

    /// [`Program::run`] for synchronous callers (see
    /// [`Program::output_blocking`]).
    pub fn run_blocking(&self) -> Result<Output, ProcessError> {
        let out = self.output_blocking()?;
        self.check(out)
    }

    /// Starts a long-running service: stdin is `/dev/null`, stdout and
    /// stderr are appended to `log`. The time limit does not apply; the
    /// returned guard owns the process group (see [`Service`]).
    pub fn start(&self, log: &Path) -> Result<Service, ProcessError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|source| ProcessError::LogFile {
                path: log.to_path_buf(),
                source,
            })?;
        let err_file = file.try_clone().map_err(|source| ProcessError::LogFile {
            path: log.to_path_buf(),
            source,
        })?;
        let mut cmd = self.std_command();
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(err_file));
        let child = spawn_retrying(|| cmd.spawn()).map_err(|e| self.spawn_error(e))?;
        tracing::info!(command = %self.command_line(), pid = child.id(), log = %log.display(), "service started");
        Ok(Service {
            command: self.command_line(),
            pgid: pid_of(child.id()),
            child: Some(child),
            ended: None,
            log: log.to_path_buf(),
        })
    }
}

impl Program {
    /// Starts an interactive program on this process's terminal: stdio
    /// inherited and the same process group (the terminal's foreground
    /// group, so it may read the keyboard). [`Foreground::stop`] ends it.
    pub fn start_foreground(&self) -> Result<Foreground, ProcessError> {
        let mut cmd = self.command_in_this_group();
        let child = spawn_retrying(|| cmd.spawn()).map_err(|e| self.spawn_error(e))?;
        Ok(Foreground { child })
    }
}

/// An interactive program started by [`Program::start_foreground`];
/// dropping it ends it too.
#[derive(Debug)]
pub struct Foreground {
    child: std::process::Child,
}

impl Foreground {
    /// Whether it has ended (reaped if so).
    pub fn has_exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then SIGKILL after `grace`; reaped.
    pub async fn stop(&mut self, grace: Duration) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        if let Some(p) = pid_of(self.child.id()) {
            let _ = nix::sys::signal::kill(p, Signal::SIGTERM);
        }
        let start = std::time::Instant::now();
        while start.elapsed() < grace {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            tokio::time::sleep(STOP_POLL).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Foreground {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// How many times a spawn refused with ETXTBSY is tried; the pauses
/// between tries double from [`TEXT_BUSY_FIRST_PAUSE`] (2.5 s in all).
const TEXT_BUSY_TRIES: u32 = 9;
const TEXT_BUSY_FIRST_PAUSE: Duration = Duration::from_millis(10);

/// `spawn`, tried again while the kernel refuses to execute a file that is
/// still open for writing (ETXTBSY). A program just written (a script, a
/// binary an operator copied) stays "busy" while any process holds a
/// writable descriptor to it, and another thread's `fork` briefly copies
/// ours into a child until that child's `exec` closes it.
fn spawn_retrying<T>(mut spawn: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let mut tries = 1;
    loop {
        match spawn() {
            Err(e) if text_busy(&e, tries) => {
                std::thread::sleep(busy_pause(tries));
                tries += 1;
            }
            other => return other,
        }
    }
}

/// [`spawn_retrying`] for async callers: the pauses do not hold a worker.
async fn spawn_retrying_async<T>(mut spawn: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let mut tries = 1;
    loop {
        match spawn() {
            Err(e) if text_busy(&e, tries) => {
                tokio::time::sleep(busy_pause(tries)).await;
                tries += 1;
            }
            other => return other,
        }
    }
}

/// Whether try `tries` failed with ETXTBSY and another is allowed.
fn text_busy(e: &io::Error, tries: u32) -> bool {
    let busy = e.raw_os_error() == Some(nix::errno::Errno::ETXTBSY as i32);
    if busy {
        tracing::debug!(tries, "executable busy (being written): trying again");
    }
    busy && tries < TEXT_BUSY_TRIES
}

/// The pause after try `tries` (1-based): doubling from the first.
fn busy_pause(tries: u32) -> Duration {
    TEXT_BUSY_FIRST_PAUSE * 2u32.saturating_pow(tries - 1)
}

fn pid_of(id: u32) -> Option<Pid> {
    i32::try_from(id).ok().filter(|p| *p > 0).map(Pid::from_raw)
}

/// Kills a child's process group on drop unless disarmed.
struct GroupGuard {
    pgid: Option<Pid>,
    armed: AtomicBool,
}

impl GroupGuard {
    fn new(id: Option<u32>) -> Self {
        Self {
            pgid: id.and_then(pid_of),
            armed: AtomicBool::new(true),
        }
    }

    /// SIGKILL to the whole group (ESRCH, an empty group, is fine).
    fn kill(&self) {
        if let Some(p) = self.pgid
            && self.armed.load(Ordering::Acquire)
        {
            let _ = killpg(p, Signal::SIGKILL);
        }
    }

    /// The group was killed after the leader was reaped: nothing to do on
    /// drop (and its number may be reused).
    fn disarm(&self) {
        self.armed.store(false, Ordering::Release);
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Reads `r` to its end, keeping the first `max` bytes.
async fn read_capped<R: AsyncRead + Unpin>(
    r: Option<R>,
    max: usize,
) -> io::Result<(Vec<u8>, bool)> {
    let Some(mut r) = r else {
        return Ok((Vec::new(), false));
    };
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Ok((kept, truncated));
        }
        let room = max.saturating_sub(kept.len());
        if n > room {
            truncated = true;
        }
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
}

/// The end of stderr as text for an error: trimmed, at most
/// [`SHOWN_STDERR`] characters, control characters (except newline and
/// tab) and bidi controls replaced by `_`.
fn shown_stderr(bytes: &[u8], truncated: bool) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    let n = text.chars().count();
    let mut out = String::new();
    if n > SHOWN_STDERR || truncated {
        out.push('…');
    }
    out.extend(
        text.chars()
            .skip(n.saturating_sub(SHOWN_STDERR))
            .map(|c| match c {
                '\n' | '\t' => c,
                '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => '_',
                c if c.is_control() => '_',
                c => c,
            }),
    );
    out
}

/// `s` as one shell word: as is when made of safe characters, otherwise in
/// single quotes. Non-UTF-8 bytes are shown lossily.
pub fn shell_quote(s: &OsStr) -> String {
    let s = s.to_string_lossy();
    let safe = |c: char| c.is_ascii_alphanumeric() || "_-./=:,+@%".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        return s.into_owned();
    }
    let body: String = s
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    format!("'{}'", body.replace('\'', r"'\''"))
}

/// A running service started by [`Program::start`]. Owns its process
/// group: dropping the guard kills the group with SIGKILL and reaps the
/// program; [`Service::stop`] asks politely first.
pub struct Service {
    command: String,
    pgid: Option<Pid>,
    child: Option<std::process::Child>,
    ended: Option<ExitState>,
    log: PathBuf,
}

impl fmt::Debug for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Service")
            .field("command", &self.command)
            .field("pid", &self.pgid)
            .field("ended", &self.ended)
            .field("log", &self.log)
            .finish()
    }
}

impl Service {
    /// The program's pid, which is also its process group id.
    pub fn pid(&self) -> Option<u32> {
        self.pgid.and_then(|p| u32::try_from(p.as_raw()).ok())
    }

    /// Where stdout and stderr go.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    pub fn command_line(&self) -> &str {
        &self.command
    }

    /// `None` while it runs; how it ended once it has (reaped).
    pub fn try_wait(&mut self) -> Result<Option<ExitState>, ProcessError> {
        if let Some(e) = self.ended {
            return Ok(Some(e));
        }
        let Some(child) = self.child.as_mut() else {
            return Ok(self.ended);
        };
        match child.try_wait() {
            Ok(None) => Ok(None),
            Ok(Some(st)) => {
                let st = ExitState::from_status(st);
                self.ended = Some(st);
                self.child = None;
                // Whatever it left behind in its group goes with it.
                self.kill_group(Signal::SIGKILL);
                Ok(Some(st))
            }
            Err(source) => Err(ProcessError::Io {
                command: self.command.clone(),
                source,
            }),
        }
    }

    /// Whether the program still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.try_wait(), Ok(None))
    }

    /// The end of the log (at most `max_chars` characters, control
    /// characters replaced), for error messages.
    pub fn log_tail(&self, max_chars: usize) -> String {
        let text = std::fs::read(&self.log).unwrap_or_default();
        let shown = shown_stderr(&text, false);
        let n = shown.chars().count();
        shown.chars().skip(n.saturating_sub(max_chars)).collect()
    }

    fn kill_group(&self, sig: Signal) {
        if let Some(p) = self.pgid {
            let _ = killpg(p, sig);
        }
    }

    /// SIGTERM to the group, then SIGKILL to the group once `grace` has
    /// passed; returns how the program ended. Calling it again returns the
    /// same answer.
    pub async fn stop(&mut self, grace: Duration) -> Result<ExitState, ProcessError> {
        let mut clock = StopClock::new(grace);
        loop {
            if let Some(st) = self.stop_step(&mut clock)? {
                return Ok(st);
            }
            tokio::time::sleep(STOP_POLL).await;
        }
    }

    /// [`Service::stop`] for synchronous callers (sleeps the thread).
    pub fn stop_blocking(&mut self, grace: Duration) -> Result<ExitState, ProcessError> {
        let mut clock = StopClock::new(grace);
        loop {
            if let Some(st) = self.stop_step(&mut clock)? {
                return Ok(st);
            }
            std::thread::sleep(STOP_POLL);
        }
    }

    /// One poll of a stop: how it ended, or `None` while it runs; sends
    /// SIGTERM on the first poll and SIGKILL once the grace has passed;
    /// an error once even SIGKILL has not ended it in time.
    fn stop_step(&mut self, clock: &mut StopClock) -> Result<Option<ExitState>, ProcessError> {
        if let Some(st) = self.try_wait()? {
            return Ok(Some(st));
        }
        let now = Instant::now();
        if !clock.term_sent {
            self.kill_group(Signal::SIGTERM);
            clock.term_sent = true;
        } else if now >= clock.kill_at && clock.give_up.is_none() {
            self.kill_group(Signal::SIGKILL);
            clock.give_up = Some(now + REAP_ON_DROP);
        } else if clock.give_up.is_some_and(|g| now >= g) {
            return Err(self.unreaped());
        }
        Ok(None)
    }

    fn unreaped(&self) -> ProcessError {
        ProcessError::Io {
            command: self.command.clone(),
            source: io::Error::other("still running after SIGKILL (uninterruptible?)"),
        }
    }

    /// Waits (bounded) for a killed program to be reaped.
    fn reap_killed(&mut self) -> Option<ExitState> {
        let until = Instant::now() + REAP_ON_DROP;
        loop {
            match self.try_wait() {
                Ok(Some(st)) => return Some(st),
                Ok(None) if Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                _ => return None,
            }
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.kill_group(Signal::SIGKILL);
            if self.reap_killed().is_none() {
                tracing::warn!(command = %self.command, "service not reaped after SIGKILL");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_still_open_for_writing_starts_once_its_writer_closes() {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("busy.sh");
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(b"#!/bin/sh\necho started\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        // Held open for writing, the kernel refuses to run it...
        let busy = std::process::Command::new(&path).output().unwrap_err();
        assert_eq!(busy.raw_os_error(), Some(nix::errno::Errno::ETXTBSY as i32));
        // ... until the writer closes it, a moment after the start.
        let closer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            drop(f);
        });
        let out = Program::new(path.to_str().unwrap())
            .timeout(Duration::from_secs(10))
            .run_blocking()
            .unwrap();
        closer.join().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "started");
    }

    #[test]
    fn quoting_is_shell_safe() {
        assert_eq!(shell_quote(OsStr::new("a/b-c.d")), "a/b-c.d");
        assert_eq!(shell_quote(OsStr::new("")), "''");
        assert_eq!(shell_quote(OsStr::new("a b")), "'a b'");
        assert_eq!(shell_quote(OsStr::new("it's")), r"'it'\''s'");
        assert_eq!(shell_quote(OsStr::new("x\ny")), "'x?y'");
        let p = Program::new("tar").args(["-x", "my file", "$HOME"]);
        assert_eq!(p.command_line(), "tar -x 'my file' '$HOME'");
    }

    #[test]
    fn stderr_is_trimmed_bounded_and_cleaned() {
        assert_eq!(shown_stderr(b"  oops\n\n", false), "oops");
        assert_eq!(shown_stderr(b"a\x1b[31mb\nc", false), "a_[31mb\nc");
        let long = "x".repeat(SHOWN_STDERR + 10) + "END";
        let s = shown_stderr(long.as_bytes(), false);
        assert!(s.starts_with('…') && s.ends_with("END"));
        assert_eq!(s.chars().count(), SHOWN_STDERR + 1);
    }

    #[test]
    fn exit_states_read_well() {
        assert_eq!(ExitState::Code(2).to_string(), "exit code 2");
        assert_eq!(
            ExitState::Signal(9).to_string(),
            "killed by signal 9 (SIGKILL)"
        );
    }
}
