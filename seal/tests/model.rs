//! Model-based test: random operation sequences against a plain `Vec` of
//! seals with flags, checking every result and that `list`, `stats`,
//! `has_seals`, `is_revoked` and `next_deadline` agree after each step.

use std::collections::BTreeSet;

use proptest::prelude::*;
use sealfs_seal::{
    Access, ByteRange, Change, ChangeKind, Config, Decision, Recall, Revoked, SealError, SealId,
    SealInfo, SealKind, SealState, SealTable, Stats,
};

const MAX_PER_HOLDER: usize = 3;
const MAX_PER_USER: usize = 5;
const TIMEOUT: u64 = 5;
const INOS: u64 = 3;
const HOLDERS: u64 = 4;
const PIDS: u32 = 3;
const UIDS: u32 = 2;

#[derive(Clone, Debug)]
enum Op {
    Seal {
        ino: u64,
        holder: u64,
        pid: u32,
        uid: u32,
        kind: SealKind,
        range: ByteRange,
        access: Access,
    },
    Replace {
        ino: u64,
        holder: u64,
        pid: u32,
        uid: u32,
        kind: SealKind,
        range: ByteRange,
        access: Access,
    },
    Unseal {
        holder: u64,
        ino: u64,
        range: ByteRange,
    },
    UnsealSeals {
        holder: u64,
        ino: u64,
        range: ByteRange,
    },
    /// A replace, then its undo: the state is as before (but for the id counter).
    ReplaceUndone {
        ino: u64,
        holder: u64,
        kind: SealKind,
        range: ByteRange,
    },
    UnsealId {
        holder: u64,
        id: u64,
    },
    Check {
        ino: u64,
        change: Change,
        immutable: bool,
    },
    Expire,
    ReleaseHolder(u64),
    RemoveInode(u64),
    Revoke {
        ino: u64,
        range: ByteRange,
    },
}

#[derive(Clone, Debug)]
struct MSeal {
    id: u64,
    ino: u64,
    holder: u64,
    pid: u32,
    uid: u32,
    kind: SealKind,
    range: ByteRange,
    since: u64,
    recalled: Option<u64>,
}

impl MSeal {
    fn info(&self) -> SealInfo {
        SealInfo {
            id: SealId(self.id),
            ino: self.ino,
            kind: self.kind,
            range: self.range,
            holder: self.holder,
            pid: self.pid,
            uid: self.uid,
            since: self.since,
            state: match self.recalled {
                None => SealState::Active,
                Some(deadline) => SealState::Recalled { deadline },
            },
        }
    }
}

#[derive(Default)]
struct Model {
    seals: Vec<MSeal>,
    revoked: BTreeSet<u64>,
    next_id: u64,
    recalls: u64,
    revocations: u64,
}

/// Overlap written out independently of `ByteRange::overlaps`, by
/// enumerating bytes. Valid for the small ranges `range()` generates (bounds
/// below `SMALL` or `u64::MAX`): past `SMALL` only to-EOF ranges cover bytes.
fn touches(seal: ByteRange, change: &Change) -> bool {
    const SMALL: u64 = 11;
    if change.kind == ChangeKind::RemoveLast {
        return true;
    }
    let c = change.range;
    let covers = |r: ByteRange, b: u64| r.start <= b && b < r.end;
    (0..SMALL).any(|b| covers(seal, b) && covers(c, b)) || (covers(seal, SMALL) && covers(c, SMALL))
}

impl Model {
    #[allow(clippy::too_many_arguments)]
    fn seal(
        &mut self,
        ino: u64,
        holder: u64,
        pid: u32,
        uid: u32,
        kind: SealKind,
        range: ByteRange,
        access: Access,
        now: u64,
    ) -> Result<SealId, SealError> {
        self.first_checks(ino, holder, kind, range, access)?;
        if self.seals.iter().filter(|s| s.holder == holder).count() >= MAX_PER_HOLDER
            || self.seals.iter().filter(|s| s.uid == uid).count() >= MAX_PER_USER
        {
            return Err(SealError::TooMany);
        }
        self.next_id += 1;
        self.seals.push(MSeal {
            id: self.next_id,
            ino,
            holder,
            pid,
            uid,
            kind,
            range,
            since: now,
            recalled: None,
        });
        Ok(SealId(self.next_id))
    }

