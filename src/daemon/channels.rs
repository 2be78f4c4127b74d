//! The messages between the daemon's threads and tasks.

use crate::act::ActionRecord;
use crate::ingest::IngestEvent;
use crate::judge::{Decision, HeldRoute, OperatorAction, Policy};
use crate::model::Asn;
use crate::rpki::{AspaSet, VrpIndex};
use ipnet::IpNet;
use std::sync::Arc;
use tokio::sync::oneshot;

/// What the state thread receives from the pipeline.
pub(crate) enum StateMsg {
    /// Decisions to log (then shown by the API).
    Decisions(Vec<Decision>),
    /// Actions on routers and their verifications, for the audit log.
    Actions(Vec<ActionRecord>),
    /// Alerts for the webhook outbox.
    Alerts(Vec<crate::act::alerts::Alert>),
    /// The judge's state to save; `ack` runs once it is committed (`Ok`), or with why it
    /// could not be (the state file cannot be written).
    Checkpoint(crate::judge::Saved, Option<Ack>),
}

/// What runs once a checkpoint is committed, or could not be.
pub(crate) type Ack = Box<dyn FnOnce(Result<(), String>) + Send>;

/// Route events from the router sessions (converted on their tasks), a batch per socket
/// read. Bounded: a judge that falls behind holds the sessions back, and TCP the routers.
pub(crate) type DataTx = tokio::sync::mpsc::Sender<Vec<IngestEvent>>;

/// Everything but route events: control, queries and alerts. Unbounded, so an alert is
/// never dropped and a query never waits for room; the pipeline takes them before any
/// data waiting (they are few: one per operator request, reload, RPKI set or alert).
pub(crate) type ControlTx = tokio::sync::mpsc::UnboundedSender<Input>;

/// What the pipeline thread receives on its control channel ([`ControlTx`]).
pub(crate) enum Input {
    Routes {
        prefix: IpNet,
        /// Only the claim of this origin.
        origin: Option<Asn>,
        reply: oneshot::Sender<serde_json::Value>,
    },
    /// Every route held now.
    Held {
        reply: oneshot::Sender<Vec<HeldRoute>>,
    },
    /// An operator holds or releases a claim.
    Operator {
        prefix: IpNet,
        origin: Option<Asn>,
        action: OperatorAction,
        note: String,
        /// The routes it changed (`None`: no such claim), once committed; `Err`: why it
        /// was not (the state file cannot be written).
        reply: oneshot::Sender<Result<Option<usize>, String>>,
    },
    /// A new policy (SIGHUP): swapped into the judge, which re-judges what it holds.
    Policy {
        policy: Box<Policy>,
        reply: oneshot::Sender<usize>,
    },
    /// A new RPKI data set (the RTR cache's): everything held is re-judged against it.
    Rpki {
        index: Arc<VrpIndex>,
        aspa: Arc<AspaSet>,
        serial: Option<u64>,
        description: String,
    },
    /// Actions and verifications done outside the pipeline (the BIRD verifiers).
    Actions(Vec<ActionRecord>),
    /// Alerts raised outside the pipeline (RPKI sources, BMP sessions).
    Alerts(Vec<crate::act::alerts::Alert>),
    /// An operator resumes acting after a cap stopped it; the answer says whether it had.
    ActResume { reply: oneshot::Sender<bool> },
}
