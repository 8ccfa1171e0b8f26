//! The application state and its only mutator, [`App::update`]. It never
//! depends on the view (`ui`); what both need is in `view_model`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crossterm::event::KeyEvent;
use harmony::domain::{
    Event, EventBus, HostId, HostRecord, Hostname, Inventory, InventoryRepository, Role, RolePlan,
    RoleProblem, default_hostname, fitness_messages,
};
use harmony::modules::okd::boot_plan::{SiteNetworks, network_of};

use crate::keymap::{self, Command, PromptCommand};
pub use crate::view_model::HostRow;
use crate::view_model::{describe, shown, table_rows_for_height};

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
    /// The Inventory: the store and the bus; role changes go through its
    /// rule ([`Inventory::assign`]).
    inventory: Inventory,
    /// The site's per-host network policy the boot plans are computed
    /// under (what `BootArtefacts` is given).
    networks: SiteNetworks,
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
    /// An app over `repo` and `bus`, planning boots under the default site
    /// policy (what `BootArtefacts` uses when the site file says nothing).
    pub fn new(repo: Arc<dyn InventoryRepository>, bus: EventBus) -> Self {
        let plan = RolePlan::default();
        let last_progress = None;
        Self {
            inventory: Inventory::new(repo, bus),
            networks: SiteNetworks::new(),
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

    /// The same app planning boots under the site's per-host network
    /// policy (the `networks` of the site's `BootArtefacts`).
    pub fn with_networks(mut self, networks: SiteNetworks) -> Self {
        self.networks = networks;
        let hosts: Vec<HostRecord> = self.rows.drain(..).map(|r| r.record).collect();
        self.set_hosts(hosts);
        self
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
            .push_back(format!("{} {}", clock(), shown(line.as_ref())));
    }

    /// Replaces the hosts (keeps the selection on the same host).
    pub fn set_hosts(&mut self, hosts: Vec<HostRecord>) {
        let keep = self.selected().map(|r| r.record.id.clone());
        self.plan = RolePlan::new(hosts.iter().map(|h| (h.id.clone(), h.role)));
        self.plan_problems = self.plan.problems();
        let networks = &self.networks;
        self.rows = hosts
            .into_iter()
            .map(|h| {
                let network = network_of(networks, &h.id);
                HostRow::new(h, network)
            })
            .collect();
        self.select_id(keep.as_ref());
    }

    /// Reads the hosts from the store now (tests, and the first frame).
    pub fn reload_blocking(&mut self) -> Option<Action> {
        let hosts = self
            .inventory
            .repository()
            .hosts()
            .map_err(|e| e.to_string());
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
                self.viewport = usize::from(table_rows_for_height(h)).max(1);
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
        // The domain's rule (exactly 1 bootstrap and 3 control-plane
        // hosts), checked before asking for a name; `Inventory::assign`
        // enforces it again when saving.
        if let Err(problem) = self.plan.check_assign(&host, role) {
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

    /// Assigns through the Inventory (the domain's role rule, the store,
    /// the phase-change event) and updates the table at once.
    fn save(&mut self, id: &HostId, role: Option<Role>, hostname: Option<Hostname>) {
        match self.inventory.assign(id, role, hostname) {
            Ok(rec) => {
                let msg = match (&rec.role, &rec.hostname) {
                    (Some(r), Some(h)) => format!("assigned {r} {h} to {id}"),
                    (Some(r), None) => format!("assigned {r} to {id}"),
                    _ => format!("unassigned {id}"),
                };
                let problems = fitness_messages(&rec.hardware, rec.role);
                self.status = Some(match problems.first() {
                    Some(p) => format!("{msg}; unfit: {p}"),
                    None => msg.clone(),
                });
                self.log_line(msg);
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
