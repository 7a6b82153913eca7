//! The DreamOps domain: what an incident is, how it may move, what the agent may do, what it sees, and the
//! ports (traits) through which the stage handlers reach the outside world.
//!
//! Nothing here performs I/O. The crate is shared by every stage handler, the local runtime and (later) the
//! Lambda functions, so it stays free of AWS, HTTP and Kubernetes client dependencies.

pub mod action;
pub mod billing;
pub mod diagnosis;
pub mod health;
pub mod ids;
pub mod incident;
pub mod messages;
pub mod names;
pub mod observation;
pub mod ports;
pub mod quantity;
pub mod settings;
pub mod state;
pub mod team;

pub use action::{
    Action, ActionBounds, ActionError, ActionKind, ActionRecord, ActionStatus, ActionTarget, BeforeState, CurrentFacts,
    FieldChange, Plan, WorkloadRef,
};
pub use diagnosis::{Category, DecidedBy, Diagnosis, ProposedAction, Risk};
pub use ids::{ActionId, CorrelationId, IncidentId, TeamId};
pub use incident::{Actor, Alert, AlertSource, Approval, AuditEvent, DecisionRecord, Incident, VerificationRecord};
pub use messages::{Envelope, MessageError, StageMessage};
pub use settings::{Autonomy, Decision, SettingError, TeamSettings, VerifySettings};
pub use state::{IgnoreReason, State, TransitionError};
pub use team::{ApiKey, ControlEvent, IntegrationMeta, Role, ServiceTarget, Team};
