//! The seal table: every seal and pin, and the one function that decides
//! whether an extent-map change proceeds, waits or is refused.
//!
//! Seals are kept per inode (`HashMap<Ino, Vec<Seal>>`, an inode without
//! seals has no entry, so the write path pays one hash lookup), with indexes
//! per holder and per user so that `release` on every close and the limits
//! cost nothing for handles that hold no seal, and an ordered set of recall
//! deadlines. Nothing is keyed by process id: a seal belongs to its holder
//! (an open file description), which outlives the process that took it. It must not do I/O, read a clock or notify anyone:
//! recalls, revocations and releases are returned to the caller.

use std::collections::{BTreeSet, HashMap};

use crate::{
    Access, ByteRange, Change, ChangeKind, Config, Decision, HolderId, Ino, Pid, Recall, Revoked,
    SealError, SealId, SealInfo, SealKind, SealState, Stats, Uid,
};

/// One held seal (the inode is the key it is stored under).
#[derive(Clone, Copy, Debug)]
struct Seal {
    id: SealId,
    holder: HolderId,
    pid: Pid,
    uid: Uid,
    kind: SealKind,
    range: ByteRange,
    since: u64,
    state: SealState,
}

impl Seal {
    fn info(&self, ino: Ino) -> SealInfo {
        SealInfo {
            id: self.id,
            ino,
            kind: self.kind,
            range: self.range,
            holder: self.holder,
            pid: self.pid,
            uid: self.uid,
            since: self.since,
            state: self.state,
        }
    }
}

/// Per-holder index. Present while the holder has seals or is revoked.
#[derive(Debug, Default)]
struct HolderEntry {
    /// Number of this holder's seals per inode.
    inos: HashMap<Ino, usize>,
    /// Sum of `inos` values, for the `max_seals_per_holder` check.
    total: usize,
    /// A seal of this holder was revoked; sticky until `release_holder`.
    revoked: bool,
}

fn inc(map: &mut HashMap<Ino, usize>, ino: Ino) {
    let n = map.entry(ino).or_insert(0);
    *n = n.saturating_add(1);
}

fn dec(map: &mut HashMap<Ino, usize>, ino: Ino) {
    if let Some(n) = map.get_mut(&ino) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(&ino);
        }
    }
}

/// All seals and mapping pins of a mounted filesystem.
///
/// Holders are open file descriptions (FUSE file handles). A holder may hold
/// many seals, on different ranges or the same range twice (each is its own
/// seal). When one of a holder's seals is revoked the holder is *fenced*:
/// every later [`seal`](Self::seal), [`unseal`](Self::unseal) and
/// [`unseal_id`](Self::unseal_id) call by it fails with
/// [`SealError::Revoked`] (`ENOLINK`) and changes nothing, until
/// [`release_holder`](Self::release_holder) (last close). Its other seals stay
/// in force until then (or until they are recalled and revoked in turn).
#[derive(Debug)]
pub struct SealTable {
    cfg: Config,
    next_id: u64,
    by_ino: HashMap<Ino, Vec<Seal>>,
    holders: HashMap<HolderId, HolderEntry>,
    /// Seals per user, for the `max_seals_per_user` check. Present while the
    /// user holds seals.
    users: HashMap<Uid, usize>,
    /// Recalled seals ordered by deadline: `(deadline, id, ino)`.
    deadlines: BTreeSet<(u64, SealId, Ino)>,
    seals: u64,
    pins: u64,
    recalls: u64,
    revocations: u64,
}

impl SealTable {
    /// An empty table.
    pub fn new(cfg: Config) -> Self {
        SealTable {
            cfg,
            next_id: 1,
            by_ino: HashMap::new(),
            holders: HashMap::new(),
            users: HashMap::new(),
            deadlines: BTreeSet::new(),
            seals: 0,
            pins: 0,
            recalls: 0,
            revocations: 0,
        }
    }

