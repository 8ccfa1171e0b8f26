//! Maestro: runs Scores against a Topology with the Inventory, and
//! announces each run on the event bus.

use super::events::{Event, EventBus};
use super::inventory::Inventory;
use super::outcome::{InterpretError, Outcome};
use super::saga::Plan;
use super::score::Score;
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

    /// What the Score would change now, without acting (`--dry-run`).
    pub async fn plan<S: Score<T> + ?Sized>(&self, score: &S) -> Result<Plan, InterpretError> {
        score
            .create_interpret()
            .plan(&self.inventory, &self.topology)
            .await
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;

    use super::*;
    use crate::domain::inventory::*;
    use crate::domain::saga::{Prepared, Step, StepContext, StepError};
    use crate::domain::step_log::{StepKey, UndoData};
    use crate::domain::topology::*;
    use crate::domain::values::*;
    use crate::domain::{Interpret, SagaInterpret, SagaScore, Score};

    /// An in-memory switch: the pure-logic stand-in for a real one.
    #[derive(Debug, Default)]
    struct LabSite {
        ports: Mutex<BTreeMap<SwitchPort, PortStatus>>,
    }

    impl Topology for LabSite {
        fn name(&self) -> &str {
            "lab"
        }
    }

    #[async_trait]
    impl Switch for LabSite {
        fn switch_name(&self) -> &str {
            "lab switch"
        }
        fn capabilities(&self) -> SwitchCapabilities {
            SwitchCapabilities::default()
        }
        async fn get_port_status(
            &self,
            ports: &[SwitchPort],
        ) -> Result<Vec<PortStatus>, SwitchError> {
            let map = self.ports.lock().unwrap();
            Ok(ports
                .iter()
                .map(|p| {
                    map.get(p)
                        .cloned()
                        .unwrap_or_else(|| PortStatus::detached(p.clone()))
                })
                .collect())
        }
        async fn set_ports_access_mode(
            &self,
            _: &[SwitchPort],
            _: VlanId,
        ) -> Result<Change, SwitchError> {
            unimplemented!("not used by this test")
        }
        async fn set_ports_lacp_mode(
            &self,
            ports: &[SwitchPort],
            lag: LagId,
            vlan: VlanId,
            _: LacpOptions,
        ) -> Result<Change, SwitchError> {
            let mut map = self.ports.lock().unwrap();
            for p in ports {
                map.insert(
                    p.clone(),
                    PortStatus {
                        admin_up: true,
                        mode: PortMode::LacpMember { lag },
                        vlan: Some(vlan),
                        lag: Some(lag),
                        ..PortStatus::detached(p.clone())
                    },
                );
            }
            Ok(Change::Applied)
        }
    }

    #[derive(Debug, Clone)]
    struct PortsScore {
        ports: Vec<SwitchPort>,
        lag: LagId,
        vlan: VlanId,
    }

    impl<T: Topology + Switch> Score<T> for PortsScore {
        fn name(&self) -> String {
            "PortsScore".into()
        }
        fn create_interpret(&self) -> Box<dyn Interpret<T>> {
            Box::new(SagaInterpret(self.clone()))
        }
    }

    #[async_trait]
    impl<T: Topology + Switch> SagaScore<T> for PortsScore {
        fn saga_name(&self) -> String {
            "PortsScore".into()
        }
        async fn steps(
            &self,
            _: &Inventory,
            _: &T,
        ) -> Result<Vec<Box<dyn Step<T>>>, InterpretError> {
            Ok(vec![Box::new(self.clone())])
        }
    }

    #[async_trait]
    impl<T: Topology + Switch> Step<T> for PortsScore {
        fn key(&self) -> StepKey {
            StepKey(format!("ports {:?}", self.ports))
        }
        async fn prepare(&self, ctx: StepContext<'_, T>) -> Result<Prepared, StepError> {
            let current = ctx
                .topology
                .get_port_status(&self.ports)
                .await
                .map_err(CapabilityError::from)?;
            let wanted = PortMode::LacpMember { lag: self.lag };
            if current
                .iter()
                .all(|s| s.mode == wanted && s.vlan == Some(self.vlan))
            {
                return Ok(Prepared::Unchanged);
            }
            Ok(Prepared::Change {
                description: format!("{wanted} vlan {}", self.vlan),
                undo: UndoData::of(&format!("{current:?}"))?,
            })
        }
        async fn apply(&self, ctx: StepContext<'_, T>) -> Result<Option<String>, StepError> {
            ctx.topology
                .set_ports_lacp_mode(&self.ports, self.lag, self.vlan, LacpOptions::default())
                .await
                .map_err(CapabilityError::from)?;
            Ok(None)
        }
        async fn undo(&self, _: StepContext<'_, T>, _: &UndoData) -> Result<(), StepError> {
            Ok(())
        }
    }

    #[derive(Debug)]
    struct NoHosts;

    impl InventoryRepository for NoHosts {
        fn upsert_discovered(
            &self,
            _: &DiscoveredHost,
            _: std::time::SystemTime,
        ) -> Result<UpsertResult, RepositoryError> {
            Err(RepositoryError::Backend("read-only".into()))
        }
        fn host(&self, _: &HostId) -> Result<Option<HostRecord>, RepositoryError> {
            Ok(None)
        }
        fn hosts(&self) -> Result<Vec<HostRecord>, RepositoryError> {
            Ok(vec![])
        }
        fn assign(
            &self,
            id: &HostId,
            _: Option<Role>,
            _: Option<Hostname>,
        ) -> Result<HostRecord, RepositoryError> {
            Err(RepositoryError::NotFound(id.clone()))
        }
        fn set_phase(&self, id: &HostId, _: InstallPhase) -> Result<InstallPhase, RepositoryError> {
            Err(RepositoryError::NotFound(id.clone()))
        }
        fn events(&self, _: &HostId, _: usize) -> Result<Vec<HostEvent>, RepositoryError> {
            Ok(vec![])
        }
    }

    #[tokio::test]
    async fn runs_scores_idempotently_and_announces_them() {
        let bus = EventBus::default();
        let mut rx = bus.subscribe();
        let maestro = Maestro::new(LabSite::default(), Inventory::new(Arc::new(NoHosts), bus));
        let score = PortsScore {
            ports: vec!["1/1/3".parse().unwrap(), "1/1/4".parse().unwrap()],
            lag: LagId::try_from(12).unwrap(),
            vlan: VlanId::try_from(10).unwrap(),
        };
        let plan = maestro.plan(&score).await.unwrap();
        assert_eq!(plan.changes.len(), 1, "{plan}");
        let first = maestro.interpret(&score).await.unwrap();
        assert!(matches!(first, Outcome::Success { .. }));
        let second = maestro.interpret(&score).await.unwrap();
        assert!(second.is_noop(), "second run must change nothing: {second}");

        let mut events = vec![];
        while let Ok(e) = rx.try_recv() {
            if !matches!(e, Event::Progress { .. } | Event::StepDone { .. }) {
                events.push(e);
            }
        }
        assert_eq!(
            events,
            vec![
                Event::ScoreStarted {
                    score: "PortsScore".into()
                },
                Event::ScoreFinished {
                    score: "PortsScore".into(),
                    result: Ok(first)
                },
                Event::ScoreStarted {
                    score: "PortsScore".into()
                },
                Event::ScoreFinished {
                    score: "PortsScore".into(),
                    result: Ok(second)
                },
            ]
        );
    }
}
