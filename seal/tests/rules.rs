//! One test per seal rule, with the exact error each case must give.

use sealfs_seal::{
    Access, ByteRange, Change, ChangeKind, Config, Decision, Recall, SealError, SealId, SealInfo,
    SealKind, SealState, SealTable, Stats,
};

const T: u64 = 5; // break timeout used by these tests
const RW: Access = Access {
    read: true,
    write: true,
};
const RO: Access = Access {
    read: true,
    write: false,
};
const WO: Access = Access {
    read: false,
    write: true,
};

fn table() -> SealTable {
    SealTable::new(Config {
        max_seals_per_holder: 3,
        max_seals_per_user: 5,
        break_timeout_ns: T,
    })
}

fn r(start: u64, end: u64) -> ByteRange {
    ByteRange::new(start, end)
}

fn ch(kind: ChangeKind, start: u64, end: u64) -> Change {
    Change {
        kind,
        range: r(start, end),
    }
}

fn seal(t: &mut SealTable, ino: u64, holder: u64, kind: SealKind, range: ByteRange) -> SealId {
    t.seal(ino, holder, 100, 1000, kind, range, RW, 0).unwrap()
}

fn recalled_ids(d: &Decision) -> Vec<SealId> {
    match d {
        Decision::Wait { recall, .. } => recall.iter().map(|r| r.id).collect(),
        other => panic!("expected Wait, got {other:?}"),
    }
}

fn states(t: &SealTable, ino: u64) -> Vec<SealState> {
    t.list(ino).iter().map(|s| s.state).collect()
}

#[test]
fn default_config_matches_mount_defaults() {
    let c = Config::default();
    assert_eq!(c.max_seals_per_holder, 1024);
    assert_eq!(c.max_seals_per_user, 16384);
    assert_eq!(c.break_timeout_ns, 5_000_000_000);
}

#[test]
fn immutable_refuses_eperm_before_anything() {
    let mut t = table();
    let punch = ch(ChangeKind::Punch, 0, 10);
    assert_eq!(
        t.check(1, &punch, true, 0),
        Decision::Refuse(SealError::NotPermitted)
    );
    seal(&mut t, 1, 1, SealKind::Temporary, ByteRange::WHOLE);
    seal(&mut t, 1, 2, SealKind::Breakable, ByteRange::WHOLE);
    for kind in [
        ChangeKind::SizeChange,
        ChangeKind::Punch,
        ChangeKind::ZeroRange,
        ChangeKind::AllocateHole,
        ChangeKind::RemoveLast,
        ChangeKind::Relocate,
    ] {
        let d = t.check(1, &ch(kind, 0, 10), true, 0);
        assert_eq!(d, Decision::Refuse(SealError::NotPermitted), "{kind:?}");
        assert_eq!(SealError::NotPermitted.errno(), 1);
    }
    // Even a no-op (empty) change is refused on an immutable inode.
    assert_eq!(
        t.check(1, &ch(ChangeKind::SizeChange, 7, 7), true, 0),
        Decision::Refuse(SealError::NotPermitted)
    );
    // Immutable refusal recalls nothing.
    assert_eq!(t.stats().recalls, 0);
}

#[test]
fn no_seals_proceeds() {
    let mut t = table();
    assert!(!t.has_seals(1));
    let d = t.check(1, &ch(ChangeKind::RemoveLast, 0, 0), false, 0);
    assert_eq!(d, Decision::Proceed);
    seal(&mut t, 2, 1, SealKind::Temporary, ByteRange::WHOLE);
    assert_eq!(
        t.check(1, &ch(ChangeKind::Punch, 0, 10), false, 0),
        Decision::Proceed
    );
}

#[test]
fn temporary_seal_refuses_etxtbsy() {
    let mut t = table();
    seal(&mut t, 1, 1, SealKind::Temporary, r(0, 4096));
    for kind in [
        ChangeKind::SizeChange,
        ChangeKind::Punch,
        ChangeKind::ZeroRange,
        ChangeKind::AllocateHole,
        ChangeKind::RemoveLast,
        ChangeKind::Relocate,
    ] {
        let d = t.check(1, &ch(kind, 100, 200), false, 0);
        assert_eq!(d, Decision::Refuse(SealError::Busy), "{kind:?}");
    }
    assert_eq!(SealError::Busy.errno(), 26);
}

