//! Score (desired state, plain data) and Interpret (the code that makes it
//! true against a Topology), with their outcome and error.

use std::collections::HashSet;
use std::fmt;

use async_trait::async_trait;

use super::inventory::Inventory;
use super::outcome::{InterpretError, Outcome};
use super::saga::{Plan, Step, StepContext, open_run_keys, plan_saga, run_saga};
use super::step_log::StepKey;
use super::topology::Topology;

/// Declares a desired state. Plain, serializable data with a name; it
/// creates the Interpret that makes it true. A Score states the
/// capabilities it needs as bounds on `T`, so it does not compile against a
/// topology without them.
pub trait Score<T: Topology>: fmt::Debug + Send + Sync {
    /// A short, stable name for logs and events, e.g. `DhcpScore`.
    fn name(&self) -> String;
    fn create_interpret(&self) -> Box<dyn Interpret<T>>;
}

/// Makes a Score true. Idempotent: a second run changes nothing and says so
/// with [`Outcome::Noop`].
#[async_trait]
pub trait Interpret<T: Topology>: fmt::Debug + Send + Sync {
    /// The ordered changes `execute` would make now, read from the site
    /// without acting (`--dry-run`). Empty when it would be a Noop.
    async fn plan(&self, inventory: &Inventory, topology: &T) -> Result<Plan, InterpretError>;
    async fn execute(&self, inventory: &Inventory, topology: &T)
    -> Result<Outcome, InterpretError>;
}

/// A Score made of undoable [`Step`]s, run on the step log by
/// [`run_saga`]: resumable after a crash, rolled back on failure.
#[async_trait]
pub trait SagaScore<T: Topology>: fmt::Debug + Send + Sync {
    /// The saga's name in the step log (a resumed run is found by it).
    fn saga_name(&self) -> String;
    /// The steps, in order, computed from the Inventory and the site.
    async fn steps(
        &self,
        inventory: &Inventory,
        topology: &T,
    ) -> Result<Vec<Box<dyn Step<T>>>, InterpretError>;

    /// Steps an interrupted run logged that [`SagaScore::steps`] no longer
    /// plans because they already acted (a removal of a file that is now
    /// gone): rebuilt from their keys so the resumed run can undo them.
    /// Keys it cannot rebuild are left out (the run is then closed as
    /// abandoned, and says so).
    fn resume_steps(&self, _missing: &[StepKey]) -> Vec<Box<dyn Step<T>>> {
        Vec::new()
    }
}

impl<S> SagaInterpret<S> {
    /// The Score's steps, plus those of the open run it must still carry.
    async fn all_steps<T: Topology>(
        &self,
        inventory: &Inventory,
        topology: &T,
    ) -> Result<Vec<Box<dyn Step<T>>>, InterpretError>
    where
        S: SagaScore<T>,
    {
        let name = self.0.saga_name();
        let mut steps = self.0.steps(inventory, topology).await?;
        let open = open_run_keys(inventory, &name)
            .await
            .map_err(|e| InterpretError::new(&name, "read the step log", e.0))?;
        let planned: HashSet<StepKey> = steps.iter().map(|s| s.key()).collect();
        let missing: Vec<StepKey> = open.into_iter().filter(|k| !planned.contains(k)).collect();
        if !missing.is_empty() {
            steps.extend(self.0.resume_steps(&missing));
        }
        Ok(steps)
    }
}

/// The Interpret of a [`SagaScore`]: `Box::new(SagaInterpret(score.clone()))`.
#[derive(Debug, Clone)]
pub struct SagaInterpret<S>(pub S);

#[async_trait]
impl<T: Topology, S: SagaScore<T>> Interpret<T> for SagaInterpret<S> {
    async fn plan(&self, inventory: &Inventory, topology: &T) -> Result<Plan, InterpretError> {
        let steps = self.all_steps(inventory, topology).await?;
        let ctx = StepContext {
            inventory,
            topology,
        };
        plan_saga(&self.0.saga_name(), &steps, ctx).await
    }

    async fn execute(
        &self,
        inventory: &Inventory,
        topology: &T,
    ) -> Result<Outcome, InterpretError> {
        let steps = self.all_steps(inventory, topology).await?;
        let ctx = StepContext {
            inventory,
            topology,
        };
        run_saga(&self.0.saga_name(), &steps, ctx).await
    }
}
