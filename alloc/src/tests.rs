//! Unit tests: one or more per policy rule and per error variant, with exact expected values.
//!
//! They must not depend on the order of other tests or on timing.

use crate::{AllocError, Allocator, Extent, Hint};

fn ext(start: u64, len: u64) -> Extent {
    Extent { start, len }
}

fn free_list(a: &Allocator) -> Vec<(u64, u64)> {
    a.free_extents().map(|e| (e.start, e.len)).collect()
}

/// An allocator of `total` blocks whose free extents are exactly `free` (start, len).
fn with_free(total: u64, free: &[(u64, u64)]) -> Allocator {
    let mut a = Allocator::new(total);
    if total > 0 {
        a.mark_used(ext(0, total)).unwrap();
    }
    for &(s, l) in free {
        a.free(ext(s, l)).unwrap();
    }
    a.check_invariants();
    a
}

fn goal(g: u64) -> Hint {
    Hint {
        goal: Some(g),
        align: 0,
    }
}

fn align(n: u64) -> Hint {
    Hint {
        goal: None,
        align: n,
    }
}

#[test]
fn extent_end() {
    assert_eq!(ext(5, 3).end(), 8);
    assert_eq!(ext(u64::MAX, 2).end(), u64::MAX);
}

#[test]
fn new_is_all_free() {
    let a = Allocator::new(100);
    assert_eq!(a.total_blocks(), 100);
    assert_eq!(a.free_blocks(), 100);
    assert_eq!(a.largest_free(), 100);
    assert_eq!(free_list(&a), vec![(0, 100)]);
    assert!(a.is_free(ext(0, 100)));

    let z = Allocator::new(0);
    assert_eq!(z.free_blocks(), 0);
    assert_eq!(z.largest_free(), 0);
    assert_eq!(free_list(&z), vec![]);
}

#[test]
fn mark_used_splits() {
    let mut a = Allocator::new(100);
    a.mark_used(ext(10, 5)).unwrap();
    a.mark_used(ext(0, 2)).unwrap();
    a.mark_used(ext(95, 5)).unwrap();
    a.check_invariants();
    assert_eq!(free_list(&a), vec![(2, 8), (15, 80)]);
    assert_eq!(a.free_blocks(), 88);
    assert_eq!(a.largest_free(), 80);
}

#[test]
fn mark_used_errors_change_nothing() {
    let mut a = Allocator::new(100);
    a.mark_used(ext(10, 5)).unwrap();
    let before = free_list(&a);
    assert_eq!(
        a.mark_used(ext(12, 1)),
        Err(AllocError::AlreadyUsed { start: 12, end: 13 })
    );
    assert_eq!(
        a.mark_used(ext(5, 6)),
        Err(AllocError::AlreadyUsed { start: 5, end: 11 })
    );
    assert_eq!(
        a.mark_used(ext(14, 3)),
        Err(AllocError::AlreadyUsed { start: 14, end: 17 })
    );
    assert_eq!(
        a.mark_used(ext(0, 100)),
        Err(AllocError::AlreadyUsed { start: 0, end: 100 })
    );
    assert_eq!(a.mark_used(ext(7, 0)), Err(AllocError::Empty { start: 7 }));
    assert_eq!(
        a.mark_used(ext(99, 2)),
        Err(AllocError::OutOfRange {
            start: 99,
            end: 101,
            total: 100
        })
    );
    assert_eq!(
        a.mark_used(ext(u64::MAX, u64::MAX)),
        Err(AllocError::OutOfRange {
            start: u64::MAX,
            end: u64::MAX,
            total: 100
        })
    );
    assert_eq!(free_list(&a), before);
    assert_eq!(a.free_blocks(), 95);
    a.check_invariants();
}