#[test]
fn temporary_beats_breakable_and_recalls_nothing() {
    let mut t = table();
    seal(&mut t, 1, 1, SealKind::Breakable, r(0, 100));
    seal(&mut t, 1, 2, SealKind::MappingPin, r(0, 100));
    seal(&mut t, 1, 3, SealKind::Temporary, r(50, 60));
    let d = t.check(1, &ch(ChangeKind::Punch, 0, 100), false, 0);
    assert_eq!(d, Decision::Refuse(SealError::Busy));
    assert!(states(&t, 1).iter().all(|s| *s == SealState::Active));
    assert_eq!(t.stats().recalls, 0);
    assert_eq!(t.next_deadline(), None);
    // A temporary seal elsewhere does not stop the recall of an overlapping
    // breakable seal.
    let d = t.check(1, &ch(ChangeKind::Punch, 0, 50), false, 0);
    assert_eq!(recalled_ids(&d).len(), 2);
}

#[test]
fn touching_ranges_do_not_conflict() {
    let mut t = table();
    seal(&mut t, 1, 1, SealKind::Temporary, r(10, 20));
    let p = |s, e| ch(ChangeKind::Punch, s, e);
    assert_eq!(t.check(1, &p(0, 10), false, 0), Decision::Proceed);
    assert_eq!(t.check(1, &p(20, 30), false, 0), Decision::Proceed);
    assert_eq!(
        t.check(1, &p(19, 20), false, 0),
        Decision::Refuse(SealError::Busy)
    );
    assert_eq!(
        t.check(1, &p(0, 11), false, 0),
        Decision::Refuse(SealError::Busy)
    );
    // Empty change ranges conflict with nothing.
    assert_eq!(t.check(1, &p(15, 15), false, 0), Decision::Proceed);
    assert_eq!(t.check(1, &p(18, 12), false, 0), Decision::Proceed);
}

#[test]
fn remove_last_conflicts_with_every_seal() {
    let mut t = table();
    seal(&mut t, 1, 1, SealKind::Temporary, r(1000, 2000));
    let rm = ch(ChangeKind::RemoveLast, 0, 0);
    assert_eq!(t.check(1, &rm, false, 0), Decision::Refuse(SealError::Busy));
    t.unseal(1, 1, r(1000, 2000)).unwrap();

    let a = seal(&mut t, 1, 1, SealKind::Breakable, r(1000, 2000));
    let b = seal(&mut t, 1, 2, SealKind::MappingPin, r(0, 1));
    // Breakable seals and pins are recalled, but the removal does not wait for them.
    let d = t.check(1, &rm, false, 0);
    match &d {
        Decision::Notify { recall } => {
            assert_eq!(recall.iter().map(|r| r.id).collect::<Vec<_>>(), vec![a, b]);
            assert!(recall.iter().all(|r| r.deadline == T));
        }
        other => panic!("expected Notify, got {other:?}"),
    }
    assert_eq!(states(&t, 1), vec![SealState::Recalled { deadline: T }; 2]);
    // Each is reported once; they are revoked at their deadline like any recall.
    assert_eq!(
        t.check(1, &rm, false, 1),
        Decision::Notify { recall: vec![] }
    );
    assert_eq!(t.expire(T).len(), 2);
    assert!(t.is_revoked(1) && t.is_revoked(2));
}

#[test]
fn end_max_means_to_end_of_file_including_growth() {
    let mut t = table();
    seal(&mut t, 1, 1, SealKind::Temporary, ByteRange::to_eof(1000));
    // Truncate down from 900 to 500: below the seal.
    assert_eq!(
        t.check(1, &ch(ChangeKind::SizeChange, 500, 900), false, 0),
        Decision::Proceed
    );
    // Growth far beyond any size is still covered.
    assert_eq!(
        t.check(
            1,
            &ch(ChangeKind::SizeChange, 1 << 60, (1 << 60) + 1),
            false,
            0
        ),
        Decision::Refuse(SealError::Busy)
    );
    assert_eq!(
        t.check(
            1,
            &ch(ChangeKind::AllocateHole, u64::MAX - 1, u64::MAX),
            false,
            0
        ),
        Decision::Refuse(SealError::Busy)
    );
    // A whole-file seal conflicts with any size change.
    seal(&mut t, 2, 1, SealKind::Temporary, ByteRange::WHOLE);
    assert_eq!(
        t.check(2, &ch(ChangeKind::SizeChange, 0, 1), false, 0),
        Decision::Refuse(SealError::Busy)
    );
}