    /// The checks a seal and a replacement make first, in order: fenced holder, access,
    /// empty range, a recall in progress on the inode.
    fn first_checks(
        &self,
        ino: u64,
        holder: u64,
        kind: SealKind,
        range: ByteRange,
        access: Access,
    ) -> Result<(), SealError> {
        if self.revoked.contains(&holder) {
            return Err(SealError::Revoked);
        }
        let ok = if kind == SealKind::Temporary {
            access.write
        } else {
            access.read
        };
        if !ok {
            return Err(SealError::BadAccess);
        }
        if range.start >= range.end {
            return Err(SealError::Invalid);
        }
        if self
            .seals
            .iter()
            .any(|s| s.ino == ino && s.recalled.is_some())
        {
            return Err(SealError::RecallPending);
        }
        Ok(())
    }

    /// A seal that removes the holder's other seals (not pins) on `ino`, written out
    /// independently: the same checks, with the replaced seals not counted against the
    /// limits.
    #[allow(clippy::too_many_arguments)]
    fn replace(
        &mut self,
        ino: u64,
        holder: u64,
        pid: u32,
        uid: u32,
        kind: SealKind,
        range: ByteRange,
        access: Access,
        now: u64,
    ) -> Result<(SealId, Vec<SealInfo>), SealError> {
        self.first_checks(ino, holder, kind, range, access)?;
        let goes = |s: &MSeal| s.ino == ino && s.holder == holder && s.kind != SealKind::MappingPin;
        let stays = |s: &&MSeal| !goes(s);
        if self
            .seals
            .iter()
            .filter(stays)
            .filter(|s| s.holder == holder)
            .count()
            >= MAX_PER_HOLDER
            || self
                .seals
                .iter()
                .filter(stays)
                .filter(|s| s.uid == uid)
                .count()
                >= MAX_PER_USER
        {
            return Err(SealError::TooMany);
        }
        let gone = self.remove(goes);
        self.next_id += 1;
        self.seals.push(MSeal {
            id: self.next_id,
            ino,
            holder,
            pid,
            uid,
            kind,
            range,
            since: now,
            recalled: None,
        });
        Ok((SealId(self.next_id), gone))
    }

    fn remove(&mut self, f: impl Fn(&MSeal) -> bool) -> Vec<SealInfo> {
        let out: Vec<SealInfo> = self
            .seals
            .iter()
            .filter(|s| f(s))
            .map(|s| s.info())
            .collect();
        self.seals.retain(|s| !f(s));
        out
    }

    fn unseal(
        &mut self,
        holder: u64,
        ino: u64,
        range: ByteRange,
    ) -> Result<Vec<SealInfo>, SealError> {
        if self.revoked.contains(&holder) {
            return Err(SealError::Revoked);
        }
        if range.start >= range.end {
            return Err(SealError::Invalid);
        }
        let out = self.remove(|s| s.holder == holder && s.ino == ino && s.range == range);
        if out.is_empty() {
            Err(SealError::NotFound)
        } else {
            Ok(out)
        }
    }

    fn unseal_seals(
        &mut self,
        holder: u64,
        ino: u64,
        range: ByteRange,
    ) -> Result<Vec<SealInfo>, SealError> {
        if self.revoked.contains(&holder) {
            return Err(SealError::Revoked);
        }
        if range.start >= range.end {
            return Err(SealError::Invalid);
        }
        let out = self.remove(|s| {
            s.holder == holder && s.ino == ino && s.range == range && s.kind != SealKind::MappingPin
        });
        if out.is_empty() {
            Err(SealError::NotFound)
        } else {
            Ok(out)
        }
    }

