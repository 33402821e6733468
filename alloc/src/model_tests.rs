//! Model-based property tests: random operation sequences run against both the allocator and a
//! `Vec<bool>` per-block model, comparing every result and the whole state after every step.
//!
//! They must stay fast (a few seconds in all) and check policy only where the spec fixes the
//! answer: the goal run, best fit, the aligned preference, and the fewest-pieces count.

use proptest::prelude::*;

use crate::{AllocError, Allocator, Extent, Hint};

#[derive(Clone, Debug)]
enum Op {
    Alloc {
        count: u64,
        goal: Option<u64>,
        align: u64,
    },
    AllocAligned {
        count: u64,
        align: u64,
    },
    /// Free a piece of a live extent: `off` and `len` are reduced into range when run.
    FreeLive {
        pick: usize,
        off: u64,
        len: u64,
    },
    MarkUsed {
        start: u64,
        len: u64,
    },
    /// Free an arbitrary range: legitimate, a double free or out of range, as it happens.
    FreeRaw {
        start: u64,
        len: u64,
    },
    /// Free a whole free run: always a double free.
    DoubleFree {
        pick: usize,
    },
    IsFree {
        start: u64,
        len: u64,
    },
}

fn pos(total: u64) -> impl Strategy<Value = u64> {
    prop_oneof![
        12 => 0..total + 16,
        1 => Just(total),
        1 => prop_oneof![Just(u64::MAX), Just(u64::MAX - 1)],
    ]
}

fn len(total: u64) -> impl Strategy<Value = u64> {
    prop_oneof![
        8 => 0..=(total / 16 + 3),
        3 => 0..=(total + 8),
        1 => Just(u64::MAX),
    ]
}

fn align() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(2),
        Just(4),
        Just(8),
        Just(16),
        Just(64),
        Just(u64::MAX)
    ]
}

fn op(total: u64) -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (len(total), proptest::option::of(pos(total)), align())
            .prop_map(|(count, goal, align)| Op::Alloc { count, goal, align }),
        2 => (len(total), align()).prop_map(|(count, align)| Op::AllocAligned { count, align }),
        5 => (any::<usize>(), any::<u64>(), any::<u64>())
            .prop_map(|(pick, off, len)| Op::FreeLive { pick, off, len }),
        2 => (pos(total), len(total)).prop_map(|(start, len)| Op::MarkUsed { start, len }),
        2 => (pos(total), len(total)).prop_map(|(start, len)| Op::FreeRaw { start, len }),
        1 => any::<usize>().prop_map(|pick| Op::DoubleFree { pick }),
        1 => (pos(total), len(total)).prop_map(|(start, len)| Op::IsFree { start, len }),
    ]
}

/// One `bool` per block: true = in use.
struct Model {
    used: Vec<bool>,
}

impl Model {
    fn total(&self) -> u64 {
        self.used.len() as u64
    }

    fn free_count(&self) -> u64 {
        self.used.iter().filter(|u| !**u).count() as u64
    }

    /// Same validation as the allocator, from first principles.
    fn check(&self, start: u64, len: u64) -> Result<u64, AllocError> {
        if len == 0 {
            return Err(AllocError::Empty { start });
        }
        match start.checked_add(len) {
            Some(end) if end <= self.total() => Ok(end),
            _ => Err(AllocError::OutOfRange {
                start,
                end: start.saturating_add(len),
                total: self.total(),
            }),
        }
    }

    fn all(&self, start: u64, end: u64, used: bool) -> bool {
        self.used[start as usize..end as usize]
            .iter()
            .all(|&u| u == used)
    }

    fn set(&mut self, start: u64, end: u64, used: bool) {
        self.used[start as usize..end as usize].fill(used);
    }

    /// Maximal free runs as (start, len), sorted by start.
    fn runs(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.used.len() {
            if self.used[i] {
                i += 1;
                continue;
            }
            let s = i;
            while i < self.used.len() && !self.used[i] {
                i += 1;
            }
            out.push((s as u64, (i - s) as u64));
        }
        out
    }
}

/// Whether a free run can hold `n` blocks starting at a multiple of `align`.
fn holds_aligned((s, l): (u64, u64), n: u64, align: u64) -> bool {
    s.checked_next_multiple_of(align)
        .and_then(|a| a.checked_add(n))
        .is_some_and(|e| e <= s + l)
}

