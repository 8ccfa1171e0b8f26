//! Maestro: runs Scores against a Topology with the Inventory, and
//! announces each run on the event bus.

use super::events::{Event, EventBus};
use super::inventory::Inventory;
use super::score::{InterpretError, Outcome, Score};
use super::topology::Topology;

#[derive(Debug)]
pub struct Maestro<T: Topology> {
    topology: T,
    inventory: Inventory,
}

impl<T: Topology> Maestro<T> {
    pub fn new(topology: T, inventory: Inventory) -> Self {
        Self {
            topology,
            inventory,
        }
    }

    pub fn topology(&self) -> &T {
        &self.topology
    }

    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    pub fn events(&self) -> &EventBus {
        self.inventory.events()
    }

    /// Runs one Score: `ScoreStarted`, the Interpret, then `ScoreFinished`
    /// with its outcome or error.
    pub async fn interpret<S: Score<T> + ?Sized>(
        &self,
        score: &S,
    ) -> Result<Outcome, InterpretError> {
        let name = score.name();
        self.events().publish(Event::ScoreStarted {
            score: name.clone(),
        });
        let result = score
            .create_interpret()
            .execute(&self.inventory, &self.topology)
            .await;
        self.events().publish(Event::ScoreFinished {
            score: name,
            result: result
                .as_ref()
                .map(Clone::clone)
                .map_err(ToString::to_string),
        });
        result
    }
}