#[test]
fn recall_is_returned_once_and_deadline_not_extended() {
    let mut t = table();
    let a = t
        .seal(1, 7, 42, 1000, SealKind::Breakable, r(0, 100), RO, 0)
        .unwrap();
    let punch = ch(ChangeKind::Punch, 10, 20);
    let d = t.check(1, &punch, false, 10);
    assert_eq!(
        d,
        Decision::Wait {
            deadline: 10 + T,
            recall: vec![Recall {
                id: a,
                ino: 1,
                holder: 7,
                pid: 42,
                kind: SealKind::Breakable,
                range: r(0, 100),
                deadline: 10 + T,
            }],
        }
    );
    let again = t.check(1, &punch, false, 13);
    assert_eq!(
        again,
        Decision::Wait {
            deadline: 10 + T,
            recall: vec![],
        }
    );
    assert_eq!(
        states(&t, 1),
        vec![SealState::Recalled { deadline: 10 + T }]
    );
    assert_eq!(t.stats().recalls, 1);
    assert_eq!(t.next_deadline(), Some(10 + T));
    // Past the deadline but before expire: still Wait, deadline in the past.
    assert_eq!(
        t.check(1, &punch, false, 100),
        Decision::Wait {
            deadline: 10 + T,
            recall: vec![],
        }
    );
}

#[test]
fn wait_reports_earliest_deadline() {
    let mut t = table();
    let a = seal(&mut t, 1, 1, SealKind::Breakable, r(0, 10));
    let b = seal(&mut t, 1, 2, SealKind::MappingPin, r(20, 30));
    let d = t.check(1, &ch(ChangeKind::Punch, 0, 10), false, 0);
    assert_eq!(recalled_ids(&d), vec![a]);
    let d = t.check(1, &ch(ChangeKind::Punch, 0, 30), false, 2);
    assert_eq!(
        d,
        Decision::Wait {
            deadline: T,
            recall: vec![Recall {
                id: b,
                ino: 1,
                holder: 2,
                pid: 100,
                kind: SealKind::MappingPin,
                range: r(20, 30),
                deadline: 2 + T,
            }],
        }
    );
}

#[test]
fn expire_revokes_exactly_those_past_deadline() {
    let mut t = table();
    let a = seal(&mut t, 1, 1, SealKind::Breakable, r(0, 10));
    let b = seal(&mut t, 1, 2, SealKind::MappingPin, r(20, 30));
    let c = seal(&mut t, 2, 3, SealKind::Breakable, r(0, 10));
    t.check(1, &ch(ChangeKind::Punch, 0, 10), false, 0);
    t.check(1, &ch(ChangeKind::Punch, 0, 30), false, 2);
    assert!(t.expire(T - 1).is_empty());
    assert_eq!(t.next_deadline(), Some(T));

    let gone = t.expire(T);
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].id, a);
    assert_eq!(gone[0].holder, 1);
    assert_eq!(gone[0].kind, SealKind::Breakable);
    assert_eq!(gone[0].range, r(0, 10));
    assert_eq!(t.next_deadline(), Some(2 + T));
    assert!(t.is_revoked(1));
    assert!(!t.is_revoked(2));

    let gone = t.expire(100);
    assert_eq!(gone.iter().map(|g| g.id).collect::<Vec<_>>(), vec![b]);
    assert_eq!(t.next_deadline(), None);
    assert!(!t.has_seals(1));
    // The never-recalled seal on another inode is untouched.
    assert_eq!(t.list(2).len(), 1);
    assert_eq!(t.list(2)[0].id, c);
    assert_eq!(
        t.stats(),
        Stats {
            seals: 1,
            pins: 0,
            recalls: 2,
            revocations: 2
        }
    );
    assert_eq!(
        t.check(1, &ch(ChangeKind::Punch, 0, 30), false, 100),
        Decision::Proceed
    );
}

#[test]
fn revoked_holder_gets_enolink_until_released() {
    let mut t = table();
    let a = seal(&mut t, 1, 9, SealKind::Breakable, r(0, 10));
    let other = seal(&mut t, 2, 9, SealKind::Breakable, r(0, 10));
    t.check(1, &ch(ChangeKind::Punch, 0, 10), false, 0);
    assert_eq!(t.expire(T).len(), 1);
    assert!(t.is_revoked(9));
    assert_eq!(SealError::Revoked.errno(), 67);

    assert_eq!(
        t.seal(3, 9, 100, 1000, SealKind::Breakable, r(0, 1), RW, T),
        Err(SealError::Revoked)
    );
    // Stays fenced: reported on every call, and a failed call changes nothing.
    assert_eq!(t.unseal(9, 2, r(0, 10)), Err(SealError::Revoked));
    assert_eq!(t.unseal(9, 1, r(0, 10)), Err(SealError::Revoked));
    assert_eq!(t.unseal_id(9, other), Err(SealError::Revoked));
    assert_eq!(t.unseal_id(9, a), Err(SealError::Revoked));
    assert_eq!(t.list(2).len(), 1);
    // Other holders are unaffected.
    assert!(t
        .seal(3, 8, 100, 1000, SealKind::Breakable, r(0, 1), RW, T)
        .is_ok());

    let released = t.release_holder(9);
    assert_eq!(
        released.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![other]
    );
    assert!(!t.is_revoked(9));
    assert!(t
        .seal(3, 9, 100, 1000, SealKind::Breakable, r(0, 1), RW, T)
        .is_ok());
}

