//! Shared-object operations: use, release, batches, sends, persistence.

use super::request::{ConnId, SoChange, SoOp, SoUpdate};
use super::shared_object::{SharedObject, SoLimits, status, status_update};
use super::store::{StoreError, StoredObject};
use super::{Decision, Hub, HubError, HubEvent, SoAccess, Timer};
use crate::cluster::SoMessageOp;
use crate::scope_path::{ScopePath, validate_segment};
use crate::time::Instant;
use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

impl Hub {
    pub(super) fn object_mut(
        &mut self,
        scope: &ScopePath,
        name: &str,
    ) -> Option<&mut SharedObject> {
        self.scopes.get_mut(scope)?.objects.get_mut(name)
    }

    pub(super) fn refuse_so(
        &mut self,
        conn: ConnId,
        name: &str,
        persistent: bool,
        code: &'static str,
        why: String,
    ) {
        let version = self
            .conns
            .get(&conn)
            .and_then(|c| c.scope.as_ref())
            .and_then(|s| self.scopes.get(s))
            .and_then(|s| s.objects.get(name))
            .map_or(0, SharedObject::version);
        let update = status_update(name, persistent, version, code);
        self.mail.deliver_update(conn, &update);
        self.mail.events.push_back(HubEvent::Refused {
            conn,
            reason: format!("shared object {name:?}: {why}"),
        });
    }

