//! The view: `draw(&App, &mut Frame)` renders the state and changes nothing.
//! Only the visible table rows are turned into widgets, from strings
//! computed when the hosts were loaded (`view_model`). Hardware is shown
//! from typed values and safe text; other messages through
//! [`crate::view_model::shown`].

use harmony::domain::Role;
use harmony::domain::hardware::HostHardware;
use harmony::domain::roles::format_gib;
use harmony::domain::{RoleProblem, fitness};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table, TableState, Wrap};

use crate::app::{App, Pane};
use crate::keymap::HELP;
pub use crate::view_model::table_rows_for_height;
use crate::view_model::{HostRow, LOG_HEIGHT, shown};

const HEADER: [&str; 9] = [
    "",
    "HOST / IP",
    "VENDOR / PRODUCT",
    "THR",
    "MEMORY",
    "DISKS",
    "NICS",
    "ROLE",
    "PHASE",
];

fn pane_block(title: &str, focused: bool) -> Block<'_> {
    let style = if focused {
        Style::default().fg(Color::Cyan)
    } else {
        Style::default()
    };
    Block::default()
        .borders(Borders::ALL)
        .border_style(style)
        .title(title)
}

pub fn draw(app: &App, frame: &mut Frame<'_>) {
    let [main, plan, log, help] = Layout::vertical([
        Constraint::Min(4),
        Constraint::Length(1),
        Constraint::Length(LOG_HEIGHT),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let [hosts, details] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(main);
    draw_hosts(app, frame, hosts);
    draw_details(app, frame, details);
    draw_plan(app, frame, plan);
    draw_log(app, frame, log);
    let help_line = match app.status() {
        Some(s) => Line::from(vec![
            Span::styled(shown(s), Style::default().fg(Color::Yellow)),
            Span::raw("  |  "),
            Span::raw(HELP),
        ]),
        None => Line::from(HELP),
    };
    frame.render_widget(Paragraph::new(help_line), help);
    if app.prompt().is_some() {
        draw_prompt(app, frame, frame.area());
    }
}

fn draw_hosts(app: &App, frame: &mut Frame<'_>, area: Rect) {
    let rows = app.rows();
    let unassigned = rows.iter().filter(|r| r.record.role.is_none()).count();
    let title = format!(" Hosts: {} ({} unassigned) ", rows.len(), unassigned);
    let block = pane_block(&title, app.pane() == Pane::Hosts);
    let height = usize::from(area.height.saturating_sub(3)).max(1);
    let offset = app.offset_for(height);
    let end = (offset + height).min(rows.len());
    let visible = rows.get(offset..end).unwrap_or_default();
    let body: Vec<Row<'_>> = visible.iter().map(table_row).collect();
    let widths = [
        Constraint::Length(1),
        Constraint::Fill(2),
        Constraint::Fill(3),
        Constraint::Length(4),
        Constraint::Length(10),
        Constraint::Length(15),
        Constraint::Length(4),
        Constraint::Length(15),
        Constraint::Length(15),
    ];
    let header = Row::new(HEADER).style(Style::default().add_modifier(Modifier::BOLD));
    let table = Table::new(body, widths)
        .header(header)
        .block(block)
        .column_spacing(1)
        .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED));
    if rows.is_empty() {
        frame.render_widget(table, area);
        let inner = Rect {
            y: area.y.saturating_add(2),
            height: area.height.saturating_sub(3),
            x: area.x.saturating_add(2),
            width: area.width.saturating_sub(4),
        };
        frame.render_widget(
            Paragraph::new("No hosts yet. Boot servers into the discovery environment, or run with --scan CIDR.")
                .wrap(Wrap { trim: true }),
            inner,
        );
        return;
    }
    let mut state = TableState::default().with_selected(app.selected_index().checked_sub(offset));
    frame.render_stateful_widget(table, area, &mut state);
}