    /// The configuration the table was created with.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Takes a seal of `kind` over `range` of `ino` for `holder`, on behalf of
    /// process `pid` of user `uid`, at time `now`.
    ///
    /// Errors, checked in this order:
    /// - [`SealError::Revoked`] (`ENOLINK`): the holder has been fenced.
    /// - [`SealError::BadAccess`] (`EBADF`): a temporary seal without write
    ///   access, or a breakable seal or pin without read access.
    /// - [`SealError::Invalid`] (`EINVAL`): `range.start >= range.end`.
    /// - [`SealError::RecallPending`] (`EBUSY`): some seal on `ino` is being
    ///   recalled; a new seal would let the waiting change starve.
    /// - [`SealError::TooMany`] (`ENOLCK`): `holder` already holds
    ///   `max_seals_per_holder` seals, or `uid` `max_seals_per_user` (all
    ///   kinds count). The pid is not counted: it may exit while the holder
    ///   lives on (a forked child), and be reused by another process.
    ///
    /// Seals never conflict with each other. A failed call changes nothing.
    #[allow(clippy::too_many_arguments)]
    pub fn seal(
        &mut self,
        ino: Ino,
        holder: HolderId,
        pid: Pid,
        uid: Uid,
        kind: SealKind,
        range: ByteRange,
        access: Access,
        now: u64,
    ) -> Result<SealId, SealError> {
        self.take(ino, holder, pid, uid, kind, range, access, now, false)
            .map(|(id, _)| id)
    }

    /// Takes a seal as [`seal`](Self::seal) does and, in the same step, removes
    /// every temporary and breakable seal `holder` already holds on `ino`,
    /// whatever its range or state (its mapping pins stay): a seal that
    /// *replaces* the holder's previous ones, so that moving a seal costs one
    /// call. Returns the new seal and the removed ones, oldest first.
    ///
    /// The errors and their order are [`seal`](Self::seal)'s, and a failed
    /// call changes nothing: the old seals stay. Two rules see the replaced
    /// seals: [`SealError::RecallPending`] counts them too (a recalled holder
    /// gives its seal back, it does not swap it for a fresh one the waiting
    /// change would have to recall again), and the limits count them as
    /// already gone (a holder at `max_seals_per_holder` can move its seals).
    #[allow(clippy::too_many_arguments)]
    pub fn replace(
        &mut self,
        ino: Ino,
        holder: HolderId,
        pid: Pid,
        uid: Uid,
        kind: SealKind,
        range: ByteRange,
        access: Access,
        now: u64,
    ) -> Result<(SealId, Vec<SealInfo>), SealError> {
        self.take(ino, holder, pid, uid, kind, range, access, now, true)
    }

