//! Keys to commands. The only place that knows which key does what.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use harmony::domain::Role;

/// What a key asks for in the normal (browsing) mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    /// Open the host-name prompt to give the selected host this role.
    Assign(Role),
    Unassign,
    NextPane,
    Quit,
}

/// What a key does while the host-name prompt is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptCommand {
    Insert(char),
    Backspace,
    Clear,
    Submit,
    Cancel,
}

/// The help line shown at the bottom.
pub const HELP: &str =
    "↑/↓ j/k select  b bootstrap  c control-plane  w worker  u unassign  Tab pane  q quit";

fn is_press(key: &KeyEvent) -> bool {
    key.kind != KeyEventKind::Release
}

pub fn command(key: KeyEvent) -> Option<Command> {
    if !is_press(&key) {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return match key.code {
            KeyCode::Char('c') => Some(Command::Quit),
            _ => None,
        };
    }
    Some(match key.code {
        KeyCode::Up | KeyCode::Char('k') => Command::Up,
        KeyCode::Down | KeyCode::Char('j') => Command::Down,
        KeyCode::PageUp => Command::PageUp,
        KeyCode::PageDown => Command::PageDown,
        KeyCode::Home | KeyCode::Char('g') => Command::Top,
        KeyCode::End | KeyCode::Char('G') => Command::Bottom,
        KeyCode::Char('b') => Command::Assign(Role::Bootstrap),
        KeyCode::Char('c') => Command::Assign(Role::ControlPlane),
        KeyCode::Char('w') => Command::Assign(Role::Worker),
        KeyCode::Char('u') => Command::Unassign,
        KeyCode::Tab | KeyCode::BackTab => Command::NextPane,
        KeyCode::Char('q') | KeyCode::Esc => Command::Quit,
        _ => return None,
    })
}

pub fn prompt_command(key: KeyEvent) -> Option<PromptCommand> {
    if !is_press(&key) {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return match key.code {
            KeyCode::Char('u') => Some(PromptCommand::Clear),
            KeyCode::Char('c') => Some(PromptCommand::Cancel),
            _ => None,
        };
    }
    Some(match key.code {
        KeyCode::Enter => PromptCommand::Submit,
        KeyCode::Esc => PromptCommand::Cancel,
        KeyCode::Backspace => PromptCommand::Backspace,
        KeyCode::Char(c) => PromptCommand::Insert(c),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn bindings() {
        assert_eq!(command(k(KeyCode::Char('j'))), Some(Command::Down));
        assert_eq!(command(k(KeyCode::Up)), Some(Command::Up));
        assert_eq!(
            command(k(KeyCode::Char('c'))),
            Some(Command::Assign(Role::ControlPlane))
        );
        assert_eq!(
            command(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Command::Quit)
        );
        assert_eq!(command(k(KeyCode::Char('x'))), None);
        assert_eq!(
            prompt_command(k(KeyCode::Char('q'))),
            Some(PromptCommand::Insert('q'))
        );
        let mut release = k(KeyCode::Char('q'));
        release.kind = KeyEventKind::Release;
        assert_eq!(command(release), None);
    }
}