#[test]
fn free_coalesces_left_right_and_both() {
    let mut a = Allocator::new(30);
    a.mark_used(ext(0, 30)).unwrap();
    a.free(ext(10, 5)).unwrap();
    a.free(ext(5, 5)).unwrap(); // touches the right neighbour
    assert_eq!(free_list(&a), vec![(5, 10)]);
    a.free(ext(15, 5)).unwrap(); // touches the left neighbour
    assert_eq!(free_list(&a), vec![(5, 15)]);
    a.free(ext(25, 5)).unwrap(); // touches nothing
    assert_eq!(free_list(&a), vec![(5, 15), (25, 5)]);
    a.free(ext(20, 5)).unwrap(); // bridges both
    assert_eq!(free_list(&a), vec![(5, 25)]);
    a.free(ext(0, 5)).unwrap();
    assert_eq!(free_list(&a), vec![(0, 30)]);
    assert_eq!(a.free_blocks(), 30);
    a.check_invariants();
}

#[test]
fn free_errors_change_nothing() {
    let mut a = with_free(100, &[(10, 10), (50, 5)]);
    let before = free_list(&a);
    // Double free, partial overlap at each edge, and a range that swallows a free extent.
    for (s, l) in [(10, 10), (12, 1), (5, 6), (19, 3), (40, 20), (0, 100)] {
        assert_eq!(
            a.free(ext(s, l)),
            Err(AllocError::AlreadyFree {
                start: s,
                end: s + l
            }),
            "free({s}, {l})"
        );
    }
    assert_eq!(a.free(ext(3, 0)), Err(AllocError::Empty { start: 3 }));
    assert_eq!(
        a.free(ext(100, 1)),
        Err(AllocError::OutOfRange {
            start: 100,
            end: 101,
            total: 100
        })
    );
    assert_eq!(
        a.free(ext(1, u64::MAX)),
        Err(AllocError::OutOfRange {
            start: 1,
            end: u64::MAX,
            total: 100
        })
    );
    assert_eq!(free_list(&a), before);
    assert_eq!(a.free_blocks(), 15);
    a.check_invariants();
}

#[test]
fn is_free_cases() {
    let a = with_free(100, &[(10, 10)]);
    assert!(a.is_free(ext(10, 10)));
    assert!(a.is_free(ext(12, 3)));
    assert!(!a.is_free(ext(9, 2)));
    assert!(!a.is_free(ext(19, 2)));
    assert!(!a.is_free(ext(0, 1)));
    assert!(!a.is_free(ext(10, 0)));
    assert!(!a.is_free(ext(99, 5)));
    assert!(!a.is_free(ext(u64::MAX, 1)));
}

#[test]
fn allocate_zero_is_empty() {
    let mut a = Allocator::new(10);
    assert_eq!(a.allocate(0, Hint::default()), Ok(vec![]));
    let mut z = Allocator::new(0);
    assert_eq!(z.allocate(0, goal(0)), Ok(vec![]));
    assert_eq!(
        z.allocate(1, Hint::default()),
        Err(AllocError::NoSpace { wanted: 1, free: 0 })
    );
}

#[test]
fn allocate_no_space_is_all_or_nothing() {
    let mut a = with_free(100, &[(0, 10), (20, 10), (40, 10)]);
    let before = free_list(&a);
    assert_eq!(
        a.allocate(31, Hint::default()),
        Err(AllocError::NoSpace {
            wanted: 31,
            free: 30
        })
    );
    assert_eq!(
        a.allocate(u64::MAX, goal(0)),
        Err(AllocError::NoSpace {
            wanted: u64::MAX,
            free: 30
        })
    );
    assert_eq!(free_list(&a), before);
    // Exactly everything free succeeds.
    assert_eq!(
        a.allocate(30, Hint::default()),
        Ok(vec![ext(0, 10), ext(20, 10), ext(40, 10)])
    );
    assert_eq!(a.free_blocks(), 0);
    a.check_invariants();
}