    /// [`seal`](Self::seal), and with `replace` [`replace`](Self::replace).
    #[allow(clippy::too_many_arguments)]
    fn take(
        &mut self,
        ino: Ino,
        holder: HolderId,
        pid: Pid,
        uid: Uid,
        kind: SealKind,
        range: ByteRange,
        access: Access,
        now: u64,
        replace: bool,
    ) -> Result<(SealId, Vec<SealInfo>), SealError> {
        if self.is_revoked(holder) {
            return Err(SealError::Revoked);
        }
        let allowed = match kind {
            SealKind::Temporary => access.write,
            SealKind::Breakable | SealKind::MappingPin => access.read,
        };
        if !allowed {
            return Err(SealError::BadAccess);
        }
        if range.is_empty() {
            return Err(SealError::Invalid);
        }
        let replaced = |s: &Seal| replace && s.holder == holder && s.kind != SealKind::MappingPin;
        // Seals the replacement removes, of this holder and of this user.
        let (mut gone_holder, mut gone_user) = (0usize, 0usize);
        if let Some(v) = self.by_ino.get(&ino) {
            if v.iter()
                .any(|s| matches!(s.state, SealState::Recalled { .. }))
            {
                return Err(SealError::RecallPending);
            }
            for s in v.iter().filter(|s| replaced(s)) {
                gone_holder = gone_holder.saturating_add(1);
                if s.uid == uid {
                    gone_user = gone_user.saturating_add(1);
                }
            }
        }
        let by_holder = self
            .holders
            .get(&holder)
            .map_or(0, |h| h.total)
            .saturating_sub(gone_holder);
        let by_user = self
            .users
            .get(&uid)
            .copied()
            .unwrap_or(0)
            .saturating_sub(gone_user);
        if by_holder >= self.cfg.max_seals_per_holder || by_user >= self.cfg.max_seals_per_user {
            return Err(SealError::TooMany);
        }

        let released = if gone_holder > 0 {
            self.take_where(ino, replaced)
        } else {
            Vec::new()
        };
        let id = SealId(self.next_id);
        self.next_id = self.next_id.wrapping_add(1);
        self.by_ino.entry(ino).or_default().push(Seal {
            id,
            holder,
            pid,
            uid,
            kind,
            range,
            since: now,
            state: SealState::Active,
        });
        let h = self.holders.entry(holder).or_default();
        inc(&mut h.inos, ino);
        h.total = h.total.saturating_add(1);
        let u = self.users.entry(uid).or_insert(0);
        *u = u.saturating_add(1);
        if kind == SealKind::MappingPin {
            self.pins = self.pins.saturating_add(1);
        } else {
            self.seals = self.seals.saturating_add(1);
        }
        Ok((id, released))
    }

    /// Undoes a [`replace`](Self::replace) whose caller could not complete
    /// (the core's log refused the blocks a populating seal allocated): removes
    /// the new seal `id` of `holder` on `ino` and puts the replaced seals back
    /// as they were (same ids, pids, times and states, in id order among the
    /// inode's seals). Returns whether the new seal was found.
    ///
    /// A holder revoked in between (root's revoke may run while the caller waits for the
    /// log) gets nothing back: its seals would have been revoked with the new one.
    pub fn undo_replace(
        &mut self,
        ino: Ino,
        holder: HolderId,
        id: SealId,
        replaced: Vec<SealInfo>,
    ) -> bool {
        let found = !self
            .take_where(ino, |s| s.id == id && s.holder == holder)
            .is_empty();
        if self.is_revoked(holder) {
            return found;
        }
        for i in replaced {
            let s = Seal {
                id: i.id,
                holder: i.holder,
                pid: i.pid,
                uid: i.uid,
                kind: i.kind,
                range: i.range,
                since: i.since,
                state: i.state,
            };
            let v = self.by_ino.entry(i.ino).or_default();
            let at = v.partition_point(|o| o.id < s.id);
            v.insert(at, s);
            let h = self.holders.entry(s.holder).or_default();
            inc(&mut h.inos, i.ino);
            h.total = h.total.saturating_add(1);
            let u = self.users.entry(s.uid).or_insert(0);
            *u = u.saturating_add(1);
            if let SealState::Recalled { deadline } = s.state {
                self.deadlines.insert((deadline, s.id, i.ino));
            }
            if s.kind == SealKind::MappingPin {
                self.pins = self.pins.saturating_add(1);
            } else {
                self.seals = self.seals.saturating_add(1);
            }
        }
        found
    }

    /// Removes every seal of `holder` on `ino` whose range is exactly `range`
    /// (any kind, active or recalled) and returns them, so the core can wake
    /// operations parked on `ino`.
    ///
    /// Errors: [`SealError::Revoked`] if the holder is fenced (nothing is
    /// removed), [`SealError::Invalid`] for an empty range,
    /// [`SealError::NotFound`] if no seal matched.
    pub fn unseal(
        &mut self,
        holder: HolderId,
        ino: Ino,
        range: ByteRange,
    ) -> Result<Vec<SealInfo>, SealError> {
        self.unseal_where(holder, ino, range, true)
    }

