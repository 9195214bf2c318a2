//! Scope lifecycle: idle clocks and expiry of unused rooms.

use super::{Hub, Timer};
use crate::scope_path::ScopePath;
use crate::time::Instant;

impl Hub {
    /// Starts or stops a scope's idle clock after its use changed.
    pub(super) fn refresh_scope(&mut self, now: Instant, path: &ScopePath) {
        if path.is_app() {
            return;
        }
        let room_idle = self.config.room_idle;
        let Some(scope) = self.scopes.get_mut(path) else {
            return;
        };
        if scope.in_use() {
            scope.idle_since = None;
        } else if scope.idle_since.is_none() {
            scope.idle_since = Some(now);
            self.timers
                .insert((now + room_idle, Timer::Scope(path.clone())));
        }
    }

    pub(super) fn has_children(&self, path: &ScopePath) -> bool {
        self.scopes
            .range(path.clone()..)
            .skip(1)
            .take_while(|(p, _)| p.as_str().starts_with(path.as_str()))
            .any(|(p, _)| p.is_within(path))
    }

    pub(super) fn check_scope_expiry(&mut self, now: Instant, path: &ScopePath) {
        let Some(scope) = self.scopes.get(path) else {
            return;
        };
        let Some(since) = scope.idle_since else {
            return;
        };
        if scope.in_use() || self.has_children(path) {
            return; // re-armed when it becomes unused / its last child goes
        }
        if self.cluster.is_some() && !scope.objects.is_empty() {
            // Every node keeps its replica of the objects (docs/cluster.md).
            return;
        }
        if self.remote_in_use(path) {
            // In use on another node: re-armed when its presence lets go
            // (`set_remote_rooms`).
            return;
        }
        let due = since + self.config.room_idle;
        if due > now {
            self.timers.insert((due, Timer::Scope(path.clone())));
            return;
        }
        self.scopes.remove(path);
        if let Some(parent) = path.parent()
            && let Some(p) = self.scopes.get(&parent)
            && let Some(since) = p.idle_since
        {
            let due = (since + self.config.room_idle).max(now);
            self.timers.insert((due, Timer::Scope(parent)));
        }
    }
}
