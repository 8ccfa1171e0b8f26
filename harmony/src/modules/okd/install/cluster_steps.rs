//! TEMPORARY stub (replaced by the cluster11 branch).
use crate::domain::cluster::WorkerIdentity;
use crate::domain::{
    ClusterApi, Prepared, Step, StepContext, StepError, StepKey, Topology, UndoData,
};
use async_trait::async_trait;
use std::time::Duration;
#[derive(Debug, Clone)]
pub struct WaitApiAnswers {
    pub within: Duration,
    pub poll: Duration,
}
#[derive(Debug, Clone)]
pub struct WaitBootstrapComplete {
    pub within: Duration,
    pub poll: Duration,
}
#[derive(Debug, Clone)]
pub struct ApproveWorkerCsrs {
    pub workers: Vec<WorkerIdentity>,
    pub within: Duration,
    pub poll: Duration,
}
#[derive(Debug, Clone)]
pub struct MastersUnschedulable;
macro_rules! stub {
    ($t:ty) => {
        #[async_trait]
        impl<T: Topology + ClusterApi> Step<T> for $t {
            fn key(&self) -> StepKey {
                StepKey(stringify!($t).into())
            }
            async fn prepare(&self, _: StepContext<'_, T>) -> Result<Prepared, StepError> {
                Ok(Prepared::Unchanged)
            }
            async fn apply(&self, _: StepContext<'_, T>) -> Result<Option<String>, StepError> {
                Ok(None)
            }
            async fn undo(&self, _: StepContext<'_, T>, _: &UndoData) -> Result<(), StepError> {
                Ok(())
            }
        }
    };
}
stub!(WaitApiAnswers);
stub!(WaitBootstrapComplete);
stub!(ApproveWorkerCsrs);
stub!(MastersUnschedulable);