    fn unseal_id(&mut self, holder: u64, id: u64) -> Result<SealInfo, SealError> {
        if self.revoked.contains(&holder) {
            return Err(SealError::Revoked);
        }
        self.remove(|s| s.holder == holder && s.id == id)
            .pop()
            .ok_or(SealError::NotFound)
    }

    fn check(&mut self, ino: u64, change: &Change, immutable: bool, now: u64) -> Decision {
        if immutable {
            return Decision::Refuse(SealError::NotPermitted);
        }
        let hit: Vec<usize> = (0..self.seals.len())
            .filter(|&i| self.seals[i].ino == ino && touches(self.seals[i].range, change))
            .filter(|&i| {
                change.kind != ChangeKind::Extend || self.seals[i].kind != SealKind::MappingPin
            })
            .collect();
        if hit.is_empty() {
            return Decision::Proceed;
        }
        if change.kind == ChangeKind::Relocate
            || hit
                .iter()
                .any(|&i| self.seals[i].kind == SealKind::Temporary)
        {
            return Decision::Refuse(SealError::Busy);
        }
        let mut recall = Vec::new();
        let mut deadline = u64::MAX;
        for i in hit {
            let s = &mut self.seals[i];
            if s.recalled.is_none() {
                s.recalled = Some(now + TIMEOUT);
                self.recalls += 1;
                recall.push(Recall {
                    id: SealId(s.id),
                    ino,
                    holder: s.holder,
                    pid: s.pid,
                    kind: s.kind,
                    range: s.range,
                    deadline: now + TIMEOUT,
                });
            }
            deadline = deadline.min(s.recalled.unwrap());
        }
        if change.kind == ChangeKind::RemoveLast {
            return Decision::Notify { recall };
        }
        Decision::Wait { deadline, recall }
    }

    fn expire(&mut self, now: u64) -> Vec<Revoked> {
        let is_due = |s: &MSeal| matches!(s.recalled, Some(d) if d <= now);
        let mut due: Vec<MSeal> = self.seals.iter().filter(|s| is_due(s)).cloned().collect();
        due.sort_by_key(|s| (s.recalled, s.id));
        self.seals.retain(|s| !is_due(s));
        for s in &due {
            self.revoked.insert(s.holder);
            self.revocations += 1;
        }
        due.iter()
            .map(|s| Revoked {
                id: SealId(s.id),
                ino: s.ino,
                holder: s.holder,
                pid: s.pid,
                kind: s.kind,
                range: s.range,
            })
            .collect()
    }

    fn revoke(&mut self, ino: u64, range: ByteRange) -> Vec<Revoked> {
        let hit = Change {
            kind: ChangeKind::Punch,
            range,
        };
        let gone = self.remove(|s| s.ino == ino && touches(s.range, &hit));
        for s in &gone {
            self.revoked.insert(s.holder);
            self.revocations += 1;
        }
        gone.iter()
            .map(|s| Revoked {
                id: s.id,
                ino: s.ino,
                holder: s.holder,
                pid: s.pid,
                kind: s.kind,
                range: s.range,
            })
            .collect()
    }

    fn stats(&self) -> Stats {
        let pins = self
            .seals
            .iter()
            .filter(|s| s.kind == SealKind::MappingPin)
            .count() as u64;
        Stats {
            seals: self.seals.len() as u64 - pins,
            pins,
            recalls: self.recalls,
            revocations: self.revocations,
        }
    }
}

fn range() -> impl Strategy<Value = ByteRange> {
    (0u64..8, prop_oneof![4 => 0u64..10, 1 => Just(u64::MAX)])
        .prop_map(|(start, end)| ByteRange::new(start, end))
}

fn kind() -> impl Strategy<Value = SealKind> {
    prop_oneof![
        Just(SealKind::Temporary),
        Just(SealKind::Breakable),
        Just(SealKind::MappingPin)
    ]
}

