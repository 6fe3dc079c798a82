//! An arena: the runs one group of threads allocates small objects from, with their volatile
//! bitmaps, the runs that have room per (size class, type), and usage counters.

use super::fast_hash::FastMap;
use crate::layout::heap::{SizeClass, CLASSES, CLASS_COUNT};

/// One run's volatile state.
pub(super) struct Run {
    pub class: u8,
    pub fingerprint: u64,
    /// Free slots (reserved slots count as used).
    pub free: u32,
    /// The persistent bitmap, OR the slots reserved by the open transaction, with the bits past
    /// the last slot set so no search finds them.
    pub bitmap: Box<[u64]>,
    /// Word to start the next search at.
    hint: u32,
    /// Whether the run is its bin's `current` or in its `partial` list.
    listed: bool,
}

impl Run {
    /// A run whose persistent bitmap words are `words`.
    pub(super) fn new(class: u8, fingerprint: u64, mut words: Box<[u64]>) -> Run {
        let c = &CLASSES[class as usize];
        if c.slots % 64 != 0 {
            let last = words.len() - 1;
            words[last] |= !((1u64 << (c.slots % 64)) - 1);
        }
        let set: u32 = words.iter().map(|w| w.count_ones()).sum();
        let padding = words.len() as u32 * 64 - c.slots;
        Run {
            class,
            fingerprint,
            free: c.slots - (set - padding),
            bitmap: words,
            hint: 0,
            listed: false,
        }
    }

    pub(super) fn class(&self) -> &'static SizeClass {
        &CLASSES[self.class as usize]
    }

    /// Marks a free slot used and returns it; the run must have one.
    fn take_slot(&mut self) -> u32 {
        let words = self.bitmap.len() as u32;
        let mut w = self.hint;
        while self.bitmap[w as usize] == u64::MAX {
            w = (w + 1) % words;
        }
        self.hint = w;
        let bit = (!self.bitmap[w as usize]).trailing_zeros();
        self.bitmap[w as usize] |= 1 << bit;
        self.free -= 1;
        w * 64 + bit
    }

    fn clear_slot(&mut self, slot: u64) {
        self.bitmap[slot as usize / 64] &= !(1 << (slot % 64));
        self.free += 1;
    }
}

/// The runs of one (size class, type) that may have room.
#[derive(Default)]
struct Bin {
    current: Option<u32>,
    partial: Vec<u32>,
}

/// Runs and counters of one arena, indexed by the run's first chunk.
pub(super) struct Arena {
    runs: FastMap<u32, Run>,
    bins: FastMap<(u8, u64), Bin>,
    /// Live objects per class.
    pub live: [u64; CLASS_COUNT],
    /// Runs per class.
    pub runs_per_class: [u64; CLASS_COUNT],
}

impl Default for Arena {
    fn default() -> Self {
        Arena {
            runs: FastMap::default(),
            bins: FastMap::default(),
            live: [0; CLASS_COUNT],
            runs_per_class: [0; CLASS_COUNT],
        }
    }
}

/// Where a slot was taken from.
pub(super) struct Taken {
    pub head: u32,
    pub slot: u32,
}

impl Arena {
    /// Makes room for `runs` more runs without reallocating.
    pub(super) fn reserve_runs(&mut self, runs: usize) {
        self.runs.reserve(runs);
    }

    /// Adds a run (found at open or just created).
    pub(super) fn add_run(&mut self, head: u32, mut run: Run) {
        let (class, key) = (run.class as usize, (run.class, run.fingerprint));
        self.live[class] += (run.class().slots - run.free) as u64;
        self.runs_per_class[class] += 1;
        if run.free > 0 {
            run.listed = true;
            self.bins.entry(key).or_default().partial.push(head);
        }
        self.runs.insert(head, run);
    }

