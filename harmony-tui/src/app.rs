//! The application state and its only mutator, [`App::update`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crossterm::event::KeyEvent;
use harmony::domain::roles::format_gib;
use harmony::domain::{
    Event, EventBus, HostId, HostRecord, Hostname, InventoryRepository, Role, RolePlan,
    RoleProblem, default_hostname, fitness_messages,
};

use crate::keymap::{self, Command, PromptCommand};

/// Lines kept in the event log.
pub const LOG_CAPACITY: usize = 500;

/// Everything that can happen to the app; all of it arrives on one channel.
#[derive(Debug)]
pub enum Msg {
    Key(KeyEvent),
    /// A harmony event from the bus.
    Event(Event),
    /// Periodic: reload the hosts (another process may write the store).
    Tick,
    /// The result of an [`Action::Reload`].
    HostsReloaded(Result<Vec<HostRecord>, String>),
    /// The terminal's new size.
    Resize(u16, u16),
}

/// Side effects `update` asks the main loop to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    /// Read all hosts from the store (off the UI thread) and send
    /// [`Msg::HostsReloaded`].
    Reload,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Hosts,
    Details,
    Log,
}

/// The open host-name prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub host: HostId,
    pub role: Role,
    pub input: String,
    pub error: Option<String>,
}

/// One host, with its table cells computed once per reload (not per frame).
#[derive(Debug, Clone)]
pub struct HostRow {
    pub record: HostRecord,
    /// hostname/IP, vendor/product, threads, memory, disks, NICs, role, phase.
    pub cells: [String; 8],
    /// Why the host is unfit for its role; empty when fit or unassigned.
    pub problems: Vec<String>,
}

/// Removes control characters: agent strings are untrusted and end up on a terminal.
pub fn clean(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

impl HostRow {
    pub fn new(record: HostRecord) -> Self {
        let s = &record.summary;
        let name = match &record.hostname {
            Some(h) => format!("{h} {}", record.ip),
            None => record.ip.to_string(),
        };
        let vp = clean(&format!(
            "{} {}",
            s.vendor.as_deref().unwrap_or("?"),
            s.product.as_deref().unwrap_or("?")
        ));
        let problems = fitness_messages(&record.inventory, record.role);
        let role = match record.role {
            Some(r) if !problems.is_empty() => format!("! {r}"),
            Some(r) => r.to_string(),
            None => "-".into(),
        };
        let cells = [
            name,
            vp,
            s.cpu_threads.map_or_else(|| "?".into(), |t| t.to_string()),
            s.memory_bytes.map_or_else(|| "?".into(), size),
            format!("{} / {}", s.disk_count, size(s.disk_bytes)),
            s.nic_count.to_string(),
            role,
            record.phase.to_string(),
        ];
        Self {
            record,
            cells,
            problems,
        }
    }

    pub fn unfit(&self) -> bool {
        !self.problems.is_empty()
    }
}

/// `894.3 GiB`, or `3.5 TiB` from 1 TiB up.
pub fn size(bytes: u64) -> String {
    const TIB: u64 = 1 << 40;
    if bytes >= TIB {
        #[allow(clippy::cast_precision_loss)]
        let t = bytes as f64 / TIB as f64;
        format!("{t:.1} TiB")
    } else {
        format_gib(bytes)
    }
}

/// `HH:MM:SS` (UTC) of now.
fn clock() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!(
        "{:02}:{:02}:{:02}",
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60
    )
}

/// One log line for a harmony event.
pub fn describe(event: &Event) -> String {
    match event {
        Event::ScoreStarted { score } => format!("score {score} started"),
        Event::ScoreFinished { score, result } => match result {
            Ok(o) => format!("score {score} finished: {o:?}"),
            Err(e) => format!("score {score} failed: {}", clean(e)),
        },
        Event::HostDiscovered { host, ip } => format!("host discovered: {host} at {ip}"),
        Event::HostUpdated {
            host,
            ip,
            ip_changed,
        } => {
            if *ip_changed {
                format!("host updated: {host} moved to {ip}")
            } else {
                format!("host updated: {host} at {ip}")
            }
        }
        Event::HostLost { host } => format!("host lost: {host}"),
        Event::HostConflict { ip, mac, existing } => {
            format!("conflict: {ip} claims {mac}, owned by {existing}")
        }
        Event::PeerRejected { ip, reason } => format!("rejected {ip}: {}", clean(reason)),
        Event::HostPhaseChanged { host, from, to } => format!("host {host}: {from} -> {to}"),
        Event::Progress { task, done, total } => format!("{task}: {done}/{total}"),
        Event::ScanCompleted {
            range,
            found,
            rejected,
            elapsed_ms,
        } => format!("scan of {range}: {found} agent(s), {rejected} rejected, {elapsed_ms} ms"),
        Event::ScanFailed { range, reason } => format!("scan of {range} failed: {}", clean(reason)),
    }
}