#[test]
fn too_many_seals_per_holder_or_user_enolck() {
    let mut t = table(); // 3 per holder, 5 per user
    let ro = RO;
    t.seal(1, 1, 7, 1000, SealKind::Breakable, r(0, 1), ro, 0)
        .unwrap();
    t.seal(2, 1, 7, 1000, SealKind::MappingPin, r(0, 1), ro, 0)
        .unwrap();
    t.seal(1, 1, 8, 1000, SealKind::Breakable, r(0, 1), ro, 0)
        .unwrap();
    // The holder is full, whichever process (a forked child, a new pid) asks.
    for pid in [7, 8, 9] {
        assert_eq!(
            t.seal(3, 1, pid, 1000, SealKind::Temporary, r(0, 1), RW, 0),
            Err(SealError::TooMany)
        );
    }
    assert_eq!(SealError::TooMany.errno(), 37);
    // Another holder of the same user and process: under its own limit, until the user's.
    t.seal(3, 2, 7, 1000, SealKind::Breakable, r(0, 1), ro, 0)
        .unwrap();
    t.seal(3, 2, 7, 1000, SealKind::Breakable, r(0, 1), ro, 0)
        .unwrap();
    assert_eq!(
        t.seal(3, 3, 7, 1000, SealKind::Breakable, r(0, 1), ro, 0),
        Err(SealError::TooMany),
        "user 1000 holds 5"
    );
    // Another user is counted separately, and a pid reused by it inherits nothing.
    assert!(t
        .seal(3, 3, 7, 1001, SealKind::Breakable, r(0, 1), ro, 0)
        .is_ok());
    // Releasing one makes room again.
    assert_eq!(t.unseal(1, 2, r(0, 1)).unwrap().len(), 1);
    assert!(t
        .seal(3, 1, 7, 1000, SealKind::Temporary, r(0, 1), RW, 0)
        .is_ok());
    // The last close of a holder gives its seals back to the user.
    assert_eq!(t.release_holder(1).len(), 3);
    assert!(t
        .seal(3, 4, 7, 1000, SealKind::Breakable, r(0, 1), ro, 0)
        .is_ok());

    let mut none = SealTable::new(Config {
        max_seals_per_holder: 0,
        max_seals_per_user: 5,
        break_timeout_ns: T,
    });
    assert_eq!(
        none.seal(1, 1, 1, 1000, SealKind::Breakable, r(0, 1), RW, 0),
        Err(SealError::TooMany)
    );
    let mut none = SealTable::new(Config {
        max_seals_per_holder: 5,
        max_seals_per_user: 0,
        break_timeout_ns: T,
    });
    assert_eq!(
        none.seal(1, 1, 1, 1000, SealKind::Breakable, r(0, 1), RW, 0),
        Err(SealError::TooMany)
    );
}

#[test]
fn access_rules_ebadf() {
    let mut t = table();
    assert_eq!(
        t.seal(1, 1, 1, 1000, SealKind::Temporary, r(0, 1), RO, 0),
        Err(SealError::BadAccess)
    );
    assert_eq!(
        t.seal(1, 1, 1, 1000, SealKind::Breakable, r(0, 1), WO, 0),
        Err(SealError::BadAccess)
    );
    assert_eq!(
        t.seal(1, 1, 1, 1000, SealKind::MappingPin, r(0, 1), WO, 0),
        Err(SealError::BadAccess)
    );
    assert_eq!(SealError::BadAccess.errno(), 9);
    assert!(t
        .seal(1, 1, 1, 1000, SealKind::Temporary, r(0, 1), WO, 0)
        .is_ok());
    assert!(t
        .seal(1, 1, 1, 1000, SealKind::Breakable, r(0, 1), RO, 0)
        .is_ok());
    assert!(t
        .seal(1, 1, 1, 1000, SealKind::MappingPin, r(0, 1), RO, 0)
        .is_ok());
    // EBADF is checked before EINVAL.
    assert_eq!(
        t.seal(1, 1, 1, 1000, SealKind::Temporary, r(5, 5), RO, 0),
        Err(SealError::BadAccess)
    );
}

