//! A supervisor's children: every child in start order, found by its id and,
//! while it runs, by its actor.
//!
//! A supervisor may hold a hundred thousand children, so this is kept small
//! (OTP's `one_for_one` keeps about 240 bytes per child; this about 150):
//!
//! * Children sit boxed in one vector sorted by their sequence number, which
//!   is their place in the start order and never changes: a child's number is
//!   its position until a child is removed, and after that it is found by a
//!   binary search. A removed child leaves a tombstone (its number, no box)
//!   until tombstones are more than half the vector; then the vector is
//!   compacted, and the indexes rebuilt.
//! * The two indexes hold positions in that vector, 4 bytes each, and read
//!   their keys off the child itself: its id is the last segment of its path,
//!   its actor is the one running it. So the id is not stored twice, and each
//!   index costs about 6 bytes a child.
//! * A [`Child`] keeps its spec without the id, and what most children never
//!   need (its last exit, its backoff) behind one pointer.
//!
//! One invariant holds the actor index together: it has a child's position
//! exactly while the child is running. Only [`Children::set_running`],
//! [`Children::take_running`] and [`Children::stop_running`] start or end
//! that, and each keeps the index in step.

use std::hash::{BuildHasher, RandomState};
use std::ops::Index;

use hashbrown::HashTable;
use ractor::{ActorCell, ActorId};
use tokio::time::Instant;
use warden_resilience::Backoff;

use crate::exit::ExitReason;
use crate::factory::DynFactory;
use crate::path::ChildPath;
use crate::spec::{ChildKind, ChildSpec, Restart, Shutdown};

/// Below this many tombstones the vector is never compacted.
const MIN_TOMBSTONES_TO_COMPACT: usize = 16;

/// Whether a child runs (OTP's pid field), as read from a [`Child`].
pub(super) enum Slot<'a> {
    Running(&'a ActorCell),
    NotRunning,
    Restarting,
}

/// One child: its spec (without the id, which is the last segment of its
/// path) and what its supervisor knows of it.
pub(super) struct Child {
    pub(super) path: ChildPath,
    pub(super) factory: DynFactory,
    /// Its running actor; see the module's invariant.
    running: Option<ActorCell>,
    cold: Option<Box<Cold>>,
    shutdown: PackedShutdown,
    /// Bumped whenever a restart is queued or called off, so that a stale
    /// `TryAgain` or `Resume` (the child was terminated or restarted
    /// meanwhile) is ignored.
    epoch: u32,
    pub(super) restarts: u32,
    pub(super) kind: ChildKind,
    pub(super) restart: Restart,
    pub(super) significant: bool,
    restarting: bool,
}

/// What most children never need, allocated on a child's first exit (or
/// with it, for a child with a backoff).
#[derive(Default)]
struct Cold {
    last_exit: Option<ExitReason>,
    backoff: Option<BackoffState>,
}

struct BackoffState {
    policy: Backoff,
    attempt: u32,
    started_at: Instant,
}

impl Child {
    fn new(path: ChildPath, spec: ChildSpec) -> Self {
        let cold = spec.backoff.map(|policy| {
            Box::new(Cold {
                last_exit: None,
                backoff: Some(BackoffState {
                    policy: *policy,
                    attempt: 0,
                    started_at: Instant::now(),
                }),
            })
        });
        Self {
            path,
            factory: spec.factory,
            running: None,
            cold,
            shutdown: PackedShutdown::new(spec.shutdown),
            epoch: 0,
            restarts: 0,
            kind: spec.kind,
            restart: spec.restart,
            significant: spec.significant,
            restarting: false,
        }
    }

    /// Its id.
    pub(super) fn id(&self) -> &str {
        self.path.id()
    }