fn change_kind() -> impl Strategy<Value = ChangeKind> {
    prop_oneof![
        Just(ChangeKind::SizeChange),
        Just(ChangeKind::Extend),
        Just(ChangeKind::Punch),
        Just(ChangeKind::ZeroRange),
        Just(ChangeKind::AllocateHole),
        Just(ChangeKind::RemoveLast),
        Just(ChangeKind::Relocate),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..INOS, 0..HOLDERS, (0..PIDS, 0..UIDS), kind(), range(), any::<(bool, bool)>())
            .prop_map(|(ino, holder, (pid, uid), kind, range, (r, w))| Op::Seal {
                ino, holder, pid, uid, kind, range,
                // Mostly read-write so that seals get taken.
                access: Access { read: r || w, write: w || !r },
            }),
        3 => (0..INOS, 0..HOLDERS, (0..PIDS, 0..UIDS), kind(), range(), any::<(bool, bool)>())
            .prop_map(|(ino, holder, (pid, uid), kind, range, (r, w))| Op::Replace {
                ino, holder, pid, uid, kind, range,
                access: Access { read: r || w, write: w || !r },
            }),
        2 => (0..HOLDERS, 0..INOS, range())
            .prop_map(|(holder, ino, range)| Op::Unseal { holder, ino, range }),
        2 => (0..HOLDERS, 0..INOS, range())
            .prop_map(|(holder, ino, range)| Op::UnsealSeals { holder, ino, range }),
        1 => (0..INOS, 0..HOLDERS, kind(), range())
            .prop_map(|(ino, holder, kind, range)| Op::ReplaceUndone { ino, holder, kind, range }),
        1 => (0..HOLDERS, 0u64..30).prop_map(|(holder, id)| Op::UnsealId { holder, id }),
        5 => (0..INOS, change_kind(), range(), prop::bool::weighted(0.1))
            .prop_map(|(ino, kind, range, immutable)| Op::Check {
                ino, change: Change { kind, range }, immutable,
            }),
        2 => Just(Op::Expire),
        1 => (0..HOLDERS).prop_map(Op::ReleaseHolder),
        1 => (0..INOS).prop_map(Op::RemoveInode),
        1 => (0..INOS, range()).prop_map(|(ino, range)| Op::Revoke { ino, range }),
    ]
}