#[test]
fn invalid_ranges_and_unknown_unseal_einval() {
    let mut t = table();
    assert_eq!(
        t.seal(1, 1, 1, 1000, SealKind::Temporary, r(5, 5), RW, 0),
        Err(SealError::Invalid)
    );
    assert_eq!(
        t.seal(1, 1, 1, 1000, SealKind::Temporary, r(6, 5), RW, 0),
        Err(SealError::Invalid)
    );
    assert_eq!(SealError::Invalid.errno(), 22);
    assert_eq!(t.unseal(1, 1, r(0, 10)), Err(SealError::NotFound));
    assert_eq!(SealError::NotFound.errno(), 22);
    assert_eq!(t.unseal(1, 1, r(3, 3)), Err(SealError::Invalid));
    seal(&mut t, 1, 1, SealKind::Temporary, r(0, 10));
    // Only an exact match unseals.
    assert_eq!(t.unseal(1, 1, r(0, 11)), Err(SealError::NotFound));
    assert_eq!(t.unseal(1, 1, r(0, 5)), Err(SealError::NotFound));
    assert_eq!(t.unseal(2, 1, r(0, 10)), Err(SealError::NotFound));
    assert_eq!(t.unseal(1, 2, r(0, 10)), Err(SealError::NotFound));
    assert_eq!(t.unseal_id(1, SealId(999)), Err(SealError::NotFound));
    assert_eq!(t.list(1).len(), 1);
}

#[test]
fn unseal_removes_all_exact_matches_of_that_holder() {
    let mut t = SealTable::new(Config::default());
    let a = seal(&mut t, 1, 1, SealKind::Temporary, r(0, 10));
    let b = seal(&mut t, 1, 1, SealKind::Breakable, r(0, 10));
    let c = seal(&mut t, 1, 2, SealKind::Temporary, r(0, 10));
    let d = seal(&mut t, 1, 1, SealKind::Temporary, r(0, 20));
    let gone = t.unseal(1, 1, r(0, 10)).unwrap();
    assert_eq!(gone.iter().map(|s| s.id).collect::<Vec<_>>(), vec![a, b]);
    assert_eq!(
        t.list(1).iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![c, d]
    );
}

#[test]
fn unseal_id_removes_one_of_two_identical_pins() {
    let mut t = table();
    let a = t
        .seal(1, 1, 5, 1000, SealKind::MappingPin, r(0, 4096), RO, 0)
        .unwrap();
    let b = t
        .seal(1, 1, 5, 1000, SealKind::MappingPin, r(0, 4096), RO, 0)
        .unwrap();
    assert_ne!(a, b);
    assert_eq!(t.unseal_id(2, a), Err(SealError::NotFound));
    let gone = t.unseal_id(1, a).unwrap();
    assert_eq!(gone.id, a);
    assert_eq!(t.list(1).len(), 1);
    assert_eq!(t.list(1)[0].id, b);
    assert_eq!(t.stats().pins, 1);
    assert_eq!(t.unseal_id(1, a), Err(SealError::NotFound));
}

#[test]
fn unsealing_a_recalled_seal_lets_the_change_proceed() {
    let mut t = table();
    seal(&mut t, 1, 1, SealKind::Breakable, ByteRange::WHOLE);
    let trunc = ch(ChangeKind::SizeChange, 0, 4096);
    assert!(matches!(
        t.check(1, &trunc, false, 0),
        Decision::Wait { .. }
    ));
    let gone = t.unseal(1, 1, ByteRange::WHOLE).unwrap();
    assert_eq!(gone[0].state, SealState::Recalled { deadline: T });
    assert_eq!(t.next_deadline(), None);
    assert_eq!(t.check(1, &trunc, false, 1), Decision::Proceed);
    assert!(t.expire(u64::MAX).is_empty());
    assert!(!t.is_revoked(1));
}

#[test]
fn new_seal_during_recall_is_ebusy() {
    let mut t = table();
    seal(&mut t, 1, 1, SealKind::Breakable, r(0, 10));
    t.check(1, &ch(ChangeKind::Punch, 0, 10), false, 0);
    for kind in [
        SealKind::Temporary,
        SealKind::Breakable,
        SealKind::MappingPin,
    ] {
        assert_eq!(
            t.seal(1, 2, 100, 1000, kind, r(100, 200), RW, 1),
            Err(SealError::RecallPending)
        );
    }
    assert_eq!(SealError::RecallPending.errno(), 16);
    // Other inodes are not affected.
    assert!(t
        .seal(2, 2, 100, 1000, SealKind::Breakable, r(0, 10), RW, 1)
        .is_ok());
    t.release_holder(1);
    assert!(t
        .seal(1, 2, 100, 1000, SealKind::Breakable, r(0, 10), RW, 1)
        .is_ok());
}

