//! What a candidate does with the Lease it read: the election's decisions,
//! with no clock and no client (the caller passes the times).
//!
//! Like client-go's `leaderelection`, a candidate never trusts the times a
//! holder wrote into the Lease (`renewTime` comes from the holder's wall
//! clock, which may be skewed by any amount). It remembers when it first
//! saw each version of the record, by its own monotonic clock, and takes a
//! Lease held by another identity only once that version has stayed
//! unchanged for a whole lease duration. The write that takes it carries
//! the version as a precondition, so a holder that renewed meanwhile wins.

use std::time::Duration;

use tokio::time::Instant;

/// The longest lease duration a record may claim (the flag's upper bound):
/// a record naming a longer one does not make standbys wait longer.
pub(crate) const LONGEST_LEASE: Duration = Duration::from_secs(3600);

/// The parts of a Lease the election decides on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    /// `metadata.resourceVersion`: changes with every write.
    pub resource_version: String,
    /// `spec.holderIdentity`; `None` when empty (released or never held).
    pub holder: Option<String>,
    /// `spec.leaseDurationSeconds`, as the holder declared it.
    pub duration: Option<Duration>,
}

/// What to do after reading the Lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Decision {
    /// The record names this host: write it again (renew).
    Renew,
    /// Nobody holds it: take it at once.
    Acquire,
    /// `holder` has not renewed for a whole lease duration by this host's
    /// clock: take it over.
    TakeOver { holder: String },
    /// `holder` may still lead: read again, no later than `expires` (when its
    /// record, if still unchanged, may be taken).
    Wait { holder: String, expires: Instant },
}

/// A version of the record and when this host first saw it.
#[derive(Clone, Debug)]
struct Observation {
    resource_version: String,
    since: Instant,
}

/// The election state a candidate keeps between reads of the Lease.
#[derive(Debug)]
pub(super) struct Observer {
    identity: String,
    lease_duration: Duration,
    last: Option<Observation>,
}

impl Observer {
    pub fn new(identity: impl Into<String>, lease_duration: Duration) -> Self {
        Self {
            identity: identity.into(),
            lease_duration,
            last: None,
        }
    }

    /// Decides on `record`, read (its answer received) at `now`.
    pub fn observe(&mut self, record: &Record, now: Instant) -> Decision {
        let since = match &self.last {
            Some(last) if last.resource_version == record.resource_version => last.since,
            _ => {
                self.last = Some(Observation {
                    resource_version: record.resource_version.clone(),
                    since: now,
                });
                now
            }
        };
        let holder = match record.holder.as_deref() {
            None => return Decision::Acquire,
            Some(holder) if holder == self.identity => return Decision::Renew,
            Some(holder) => holder.to_string(),
        };
        // The holder's own duration, if longer than ours, within bounds.
        let valid_for = record
            .duration
            .unwrap_or_default()
            .min(LONGEST_LEASE)
            .max(self.lease_duration);
        let expires = since + valid_for;
        if now >= expires {
            Decision::TakeOver { holder }
        } else {
            Decision::Wait { holder, expires }
        }
    }

    /// This host wrote the record, so the version it saw is gone; the next
    /// read starts a new observation.
    pub fn wrote(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(version: &str, holder: Option<&str>) -> Record {
        Record {
            resource_version: version.into(),
            holder: holder.map(Into::into),
            duration: Some(Duration::from_secs(15)),
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_free_lease_is_acquired_and_our_own_is_renewed() {
        let t0 = Instant::now();
        let mut observer = Observer::new("me", secs(15));
        assert_eq!(observer.observe(&record("1", None), t0), Decision::Acquire);
        assert_eq!(
            observer.observe(&record("2", Some("me")), t0),
            Decision::Renew
        );
    }

    #[test]
    fn another_holder_is_trusted_until_its_record_stood_still_for_a_lease_duration() {
        let t0 = Instant::now();
        let mut observer = Observer::new("me", secs(15));
        let held = record("7", Some("other"));
        let wait = Decision::Wait {
            holder: "other".into(),
            expires: t0 + secs(15),
        };
        assert_eq!(observer.observe(&held, t0), wait);
        assert_eq!(observer.observe(&held, t0 + secs(14)), wait);
        assert_eq!(
            observer.observe(&held, t0 + secs(15)),
            Decision::TakeOver {
                holder: "other".into()
            }
        );
    }

    #[test]
    fn a_renewal_restarts_the_wait_whatever_times_the_record_names() {
        // The renewTime the holder writes is never read: a holder whose
        // clock is hours behind is still trusted while its record changes.
        let t0 = Instant::now();
        let mut observer = Observer::new("me", secs(15));
        observer.observe(&record("7", Some("other")), t0);
        assert_eq!(
            observer.observe(&record("8", Some("other")), t0 + secs(10)),
            Decision::Wait {
                holder: "other".into(),
                expires: t0 + secs(25),
            }
        );
        assert!(matches!(
            observer.observe(&record("8", Some("other")), t0 + secs(24)),
            Decision::Wait { .. }
        ));
        assert!(matches!(
            observer.observe(&record("8", Some("other")), t0 + secs(25)),
            Decision::TakeOver { .. }
        ));
    }

    #[test]
    fn the_first_read_of_a_record_is_never_old_enough_to_take() {
        // A host that starts (or restarts) next to a leader waits a whole
        // lease duration, even if the record claims a renewal long ago.
        let t0 = Instant::now() + secs(3600);
        let mut observer = Observer::new("me", secs(15));
        assert!(matches!(
            observer.observe(&record("7", Some("other")), t0),
            Decision::Wait { .. }
        ));
    }

    #[test]
    fn the_longer_of_both_durations_counts_within_bounds() {
        let t0 = Instant::now();
        let mut observer = Observer::new("me", secs(6));
        let mut long = record("7", Some("other"));
        long.duration = Some(secs(20));
        assert_eq!(
            observer.observe(&long, t0),
            Decision::Wait {
                holder: "other".into(),
                expires: t0 + secs(20)
            }
        );
        let mut short = record("8", Some("other"));
        short.duration = Some(secs(1));
        assert_eq!(
            observer.observe(&short, t0),
            Decision::Wait {
                holder: "other".into(),
                expires: t0 + secs(6)
            }
        );
        let mut hostile = record("9", Some("other"));
        hostile.duration = Some(Duration::from_secs(u64::from(u32::MAX)));
        assert_eq!(
            observer.observe(&hostile, t0),
            Decision::Wait {
                holder: "other".into(),
                expires: t0 + LONGEST_LEASE
            }
        );
    }

    #[test]
    fn after_our_own_write_the_next_version_is_observed_afresh() {
        let t0 = Instant::now();
        let mut observer = Observer::new("me", secs(15));
        observer.observe(&record("7", Some("other")), t0);
        observer.wrote();
        // The same version read again (our write failed and nothing
        // changed) counts from now on, not from the first read.
        assert_eq!(
            observer.observe(&record("7", Some("other")), t0 + secs(20)),
            Decision::Wait {
                holder: "other".into(),
                expires: t0 + secs(35)
            }
        );
    }
}