    pub(super) fn slot(&self) -> Slot<'_> {
        match (&self.running, self.restarting) {
            (Some(cell), _) => Slot::Running(cell),
            (None, true) => Slot::Restarting,
            (None, false) => Slot::NotRunning,
        }
    }

    pub(super) fn is_running(&self) -> bool {
        self.running.is_some()
    }

    pub(super) fn is_restarting(&self) -> bool {
        self.running.is_none() && self.restarting
    }

    pub(super) fn shutdown(&self) -> Shutdown {
        self.shutdown.get()
    }

    pub(super) fn epoch(&self) -> u32 {
        self.epoch
    }

    /// Queues a restart of a child that is not running: it is `Restarting`,
    /// and restarts queued before are stale. Answers the new epoch.
    pub(super) fn mark_restarting(&mut self) -> u32 {
        debug_assert!(self.running.is_none(), "a running child is not restarting");
        self.restarting = true;
        self.epoch = self.epoch.wrapping_add(1);
        self.epoch
    }

    /// Calls off a queued restart: the child is not running, and the queued
    /// `TryAgain` or `Resume` is stale.
    pub(super) fn cancel_restart(&mut self) {
        self.restarting = false;
        self.epoch = self.epoch.wrapping_add(1);
    }

    pub(super) fn last_exit(&self) -> Option<&ExitReason> {
        self.cold.as_ref()?.last_exit.as_ref()
    }

    pub(super) fn set_last_exit(&mut self, reason: ExitReason) {
        self.cold.get_or_insert_with(Box::default).last_exit = Some(reason);
    }

    /// After an exit: a backoff whose reset period has passed since the
    /// child's last start begins again from its first delay.
    pub(super) fn reset_backoff_if_due(&mut self) {
        if let Some(b) = self.backoff_mut()
            && b.started_at.elapsed() >= b.policy.reset_period()
        {
            b.attempt = 0;
        }
    }

    /// The delay before the next restart, if the child has a backoff; counts
    /// the attempt.
    pub(super) fn next_backoff_delay(&mut self) -> Option<std::time::Duration> {
        let b = self.backoff_mut()?;
        let delay = b.policy.delay(b.attempt);
        b.attempt = b.attempt.saturating_add(1);
        Some(delay)
    }

    fn backoff_mut(&mut self) -> Option<&mut BackoffState> {
        self.cold.as_mut()?.backoff.as_mut()
    }
}

/// A [`Shutdown`] in 12 bytes at 4-byte alignment instead of 16 at 8, so
/// that it packs with the child's 4-byte fields: the sub-second nanoseconds
/// of a timeout are below 10⁹, and the two values above mark the other two
/// kinds.
#[derive(Clone, Copy)]
#[repr(C, packed(4))]
struct PackedShutdown {
    secs: u64,
    nanos: u32,
}

impl PackedShutdown {
    const BRUTAL_KILL: u32 = 1_000_000_000;
    const INFINITY: u32 = 1_000_000_001;

    fn new(shutdown: Shutdown) -> Self {
        match shutdown {
            Shutdown::BrutalKill => Self {
                secs: 0,
                nanos: Self::BRUTAL_KILL,
            },
            Shutdown::Infinity => Self {
                secs: 0,
                nanos: Self::INFINITY,
            },
            Shutdown::Timeout(d) => Self {
                secs: d.as_secs(),
                nanos: d.subsec_nanos(),
            },
        }
    }

    fn get(self) -> Shutdown {
        let Self { secs, nanos } = self;
        match nanos {
            Self::BRUTAL_KILL => Shutdown::BrutalKill,
            Self::INFINITY => Shutdown::Infinity,
            nanos => Shutdown::Timeout(std::time::Duration::new(secs, nanos)),
        }
    }
}

/// A place in the start order: a child, or the tombstone of a removed one.
struct Entry {
    seq: u64,
    child: Option<Box<Child>>,
}

/// Every child of one supervisor; see the module's documentation.
pub(super) struct Children {
    /// Sorted by `seq`.
    entries: Vec<Entry>,
    tombstones: usize,
    next_seq: u64,
    /// Positions in `entries`, keyed by the child's id.
    by_id: HashTable<u32>,
    /// Positions in `entries` of the running children, keyed by their actor.
    by_actor: HashTable<u32>,
    hasher: RandomState,
}

impl Children {
    pub(super) fn with_capacity(capacity: usize) -> Self {
        Self {
            entries: Vec::with_capacity(capacity),
            tombstones: 0,
            next_seq: 0,
            by_id: HashTable::with_capacity(capacity),
            by_actor: HashTable::with_capacity(capacity),
            hasher: RandomState::new(),
        }
    }

