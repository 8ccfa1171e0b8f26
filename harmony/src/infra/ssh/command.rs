//! The command line each [`RemoteCommand`] runs: fixed text around typed,
//! already validated values, each quoted as one shell word all the same.
//! Nothing here takes a string from an agent or the network.

use std::time::Duration;

use crate::domain::RemoteCommand;

/// What a host runs for [`RemoteCommand::Reboot`] unless the SSH config says
/// otherwise: systemd's orderly reboot, else the immediate one.
pub const DEFAULT_REBOOT_COMMAND: &str = "systemctl reboot || reboot -f";

/// `s` as one POSIX shell word: always in single quotes, a single quote
/// written as `'\''`.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The command line of `command`; `reboot` is the configured reboot line.
pub fn command_line(command: &RemoteCommand, reboot: &str) -> String {
    match command {
        RemoteCommand::Reboot => reboot.to_string(),
        // Erases every filesystem, RAID and partition-table signature
        // (both GPT headers), so the firmware falls through to PXE.
        RemoteCommand::WipeDisk { device } => {
            format!("wipefs --all --force -- {} && sync", quote(device.as_str()))
        }
        RemoteCommand::LinkState { interface } => {
            format!("ip -json link show dev {}", quote(interface.as_str()))
        }
        // The kernel bonding driver's status file (`drivers/net/bonding/
        // bond_procfs.c`); an interface name holds no `/` and is never `.`
        // or `..`, so the path stays in that directory.
        RemoteCommand::BondStatus { bond } => {
            format!("cat -- {}", quote(&format!("/proc/net/bonding/{bond}")))
        }
    }
}

/// `line` run as root by a user with sudo rights: `-n` fails at once
/// instead of asking for a password.
pub fn as_root(line: &str) -> String {
    format!("sudo -n -- sh -c {}", quote(line))
}

/// `line` bounded on the host as well: coreutils `timeout` ends it (TERM,
/// then KILL 5 s later) a second after the client stops waiting, so a
/// timed-out command is not left running. (sshd closes a channel without
/// ending its command, and passes no signals to root's sessions.)
pub fn bounded(line: &str, limit: Duration) -> String {
    let secs = limit.as_secs() + u64::from(limit.subsec_nanos() > 0) + 1;
    format!("exec timeout --kill-after=5 {secs} sh -c {}", quote(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_command_renders_to_its_fixed_line() {
        let wipe = RemoteCommand::WipeDisk {
            device: "/dev/disk/by-id/nvme-eui.0001".parse().unwrap(),
        };
        assert_eq!(
            command_line(&wipe, DEFAULT_REBOOT_COMMAND),
            "wipefs --all --force -- '/dev/disk/by-id/nvme-eui.0001' && sync"
        );
        let link = RemoteCommand::LinkState {
            interface: "eno1".parse().unwrap(),
        };
        assert_eq!(
            command_line(&link, DEFAULT_REBOOT_COMMAND),
            "ip -json link show dev 'eno1'"
        );
        let bond = RemoteCommand::BondStatus {
            bond: "bond0".parse().unwrap(),
        };
        assert_eq!(
            command_line(&bond, DEFAULT_REBOOT_COMMAND),
            "cat -- '/proc/net/bonding/bond0'"
        );
        assert_eq!(
            command_line(&RemoteCommand::Reboot, DEFAULT_REBOOT_COMMAND),
            DEFAULT_REBOOT_COMMAND
        );
    }

    #[test]
    fn commands_are_bounded_on_the_host_a_second_past_the_limit() {
        assert_eq!(
            bounded("ip -json link show dev 'lo'", Duration::from_millis(800)),
            r#"exec timeout --kill-after=5 2 sh -c 'ip -json link show dev '\''lo'\'''"#
        );
        assert_eq!(
            bounded("true", Duration::from_secs(60)),
            "exec timeout --kill-after=5 61 sh -c 'true'"
        );
    }

    #[test]
    fn quoting_makes_one_word_of_anything() {
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("$(reboot);`x`"), "'$(reboot);`x`'");
        assert_eq!(quote(""), "''");
    }
}