    pub(super) fn shared_object(
        &mut self,
        now: Instant,
        conn: ConnId,
        scope: &ScopePath,
        name: String,
        persistent: bool,
        op: SoOp,
    ) {
        if let Err(e) = validate_segment(&name) {
            let code = status::OBJECT_CREATION_FAILED;
            return self.refuse_so(conn, &name, persistent, code, format!("{e}"));
        }
        let subscribed = self
            .conns
            .get(&conn)
            .is_some_and(|c| c.objects.contains(&name));
        match op {
            SoOp::Use => self.use_object(now, conn, scope, &name, persistent),
            SoOp::Release => {
                if subscribed {
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.objects.retain(|o| *o != name);
                    }
                    self.release_object(now, scope, &name, conn);
                }
            }
            SoOp::Batch(changes) => {
                if let Err((code, why)) =
                    self.check_write(conn, scope, &name, persistent, subscribed)
                {
                    return self.refuse_so(conn, &name, persistent, code, why);
                }
                if self.cluster.is_some() {
                    return self.propose_batch(conn, scope, &name, persistent, changes);
                }
                let limits = self.config.shared_objects;
                if let Err(e) = self.apply_batch(scope, &name, Some(conn), changes, &limits) {
                    let why = format!("{e}");
                    self.refuse_so(conn, &name, persistent, status::NO_WRITE_ACCESS, why);
                }
            }
            SoOp::Send { method, args } => {
                if let Err((code, why)) =
                    self.check_write(conn, scope, &name, persistent, subscribed)
                {
                    return self.refuse_so(conn, &name, persistent, code, why);
                }
                if self.cluster.is_some() {
                    let op = SoMessageOp::Send { method, args };
                    if let Err(why) = self.propose_so(Some(conn), scope, &name, persistent, op) {
                        let code = status::NO_WRITE_ACCESS;
                        self.refuse_so(conn, &name, persistent, code, why);
                    }
                    return;
                }
                if let Some(so) = self.scopes.get(scope).and_then(|s| s.objects.get(&name)) {
                    let update = so.message(method, args);
                    self.broadcast(scope, &name, &update, None);
                }
            }
        }
    }

    pub(super) fn check_write(
        &mut self,
        conn: ConnId,
        scope: &ScopePath,
        name: &str,
        persistent: bool,
        subscribed: bool,
    ) -> Result<(), (&'static str, String)> {
        if !subscribed {
            return Err((
                status::NO_WRITE_ACCESS,
                "not in use by this client".to_owned(),
            ));
        }
        let so_persistent = self
            .scopes
            .get(scope)
            .and_then(|s| s.objects.get(name))
            .map(SharedObject::is_persistent);
        if so_persistent != Some(persistent) {
            return Err((
                status::BAD_PERSISTENCE,
                "persistence flag mismatch".to_owned(),
            ));
        }
        match self
            .app
            .on_shared_object(conn, scope, name, SoAccess::Write)
        {
            Decision::Accept => Ok(()),
            Decision::Reject(why) => Err((status::NO_WRITE_ACCESS, why)),
        }
    }

    pub(super) fn use_object(
        &mut self,
        now: Instant,
        conn: ConnId,
        scope: &ScopePath,
        name: &str,
        persistent: bool,
    ) {
        let exists = self
            .scopes
            .get(scope)
            .and_then(|s| s.objects.get(name))
            .map(SharedObject::is_persistent);
        match exists {
            Some(existing) if existing != persistent => {
                let why = "persistence flag mismatch".to_owned();
                return self.refuse_so(conn, name, persistent, status::BAD_PERSISTENCE, why);
            }
            Some(_) => {}
            None => {
                if let Err((code, why)) = self.create_object(conn, scope, name, persistent) {
                    return self.refuse_so(conn, name, persistent, code, why);
                }
            }
        }
        if let Decision::Reject(why) = self.app.on_shared_object(conn, scope, name, SoAccess::Read)
        {
            return self.refuse_so(conn, name, persistent, status::NO_READ_ACCESS, why);
        }
        let Some(so) = self.object_mut(scope, name) else {
            return;
        };
        let update = so.subscribe(conn);
        if let Some(c) = self.conns.get_mut(&conn)
            && !c.objects.iter().any(|o| o == name)
        {
            c.objects.push(name.to_owned());
        }
        self.mail.deliver_update(conn, &update);
        self.refresh_scope(now, scope);
    }

    /// Creates (or loads) an object for a client's first use.
    pub(super) fn create_object(
        &mut self,
        conn: ConnId,
        scope: &ScopePath,
        name: &str,
        persistent: bool,
    ) -> Result<(), (&'static str, String)> {
        let count = self.scopes.get(scope).map_or(0, |s| s.objects.len());
        if count >= self.config.shared_objects.max_per_scope {
            return Err((
                status::OBJECT_CREATION_FAILED,
                format!(
                    "scope has {} shared objects already",
                    self.config.shared_objects.max_per_scope
                ),
            ));
        }
        if let Decision::Reject(why) =
            self.app
                .on_shared_object(conn, scope, name, SoAccess::Create)
        {
            return Err((status::OBJECT_CREATION_FAILED, why));
        }
        let so = self
            .instantiate(scope, name, persistent)
            .map_err(|e| (status::OBJECT_CREATION_FAILED, format!("{e}")))?;
        if let Some(s) = self.scopes.get_mut(scope) {
            s.objects.insert(name.to_owned(), so);
        }
        Ok(())
    }

    /// A new transient object, or a persistent one loaded from the store.
    pub(super) fn instantiate(
        &mut self,
        scope: &ScopePath,
        name: &str,
        persistent: bool,
    ) -> Result<SharedObject, StoreError> {
        if !persistent || self.cluster.is_some() {
            // Clustered, the replica is filled by the sequenced messages.
            return Ok(SharedObject::new(name.to_owned(), persistent));
        }
        match self.store.load(scope, name) {
            Ok(Some(stored)) => Ok(SharedObject::restored(
                name.to_owned(),
                stored.version,
                stored.data,
            )),
            Ok(None) => Ok(SharedObject::new(name.to_owned(), true)),
            Err(error) => {
                self.mail.events.push_back(HubEvent::StoreFailed {
                    scope: scope.clone(),
                    name: name.to_owned(),
                    error: error.clone(),
                });
                Err(error)
            }
        }
    }

    /// Makes sure a server-side operation has an object to work on.
    pub(super) fn server_object(
        &mut self,
        now: Instant,
        scope: &ScopePath,
        name: &str,
        persistent: bool,
    ) -> Result<(), HubError> {
        validate_segment(name).map_err(HubError::BadName)?;
        let app = ScopePath::app(scope.app_name()).map_err(HubError::BadName)?;
        if !self.scopes.contains_key(&app) {
            return Err(HubError::UnknownApp(scope.app_name().to_owned()));
        }
        self.create_scope(now, scope);
        match self
            .scopes
            .get(scope)
            .and_then(|s| s.objects.get(name))
            .map(SharedObject::is_persistent)
        {
            Some(p) if p != persistent => Err(HubError::BadPersistence),
            Some(_) => Ok(()),
            None => {
                let so = self
                    .instantiate(scope, name, persistent)
                    .map_err(HubError::Store)?;
                if let Some(s) = self.scopes.get_mut(scope) {
                    s.objects.insert(name.to_owned(), so);
                }
                self.arm_object_timer(now, scope, name);
                Ok(())
            }
        }
    }

    /// Checks, applies, stores and fans out one batch. `writer` gets the
    /// writer's notices (successes); everyone else the changes.
    pub(super) fn apply_batch(
        &mut self,
        scope: &ScopePath,
        name: &str,
        writer: Option<ConnId>,
        changes: Vec<SoChange>,
        limits: &SoLimits,
    ) -> Result<u32, HubError> {
        let Some(so) = self.object_mut(scope, name) else {
            return Err(HubError::BadPersistence);
        };
        so.check_batch(&changes, limits)
            .map_err(|e| HubError::Limit(format!("{e}")))?;
        let backup = so.is_persistent().then(|| so.clone());
        let notices = so.apply_batch(changes);
        let version = so.version();
        if let Some(backup) = backup
            && let Err(e) = self.save(scope, name)
        {
            if let Some(so) = self.object_mut(scope, name) {
                *so = backup;
            }
            return Err(HubError::Store(e));
        }
        if let Some(writer) = writer {
            self.mail.deliver_update(writer, &notices.writer);
        }
        self.broadcast(scope, name, &notices.others, writer);
        Ok(version)
    }

    pub(super) fn save(&mut self, scope: &ScopePath, name: &str) -> Result<(), StoreError> {
        if self.cluster.is_some() {
            return Ok(()); // the cluster's log is the record
        }
        let Some(so) = self.scopes.get(scope).and_then(|s| s.objects.get(name)) else {
            return Ok(());
        };
        let stored = StoredObject {
            version: so.version(),
            data: so.data().clone(),
        };
        self.store.save(scope, name, &stored).inspect_err(|error| {
            self.mail.events.push_back(HubEvent::StoreFailed {
                scope: scope.clone(),
                name: name.to_owned(),
                error: error.clone(),
            });
        })
    }

    /// Queues `update` to every subscriber except `skip`, in subscription order.
    pub(super) fn broadcast(
        &mut self,
        scope: &ScopePath,
        name: &str,
        update: &Arc<SoUpdate>,
        skip: Option<ConnId>,
    ) {
        let Some(so) = self.scopes.get(scope).and_then(|s| s.objects.get(name)) else {
            return;
        };
        for &subscriber in so.subscribers() {
            if Some(subscriber) != skip {
                self.mail.deliver_update(subscriber, update);
            }
        }
    }

    pub(super) fn release_object(
        &mut self,
        now: Instant,
        scope: &ScopePath,
        name: &str,
        conn: ConnId,
    ) {
        let Some(so) = self.object_mut(scope, name) else {
            return;
        };
        so.unsubscribe(conn);
        if so.subscribers().is_empty() {
            self.arm_object_timer(now, scope, name);
        }
        self.refresh_scope(now, scope);
    }

    pub(super) fn arm_object_timer(&mut self, now: Instant, scope: &ScopePath, name: &str) {
        self.timers.insert((
            now + self.config.room_idle,
            Timer::Object(scope.clone(), name.to_owned()),
        ));
    }

    pub(super) fn check_object_expiry(&mut self, now: Instant, scope: &ScopePath, name: &str) {
        if self.cluster.is_some() {
            return; // every node keeps its replica (docs/cluster.md)
        }
        let Some(s) = self.scopes.get_mut(scope) else {
            return;
        };
        if s.objects
            .get(name)
            .is_some_and(|o| o.subscribers().is_empty())
        {
            // Transient objects vanish; persistent ones are already stored.
            s.objects.remove(name);
        }
        self.refresh_scope(now, scope);
    }
}
