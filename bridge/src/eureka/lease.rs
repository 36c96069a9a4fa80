//! A lease: one registered instance plus the timestamps that decide when it expires.
//!
//! Deliberate difference from Netflix `Lease`: there `renew()` stores `now + duration` and
//! `isExpired()` adds `duration` again, so a renewed lease really lives 2 × duration (a documented,
//! never-fixed bug). Here a lease expires `duration` after its last renewal, as the config says.

use super::instance::{DEFAULT_DURATION_SECS, DEFAULT_RENEWAL_INTERVAL_SECS, Instance, LeaseInfo};

/// A registered instance and its lease clock (epoch milliseconds).
#[derive(Debug, Clone)]
pub struct Lease {
    /// The instance as registered (status possibly changed by overrides).
    pub instance: Instance,
    /// When the lease was created.
    pub registration: u64,
    /// Last renewal (creation counts as one).
    pub last_renewal: u64,
    /// When it was cancelled (0 while alive).
    pub eviction: u64,
    /// First time the instance was seen UP under this lease (0 if never).
    pub service_up: u64,
    /// Lease length in milliseconds.
    pub duration_ms: u64,
}

impl Lease {
    /// A new lease created at `now`. The duration comes from the client's `leaseInfo.durationInSecs`
    /// when positive, else 90 s (`PeerAwareInstanceRegistryImpl.register`).
    pub fn new(instance: Instance, now: u64) -> Self {
        let secs = instance
            .lease
            .map(|l| l.duration_secs)
            .filter(|s| *s > 0)
            .unwrap_or(DEFAULT_DURATION_SECS);
        Self {
            instance,
            registration: now,
            last_renewal: now,
            eviction: 0,
            service_up: 0,
            duration_ms: u64::from(secs) * 1000,
        }
    }

    /// Records a heartbeat.
    pub fn renew(&mut self, now: u64) {
        self.last_renewal = now;
    }

    /// Marks the instance UP the first time only.
    pub fn service_up(&mut self, now: u64) {
        if self.service_up == 0 {
            self.service_up = now;
        }
    }

    /// Marks the lease cancelled.
    pub fn cancel(&mut self, now: u64) {
        if self.eviction == 0 {
            self.eviction = now;
        }
    }

    /// Whether the lease ran out at `now` (cancelled leases count as expired).
    pub fn is_expired(&self, now: u64) -> bool {
        self.eviction > 0 || now > self.last_renewal.saturating_add(self.duration_ms)
    }

    /// The instance as served to clients: `leaseInfo` filled from this lease, like the Java
    /// server's `decorateInstanceInfo` (client-sent timestamps are ignored).
    pub fn decorated(&self) -> Instance {
        let mut i = self.instance.clone();
        let client = i.lease.unwrap_or_default();
        i.lease = Some(LeaseInfo {
            renewal_interval_secs: if client.renewal_interval_secs > 0 {
                client.renewal_interval_secs
            } else {
                DEFAULT_RENEWAL_INTERVAL_SECS
            },
            duration_secs: u32::try_from(self.duration_ms / 1000).unwrap_or(u32::MAX),
            registration_timestamp: self.registration,
            last_renewal_timestamp: self.last_renewal,
            eviction_timestamp: self.eviction,
            service_up_timestamp: self.service_up,
        });
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_comes_from_client_lease_info() {
        let mut inst = Instance::default();
        assert_eq!(Lease::new(inst.clone(), 0).duration_ms, 90_000);
        inst.lease = Some(LeaseInfo {
            duration_secs: 10,
            ..LeaseInfo::default()
        });
        let mut lease = Lease::new(inst, 1_000);
        assert_eq!(lease.duration_ms, 10_000);
        assert!(!lease.is_expired(11_000));
        assert!(lease.is_expired(11_001));
        lease.renew(11_000);
        assert!(!lease.is_expired(21_000));
        assert!(lease.is_expired(21_001));
        lease.cancel(5);
        assert!(lease.is_expired(0));
    }

    #[test]
    fn decorated_fills_server_timestamps() {
        let mut lease = Lease::new(Instance::default(), 100);
        lease.service_up(150);
        lease.service_up(999);
        lease.renew(200);
        let l = lease.decorated().lease.expect("lease info");
        assert_eq!(
            (
                l.registration_timestamp,
                l.last_renewal_timestamp,
                l.service_up_timestamp
            ),
            (100, 200, 150)
        );
        assert_eq!((l.renewal_interval_secs, l.duration_secs), (30, 90));
    }
}