#[test]
fn goal_extends_in_place() {
    let mut a = Allocator::new(100);
    assert_eq!(a.allocate(10, Hint::default()), Ok(vec![ext(0, 10)]));
    // Sequential writes: the goal is the block after the last extent.
    assert_eq!(a.allocate(5, goal(10)), Ok(vec![ext(10, 5)]));
    // A goal in the middle of a free extent, not at its start.
    assert_eq!(a.allocate(3, goal(50)), Ok(vec![ext(50, 3)]));
    assert_eq!(free_list(&a), vec![(15, 35), (53, 47)]);
    a.check_invariants();
}

#[test]
fn goal_partial_run_then_continues() {
    // Run at the goal is 4 long; the remaining 6 go to the best fit (the 6-block extent).
    let mut a = with_free(100, &[(10, 4), (30, 6), (50, 20)]);
    assert_eq!(a.allocate(10, goal(10)), Ok(vec![ext(10, 4), ext(30, 6)]));
    assert_eq!(free_list(&a), vec![(50, 20)]);
    a.check_invariants();
}

#[test]
fn goal_run_merges_with_blocks_before_it() {
    // The goal is inside the only free extent; the rest is the blocks just before the goal,
    // and the two pieces are returned as one extent.
    let mut a = with_free(100, &[(20, 10)]);
    assert_eq!(a.allocate(10, goal(25)), Ok(vec![ext(20, 10)]));
    assert_eq!(free_list(&a), vec![]);
    a.check_invariants();
}

#[test]
fn goal_used_or_out_of_range_is_ignored() {
    let mut a = with_free(100, &[(10, 8), (40, 5)]);
    // Block 0 is used: plain best fit.
    assert_eq!(a.allocate(5, goal(0)), Ok(vec![ext(40, 5)]));
    assert_eq!(a.allocate(2, goal(1000)), Ok(vec![ext(10, 2)]));
    assert_eq!(a.allocate(2, goal(u64::MAX)), Ok(vec![ext(12, 2)]));
    a.check_invariants();
}

#[test]
fn best_fit_smallest_then_lowest_start() {
    let mut a = with_free(200, &[(0, 50), (60, 8), (80, 7), (100, 7), (120, 20)]);
    assert_eq!(a.allocate(7, Hint::default()), Ok(vec![ext(80, 7)]));
    assert_eq!(a.allocate(7, Hint::default()), Ok(vec![ext(100, 7)]));
    assert_eq!(a.allocate(7, Hint::default()), Ok(vec![ext(60, 7)]));
    assert_eq!(a.allocate(9, Hint::default()), Ok(vec![ext(120, 9)]));
    assert_eq!(free_list(&a), vec![(0, 50), (67, 1), (129, 11)]);
    a.check_invariants();
}

#[test]
fn alignment_prefers_best_fitting_aligned_extent() {
    // 8-block extents at 3 (unaligned: cannot hold 8 at a multiple of 8) and at 16 (aligned),
    // a 12-block extent at 37 (holds 8 at 40), and a big one at 64.
    let mut a = with_free(200, &[(3, 8), (16, 8), (37, 12), (64, 100)]);
    assert_eq!(a.allocate(8, align(8)), Ok(vec![ext(16, 8)]));
    // Next: the 12-block extent, cut at its aligned block, leaving pieces on both sides.
    assert_eq!(a.allocate(8, align(8)), Ok(vec![ext(40, 8)]));
    assert_eq!(free_list(&a), vec![(3, 8), (37, 3), (48, 1), (64, 100)]);
    // Larger than the alignment: 16 blocks at a multiple of 8.
    assert_eq!(a.allocate(16, align(8)), Ok(vec![ext(64, 16)]));
    a.check_invariants();
}