/// Removes blocks `[start, end)` from the live extents, splitting any that straddle it.
fn remove_live(live: &mut Vec<Extent>, start: u64, end: u64) {
    let mut out = Vec::with_capacity(live.len() + 1);
    for e in live.drain(..) {
        if e.end() <= start || e.start >= end {
            out.push(e);
            continue;
        }
        if e.start < start {
            out.push(Extent {
                start: e.start,
                len: start - e.start,
            });
        }
        if e.end() > end {
            out.push(Extent {
                start: end,
                len: e.end() - end,
            });
        }
    }
    *live = out;
}

fn check_state(a: &Allocator, m: &Model) -> Result<(), TestCaseError> {
    a.check_invariants();
    let runs = m.runs();
    let got: Vec<(u64, u64)> = a.free_extents().map(|e| (e.start, e.len)).collect();
    prop_assert_eq!(&got, &runs);
    prop_assert_eq!(a.free_blocks(), m.free_count());
    prop_assert_eq!(a.total_blocks(), m.total());
    prop_assert_eq!(
        a.largest_free(),
        runs.iter().map(|r| r.1).max().unwrap_or(0)
    );
    Ok(())
}

/// Checks a successful `allocate` against the model before it is applied, including the
/// policy points the spec fixes.
fn check_allocation(
    m: &Model,
    count: u64,
    hint: Hint,
    got: &[Extent],
) -> Result<(), TestCaseError> {
    let mut sum = 0u64;
    for (i, e) in got.iter().enumerate() {
        prop_assert!(e.len > 0, "empty piece {:?}", e);
        prop_assert!(e.end() <= m.total(), "piece {:?} past device", e);
        prop_assert!(m.all(e.start, e.end(), false), "piece {:?} not free", e);
        if i > 0 {
            // Sorted, disjoint, and touching pieces merged.
            prop_assert!(got[i - 1].end() < e.start, "pieces {:?} unsorted", got);
        }
        sum += e.len;
    }
    prop_assert_eq!(sum, count);
    if count == 0 {
        prop_assert!(got.is_empty());
        return Ok(());
    }

    let runs = m.runs();
    if let Some(g) = hint.goal.filter(|&g| g < m.total() && !m.used[g as usize]) {
        let &(s, l) = runs.iter().find(|(s, l)| *s <= g && g < s + l).unwrap();
        let n = (s + l - g).min(count);
        prop_assert!(
            got.iter().any(|e| e.start <= g && g + n <= e.end()),
            "goal run {}+{} not in {:?}",
            g,
            n,
            got
        );
        return Ok(());
    }
    let best = runs
        .iter()
        .filter(|r| r.1 >= count)
        .min_by_key(|r| (r.1, r.0))
        .copied();
    if let Some((bs, _)) = best {
        prop_assert_eq!(got.len(), 1, "one extent could hold {}: {:?}", count, got);
        let wants_align = hint.align > 1 && count >= hint.align;
        if wants_align && runs.iter().any(|&r| holds_aligned(r, count, hint.align)) {
            prop_assert_eq!(got[0].start % hint.align, 0, "not aligned: {:?}", got);
        } else {
            prop_assert_eq!(got[0].start, bs, "not best fit");
        }
    } else {
        // Fewest pieces: the smallest k whose k largest runs sum to count.
        let mut lens: Vec<u64> = runs.iter().map(|r| r.1).collect();
        lens.sort_unstable_by(|a, b| b.cmp(a));
        let mut acc = 0;
        let k = lens
            .iter()
            .position(|l| {
                acc += l;
                acc >= count
            })
            .unwrap()
            + 1;
        prop_assert_eq!(got.len(), k, "not fewest pieces: {:?}", got);
    }
    Ok(())
}

