//! Fairness for the queue: ready keys wait in one FIFO per group, and groups
//! take turns, one key each, so a group with many ready keys cannot starve a
//! group with one.

use std::collections::{HashMap, VecDeque};

use super::QueueKey;

/// Ready keys, one FIFO per group, groups served round-robin.
pub(super) struct Fair<K: QueueKey> {
    queues: HashMap<K::Group, VecDeque<K>>,
    rotation: VecDeque<K::Group>,
}

impl<K: QueueKey> Default for Fair<K> {
    fn default() -> Self {
        Self {
            queues: HashMap::new(),
            rotation: VecDeque::new(),
        }
    }
}

impl<K: QueueKey> Fair<K> {
    pub(super) fn is_empty(&self) -> bool {
        self.rotation.is_empty()
    }

    pub(super) fn push(&mut self, key: K) {
        let queue = self.queues.entry(key.group().clone()).or_default();
        if queue.is_empty() {
            self.rotation.push_back(key.group().clone());
        }
        queue.push_back(key);
    }

    pub(super) fn pop(&mut self) -> Option<K> {
        let group = self.rotation.pop_front()?;
        let queue = self.queues.get_mut(&group)?;
        let key = queue.pop_front();
        if queue.is_empty() {
            self.queues.remove(&group);
        } else {
            self.rotation.push_back(group);
        }
        key
    }

    pub(super) fn remove(&mut self, key: &K) {
        if let Some(queue) = self.queues.get_mut(key.group()) {
            queue.retain(|k| k != key);
            if queue.is_empty() {
                self.remove_group(key.group());
            }
        }
    }

    pub(super) fn remove_group(&mut self, group: &K::Group) {
        self.queues.remove(group);
        self.rotation.retain(|g| g != group);
    }
}
