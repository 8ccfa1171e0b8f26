//! The `harmony-inventory-agent` binary. STUB.
fn main() {
    let inv = harmony_inventory_agent::collect::Collector::new("/").collect();
    println!("{}", serde_json::to_string_pretty(&inv).unwrap_or_default());
}