#[test]
fn alignment_ignored_for_small_counts_and_falls_back() {
    let mut a = with_free(200, &[(3, 8), (17, 9)]);
    // count < align: plain best fit.
    assert_eq!(a.allocate(4, align(8)), Ok(vec![ext(3, 4)]));
    // Nothing can hold 8 aligned to 8 (17..26 holds 24..26 only): best fit instead.
    assert_eq!(a.allocate(8, align(8)), Ok(vec![ext(17, 8)]));
    // Alignment 0 and 1 mean none.
    let mut b = with_free(200, &[(3, 8), (16, 8)]);
    assert_eq!(b.allocate(8, align(1)), Ok(vec![ext(3, 8)]));
    assert_eq!(b.allocate(8, align(0)), Ok(vec![ext(16, 8)]));
    // Huge alignment: only block 0 is aligned.
    let mut c = with_free(200, &[(3, 8), (50, 8)]);
    assert_eq!(c.allocate(8, align(u64::MAX)), Ok(vec![ext(3, 8)]));
}

#[test]
fn goal_beats_alignment() {
    let mut a = Allocator::new(100);
    assert_eq!(
        a.allocate(
            8,
            Hint {
                goal: Some(3),
                align: 8
            }
        ),
        Ok(vec![ext(3, 8)])
    );
}

#[test]
fn fewest_pieces_largest_first_then_best_fit() {
    // Need 25: largest (12) + next largest (10) leaves 3, which the exact 3-block extent fits.
    let mut a = with_free(200, &[(0, 3), (10, 10), (30, 12), (50, 4), (60, 9)]);
    assert_eq!(
        a.allocate(25, Hint::default()),
        Ok(vec![ext(0, 3), ext(10, 10), ext(30, 12)])
    );
    assert_eq!(free_list(&a), vec![(50, 4), (60, 9)]);
    // Need 11: no single extent; 9 + best fit for 2 (from the 4-block one).
    assert_eq!(
        a.allocate(11, Hint::default()),
        Ok(vec![ext(50, 2), ext(60, 9)])
    );
    assert_eq!(free_list(&a), vec![(52, 2)]);
    a.check_invariants();
}

#[test]
fn allocate_aligned_exact() {
    let mut a = with_free(1 << 12, &[(1, 600), (1000, 1100), (2560, 512)]);
    // The 512 at 2560 (= 5 * 512) is the best fit that can hold an aligned run.
    assert_eq!(a.allocate_aligned(512, 512), Some(ext(2560, 512)));
    // 1..601 cannot hold 512 aligned; 1000..2100 holds it at 1024.
    assert_eq!(a.allocate_aligned(512, 512), Some(ext(1024, 512)));
    // 1536..2100 holds 512 at 1536.
    assert_eq!(a.allocate_aligned(512, 512), Some(ext(1536, 512)));
    let before = free_list(&a);
    assert_eq!(a.allocate_aligned(512, 512), None);
    assert_eq!(free_list(&a), before);
    assert_eq!(a.allocate_aligned(0, 512), None);
    assert_eq!(a.allocate_aligned(u64::MAX, 1), None);
    assert_eq!(a.allocate_aligned(5, u64::MAX), None);
    // align 0 is treated as 1: best fit.
    assert_eq!(a.allocate_aligned(4, 0), Some(ext(1000, 4)));
    a.check_invariants();
}

#[test]
fn allocate_aligned_finds_one_past_the_scan_limit() {
    // Many extents just too small to be certain, all misaligned, then one aligned at the end:
    // the search must still find it when nothing certainly big enough exists.
    let mut free = Vec::new();
    for i in 0..200u64 {
        free.push((i * 32 + 1, 20)); // 20 blocks: holds 16 aligned only if it starts right
    }
    free.push((200 * 32, 20));
    let mut a = with_free(200 * 32 + 64, &free);
    assert_eq!(a.allocate_aligned(16, 16), Some(ext(200 * 32, 16)));
    assert_eq!(a.allocate_aligned(16, 16), None);
    a.check_invariants();
}

#[test]
fn free_everything_leaves_one_extent() {
    let mut a = Allocator::new(1000);
    let mut got = Vec::new();
    for i in 1..40 {
        got.extend(
            a.allocate(
                i,
                Hint {
                    goal: Some(i * 7),
                    align: 4,
                },
            )
            .unwrap(),
        );
    }
    for e in got.iter().rev() {
        a.free(*e).unwrap();
    }
    assert_eq!(free_list(&a), vec![(0, 1000)]);
    a.check_invariants();
}