#[test]
fn relocate_never_recalls() {
    let mut t = table();
    seal(&mut t, 1, 1, SealKind::Breakable, r(0, 10));
    seal(&mut t, 1, 2, SealKind::MappingPin, r(100, 200));
    let rel = |s, e| ch(ChangeKind::Relocate, s, e);
    assert_eq!(
        t.check(1, &rel(0, 4096), false, 0),
        Decision::Refuse(SealError::Busy)
    );
    assert_eq!(
        t.check(1, &rel(150, 151), false, 0),
        Decision::Refuse(SealError::Busy)
    );
    assert_eq!(t.check(1, &rel(10, 100), false, 0), Decision::Proceed);
    assert_eq!(t.stats().recalls, 0);
    assert!(states(&t, 1).iter().all(|s| *s == SealState::Active));
}

#[test]
fn release_holder() {
    let mut t = table();
    let a = t
        .seal(1, 10, 1, 1000, SealKind::Temporary, r(0, 10), RW, 3)
        .unwrap();
    let b = t
        .seal(2, 10, 2, 1000, SealKind::Breakable, r(0, 10), RW, 4)
        .unwrap();
    let c = t
        .seal(2, 11, 1, 1001, SealKind::MappingPin, r(0, 10), RW, 5)
        .unwrap();
    assert!(t.release_holder(99).is_empty());

    let by_holder = t.release_holder(10);
    assert_eq!(
        by_holder.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![a, b]
    );
    assert_eq!(
        by_holder[0],
        SealInfo {
            id: a,
            ino: 1,
            kind: SealKind::Temporary,
            range: r(0, 10),
            holder: 10,
            pid: 1,
            uid: 1000,
            since: 3,
            state: SealState::Active,
        }
    );
    assert!(!t.has_seals(1));
    assert!(t.has_seals(2));

    let by_holder = t.release_holder(11);
    assert_eq!(by_holder.iter().map(|s| s.id).collect::<Vec<_>>(), vec![c]);
    assert!(!t.has_seals(2));
    assert_eq!(t.stats(), Stats::default());
}

#[test]
fn remove_inode_drops_everything_on_it() {
    let mut t = table();
    seal(&mut t, 1, 1, SealKind::Breakable, r(0, 10));
    seal(&mut t, 1, 2, SealKind::MappingPin, r(0, 10));
    seal(&mut t, 2, 1, SealKind::Temporary, r(0, 10));
    t.check(1, &ch(ChangeKind::RemoveLast, 0, 0), false, 0);
    t.remove_inode(1);
    assert!(!t.has_seals(1));
    assert!(t.list(1).is_empty());
    assert_eq!(t.next_deadline(), None);
    assert!(t.expire(u64::MAX).is_empty());
    assert!(!t.is_revoked(1));
    assert_eq!(
        t.stats(),
        Stats {
            seals: 1,
            pins: 0,
            recalls: 2,
            revocations: 0
        }
    );
    // Holder and user counts were released too (holder 1 is under its 3 again).
    assert!(t
        .seal(3, 1, 100, 1000, SealKind::Breakable, r(0, 1), RW, 0)
        .is_ok());
    assert!(t
        .seal(3, 1, 100, 1000, SealKind::Breakable, r(0, 1), RW, 0)
        .is_ok());
}

#[test]
fn stats_count_pins_separately() {
    let mut t = table();
    seal(&mut t, 1, 1, SealKind::Temporary, r(0, 10));
    seal(&mut t, 1, 1, SealKind::Breakable, r(0, 10));
    t.seal(1, 1, 101, 1000, SealKind::MappingPin, r(0, 10), RO, 0)
        .unwrap();
    assert_eq!(
        t.stats(),
        Stats {
            seals: 2,
            pins: 1,
            recalls: 0,
            revocations: 0
        }
    );
}

#[test]
fn huge_times_saturate_without_panic() {
    let mut t = SealTable::new(Config {
        max_seals_per_holder: usize::MAX,
        max_seals_per_user: usize::MAX,
        break_timeout_ns: u64::MAX,
    });
    t.seal(
        1,
        1,
        1,
        1000,
        SealKind::Breakable,
        ByteRange::WHOLE,
        RO,
        u64::MAX,
    )
    .unwrap();
    let d = t.check(1, &ch(ChangeKind::Punch, 0, u64::MAX), false, u64::MAX - 1);
    assert!(matches!(
        d,
        Decision::Wait {
            deadline: u64::MAX,
            ..
        }
    ));
    assert_eq!(t.expire(u64::MAX).len(), 1);
}