    /// Adds a child at the end of the start order, not running, and answers
    /// its sequence number. Its id must not be taken (the caller checks).
    pub(super) fn insert(&mut self, path: ChildPath, spec: ChildSpec) -> u64 {
        debug_assert!(self.seq_of(&spec.id).is_none(), "child ids are unique");
        let seq = self.next_seq;
        self.next_seq += 1;
        let position = position(self.entries.len());
        self.entries.push(Entry {
            seq,
            child: Some(Box::new(Child::new(path, spec))),
        });
        let Self {
            entries, by_id, hasher, ..
        } = self;
        let hash = hasher.hash_one(id_at(entries, position));
        by_id.insert_unique(hash, position, |&p| hasher.hash_one(id_at(entries, p)));
        seq
    }

    /// Removes a child, running or not: it leaves both indexes.
    pub(super) fn remove(&mut self, seq: u64) -> Option<Box<Child>> {
        let position = self.position(seq)?;
        let child = self.entries[position as usize].child.take()?;
        let at = |p: &u32| *p == position;
        if let Ok(entry) = self.by_id.find_entry(self.hasher.hash_one(child.id()), at) {
            entry.remove();
        }
        if let Some(cell) = &child.running
            && let Ok(entry) = self.by_actor.find_entry(self.hasher.hash_one(cell.get_id()), at)
        {
            entry.remove();
        }
        self.tombstones += 1;
        // Tombstones at the end go at once: nothing after them to renumber.
        while self.entries.last().is_some_and(|e| e.child.is_none()) {
            self.entries.pop();
            self.tombstones -= 1;
        }
        if self.tombstones >= MIN_TOMBSTONES_TO_COMPACT && self.tombstones * 2 > self.entries.len() {
            self.compact();
        }
        Some(child)
    }

    pub(super) fn get(&self, seq: u64) -> Option<&Child> {
        let position = self.position(seq)?;
        self.entries[position as usize].child.as_deref()
    }

    pub(super) fn get_mut(&mut self, seq: u64) -> Option<&mut Child> {
        let position = self.position(seq)?;
        self.entries[position as usize].child.as_deref_mut()
    }

    /// The sequence number of the child called `id`.
    pub(super) fn seq_of(&self, id: &str) -> Option<u64> {
        let entries = &self.entries;
        let position = self
            .by_id
            .find(self.hasher.hash_one(id), |&p| id_at(entries, p) == id)?;
        Some(entries[*position as usize].seq)
    }

    /// Records that a child runs as `cell`; its backoff's reset period
    /// counts from now.
    pub(super) fn set_running(&mut self, seq: u64, cell: ActorCell) {
        let Some(position) = self.position(seq) else {
            return;
        };
        let Some(child) = self.entries[position as usize].child.as_deref_mut() else {
            return;
        };
        debug_assert!(child.running.is_none(), "a child runs once");
        let hash = self.hasher.hash_one(cell.get_id());
        child.running = Some(cell);
        child.restarting = false;
        if let Some(b) = child.backoff_mut() {
            b.started_at = Instant::now();
        }
        let Self {
            entries,
            by_actor,
            hasher,
            ..
        } = self;
        by_actor.insert_unique(hash, position, |&p| actor_hash(hasher, entries, p));
    }

    /// The child that `actor` was running, which is no longer: it is now not
    /// running. `None` if `actor` is no running child's (one this supervisor
    /// already stopped, or replaced).
    pub(super) fn take_running(&mut self, actor: &ActorId) -> Option<u64> {
        let entries = &self.entries;
        let entry = self
            .by_actor
            .find_entry(self.hasher.hash_one(actor), |&p| actor_at(entries, p) == Some(*actor))
            .ok()?;
        let (position, _) = entry.remove();
        let entry = &mut self.entries[position as usize];
        if let Some(child) = entry.child.as_deref_mut() {
            child.running = None;
        }
        Some(entry.seq)
    }