#[test]
fn large_device_many_files() {
    // 2^28 blocks, 20_000 small files appended to in turn: each extension lands in place
    // until the neighbour is taken. Checks scale, not policy detail.
    let mut a = Allocator::new(1 << 28);
    let mut last: Vec<Extent> = Vec::new();
    for i in 0..20_000u64 {
        let e = a.allocate(3, Hint::default()).unwrap();
        assert_eq!(e, vec![ext(i * 3, 3)]);
        last.push(e[0]);
    }
    for (i, e) in last.iter().enumerate().step_by(2) {
        a.free(*e).unwrap();
        assert!(a.is_free(ext(i as u64 * 3, 3)));
    }
    assert_eq!(a.free_blocks(), (1 << 28) - 10_000 * 3);
    // Fragmented now: best fit reuses the 3-block holes.
    assert_eq!(a.allocate(3, Hint::default()), Ok(vec![ext(0, 3)]));
    assert_eq!(a.allocate_aligned(512, 512), Some(ext(60_416, 512)));
    a.check_invariants();
}

#[test]
fn error_messages() {
    assert_eq!(
        AllocError::NoSpace { wanted: 5, free: 2 }.to_string(),
        "no space: 5 blocks wanted, 2 free"
    );
    assert_eq!(
        AllocError::OutOfRange {
            start: 1,
            end: 9,
            total: 4
        }
        .to_string(),
        "blocks 1..9 are outside the device (4 blocks)"
    );
    assert_eq!(
        AllocError::AlreadyUsed { start: 1, end: 2 }.to_string(),
        "blocks 1..2 overlap blocks already in use"
    );
    assert_eq!(
        AllocError::AlreadyFree { start: 1, end: 2 }.to_string(),
        "blocks 1..2 overlap blocks already free"
    );
    assert_eq!(
        AllocError::Empty { start: 3 }.to_string(),
        "empty extent at block 3"
    );
}

#[test]
fn place_starts_a_fresh_huge_piece_aligned_and_continues_contiguously_otherwise() {
    // 2048 blocks free from 1 on (block 0 used): a run at file block 0 of 512 blocks (a
    // whole 2 MiB piece at 4 KiB) with no goal goes to the first 512-aligned block.
    let mut a = with_free(4096, &[(1, 4095)]);
    assert_eq!(a.place(0, 512, None, 512).unwrap(), vec![ext(512, 512)]);
    // The next piece continues contiguously after the previous one when that block is free.
    assert_eq!(
        a.place(512, 512, Some(1024), 512).unwrap(),
        vec![ext(1024, 512)]
    );
    // A run that does not start a fresh piece (file block 100) or is short (< huge/4) uses
    // the plain policy: the goal run, else the best fit (the rest of [1, 512)).
    assert_eq!(a.place(100, 10, Some(1), 512).unwrap(), vec![ext(1, 10)]);
    assert_eq!(a.place(1536, 100, None, 512).unwrap(), vec![ext(11, 100)]);
    // huge <= 1 turns the aligned rule off.
    let mut b = with_free(4096, &[(1, 4095)]);
    assert_eq!(b.place(0, 512, None, 1).unwrap(), vec![ext(1, 512)]);
}

#[test]
fn place_falls_back_when_no_aligned_run_is_free_and_changes_nothing_on_no_space() {
    // Free: [1, 600) only — no 512-aligned run of 512 blocks fits (512..1024 is used).
    let mut a = with_free(4096, &[(1, 599)]);
    assert_eq!(a.place(0, 512, None, 512).unwrap(), vec![ext(1, 512)]);
    let before = free_list(&a);
    assert!(matches!(
        a.place(0, 512, None, 512),
        Err(AllocError::NoSpace { wanted: 512, .. })
    ));
    assert_eq!(free_list(&a), before, "a refused placement changes nothing");
}