#[test]
fn revoke_removes_every_overlapping_seal_and_fences_its_holders() {
    let mut t = table();
    let a = seal(&mut t, 1, 1, SealKind::Temporary, r(0, 10));
    let b = seal(&mut t, 1, 2, SealKind::Breakable, r(5, 20));
    let c = seal(&mut t, 1, 3, SealKind::MappingPin, r(30, 40));
    let other = seal(&mut t, 2, 4, SealKind::Temporary, ByteRange::WHOLE);
    t.check(1, &ch(ChangeKind::Punch, 6, 7), false, 0); // refused by a: nothing recalled
    let gone = t.revoke(1, r(0, 21));
    assert_eq!(gone.iter().map(|s| s.id).collect::<Vec<_>>(), vec![a, b]);
    assert_eq!(gone[0].kind, SealKind::Temporary);
    assert!(t.is_revoked(1) && t.is_revoked(2));
    assert!(!t.is_revoked(3) && !t.is_revoked(4));
    assert_eq!(t.list(1).iter().map(|s| s.id).collect::<Vec<_>>(), vec![c]);
    assert_eq!(
        t.seal(1, 1, 100, 1000, SealKind::Temporary, r(0, 1), RW, 0),
        Err(SealError::Revoked)
    );
    assert_eq!(t.revoke(1, ByteRange::WHOLE).len(), 1);
    assert!(!t.has_seals(1));
    assert_eq!(
        t.list(2).iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![other]
    );
    assert_eq!(t.stats().revocations, 3);
    assert!(t.revoke(9, ByteRange::WHOLE).is_empty());
}

#[test]
fn growth_passes_mapping_pins_but_not_seals() {
    let mut t = table();
    // A pin over blocks past the end of the file (a guest's whole 2 MiB slot).
    seal(&mut t, 1, 1, SealKind::MappingPin, r(0, 2 << 20));
    let grow = ch(ChangeKind::Extend, 100, 4096);
    assert_eq!(t.check(1, &grow, false, 0), Decision::Proceed);
    // Shrinking over the same bytes frees them: the pin is recalled.
    let d = t.check(1, &ch(ChangeKind::SizeChange, 100, 4096), false, 0);
    assert_eq!(recalled_ids(&d).len(), 1);
    // Seals freeze the size: growth recalls a breakable one, a temporary one refuses it.
    seal(&mut t, 2, 1, SealKind::Breakable, r(0, 2 << 20));
    let d = t.check(2, &grow, false, 0);
    assert_eq!(recalled_ids(&d).len(), 1);
    seal(&mut t, 3, 1, SealKind::Temporary, r(0, 2 << 20));
    assert_eq!(
        t.check(3, &grow, false, 0),
        Decision::Refuse(SealError::Busy)
    );
    // A pin and a breakable seal on one file: growth waits for the seal alone.
    let mut t = table();
    seal(&mut t, 4, 1, SealKind::MappingPin, r(0, 2 << 20));
    seal(&mut t, 4, 2, SealKind::Breakable, r(0, 2 << 20));
    let d = t.check(4, &grow, false, 0);
    assert_eq!(recalled_ids(&d).len(), 1);
    assert_eq!(
        states(&t, 4),
        vec![SealState::Active, SealState::Recalled { deadline: T }]
    );
}

/// A replacing seal removes every temporary and breakable seal of its holder on the inode
/// (any range, any kind but pins), and nothing of other holders or other inodes, in the
/// same step as it takes the new one.
#[test]
fn replace_moves_the_holders_seals_and_keeps_its_pins() {
    let mut t = table();
    let a = seal(&mut t, 1, 1, SealKind::Temporary, r(0, 10));
    let pin = seal(&mut t, 1, 1, SealKind::MappingPin, r(0, 10));
    let other = seal(&mut t, 1, 2, SealKind::Temporary, r(0, 10));
    let elsewhere = seal(&mut t, 2, 1, SealKind::Breakable, r(0, 10));
    // At the holder's limit (3): the replaced seal makes room for the new one.
    assert_eq!(
        t.seal(1, 1, 100, 1000, SealKind::Breakable, r(20, 30), RW, 0),
        Err(SealError::TooMany)
    );
    let (b, gone) = t
        .replace(1, 1, 101, 1000, SealKind::Breakable, r(20, 30), RO, 7)
        .unwrap();
    assert_eq!(gone.iter().map(|s| s.id).collect::<Vec<_>>(), vec![a]);
    let ids: Vec<SealId> = t.list(1).iter().map(|s| s.id).collect();
    assert_eq!(ids, vec![pin, other, b], "the new seal is the newest");
    assert_eq!(t.list(1)[2].pid, 101);
    assert_eq!(t.list(1)[2].since, 7);
    assert_eq!(t.list(2)[0].id, elsewhere, "another inode's seal stays");
    // Replacing when nothing is held is a plain seal.
    let (c, gone) = t
        .replace(3, 9, 100, 1000, SealKind::Temporary, r(0, 1), RW, 0)
        .unwrap();
    assert!(gone.is_empty());
    assert_eq!(t.list(3).iter().map(|s| s.id).collect::<Vec<_>>(), vec![c]);
    // The same range again: the old seal goes, a new one stands.
    let (d, gone) = t
        .replace(3, 9, 100, 1000, SealKind::Temporary, r(0, 1), RW, 0)
        .unwrap();
    assert_eq!(gone.iter().map(|s| s.id).collect::<Vec<_>>(), vec![c]);
    assert_eq!(t.list(3).iter().map(|s| s.id).collect::<Vec<_>>(), vec![d]);
    assert_eq!(
        t.stats(),
        Stats {
            seals: 4,
            pins: 1,
            recalls: 0,
            revocations: 0
        }
    );
}