/// Whether an event may have changed the stored hosts.
fn changes_hosts(event: &Event) -> bool {
    matches!(
        event,
        Event::HostDiscovered { .. }
            | Event::HostUpdated { .. }
            | Event::HostLost { .. }
            | Event::HostPhaseChanged { .. }
            | Event::ScoreFinished { .. }
    )
}

/// The whole state of the TUI.
#[derive(Debug)]
pub struct App {
    repo: Arc<dyn InventoryRepository>,
    bus: EventBus,
    rows: Vec<HostRow>,
    selected: usize,
    offset: usize,
    /// Table rows visible at the last known terminal size.
    viewport: usize,
    pane: Pane,
    prompt: Option<Prompt>,
    log: VecDeque<String>,
    status: Option<String>,
    plan: RolePlan,
    /// Task of the progress line at the end of the log, if the last line is one.
    last_progress: Option<String>,
    plan_problems: Vec<RoleProblem>,
    details_scroll: u16,
    log_scroll: usize,
    reloading: bool,
    reload_pending: bool,
}

impl App {
    pub fn new(repo: Arc<dyn InventoryRepository>, bus: EventBus) -> Self {
        let plan = RolePlan::default();
        let last_progress = None;
        Self {
            repo,
            bus,
            rows: Vec::new(),
            selected: 0,
            offset: 0,
            viewport: 20,
            pane: Pane::Hosts,
            prompt: None,
            log: VecDeque::new(),
            status: None,
            plan_problems: plan.problems(),
            plan,
            last_progress,
            details_scroll: 0,
            log_scroll: 0,
            reloading: false,
            reload_pending: false,
        }
    }

    // --- read access for the view -------------------------------------

    pub fn rows(&self) -> &[HostRow] {
        &self.rows
    }

    pub fn selected_index(&self) -> usize {
        self.selected
    }

    pub fn selected(&self) -> Option<&HostRow> {
        self.rows.get(self.selected)
    }

    pub fn offset(&self) -> usize {
        self.offset
    }

    pub fn pane(&self) -> Pane {
        self.pane
    }

    pub fn prompt(&self) -> Option<&Prompt> {
        self.prompt.as_ref()
    }

    pub fn log(&self) -> &VecDeque<String> {
        &self.log
    }

    pub fn log_scroll(&self) -> usize {
        self.log_scroll
    }

    pub fn status(&self) -> Option<&str> {
        self.status.as_deref()
    }

    pub fn plan(&self) -> &RolePlan {
        &self.plan
    }

    pub fn plan_problems(&self) -> &[RoleProblem] {
        &self.plan_problems
    }

    pub fn details_scroll(&self) -> u16 {
        self.details_scroll
    }

    // --- changes --------------------------------------------------------

    /// Appends a line (with the time) to the event log.
    pub fn log_line(&mut self, line: impl AsRef<str>) {
        if self.log.len() == LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log
            .push_back(format!("{} {}", clock(), clean(line.as_ref())));
    }

    /// Replaces the hosts (keeps the selection on the same host).
    pub fn set_hosts(&mut self, hosts: Vec<HostRecord>) {
        let keep = self.selected().map(|r| r.record.id.clone());
        self.plan = RolePlan::new(hosts.iter().map(|h| (h.id.clone(), h.role)));
        self.plan_problems = self.plan.problems();
        self.rows = hosts.into_iter().map(HostRow::new).collect();
        self.select_id(keep.as_ref());
    }

    /// Reads the hosts from the store now (tests, and the first frame).
    pub fn reload_blocking(&mut self) -> Option<Action> {
        let hosts = self.repo.hosts().map_err(|e| e.to_string());
        self.reloading = true;
        self.update(Msg::HostsReloaded(hosts))
    }