    /// As [`unseal`](Self::unseal), but only temporary and breakable seals:
    /// the holder's mapping pins on that range stay (they go with their window
    /// slot). What `SEALFS_IOC_UNSEAL` does.
    pub fn unseal_seals(
        &mut self,
        holder: HolderId,
        ino: Ino,
        range: ByteRange,
    ) -> Result<Vec<SealInfo>, SealError> {
        self.unseal_where(holder, ino, range, false)
    }

    fn unseal_where(
        &mut self,
        holder: HolderId,
        ino: Ino,
        range: ByteRange,
        pins: bool,
    ) -> Result<Vec<SealInfo>, SealError> {
        if self.is_revoked(holder) {
            return Err(SealError::Revoked);
        }
        if range.is_empty() {
            return Err(SealError::Invalid);
        }
        let gone = self.take_where(ino, |s| {
            s.holder == holder && s.range == range && (pins || s.kind != SealKind::MappingPin)
        });
        if gone.is_empty() {
            Err(SealError::NotFound)
        } else {
            Ok(gone)
        }
    }

    /// Removes the one seal `id` if `holder` holds it (REMOVEMAPPING of one
    /// window slot when two slots map the same range).
    ///
    /// Errors: [`SealError::Revoked`] if the holder is fenced (nothing is
    /// removed), [`SealError::NotFound`] if `holder` holds no seal `id`.
    pub fn unseal_id(&mut self, holder: HolderId, id: SealId) -> Result<SealInfo, SealError> {
        if self.is_revoked(holder) {
            return Err(SealError::Revoked);
        }
        let ino = self.holders.get(&holder).and_then(|h| {
            h.inos.keys().copied().find(|ino| {
                self.by_ino
                    .get(ino)
                    .is_some_and(|v| v.iter().any(|s| s.id == id && s.holder == holder))
            })
        });
        let Some(ino) = ino else {
            return Err(SealError::NotFound);
        };
        self.take_where(ino, |s| s.id == id)
            .pop()
            .ok_or(SealError::NotFound)
    }

    /// Removes seal `id` of `holder` even if the holder is fenced: the acknowledgement a
    /// revoked window host owes (REMOVEMAPPING) must always take its pins away.
    pub fn remove_acknowledged(&mut self, holder: HolderId, id: SealId) -> Option<SealInfo> {
        let ino = self.holders.get(&holder).and_then(|h| {
            h.inos.keys().copied().find(|ino| {
                self.by_ino
                    .get(ino)
                    .is_some_and(|v| v.iter().any(|s| s.id == id && s.holder == holder))
            })
        })?;
        self.take_where(ino, |s| s.id == id).pop()
    }

    /// Decides whether `change` on `ino` may happen now. This is the one
    /// place that refuses extent-map changes.
    ///
    /// In order:
    /// 1. `immutable` (the inode's persisted immutable-extent-map flag) →
    ///    `Refuse(NotPermitted)` (`EPERM`), whatever the change or its range.
    /// 2. No seal on `ino` → `Proceed` (one hash lookup).
    /// 3. The conflicting seals are those whose range overlaps
    ///    `change.range` (touching ranges do not overlap; an empty change
    ///    range conflicts with nothing), or every seal on the inode for
    ///    [`ChangeKind::RemoveLast`].
    /// 4. [`ChangeKind::Relocate`] with any conflicting seal or pin →
    ///    `Refuse(Busy)` (`ETXTBSY`); nothing is recalled.
    /// 5. Any conflicting [`SealKind::Temporary`] seal → `Refuse(Busy)`;
    ///    breakable seals and pins are *not* recalled by this call.
    /// 6. Conflicting breakable seals and pins → `Wait`: the active ones are
    ///    recalled with deadline `now + break_timeout` and returned in
    ///    `recall`; ones already recalled keep their deadline and are not
    ///    returned again. `deadline` is the earliest deadline among all of
    ///    them. For [`ChangeKind::RemoveLast`] the same recalls are made but
    ///    the answer is `Notify`: the change proceeds without waiting.
    /// 7. Otherwise `Proceed`.
    ///
    /// The seal's holder gets no exemption: its own truncate conflicts with
    /// its own seal. Recalled seals past their deadline are only revoked by
    /// [`expire`](Self::expire), which the core should call first.
    pub fn check(&mut self, ino: Ino, change: &Change, immutable: bool, now: u64) -> Decision {
        self.check_sparing(ino, change, immutable, now, None)
    }