/// A refused replacement changes nothing, and a seal being recalled, the holder's own
/// included, refuses it with EBUSY: a recalled holder unseals.
#[test]
fn a_refused_replace_keeps_the_old_seals() {
    let mut t = table();
    let a = seal(&mut t, 1, 1, SealKind::Breakable, r(0, 10));
    let before = t.list(1);
    assert_eq!(
        t.replace(1, 1, 100, 1000, SealKind::Temporary, r(0, 10), RO, 0),
        Err(SealError::BadAccess)
    );
    assert_eq!(
        t.replace(1, 1, 100, 1000, SealKind::Temporary, r(5, 5), RW, 0),
        Err(SealError::Invalid)
    );
    assert_eq!(t.list(1), before);
    assert_eq!(
        recalled_ids(&t.check(1, &ch(ChangeKind::Punch, 0, 1), false, 0)),
        vec![a]
    );
    assert_eq!(
        t.replace(1, 1, 100, 1000, SealKind::Breakable, r(20, 30), RW, 0),
        Err(SealError::RecallPending)
    );
    assert_eq!(t.list(1).len(), 1, "the recalled seal is still held");
    // Given back, the holder seals again.
    t.unseal_seals(1, 1, r(0, 10)).unwrap();
    t.replace(1, 1, 100, 1000, SealKind::Breakable, r(20, 30), RW, 0)
        .unwrap();
    // Fenced: ENOLINK before anything else.
    t.seal(4, 3, 100, 1000, SealKind::Breakable, r(0, 10), RW, 0)
        .unwrap();
    t.revoke(4, r(0, 10));
    assert_eq!(
        t.replace(4, 3, 100, 1000, SealKind::Breakable, r(0, 10), RW, 0),
        Err(SealError::Revoked)
    );
    // The per-user limit counts only this user's replaced seals.
    let mut t = table();
    for h in 1..=4 {
        t.seal(5, h, 100, 1000, SealKind::Temporary, r(0, 1), RW, 0)
            .unwrap();
    }
    t.seal(5, 5, 100, 2000, SealKind::Temporary, r(0, 1), RW, 0)
        .unwrap();
    t.seal(5, 9, 100, 1000, SealKind::Temporary, r(0, 1), RW, 0)
        .unwrap(); // user 1000 holds 5
    assert_eq!(
        t.replace(5, 5, 100, 1000, SealKind::Temporary, r(0, 2), RW, 0),
        Err(SealError::TooMany),
        "holder 5's seal is user 2000's: it frees nothing of user 1000's"
    );
    assert!(t
        .replace(5, 9, 100, 1000, SealKind::Temporary, r(0, 2), RW, 0)
        .is_ok());
}

/// A replacement undone after its holder was revoked gives nothing back.
#[test]
fn an_undo_after_a_revocation_restores_nothing() {
    let mut t = table();
    seal(&mut t, 1, 1, SealKind::Breakable, r(0, 10));
    let (id, gone) = t
        .replace(1, 1, 100, 1000, SealKind::Breakable, r(20, 30), RW, 0)
        .unwrap();
    assert_eq!(gone.len(), 1);
    assert_eq!(t.revoke(1, r(20, 30)).len(), 1);
    assert!(
        !t.undo_replace(1, 1, id, gone),
        "the new seal went with the revocation"
    );
    assert_eq!(t.list(1), Vec::new());
    assert!(t.is_revoked(1));
}

/// UNSEAL's table call leaves the holder's mapping pins on the same range.
#[test]
fn unseal_seals_leaves_pins() {
    let mut t = table();
    let pin = seal(&mut t, 1, 1, SealKind::MappingPin, r(0, 10));
    assert_eq!(t.unseal_seals(1, 1, r(0, 10)), Err(SealError::NotFound));
    let a = seal(&mut t, 1, 1, SealKind::Temporary, r(0, 10));
    let b = seal(&mut t, 1, 1, SealKind::Breakable, r(0, 10));
    let gone: Vec<SealId> = t
        .unseal_seals(1, 1, r(0, 10))
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(gone, vec![a, b]);
    assert_eq!(
        t.list(1).iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![pin]
    );
    assert_eq!(t.unseal_seals(1, 1, r(3, 3)), Err(SealError::Invalid));
}
