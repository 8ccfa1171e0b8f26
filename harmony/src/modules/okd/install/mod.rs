//! The OKD installation Scores (`OKDSetup02Bootstrap` .. `OKDSetup04Workers`,
//! `OKDInstallationScore`) and their steps; `cluster_steps`: the steps on the
//! cluster's Kubernetes API.

pub mod cluster_steps;