    /// Takes a slot from a run of this class and type with room, or `None` if there is none
    /// (the caller then creates a run and adds it).
    pub(super) fn take(&mut self, class: u8, fingerprint: u64) -> Option<Taken> {
        let bin = self.bins.get_mut(&(class, fingerprint))?;
        let head = loop {
            if let Some(h) = bin.current {
                let run = self.runs.get_mut(&h).expect("a bin's run exists");
                if run.free > 0 {
                    break h;
                }
                run.listed = false;
                bin.current = None;
            }
            bin.current = Some(bin.partial.pop()?);
        };
        let run = self.runs.get_mut(&head).expect("a bin's run exists");
        let slot = run.take_slot();
        self.live[class as usize] += 1;
        Some(Taken { head, slot })
    }

    /// Returns slots to their run (an abort, or committed frees), with one lookup for them all;
    /// lists the run if it had been full. Returns the run's class.
    pub(super) fn release_slots(&mut self, head: u32, slots: impl Iterator<Item = u64>) -> u8 {
        let run = self
            .runs
            .get_mut(&head)
            .expect("the run of a live object exists");
        for slot in slots {
            clear_slot_in(run, head, slot, &mut self.live, &mut self.bins);
        }
        run.class
    }

    /// Gives up a run of this class and type that has room, for another arena to adopt.
    pub(super) fn steal(&mut self, class: u8, fingerprint: u64) -> Option<(u32, Run)> {
        let bin = self.bins.get_mut(&(class, fingerprint))?;
        let head = match bin.partial.pop() {
            Some(h) => h,
            None => bin.current.take().filter(|h| self.runs[h].free > 0)?,
        };
        let mut run = self.runs.remove(&head).expect("a bin's run exists");
        run.listed = false;
        let used = (run.class().slots - run.free) as u64;
        self.live[class as usize] -= used;
        self.runs_per_class[class as usize] -= 1;
        Some((head, run))
    }

    /// Removes every run with no slot in use, returning `(head, class, fingerprint)` of each.
    pub(super) fn drain_empty(&mut self) -> Vec<(u32, u8, u64)> {
        let empty: Vec<(u32, u8, u64)> = self
            .runs
            .iter()
            .filter(|(_, r)| r.free == r.class().slots)
            .map(|(&h, r)| (h, r.class, r.fingerprint))
            .collect();
        for &(head, _, _) in &empty {
            self.remove_run(head);
        }
        empty
    }

    /// The class of the run at `head` if, with `freed` more slots free, it would be empty and may
    /// be given back: an empty run is kept only while its bin allocates from it.
    pub(super) fn releases(&self, head: u32, freed: u32) -> Option<u8> {
        let run = self.runs.get(&head)?;
        let released = run.free + freed == run.class().slots
            && self
                .bins
                .get(&(run.class, run.fingerprint))
                .is_none_or(|b| b.current != Some(head));
        released.then_some(run.class)
    }

    /// Removes a run (now empty) from the arena; returns its class.
    pub(super) fn remove_run(&mut self, head: u32) -> u8 {
        let run = self.runs.remove(&head).expect("the run exists");
        self.runs_per_class[run.class as usize] -= 1;
        if let Some(bin) = self.bins.get_mut(&(run.class, run.fingerprint)) {
            if bin.current == Some(head) {
                bin.current = None;
            }
            if let Some(i) = bin.partial.iter().position(|&h| h == head) {
                bin.partial.swap_remove(i);
            }
        }
        run.class
    }
}

/// One slot of [`Arena::release_slots`], on a run already looked up, with the arena's other fields borrowed
/// apart from it.
fn clear_slot_in(
    run: &mut Run,
    head: u32,
    slot: u64,
    live: &mut [u64; CLASS_COUNT],
    bins: &mut FastMap<(u8, u64), Bin>,
) {
    run.clear_slot(slot);
    live[run.class as usize] -= 1;
    if !run.listed {
        run.listed = true;
        bins.entry((run.class, run.fingerprint))
            .or_default()
            .partial
            .push(head);
    }
}