fn run(total: u64, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut a = Allocator::new(total);
    let mut m = Model {
        used: vec![false; total as usize],
    };
    let mut live: Vec<Extent> = Vec::new();
    check_state(&a, &m)?;

    for op in ops {
        match op {
            Op::Alloc { count, goal, align } => {
                let hint = Hint { goal, align };
                let res = a.allocate(count, hint);
                let free = m.free_count();
                if count > free {
                    prop_assert_eq!(
                        res,
                        Err(AllocError::NoSpace {
                            wanted: count,
                            free
                        })
                    );
                } else {
                    let got = res.map_err(|e| TestCaseError::fail(format!("{e}")))?;
                    check_allocation(&m, count, hint, &got)?;
                    for e in got {
                        m.set(e.start, e.end(), true);
                        live.push(e);
                    }
                }
            }
            Op::AllocAligned { count, align } => {
                let al = align.max(1);
                let possible =
                    count > 0 && m.runs().into_iter().any(|r| holds_aligned(r, count, al));
                match a.allocate_aligned(count, align) {
                    Some(e) => {
                        prop_assert!(possible, "allocated {:?} where model has no room", e);
                        prop_assert_eq!(e.len, count);
                        prop_assert_eq!(e.start % al, 0);
                        prop_assert!(e.end() <= m.total() && m.all(e.start, e.end(), false));
                        m.set(e.start, e.end(), true);
                        live.push(e);
                    }
                    None => prop_assert!(!possible, "missed an aligned run of {}", count),
                }
            }
            Op::FreeLive { pick, off, len } => {
                if live.is_empty() {
                    continue;
                }
                let e = live[pick % live.len()];
                let off = off % e.len;
                let len = 1 + len % (e.len - off);
                let piece = Extent {
                    start: e.start + off,
                    len,
                };
                prop_assert_eq!(a.free(piece), Ok(()));
                m.set(piece.start, piece.end(), false);
                remove_live(&mut live, piece.start, piece.end());
            }
            Op::MarkUsed { start, len } => {
                let res = a.mark_used(Extent { start, len });
                match m.check(start, len) {
                    Err(e) => prop_assert_eq!(res, Err(e)),
                    Ok(end) if m.all(start, end, false) => {
                        prop_assert_eq!(res, Ok(()));
                        m.set(start, end, true);
                        live.push(Extent { start, len });
                    }
                    Ok(end) => prop_assert_eq!(res, Err(AllocError::AlreadyUsed { start, end })),
                }
            }
            Op::FreeRaw { start, len } => {
                let res = a.free(Extent { start, len });
                match m.check(start, len) {
                    Err(e) => prop_assert_eq!(res, Err(e)),
                    Ok(end) if m.all(start, end, true) => {
                        prop_assert_eq!(res, Ok(()));
                        m.set(start, end, false);
                        remove_live(&mut live, start, end);
                    }
                    Ok(end) => prop_assert_eq!(res, Err(AllocError::AlreadyFree { start, end })),
                }
            }
            Op::DoubleFree { pick } => {
                let runs = m.runs();
                if runs.is_empty() {
                    continue;
                }
                let (start, len) = runs[pick % runs.len()];
                prop_assert_eq!(
                    a.free(Extent { start, len }),
                    Err(AllocError::AlreadyFree {
                        start,
                        end: start + len
                    })
                );
            }
            Op::IsFree { start, len } => {
                let want = m
                    .check(start, len)
                    .is_ok_and(|end| m.all(start, end, false));
                prop_assert_eq!(a.is_free(Extent { start, len }), want);
            }
        }
        check_state(&a, &m)?;
    }

    // No leak: giving back everything handed out leaves one extent covering the device.
    for e in live {
        prop_assert_eq!(a.free(e), Ok(()));
    }
    let all: Vec<Extent> = a.free_extents().collect();
    if total > 0 {
        prop_assert_eq!(
            all,
            vec![Extent {
                start: 0,
                len: total
            }]
        );
    } else {
        prop_assert!(all.is_empty());
    }
    prop_assert_eq!(a.free_blocks(), total);
    a.check_invariants();
    Ok(())
}

fn case(max_total: u64, max_ops: usize) -> impl Strategy<Value = (u64, Vec<Op>)> {
    (0..=max_total).prop_flat_map(move |total| {
        (
            Just(total),
            proptest::collection::vec(op(total), 1..max_ops),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Small devices: frequent collisions, full devices, and edge blocks.
    #[test]
    fn model_small_device((total, ops) in case(64, 120)) {
        run(total, ops)?;
    }

    /// Devices up to 4096 blocks: fragmentation and multi-piece allocations.
    #[test]
    fn model_large_device((total, ops) in case(4096, 150)) {
        run(total, ops)?;
    }
}