    /// Takes the actor of a running child, which is then not running.
    pub(super) fn stop_running(&mut self, seq: u64) -> Option<ActorCell> {
        let position = self.position(seq)?;
        let cell = self.entries[position as usize].child.as_deref_mut()?.running.take()?;
        if let Ok(entry) = self
            .by_actor
            .find_entry(self.hasher.hash_one(cell.get_id()), |&p| p == position)
        {
            entry.remove();
        }
        Some(cell)
    }

    /// Every child's sequence number, in start order.
    pub(super) fn seqs(&self) -> impl DoubleEndedIterator<Item = u64> + '_ {
        self.seqs_from(0)
    }

    /// The sequence numbers from `seq` on, in start order.
    pub(super) fn seqs_from(&self, seq: u64) -> impl DoubleEndedIterator<Item = u64> + '_ {
        let start = self.entries.partition_point(|e| e.seq < seq);
        self.entries[start..]
            .iter()
            .filter(|e| e.child.is_some())
            .map(|e| e.seq)
    }

    /// Every child, in start order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Child> {
        self.entries.iter().filter_map(|e| e.child.as_deref())
    }

    fn position(&self, seq: u64) -> Option<u32> {
        // Until a child is removed, a child's number is its position.
        if let Ok(p) = usize::try_from(seq)
            && self.entries.get(p).is_some_and(|e| e.seq == seq)
        {
            return Some(position(p));
        }
        self.entries.binary_search_by_key(&seq, |e| e.seq).ok().map(position)
    }

    /// Drops the tombstones, gives back the memory they held, and rebuilds
    /// both indexes for the new positions.
    fn compact(&mut self) {
        self.entries.retain(|e| e.child.is_some());
        self.tombstones = 0;
        if self.entries.capacity() > 2 * self.entries.len() {
            self.entries.shrink_to(self.entries.len() * 3 / 2);
        }
        let Self {
            entries,
            by_id,
            by_actor,
            hasher,
            ..
        } = self;
        *by_id = HashTable::with_capacity(entries.len());
        *by_actor = HashTable::new();
        for (p, entry) in entries.iter().enumerate() {
            let Some(child) = entry.child.as_deref() else {
                continue;
            };
            let p = position(p);
            by_id.insert_unique(hasher.hash_one(child.id()), p, |&q| hasher.hash_one(id_at(entries, q)));
            if let Some(cell) = &child.running {
                by_actor.insert_unique(hasher.hash_one(cell.get_id()), p, |&q| actor_hash(hasher, entries, q));
            }
        }
    }
}

impl Index<u64> for Children {
    type Output = Child;

    /// The child numbered `seq`, which the caller knows is there.
    fn index(&self, seq: u64) -> &Child {
        self.get(seq).expect("a child the supervisor knows of")
    }
}

/// A position in the vector as the indexes keep it. A supervisor cannot hold
/// 2³² children: their boxes alone would take 300 GB.
fn position(p: usize) -> u32 {
    u32::try_from(p).expect("fewer than 2^32 children")
}

/// The id of the child at `p`, for the id index (which holds only positions
/// of children).
fn id_at(entries: &[Entry], p: u32) -> &str {
    entries[p as usize].child.as_deref().map_or("", Child::id)
}

/// The actor running the child at `p`, for the actor index (which holds only
/// positions of running children).
fn actor_at(entries: &[Entry], p: u32) -> Option<ActorId> {
    entries[p as usize]
        .child
        .as_deref()?
        .running
        .as_ref()
        .map(ActorCell::get_id)
}