    /// [`check`](Self::check), with the seals (not the mapping pins) of `spare` out of
    /// the way: a replacing SEAL that fills holes is not held up by the seals it is about
    /// to release.
    pub fn check_sparing(
        &mut self,
        ino: Ino,
        change: &Change,
        immutable: bool,
        now: u64,
        spare: Option<HolderId>,
    ) -> Decision {
        if immutable {
            return Decision::Refuse(SealError::NotPermitted);
        }
        let Some(v) = self.by_ino.get_mut(&ino) else {
            return Decision::Proceed;
        };
        let all = change.kind == ChangeKind::RemoveLast;
        let extend = change.kind == ChangeKind::Extend;
        let conflicts = |s: &Seal| {
            let spared = spare == Some(s.holder) && s.kind != SealKind::MappingPin;
            !spared
                && (all
                    || (s.range.overlaps(&change.range)
                        && !(extend && s.kind == SealKind::MappingPin)))
        };

        if change.kind == ChangeKind::Relocate {
            return if v.iter().any(conflicts) {
                Decision::Refuse(SealError::Busy)
            } else {
                Decision::Proceed
            };
        }
        if v.iter()
            .any(|s| s.kind == SealKind::Temporary && conflicts(s))
        {
            return Decision::Refuse(SealError::Busy);
        }

        let new_deadline = now.saturating_add(self.cfg.break_timeout_ns);
        let mut earliest: Option<u64> = None;
        let mut recall = Vec::new();
        for s in v.iter_mut().filter(|s| conflicts(s)) {
            let deadline = match s.state {
                SealState::Recalled { deadline } => deadline,
                SealState::Active => {
                    s.state = SealState::Recalled {
                        deadline: new_deadline,
                    };
                    self.deadlines.insert((new_deadline, s.id, ino));
                    self.recalls = self.recalls.saturating_add(1);
                    recall.push(Recall {
                        id: s.id,
                        ino,
                        holder: s.holder,
                        pid: s.pid,
                        kind: s.kind,
                        range: s.range,
                        deadline: new_deadline,
                    });
                    new_deadline
                }
            };
            earliest = Some(earliest.map_or(deadline, |e| e.min(deadline)));
        }
        match earliest {
            Some(_) if all => Decision::Notify { recall },
            Some(deadline) => Decision::Wait { deadline, recall },
            None => Decision::Proceed,
        }
    }

    /// Revokes every recalled seal whose deadline is `<= now`, fences its
    /// holder (see [`is_revoked`](Self::is_revoked)) and returns the revoked
    /// seals in deadline order, so the core can quarantine their blocks and
    /// re-check operations parked on their inodes.
    pub fn expire(&mut self, now: u64) -> Vec<Revoked> {
        let mut out = Vec::new();
        while let Some(&(deadline, id, ino)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            // Removed here too (not only by `detach`) so the loop ends even if
            // the index ever disagreed with the seals.
            self.deadlines.remove(&(deadline, id, ino));
            for s in self.take_where(ino, |s| s.id == id) {
                out.push(self.fence(s));
            }
        }
        out
    }

    /// Revokes at once every seal and pin on `ino` whose range overlaps
    /// `range`, of any kind and state, as [`expire`](Self::expire) does at a
    /// deadline: each holder is fenced. The administrator's override (root's
    /// `sealfs unseal --force`). Returns the revoked seals, oldest first.
    pub fn revoke(&mut self, ino: Ino, range: ByteRange) -> Vec<Revoked> {
        let gone = self.take_where(ino, |s| s.range.overlaps(&range));
        gone.into_iter().map(|s| self.fence(s)).collect()
    }

