//! `harmony-tui`: a terminal view over Harmony's inventory store and events:
//! the discovered, unassigned nodes, their hardware, role assignment and each
//! host's install phase. (Filled in by the discovery/TUI issue.)

fn main() {
    println!(
        "harmony-tui: not yet implemented; the agent's wire format is schema v{}",
        harmony::inventory_model::SCHEMA_VERSION
    );
}