/// The hash of the actor running the child at `p`, the same as the hash of
/// its `ActorId`.
fn actor_hash(hasher: &RandomState, entries: &[Entry], p: u32) -> u64 {
    actor_at(entries, p).map_or(0, |actor| hasher.hash_one(actor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::factory::{BoxFuture, ChildFactory, StartContext, StartError};
    use ractor::{Actor, ActorProcessingErr, ActorRef};

    struct NeverStarts;

    impl ChildFactory for NeverStarts {
        fn start(&self, _ctx: StartContext) -> BoxFuture<Result<ActorCell, StartError>> {
            Box::pin(async { Err(StartError::NotLinked) })
        }
    }

    struct Idle;

    impl Actor for Idle {
        type Msg = ();
        type State = ();
        type Arguments = ();

        async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
            Ok(())
        }
    }

    fn spec(id: &str) -> ChildSpec {
        ChildSpec::worker(id, NeverStarts)
    }

    fn filled(n: usize) -> Children {
        let root = ChildPath::root("sup");
        let mut children = Children::with_capacity(0);
        for i in 0..n {
            let seq = children.insert(root.join(&format!("c{i}")), spec(&format!("c{i}")));
            assert_eq!(seq, i as u64);
        }
        children
    }

    #[test]
    fn children_keep_start_order_and_are_found_by_id_across_compactions() {
        let mut children = filled(100);
        // Remove two of every three: enough tombstones to compact, twice.
        for seq in (0..100).filter(|s| s % 3 != 0) {
            assert!(children.remove(seq).is_some());
            assert!(children.get(seq).is_none());
            assert_eq!(children.seq_of(&format!("c{seq}")), None);
        }
        // Compacted: fewer places than the 100 numbers given, and tombstones
        // at most half of them.
        assert!(children.entries.len() < 100, "the vector was compacted");
        assert!(children.tombstones < MIN_TOMBSTONES_TO_COMPACT || children.tombstones * 2 <= children.entries.len());
        let kept: Vec<u64> = (0..100).filter(|s| s % 3 == 0).collect();
        assert_eq!(children.seqs().collect::<Vec<_>>(), kept);
        assert_eq!(
            children.seqs_from(50).collect::<Vec<_>>(),
            vec![51, 54, 57, 60, 63, 66, 69, 72, 75, 78, 81, 84, 87, 90, 93, 96, 99]
        );
        for &seq in &kept {
            assert_eq!(children.seq_of(&format!("c{seq}")), Some(seq));
            assert_eq!(children[seq].id(), format!("c{seq}"));
        }
        // New children go after the old ones.
        let seq = children.insert(ChildPath::root("sup").join("new"), spec("new"));
        assert_eq!(seq, 100);
        assert_eq!(children.seqs().last(), Some(100));
        assert_eq!(children.seq_of("new"), Some(100));
        assert!(children.remove(1).is_none());
    }

    #[tokio::test]
    async fn running_children_are_found_by_actor_until_they_end_or_are_stopped() {
        let mut children = filled(40);
        let mut actors = Vec::new();
        for seq in 0..40 {
            let (actor, _) = Actor::spawn(None, Idle, ()).await.expect("spawns");
            children.set_running(seq, actor.get_cell());
            actors.push(actor);
        }
        assert!(matches!(children[7].slot(), Slot::Running(cell) if cell.get_id() == actors[7].get_id()));
        // An exit: found once, and the child is then not running.
        assert_eq!(children.take_running(&actors[7].get_id()), Some(7));
        assert_eq!(children.take_running(&actors[7].get_id()), None);
        assert!(matches!(children[7].slot(), Slot::NotRunning));
        // A stop.
        assert_eq!(children.stop_running(8).map(|c| c.get_id()), Some(actors[8].get_id()));
        assert_eq!(children.take_running(&actors[8].get_id()), None);
        assert!(children.stop_running(8).is_none());
        // Removing running children, enough to compact: the rest are still found.
        for seq in 10..40 {
            assert!(children.remove(seq).is_some());
            assert_eq!(children.take_running(&actors[seq as usize].get_id()), None);
        }
        for seq in [0_u64, 1, 2, 3, 4, 5, 6, 9] {
            assert_eq!(children.take_running(&actors[seq as usize].get_id()), Some(seq));
        }
        assert_eq!(children.iter().filter(|c| c.is_running()).count(), 0);
        // A restarted child is found by its new actor only.
        let (again, _) = Actor::spawn(None, Idle, ()).await.expect("spawns");
        children.set_running(9, again.get_cell());
        assert_eq!(children.take_running(&actors[9].get_id()), None);
        assert_eq!(children.take_running(&again.get_id()), Some(9));
        for actor in actors.into_iter().chain([again]) {
            actor.stop(None);
        }
    }

    /// Random inserts, removals, starts, exits and stops, checked after every
    /// step against a plain ordered map: start order, lookups by id and by
    /// actor, across many compactions.
    #[tokio::test]
    async fn children_agree_with_a_plain_map_under_random_operations() {
        use std::collections::BTreeMap;

        let mut actors = Vec::new();
        for _ in 0..48 {
            actors.push(Actor::spawn(None, Idle, ()).await.expect("spawns").0);
        }
        let root = ChildPath::root("sup");
        let mut rng = fastrand::Rng::with_seed(11);
        let mut children = Children::with_capacity(0);
        // seq -> (id, index of the actor running it)
        let mut model: BTreeMap<u64, (String, Option<usize>)> = BTreeMap::new();
        let mut next_id = 0;
        let mut last_seq = None;
        for _ in 0..5_000 {
            let seqs: Vec<u64> = model.keys().copied().collect();
            let pick = |rng: &mut fastrand::Rng| (!seqs.is_empty()).then(|| seqs[rng.usize(..seqs.len())]);
            match rng.u8(0..6) {
                0 | 1 if model.len() < 300 => {
                    let id = format!("c{next_id}");
                    next_id += 1;
                    let seq = children.insert(root.join(&id), spec(&id));
                    assert!(last_seq < Some(seq), "numbers grow");
                    last_seq = Some(seq);
                    model.insert(seq, (id, None));
                }
                2 => {
                    if let Some(seq) = pick(&mut rng) {
                        assert!(children.remove(seq).is_some());
                        model.remove(&seq);
                    }
                }
                3 => {
                    let free = (0..actors.len()).find(|a| model.values().all(|(_, r)| *r != Some(*a)));
                    if let (Some(seq), Some(a)) = (pick(&mut rng), free)
                        && model[&seq].1.is_none()
                    {
                        children.set_running(seq, actors[a].get_cell());
                        model.get_mut(&seq).expect("picked").1 = Some(a);
                    }
                }
                4 => {
                    if let Some(seq) = pick(&mut rng) {
                        let running = model.get_mut(&seq).expect("picked").1.take();
                        let taken = running.and_then(|a| children.take_running(&actors[a].get_id()));
                        assert_eq!(taken, running.map(|_| seq));
                    }
                }
                _ => {
                    if let Some(seq) = pick(&mut rng) {
                        let running = model.get_mut(&seq).expect("picked").1.take();
                        let stopped = children.stop_running(seq).map(|c| c.get_id());
                        assert_eq!(stopped, running.map(|a| actors[a].get_id()));
                    }
                }
            }
            assert_eq!(
                children.seqs().collect::<Vec<_>>(),
                model.keys().copied().collect::<Vec<_>>()
            );
            for (&seq, (id, running)) in &model {
                assert_eq!(children.seq_of(id), Some(seq));
                assert_eq!(children[seq].id(), id);
                assert_eq!(children[seq].is_running(), running.is_some());
            }
            // An actor that runs no child is not found, and finding one leaves it alone.
            for (a, actor) in actors.iter().enumerate() {
                if model.values().all(|(_, r)| *r != Some(a)) {
                    assert_eq!(children.take_running(&actor.get_id()), None);
                }
            }
        }
        for actor in actors {
            actor.stop(None);
        }
    }

    #[test]
    fn removing_the_last_children_leaves_no_tombstone() {
        let mut children = filled(5);
        children.remove(2);
        children.remove(4);
        children.remove(3);
        assert_eq!(children.entries.len(), 2);
        assert_eq!(children.tombstones, 0);
        assert_eq!(children.seqs().collect::<Vec<_>>(), vec![0, 1]);
    }

    #[test]
    fn a_shutdown_packs_and_unpacks_to_itself() {
        use std::time::Duration;
        for shutdown in [
            Shutdown::BrutalKill,
            Shutdown::Infinity,
            Shutdown::Timeout(Duration::ZERO),
            Shutdown::Timeout(Duration::new(5, 999_999_999)),
            Shutdown::Timeout(Duration::MAX),
        ] {
            assert_eq!(PackedShutdown::new(shutdown).get(), shutdown);
        }
        assert_eq!(std::mem::size_of::<PackedShutdown>(), 12);
    }

    #[test]
    fn a_child_takes_72_bytes() {
        assert_eq!(std::mem::size_of::<Child>(), 72);
    }
}