fn same_state(t: &SealTable, m: &Model, now: u64) -> Result<(), TestCaseError> {
    for ino in 0..INOS {
        let want: Vec<SealInfo> = m
            .seals
            .iter()
            .filter(|s| s.ino == ino)
            .map(MSeal::info)
            .collect();
        prop_assert_eq!(t.list(ino), want.clone(), "list ino {} at {}", ino, now);
        prop_assert_eq!(t.has_seals(ino), !want.is_empty());
    }
    for h in 0..HOLDERS {
        prop_assert_eq!(t.is_revoked(h), m.revoked.contains(&h), "holder {}", h);
    }
    prop_assert_eq!(t.stats(), m.stats());
    prop_assert_eq!(
        t.next_deadline(),
        m.seals.iter().filter_map(|s| s.recalled).min()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn table_matches_model(steps in prop::collection::vec((0u64..4, op()), 1..80)) {
        let mut t = SealTable::new(Config {
            max_seals_per_holder: MAX_PER_HOLDER,
            max_seals_per_user: MAX_PER_USER,
            break_timeout_ns: TIMEOUT,
        });
        let mut m = Model::default();
        let mut now = 0u64;
        for (dt, op) in steps {
            now += dt;
            match op {
                Op::Seal { ino, holder, pid, uid, kind, range, access } => {
                    prop_assert_eq!(
                        t.seal(ino, holder, pid, uid, kind, range, access, now),
                        m.seal(ino, holder, pid, uid, kind, range, access, now)
                    );
                }
                Op::Replace { ino, holder, pid, uid, kind, range, access } => {
                    prop_assert_eq!(
                        t.replace(ino, holder, pid, uid, kind, range, access, now),
                        m.replace(ino, holder, pid, uid, kind, range, access, now)
                    );
                }
                Op::Unseal { holder, ino, range } => {
                    prop_assert_eq!(t.unseal(holder, ino, range), m.unseal(holder, ino, range));
                }
                Op::ReplaceUndone { ino, holder, kind, range } => {
                    let rw = Access { read: true, write: true };
                    let before: Vec<Vec<SealInfo>> = (0..INOS).map(|i| t.list(i)).collect();
                    let got = t.replace(ino, holder, 1, 0, kind, range, rw, now);
                    let want = m.replace(ino, holder, 1, 0, kind, range, rw, now);
                    prop_assert_eq!(&got, &want);
                    if let Ok((id, gone)) = got {
                        prop_assert!(t.undo_replace(ino, holder, id, gone.clone()));
                        m.remove(|s| s.id == id.0);
                        m.seals.extend(gone.iter().map(|i| MSeal {
                            id: i.id.0, ino: i.ino, holder: i.holder, pid: i.pid, uid: i.uid,
                            kind: i.kind, range: i.range, since: i.since,
                            recalled: match i.state {
                                SealState::Active => None,
                                SealState::Recalled { deadline } => Some(deadline),
                            },
                        }));
                        m.seals.sort_by_key(|s| s.id);
                        let after: Vec<Vec<SealInfo>> = (0..INOS).map(|i| t.list(i)).collect();
                        prop_assert_eq!(after, before);
                    }
                }
                Op::UnsealSeals { holder, ino, range } => {
                    prop_assert_eq!(
                        t.unseal_seals(holder, ino, range),
                        m.unseal_seals(holder, ino, range)
                    );
                }
                Op::UnsealId { holder, id } => {
                    prop_assert_eq!(t.unseal_id(holder, SealId(id)), m.unseal_id(holder, id));
                }
                Op::Check { ino, change, immutable } => {
                    prop_assert_eq!(
                        t.check(ino, &change, immutable, now),
                        m.check(ino, &change, immutable, now)
                    );
                }
                Op::Expire => prop_assert_eq!(t.expire(now), m.expire(now)),
                Op::ReleaseHolder(h) => {
                    let got = t.release_holder(h);
                    let want = m.remove(|s| s.holder == h);
                    m.revoked.remove(&h);
                    prop_assert_eq!(got, want);
                }
                Op::Revoke { ino, range } => {
                    prop_assert_eq!(t.revoke(ino, range), m.revoke(ino, range));
                }
                Op::RemoveInode(ino) => {
                    t.remove_inode(ino);
                    m.remove(|s| s.ino == ino);
                }
            }
            same_state(&t, &m, now)?;
        }
    }

    /// Arbitrary (huge) numbers never panic and overlap is symmetric.
    #[test]
    fn never_panics_on_any_input(
        ops in prop::collection::vec(
            (any::<u64>(), any::<u64>(), any::<u64>(), any::<u64>(), kind(), change_kind(), any::<u8>()),
            1..40,
        )
    ) {
        let mut t = SealTable::new(Config {
            max_seals_per_holder: 8,
            max_seals_per_user: 8,
            break_timeout_ns: u64::MAX / 2,
        });
        for (a, b, c, now, kind, ck, sel) in ops {
            let range = ByteRange::new(a, b);
            let other = ByteRange::new(b, c);
            prop_assert_eq!(range.overlaps(&other), other.overlaps(&range));
            let ino = a % 2;
            let holder = c % 3;
            match sel % 7 {
                0 | 1 => { let _ = t.seal(ino, holder, (c % 2) as u32, (b % 2) as u32, kind, range,
                                          Access { read: true, write: true }, now); }
                6 => { let _ = t.replace(ino, holder, (c % 2) as u32, (b % 2) as u32, kind, range,
                                          Access { read: true, write: true }, now); }
                2 => { let _ = t.check(ino, &Change { kind: ck, range }, false, now); }
                3 => { let _ = t.expire(now); }
                4 => { let _ = t.unseal(holder, ino, range); }
                _ => { let _ = t.release_holder(holder); }
            }
            let _ = (t.next_deadline(), t.stats(), t.list(ino));
        }
    }
}