    pub fn update(&mut self, msg: Msg) -> Option<Action> {
        match msg {
            Msg::Key(key) => self.on_key(key),
            Msg::Event(event) => {
                // Progress of one task updates its line instead of adding one.
                let progress_of = |e: &Event| match e {
                    Event::Progress { task, .. } => Some(task.clone()),
                    _ => None,
                };
                if let Some(task) = progress_of(&event)
                    && self.last_progress.as_deref() == Some(task.as_str())
                {
                    self.log.pop_back();
                }
                self.last_progress = progress_of(&event);
                self.log_line(describe(&event));
                if changes_hosts(&event) {
                    self.request_reload()
                } else {
                    None
                }
            }
            Msg::Tick => self.request_reload(),
            Msg::HostsReloaded(result) => {
                self.reloading = false;
                match result {
                    Ok(hosts) => self.set_hosts(hosts),
                    Err(e) => self.log_line(format!("reload failed: {e}")),
                }
                if std::mem::take(&mut self.reload_pending) {
                    self.request_reload()
                } else {
                    None
                }
            }
            Msg::Resize(_, h) => {
                self.viewport = usize::from(crate::ui::table_rows_for_height(h)).max(1);
                self.scroll_to_selected();
                None
            }
        }
    }

    /// At most one reload in flight; events arriving meanwhile coalesce
    /// into one more.
    pub fn request_reload(&mut self) -> Option<Action> {
        if self.reloading {
            self.reload_pending = true;
            None
        } else {
            self.reloading = true;
            Some(Action::Reload)
        }
    }

    /// The hosts-table offset that keeps `selected` inside `height` rows.
    pub fn offset_for(&self, height: usize) -> usize {
        let height = height.max(1);
        let mut offset = self.offset.min(self.rows.len().saturating_sub(1));
        if self.selected < offset {
            offset = self.selected;
        } else if self.selected >= offset + height {
            offset = self.selected + 1 - height;
        }
        offset
    }

    fn scroll_to_selected(&mut self) {
        self.offset = self.offset_for(self.viewport);
    }

    fn select_id(&mut self, id: Option<&HostId>) {
        let found = id.and_then(|id| self.rows.iter().position(|r| &r.record.id == id));
        self.selected = found.unwrap_or(self.selected);
        self.selected = self.selected.min(self.rows.len().saturating_sub(1));
        self.scroll_to_selected();
    }

    fn move_selection(&mut self, delta: isize) {
        if self.rows.is_empty() {
            return;
        }
        let last = self.rows.len() - 1;
        self.selected = self.selected.saturating_add_signed(delta).min(last);
        self.details_scroll = 0;
        self.scroll_to_selected();
    }

    fn on_key(&mut self, key: KeyEvent) -> Option<Action> {
        if self.prompt.is_some() {
            if let Some(cmd) = keymap::prompt_command(key) {
                self.on_prompt(cmd);
            }
            return None;
        }
        let cmd = keymap::command(key)?;
        let page = isize::try_from(self.viewport).unwrap_or(20);
        match cmd {
            Command::Quit => return Some(Action::Quit),
            Command::NextPane => {
                self.pane = match self.pane {
                    Pane::Hosts => Pane::Details,
                    Pane::Details => Pane::Log,
                    Pane::Log => Pane::Hosts,
                };
            }
            Command::Up | Command::Down | Command::PageUp | Command::PageDown => {
                let step = match cmd {
                    Command::Up => -1,
                    Command::Down => 1,
                    Command::PageUp => -page,
                    _ => page,
                };
                match self.pane {
                    Pane::Hosts => self.move_selection(step),
                    Pane::Details => {
                        self.details_scroll = if step < 0 {
                            self.details_scroll.saturating_sub(1)
                        } else {
                            self.details_scroll.saturating_add(1)
                        };
                    }
                    Pane::Log => {
                        // Scrolls back from the newest line.
                        self.log_scroll = if step < 0 {
                            (self.log_scroll + 1).min(self.log.len().saturating_sub(1))
                        } else {
                            self.log_scroll.saturating_sub(1)
                        };
                    }
                }
            }
            Command::Top => self.move_selection(isize::MIN / 2),
            Command::Bottom => self.move_selection(isize::MAX / 2),
            Command::Assign(role) => self.open_prompt(role),
            Command::Unassign => self.unassign(),
        }
        None
    }

