//! The consistent hash ring that assigns keys to live replicas.
//!
//! A key is a namespace (namespaced objects) or a name (cluster-scoped
//! objects), hashed with 64-bit FNV-1a (the hash the API server's
//! `shardRange()` selector applies, KEP-5866) and then MurmurHash3's 64-bit
//! finalizer: FNV-1a's high bits barely change with a key's last characters,
//! so `bench-01`..`bench-99` would crowd onto a few arcs. (Server-side
//! filtering by `shardRange` would need ranges of the raw hash; not used
//! yet.) Each member places
//! [`POINTS`] points on the ring (the hash of `<id>#<i>`); a key belongs to
//! the member of the first point after its hash, wrapping around. A member
//! that joins takes only the arcs before its own points, about `1/n` of the
//! keys; one that leaves hands its arcs to the members after them.

use std::collections::BTreeSet;
use std::sync::Arc;

/// Points each member places on the ring: with 3 members each share of
/// 10,000 namespaces came within 6 % of a third (the unit test below; 64
/// points gave 28-37 %).
pub const POINTS: usize = 128;

/// A replica's identity on the ring.
pub type MemberId = Arc<str>;

/// A key's place on the ring: [`fnv1a`] mixed by MurmurHash3's finalizer
/// (a bijection, so distinct FNV hashes stay distinct).
pub fn shard_hash(key: &str) -> u64 {
    let mut h = fnv1a(key);
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// 64-bit FNV-1a over the bytes of `key`.
pub fn fnv1a(key: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    key.bytes().fold(OFFSET, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    })
}

/// The hash of an object's shard key: its namespace, or its name when it
/// is cluster-scoped (so Namespace `a` goes with everything in `a`).
pub fn key_hash(namespace: Option<&str>, name: &str) -> u64 {
    shard_hash(namespace.unwrap_or(name))
}

/// A ring over one set of members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ring {
    /// Sorted by hash; ties (practically never) broken by member id.
    points: Vec<(u64, MemberId)>,
}

impl Ring {
    /// The ring of `members` (empty: every key is unowned).
    pub fn new<'a>(members: impl IntoIterator<Item = &'a MemberId>) -> Self {
        let members: BTreeSet<&MemberId> = members.into_iter().collect();
        let mut points: Vec<(u64, MemberId)> = members
            .into_iter()
            .flat_map(|m| (0..POINTS).map(move |i| (shard_hash(&format!("{m}#{i}")), m.clone())))
            .collect();
        points.sort();
        Self { points }
    }

    /// The member that owns `hash`, `None` on an empty ring.
    pub fn owner(&self, hash: u64) -> Option<&MemberId> {
        let at = self.points.partition_point(|(point, _)| *point <= hash);
        self.points
            .get(at)
            .or_else(|| self.points.first())
            .map(|(_, member)| member)
    }

    /// The members placed on the ring.
    pub fn members(&self) -> impl Iterator<Item = &MemberId> {
        let mut seen = std::collections::BTreeSet::new();
        self.points
            .iter()
            .map(|(_, m)| m)
            .filter(move |m| seen.insert(*m))
    }

    /// Whether `member` is placed on the ring.
    pub fn has_member(&self, member: &str) -> bool {
        self.points.iter().any(|(_, m)| &**m == member)
    }

    /// Whether `member` owns `hash`.
    pub fn owns(&self, member: &str, hash: u64) -> bool {
        self.owner(hash).is_some_and(|owner| &**owner == member)
    }

    /// The fraction of the hash space `member` owns (0 to 1).
    pub fn share(&self, member: &str) -> f64 {
        let Some(last) = self.points.last() else {
            return 0.0;
        };
        // The arc before each point belongs to that point's member; the
        // first point also takes the arc after the last one.
        let mut previous = last.0;
        let mut owned: u128 = 0;
        for (point, owner) in &self.points {
            let arc = u128::from(point.wrapping_sub(previous));
            if &**owner == member {
                owned += arc;
            }
            previous = *point;
        }
        owned as f64 / 2f64.powi(64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(names: &[&str]) -> Vec<MemberId> {
        names.iter().map(|n| MemberId::from(*n)).collect()
    }

    fn keys() -> Vec<u64> {
        (0..10_000)
            .map(|i| shard_hash(&format!("namespace-{i}")))
            .collect()
    }

    #[test]
    fn the_hash_is_fnv_1a_64_mixed() {
        // The reference values of the FNV specification.
        assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a("foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(key_hash(Some("ns"), "x"), shard_hash("ns"));
        assert_eq!(key_hash(None, "ns"), shard_hash("ns"));
    }

    #[test]
    fn every_key_has_one_owner_and_an_empty_ring_none() {
        let ring = Ring::new(&members(&["a", "b", "c"]));
        for key in keys() {
            let owner = ring.owner(key).unwrap();
            assert!(ring.owns(owner, key));
            let others = ["a", "b", "c"].iter().filter(|m| ring.owns(m, key)).count();
            assert_eq!(others, 1);
        }
        assert_eq!(Ring::new(&[]).owner(42), None);
        assert!(!Ring::new(&[]).owns("a", 42));
        assert_eq!(Ring::new(&members(&["a"])).share("a"), 1.0);
    }

    #[test]
    fn a_join_moves_only_the_joiners_share_and_a_leave_only_the_leavers() {
        let ids = [
            "host-1-1a2b3c4d",
            "host-2-9f8e7d6c",
            "host-3-00ff00ff",
            "host-4-c0ffee00",
        ];
        let keys = keys();
        for n in 1..ids.len() {
            let before = Ring::new(&members(&ids[..n]));
            let after = Ring::new(&members(&ids[..=n]));
            let mut moved = 0;
            for &key in &keys {
                let (old, new) = (before.owner(key).unwrap(), after.owner(key).unwrap());
                if old != new {
                    // Every key that moves goes to the joiner.
                    assert_eq!(&**new, ids[n]);
                    moved += 1;
                }
            }
            let fraction = f64::from(moved) / keys.len() as f64;
            let ideal = 1.0 / (n + 1) as f64;
            println!(
                "{n} -> {} members: {:.1} % of keys moved (ideal {:.1} %)",
                n + 1,
                fraction * 100.0,
                ideal * 100.0
            );
            assert!(
                (fraction - ideal).abs() < ideal * 0.35,
                "moved {fraction}, ideal {ideal}"
            );
            // Leaving is the same change backwards: only the leaver's keys move.
            for &key in &keys {
                if after.owner(key).unwrap().as_ref() != ids[n] {
                    assert_eq!(before.owner(key), after.owner(key));
                }
            }
        }
    }

    #[test]
    fn three_members_share_the_keys_and_the_space_evenly() {
        let ring = Ring::new(&members(&[
            "host-1-1a2b3c4d",
            "host-2-9f8e7d6c",
            "host-3-00ff00ff",
        ]));
        let keys = keys();
        let mut total = 0.0;
        for member in ["host-1-1a2b3c4d", "host-2-9f8e7d6c", "host-3-00ff00ff"] {
            let owned = keys.iter().filter(|&&k| ring.owns(member, k)).count();
            let share = ring.share(member);
            total += share;
            println!(
                "{member}: {owned} of {} keys, {:.1} % of the hash space",
                keys.len(),
                share * 100.0
            );
            assert!((owned as f64 / keys.len() as f64 - 1.0 / 3.0).abs() < 0.07);
            assert!((share - owned as f64 / keys.len() as f64).abs() < 0.03);
        }
        assert!((total - 1.0).abs() < 1e-9, "{total}");
    }
}
