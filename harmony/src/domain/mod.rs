//! The domain: Score, Interpret, Outcome, Topology and its capability
//! traits, the Inventory, Maestro and its events, and the typed values.
//! No I/O happens here.
//!
//! A Score that needs a capability does not compile against a topology
//! without it:
//!
//! ```compile_fail
//! use harmony::domain::*;
//! use async_trait::async_trait;
//!
//! #[derive(Debug)]
//! struct NoSwitchSite;
//! impl Topology for NoSwitchSite {
//!     fn name(&self) -> &str { "no-switch" }
//! }
//!
//! #[derive(Debug)]
//! struct NeedsSwitch;
//! impl<T: Topology + Switch> Score<T> for NeedsSwitch {
//!     fn name(&self) -> String { "NeedsSwitch".into() }
//!     fn create_interpret(&self) -> Box<dyn Interpret<T>> { unimplemented!() }
//! }
//!
//! fn run<T: Topology, S: Score<T>>(_: &T, _: &S) {}
//! run(&NoSwitchSite, &NeedsSwitch); // error: NoSwitchSite does not implement Switch
//! ```

pub mod bond_status;
pub mod cluster;
pub mod events;
pub mod hardware;
pub mod inventory;
pub mod maestro;
pub mod outcome;
pub mod port_map;
pub mod roles;
pub mod saga;
pub mod score;
pub mod step_log;
pub mod switch;
pub mod text;
pub mod topology;
pub mod values;

pub use events::{Event, EventBus};
pub use hardware::{HardwareError, HostHardware};
pub use inventory::{
    DiscoveredHost, HostEvent, HostFlag, HostRecord, HostSummary, Inventory, InventoryRepository,
    RepositoryError, UpsertResult, Upserted, flag_messages,
};
pub use maestro::Maestro;
pub use outcome::{InterpretError, Outcome};
pub use roles::{
    FitnessProblem, Requirements, RolePlan, RoleProblem, default_hostname, fitness,
    fitness_messages,
};
pub use saga::{Plan, PlannedChange, Prepared, Step, StepContext, StepError};
pub use score::{Interpret, SagaInterpret, SagaScore, Score};
pub use step_log::{
    InProcessLocks, MemoryStepLog, RunId, RunState, SagaLock, StepKey, StepLog, StepLogError,
    StepRecord, StepState, UndoData,
};
pub use text::SafeText;
pub use topology::*;
pub use values::{
    DevicePath, DnsName, HostId, Hostname, HttpUrl, InstallPhase, InterfaceName, KernelArg,
    MacAddress, PhaseError, RelativePath, Role, Sha256Digest, ValueError,
};