    fn open_prompt(&mut self, role: Role) {
        let Some(row) = self.selected() else {
            self.status = Some("no host selected".into());
            return;
        };
        let host = row.record.id.clone();
        // Exactly 1 bootstrap and 3 control-plane hosts: refuse a 2nd/4th.
        if let Some(problem) = self.plan.with(&host, Some(role)).excess().first() {
            self.status = Some(format!("cannot assign {role}: {problem}"));
            return;
        }
        let input = match (&row.record.hostname, row.record.role) {
            (Some(h), Some(r)) if r == role => h.to_string(),
            _ => {
                let taken = self
                    .rows
                    .iter()
                    .filter(|r| r.record.id != host)
                    .filter_map(|r| r.record.hostname.as_ref());
                default_hostname(role, taken)
                    .map(|h| h.to_string())
                    .unwrap_or_default()
            }
        };
        self.pane = Pane::Hosts;
        self.prompt = Some(Prompt {
            host,
            role,
            input,
            error: None,
        });
    }

    fn on_prompt(&mut self, cmd: PromptCommand) {
        let Some(prompt) = self.prompt.as_mut() else {
            return;
        };
        match cmd {
            PromptCommand::Insert(c) => {
                if prompt.input.len() < 253 {
                    prompt.input.push(c);
                }
                prompt.error = None;
            }
            PromptCommand::Backspace => {
                prompt.input.pop();
                prompt.error = None;
            }
            PromptCommand::Clear => prompt.input.clear(),
            PromptCommand::Cancel => {
                self.prompt = None;
                self.status = Some("assignment cancelled".into());
            }
            PromptCommand::Submit => self.submit_prompt(),
        }
    }

    fn submit_prompt(&mut self) {
        let Some(prompt) = self.prompt.clone() else {
            return;
        };
        let hostname = match prompt.input.trim().parse::<Hostname>() {
            Ok(h) => h,
            Err(e) => {
                self.set_prompt_error(e.to_string());
                return;
            }
        };
        if let Some(other) = self
            .rows
            .iter()
            .find(|r| r.record.id != prompt.host && r.record.hostname.as_ref() == Some(&hostname))
        {
            let msg = format!(
                "host name {hostname} is already used by {}",
                other.record.id
            );
            self.set_prompt_error(msg);
            return;
        }
        self.prompt = None;
        self.save(&prompt.host, Some(prompt.role), Some(hostname));
    }

    fn set_prompt_error(&mut self, msg: String) {
        if let Some(p) = self.prompt.as_mut() {
            p.error = Some(msg);
        }
    }

    fn unassign(&mut self) {
        let Some(row) = self.selected() else {
            self.status = Some("no host selected".into());
            return;
        };
        let id = row.record.id.clone();
        self.save(&id, None, None);
    }

    /// Writes the assignment to the store and updates the table at once.
    fn save(&mut self, id: &HostId, role: Option<Role>, hostname: Option<Hostname>) {
        let before = self
            .rows
            .iter()
            .find(|r| &r.record.id == id)
            .map(|r| r.record.phase);
        match self.repo.assign(id, role, hostname) {
            Ok(rec) => {
                let msg = match (&rec.role, &rec.hostname) {
                    (Some(r), Some(h)) => format!("assigned {r} {h} to {id}"),
                    (Some(r), None) => format!("assigned {r} to {id}"),
                    _ => format!("unassigned {id}"),
                };
                let problems = fitness_messages(&rec.inventory, rec.role);
                self.status = Some(match problems.first() {
                    Some(p) => format!("{msg} — unfit: {p}"),
                    None => msg.clone(),
                });
                self.log_line(msg);
                if let Some(from) = before
                    && from != rec.phase
                {
                    self.bus.publish(Event::HostPhaseChanged {
                        host: rec.id.clone(),
                        from,
                        to: rec.phase,
                    });
                }
                let mut hosts: Vec<HostRecord> = self
                    .rows
                    .drain(..)
                    .map(|r| r.record)
                    .filter(|r| r.id != rec.id)
                    .collect();
                hosts.push(rec.clone());
                // The store's order: unassigned first, then by role, IP, id.
                harmony::domain::inventory::sort_hosts(&mut hosts);
                self.selected = hosts.iter().position(|h| h.id == rec.id).unwrap_or(0);
                self.set_hosts(hosts);
            }
            Err(e) => {
                let msg = format!("assign failed: {e}");
                self.status = Some(msg.clone());
                self.log_line(msg);
            }
        }
    }
}