fn table_row(r: &HostRow) -> Row<'_> {
    let flag = if r.unfit() { "!" } else { " " };
    let cells =
        std::iter::once(Cell::from(flag)).chain(r.cells.iter().map(|c| Cell::from(c.as_str())));
    let style = if r.unfit() {
        Style::default().fg(Color::Red)
    } else if r.record.role.is_none() {
        Style::default().fg(Color::Green)
    } else {
        Style::default()
    };
    Row::new(cells).style(style)
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "?".into(), |v| v.to_string())
}

fn text<T: ToString>(v: &Option<T>, none: &str) -> String {
    v.as_ref()
        .map_or_else(|| none.to_string(), ToString::to_string)
}

fn fit_summary(inv: &HostHardware) -> String {
    Role::ALL
        .iter()
        .map(|r| {
            let ok = fitness(inv, *r).is_empty();
            format!("{r} {}", if ok { "ok" } else { "NO" })
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The details of the selected host, as lines.
pub fn details_lines(row: &HostRow) -> Vec<Line<'static>> {
    let h = &row.record;
    let inv = &h.hardware;
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let mut l: Vec<Line<'static>> = Vec::new();
    l.push(Line::styled(format!("{}", h.id), bold));
    let macs: Vec<String> = h.macs.iter().map(ToString::to_string).collect();
    l.push(Line::from(format!("IP {}  MACs {}", h.ip, macs.join(", "))));
    l.push(Line::from(format!(
        "Role {}  Hostname {}  Phase {}",
        h.role.map_or_else(|| "-".into(), |r| r.to_string()),
        h.hostname
            .as_ref()
            .map_or_else(|| "-".into(), ToString::to_string),
        h.phase
    )));
    for p in &row.problems {
        l.push(Line::styled(
            format!("! {p}"),
            Style::default().fg(Color::Red),
        ));
    }
    l.push(Line::from(format!("Fits: {}", fit_summary(inv))));
    // Everything below is typed values and safe text.
    let s = &inv.system;
    l.push(Line::styled("System", bold));
    l.push(Line::from(format!(
        "  {} {} serial {} BMC {}",
        text(&s.vendor, "?"),
        text(&s.product, "?"),
        text(&s.serial, "?"),
        text(&s.bmc_address, "-")
    )));
    let c = &inv.cpu;
    l.push(Line::styled("CPU", bold));
    l.push(Line::from(format!(
        "  {} ({} sockets, {} cores, {} threads, {} MHz)",
        text(&c.model, "?"),
        opt(c.sockets),
        opt(c.cores),
        opt(c.threads),
        c.mhz.map_or_else(|| "?".into(), |m| format!("{m:.0}"))
    )));
    if !c.flags.is_empty() {
        let flags: Vec<&str> = c.flags.iter().map(|f| f.as_str()).collect();
        l.push(Line::from(format!("  flags {}", flags.join(" "))));
    }
    l.push(Line::styled(
        format!(
            "Memory {} (kernel {})",
            inv.installed_memory()
                .map_or_else(|| "?".into(), format_gib),
            inv.memory
                .total_bytes
                .map_or_else(|| "?".into(), format_gib)
        ),
        bold,
    ));
    for d in &inv.memory.dimms {
        l.push(Line::from(format!(
            "  {} {} {} {} MT/s {}",
            text(&d.locator, "?"),
            d.size_bytes.map_or_else(|| "?".into(), format_gib),
            text(&d.memory_type, "?"),
            opt(d.speed_mts),
            text(&d.manufacturer, "")
        )));
    }
    l.push(Line::styled(format!("Disks ({})", inv.disks.len()), bold));
    for d in &inv.disks {
        l.push(Line::from(format!(
            "  {} {:?} {} {}{}",
            d.name,
            d.kind,
            d.size_bytes.map_or_else(|| "?".into(), format_gib),
            text(&d.model, ""),
            if d.removable == Some(true) {
                " removable"
            } else {
                ""
            }
        )));
        if let Some(id) = &d.by_id {
            l.push(Line::from(format!("    {id}")));
        }
    }
    l.push(Line::styled(
        format!("NICs ({} physical)", inv.physical_nics().count()),
        bold,
    ));
    for n in inv.physical_nics() {
        let link = if n.link_up() { "up" } else { "down" };
        l.push(Line::from(format!(
            "  {} {} {} {}",
            n.name,
            n.identity_mac()
                .map_or_else(|| "no MAC".into(), |m| m.to_string()),
            n.speed_mbps
                .map_or_else(|| "? Mb/s".into(), |s| format!("{s} Mb/s")),
            link
        )));
        if let Some(lldp) = &n.lldp {
            l.push(Line::from(format!(
                "    LLDP {} port {}",
                text(&lldp.system_name.as_ref().or(lldp.chassis_id.as_ref()), "?"),
                text(
                    &lldp.port_id.as_ref().or(lldp.port_description.as_ref()),
                    "?"
                )
            )));
        }
    }
    // What its boot files carry: the plan computed with the hosts, under
    // the site's policy, by the function `BootArtefacts` uses.
    l.push(Line::styled("Boot plan", bold));
    match &row.boot {
        Ok(lines) => l.extend(lines.iter().map(|line| Line::from(format!("  {line}")))),
        Err(e) => l.push(Line::from(format!("  none ({e})"))),
    }
    l
}

fn draw_details(app: &App, frame: &mut Frame<'_>, area: Rect) {
    let block = pane_block(" Details ", app.pane() == Pane::Details);
    let lines = app.selected().map(details_lines).unwrap_or_default();
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .scroll((app.details_scroll(), 0)),
        area,
    );
}

fn draw_plan(app: &App, frame: &mut Frame<'_>, area: Rect) {
    let plan = app.plan();
    let mut spans = vec![Span::styled(
        format!("Plan: {plan}"),
        Style::default().add_modifier(Modifier::BOLD),
    )];
    let problems = app.plan_problems();
    if problems.is_empty() {
        spans.push(Span::styled(
            "  ✓ complete",
            Style::default().fg(Color::Green),
        ));
    }
    for p in problems {
        let color = match p {
            RoleProblem::TooMany { .. } => Color::Red,
            RoleProblem::Missing { .. } => Color::Yellow,
        };
        spans.push(Span::styled(format!("  • {p}"), Style::default().fg(color)));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_log(app: &App, frame: &mut Frame<'_>, area: Rect) {
    let block = pane_block(" Events ", app.pane() == Pane::Log);
    let height = usize::from(area.height.saturating_sub(2));
    let log = app.log();
    let end = log.len().saturating_sub(app.log_scroll());
    let start = end.saturating_sub(height);
    let lines: Vec<Line<'_>> = log
        .range(start..end)
        .map(|s| Line::from(s.as_str()))
        .collect();
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn draw_prompt(app: &App, frame: &mut Frame<'_>, area: Rect) {
    let Some(p) = app.prompt() else {
        return;
    };
    let width = area.width.clamp(20, 70);
    let height = 6u16.min(area.height);
    let popup = Rect {
        x: area.x + (area.width.saturating_sub(width)) / 2,
        y: area.y + (area.height.saturating_sub(height)) / 2,
        width,
        height,
    };
    let mut lines = vec![
        Line::from(format!("Host {}", p.host)),
        Line::from(vec![
            Span::raw("Hostname: "),
            Span::styled(
                format!("{}_", shown(&p.input)),
                Style::default().add_modifier(Modifier::BOLD),
            ),
        ]),
    ];
    match &p.error {
        Some(e) => lines.push(Line::styled(shown(e), Style::default().fg(Color::Red))),
        None => lines.push(Line::from("Enter save  Esc cancel  Ctrl-U clear")),
    }
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(Style::default().fg(Color::Yellow))
                .title(format!(" Assign {} ", p.role)),
        ),
        popup,
    );
}
