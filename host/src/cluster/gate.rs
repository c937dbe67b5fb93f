//! The leader gate: whether this host may write now.
//!
//! The election ([`crate::cluster::leader`]) holds the [`Leadership`] side
//! and opens the gate until a deadline on this host's monotonic clock; the
//! workers and the client's write fence ([`crate::cluster::client::fence`])
//! hold [`LeaderGate`]s and ask it before every write. No task has to run
//! for the gate to close: it is a deadline, checked each time it is asked.

use std::sync::Arc;

use tokio::sync::watch;
use tokio::time::Instant;

/// Whether this host may apply intents now. Cheap to clone.
#[derive(Clone, Debug)]
pub struct LeaderGate {
    state: GateState,
}

#[derive(Clone, Debug)]
enum GateState {
    /// No leader election: always open.
    Always,
    /// Open until the instant the election last set (`None`: closed).
    Elected(watch::Receiver<Option<Instant>>),
}

impl LeaderGate {
    /// A gate that is always open: no leader election.
    pub fn always() -> Self {
        Self {
            state: GateState::Always,
        }
    }

    /// A closed gate and the [`Leadership`] that opens it (an
    /// [`Election`]'s).
    pub fn pending() -> (Leadership, Self) {
        let (tx, rx) = watch::channel(None);
        (
            Leadership(Arc::new(tx)),
            Self {
                state: GateState::Elected(rx),
            },
        )
    }

    /// Whether this host leads now, by the monotonic clock.
    pub fn is_leader(&self) -> bool {
        match &self.state {
            GateState::Always => true,
            GateState::Elected(until) => open(*until.borrow()),
        }
    }

    /// Returns once this host leads (at once if it does).
    pub async fn wait(&mut self) {
        if let GateState::Elected(until) = &mut self.state {
            let _ = until.wait_for(|until| open(*until)).await;
        }
    }
}

fn open(until: Option<Instant>) -> bool {
    until.is_some_and(|until| Instant::now() < until)
}

/// The election's side of a [`LeaderGate`]: opens it until a deadline, or
/// closes it.
#[derive(Clone, Debug)]
pub struct Leadership(Arc<watch::Sender<Option<Instant>>>);

impl Leadership {
    /// Lets the gate's holders apply until `until` (monotonic).
    pub fn lead_until(&self, until: Instant) {
        self.0.send_replace(Some(until));
    }

    /// Closes the gate now.
    pub fn stop(&self) {
        self.0.send_replace(None);
    }

    pub(crate) fn is_leader(&self) -> bool {
        open(*self.0.borrow())
    }

    pub(crate) fn until(&self) -> Option<Instant> {
        *self.0.borrow()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_gate_closes_by_the_clock_without_anyone_closing_it() {
        let (leadership, mut gate) = LeaderGate::pending();
        assert!(!gate.is_leader());
        leadership.lead_until(Instant::now() + Duration::from_secs(10));
        gate.wait().await;
        tokio::time::sleep(Duration::from_millis(9_900)).await;
        assert!(gate.is_leader());
        // Nothing runs at the deadline: the next check finds it closed.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!gate.is_leader());
        // A later renewal opens it again; losing the lease closes it at once.
        leadership.lead_until(Instant::now() + Duration::from_secs(10));
        assert!(gate.is_leader());
        leadership.stop();
        assert!(!gate.is_leader());
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_on_an_expired_gate_waits_for_the_next_renewal() {
        let (leadership, mut gate) = LeaderGate::pending();
        leadership.lead_until(Instant::now() + Duration::from_secs(1));
        tokio::time::sleep(Duration::from_secs(2)).await;
        let waiting = tokio::spawn(async move {
            gate.wait().await;
            gate.is_leader()
        });
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!waiting.is_finished());
        leadership.lead_until(Instant::now() + Duration::from_secs(10));
        assert!(waiting.await.unwrap());
    }
}