    /// A seal just taken out of the table is revoked: its holder is fenced and
    /// the revocation counted.
    fn fence(&mut self, s: SealInfo) -> Revoked {
        self.holders.entry(s.holder).or_default().revoked = true;
        self.revocations = self.revocations.saturating_add(1);
        Revoked {
            id: s.id,
            ino: s.ino,
            holder: s.holder,
            pid: s.pid,
            kind: s.kind,
            range: s.range,
        }
    }

    /// The earliest deadline of any recalled seal, if any: when the core
    /// should next call [`expire`](Self::expire).
    pub fn next_deadline(&self) -> Option<u64> {
        self.deadlines.first().map(|&(d, _, _)| d)
    }

    /// Removes every seal of `holder` (the last close of its file handle) and
    /// forgets that it was fenced. Returns the removed seals. Cheap for a
    /// holder that has none.
    pub fn release_holder(&mut self, holder: HolderId) -> Vec<SealInfo> {
        let Some(entry) = self.holders.remove(&holder) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for ino in entry.inos.into_keys() {
            out.extend(self.take_where(ino, |s| s.holder == holder));
        }
        out.sort_by_key(|s| s.id);
        out
    }

    /// Drops every seal on `ino` (the inode was evicted). Holders are not
    /// fenced and nothing is reported.
    pub fn remove_inode(&mut self, ino: Ino) {
        self.take_where(ino, |_| true);
    }

    /// The seals on `ino`, oldest first.
    pub fn list(&self, ino: Ino) -> Vec<SealInfo> {
        self.by_ino
            .get(&ino)
            .map(|v| v.iter().map(|s| s.info(ino)).collect())
            .unwrap_or_default()
    }

    /// True when `holder` has had a seal revoked since it was last released.
    pub fn is_revoked(&self, holder: HolderId) -> bool {
        self.holders.get(&holder).is_some_and(|h| h.revoked)
    }

    /// True when `ino` has any seal or pin (one hash lookup; the write path
    /// calls it on every write).
    pub fn has_seals(&self, ino: Ino) -> bool {
        self.by_ino.contains_key(&ino)
    }

    /// Current counts and totals.
    pub fn stats(&self) -> Stats {
        Stats {
            seals: self.seals,
            pins: self.pins,
            recalls: self.recalls,
            revocations: self.revocations,
        }
    }

    /// Removes the seals on `ino` matching `pred`, keeping the others in
    /// order, and updates every index. Returns the removed seals in order.
    fn take_where(&mut self, ino: Ino, pred: impl Fn(&Seal) -> bool) -> Vec<SealInfo> {
        let Some(v) = self.by_ino.get_mut(&ino) else {
            return Vec::new();
        };
        let (gone, keep): (Vec<Seal>, Vec<Seal>) = std::mem::take(v).into_iter().partition(pred);
        if keep.is_empty() {
            self.by_ino.remove(&ino);
        } else {
            *v = keep;
        }
        gone.iter().map(|s| self.detach(ino, s)).collect()
    }

    /// Updates the indexes and counts for a seal just removed from `ino`.
    fn detach(&mut self, ino: Ino, s: &Seal) -> SealInfo {
        if let Some(h) = self.holders.get_mut(&s.holder) {
            dec(&mut h.inos, ino);
            h.total = h.total.saturating_sub(1);
            if h.inos.is_empty() && !h.revoked {
                self.holders.remove(&s.holder);
            }
        }
        if let Some(u) = self.users.get_mut(&s.uid) {
            *u = u.saturating_sub(1);
            if *u == 0 {
                self.users.remove(&s.uid);
            }
        }
        if let SealState::Recalled { deadline } = s.state {
            self.deadlines.remove(&(deadline, s.id, ino));
        }
        if s.kind == SealKind::MappingPin {
            self.pins = self.pins.saturating_sub(1);
        } else {
            self.seals = self.seals.saturating_sub(1);
        }
        s.info(ino)
    }
}
