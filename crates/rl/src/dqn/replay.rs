//! The replay buffer: a ring of transitions `(s, a, R, s', discount)` whose
//! observations keep both lanes (frames stay bytes, each stored once in a
//! [`FrameStore`]), with optional proportional prioritisation over a sum
//! tree and a min tree.
//!
//! `R` is the (n-step) return and `discount` the factor on the bootstrap
//! value of `s'` (`gamma^m` after `m` summed steps, 0 when the episode
//! terminated), so one target formula serves every n and every episode end.

use std::io::{Read, Write};

use hlynr_env::ObsRef;
use hlynr_rng::Rng;

use super::frames::FrameStore;

/// A binary tree over `capacity` leaves keeping sums and minima of leaf
/// priorities, for proportional sampling in `O(log n)`.
#[derive(Clone, Debug)]
pub struct PriorityTree {
    leaves: usize,
    sum: Vec<f64>,
    min: Vec<f64>,
}

impl PriorityTree {
    /// A tree of `capacity` zero-priority leaves.
    pub fn new(capacity: usize) -> Self {
        let leaves = capacity.next_power_of_two();
        Self {
            leaves,
            sum: vec![0.0; 2 * leaves],
            min: vec![f64::INFINITY; 2 * leaves],
        }
    }

    /// Sets leaf `i`'s priority.
    pub fn set(&mut self, i: usize, priority: f64) {
        let mut node = self.leaves + i;
        self.sum[node] = priority;
        self.min[node] = priority;
        while node > 1 {
            node /= 2;
            self.sum[node] = self.sum[2 * node] + self.sum[2 * node + 1];
            self.min[node] = self.min[2 * node].min(self.min[2 * node + 1]);
        }
    }

    /// Leaf `i`'s priority.
    pub fn get(&self, i: usize) -> f64 {
        self.sum[self.leaves + i]
    }

    /// Sum of all priorities.
    pub fn total(&self) -> f64 {
        self.sum[1]
    }

    /// Smallest priority of the leaves that were set.
    pub fn min(&self) -> f64 {
        self.min[1]
    }

    /// The leaf where the running sum of priorities passes `mass`
    /// (`0 <= mass < total`).
    pub fn find(&self, mut mass: f64) -> usize {
        let mut node = 1;
        while node < self.leaves {
            let left = 2 * node;
            if mass < self.sum[left] {
                node = left;
            } else {
                mass -= self.sum[left];
                node = left + 1;
            }
        }
        node - self.leaves
    }
}

/// Priorities of a prioritised buffer.
#[derive(Clone, Debug)]
pub struct Priorities {
    tree: PriorityTree,
    alpha: f64,
    /// Largest `|TD| + eps` seen: new transitions enter with it.
    max_priority: f64,
}

/// One sampled batch's rows and importance weights.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    /// Buffer rows.
    pub rows: Vec<usize>,
    /// Importance-sampling weights, max-normalised (all 1 when uniform).
    pub weights: Vec<f32>,
}

/// The replay ring (see the module docs).
#[derive(Clone, Debug)]
pub struct ReplayBuffer {
    capacity: usize,
    obs_dim: usize,
    obs_bytes: usize,
    len: usize,
    pos: usize,
    obs: Vec<f32>,
    next_obs: Vec<f32>,
    /// The byte lanes' planes (none without byte observations).
    frames: Option<FrameStore>,
    planes_per_obs: usize,
    /// `[capacity * planes_per_obs]` frame slots of each observation.
    obs_planes: Vec<u32>,
    next_planes: Vec<u32>,
    /// Scratch: the planes of the transition being overwritten.
    overwritten: Vec<u32>,
    actions: Vec<u32>,
    returns: Vec<f32>,
    discounts: Vec<f32>,
    priorities: Option<Priorities>,
}

/// Bytes one transition of `obs_dim` values and `obs_bytes` bytes in planes
/// of `plane` occupies: the values of two observations, the action, the
/// return and the discount, two tree nodes of two f64 each when prioritised
/// (leaves padded to a power of 2), and the frames: the references, and
/// one new plane per transition when observations stack several (the rest
/// are shared with the neighbouring transitions), else two, each with its
/// bookkeeping.
pub fn bytes_per_transition(
    obs_dim: usize,
    obs_bytes: usize,
    plane: usize,
    prioritized: bool,
) -> usize {
    let frames = if obs_bytes == 0 {
        0
    } else {
        let k = obs_bytes / plane;
        let fresh = if k > 1 { 1 } else { 2 };
        2 * k * 4 + fresh * (plane + 48)
    };
    2 * obs_dim * 4 + 12 + if prioritized { 64 } else { 0 } + frames
}

impl ReplayBuffer {
    /// An empty buffer of `capacity` transitions, whose byte observations
    /// are stored in planes of `plane` bytes; `alpha` makes it prioritised.
    /// Allocates everything but the frames now.
    pub fn new(
        capacity: usize,
        obs_dim: usize,
        obs_bytes: usize,
        plane: usize,
        alpha: Option<f64>,
    ) -> Self {
        let planes_per_obs = if obs_bytes == 0 { 0 } else { obs_bytes / plane };
        Self {
            capacity,
            obs_dim,
            obs_bytes,
            len: 0,
            pos: 0,
            obs: vec![0.0; capacity * obs_dim],
            next_obs: vec![0.0; capacity * obs_dim],
            frames: (obs_bytes > 0).then(|| FrameStore::new(plane)),
            planes_per_obs,
            obs_planes: vec![0; capacity * planes_per_obs],
            next_planes: vec![0; capacity * planes_per_obs],
            overwritten: Vec::new(),
            actions: vec![0; capacity],
            returns: vec![0.0; capacity],
            discounts: vec![0.0; capacity],
            priorities: alpha.map(|alpha| Priorities {
                tree: PriorityTree::new(capacity),
                alpha,
                max_priority: 1.0,
            }),
        }
    }

    /// Bytes the buffer holds on the heap: its arrays, the stored planes and
    /// their bookkeeping (the index counted at 24 bytes an entry).
    pub fn heap_bytes(&self) -> usize {
        let frames = self.frames.as_ref().map_or(0, FrameStore::heap_bytes);
        let tree = self
            .priorities
            .as_ref()
            .map_or(0, |p| p.tree.sum.len() * 16);
        (self.obs.capacity()
            + self.next_obs.capacity()
            + self.returns.capacity()
            + self.discounts.capacity())
            * 4
            + (self.obs_planes.capacity() + self.next_planes.capacity() + self.actions.capacity())
                * 4
            + tree
            + frames
    }

    /// Frame planes held (each stored once however many observations share it).
    pub fn stored_frames(&self) -> usize {
        self.frames.as_ref().map_or(0, FrameStore::live)
    }

    /// Transitions stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Transitions it can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Stores a transition over the oldest when full.
    pub fn push(
        &mut self,
        obs: ObsRef<'_>,
        action: usize,
        ret: f32,
        next: ObsRef<'_>,
        discount: f32,
    ) {
        let (k, vd, np) = (self.pos, self.obs_dim, self.planes_per_obs);
        self.obs[k * vd..(k + 1) * vd].copy_from_slice(obs.values);
        self.next_obs[k * vd..(k + 1) * vd].copy_from_slice(next.values);
        if let Some(frames) = &mut self.frames {
            let rows = k * np..(k + 1) * np;
            // Store the new planes before releasing the overwritten ones, so
            // planes they share are never freed and stored again.
            let mut old = std::mem::take(&mut self.overwritten);
            old.clear();
            if self.len == self.capacity {
                old.extend_from_slice(&self.obs_planes[rows.clone()]);
                old.extend_from_slice(&self.next_planes[rows.clone()]);
            }
            let plane = frames.plane_len();
            for (slot, content) in self.obs_planes[rows.clone()]
                .iter_mut()
                .zip(obs.bytes.chunks_exact(plane))
            {
                *slot = frames.insert(content);
            }
            for (slot, content) in self.next_planes[rows]
                .iter_mut()
                .zip(next.bytes.chunks_exact(plane))
            {
                *slot = frames.insert(content);
            }
            for &slot in &old {
                frames.release(slot);
            }
            self.overwritten = old;
        }
        self.actions[k] = action as u32;
        self.returns[k] = ret;
        self.discounts[k] = discount;
        if let Some(p) = &mut self.priorities {
            p.tree.set(k, p.max_priority.powf(p.alpha));
        }
        self.pos = (k + 1) % self.capacity;
        self.len = (self.len + 1).min(self.capacity);
    }

    /// Draws `batch` rows: uniformly, or in proportion to priority with
    /// stratified segments and importance weights `(N P(i))^-beta`
    /// normalised by the largest possible weight.
    pub fn sample(&self, batch: usize, beta: f64, rng: &mut Rng, out: &mut Sample) {
        out.rows.clear();
        out.weights.clear();
        let n = self.len as u64;
        let Some(p) = &self.priorities else {
            out.rows.extend((0..batch).map(|_| rng.below(n) as usize));
            out.weights.resize(batch, 1.0);
            return;
        };
        let total = p.tree.total();
        let segment = total / batch as f64;
        let max_weight = (self.len as f64 * p.tree.min() / total).powf(-beta);
        for i in 0..batch {
            let mass = (i as f64 + rng.uniform()) * segment;
            let row = p
                .tree
                .find(mass.min(total * (1.0 - 1e-12)))
                .min(self.len - 1);
            let prob = p.tree.get(row) / total;
            out.rows.push(row);
            out.weights
                .push(((self.len as f64 * prob).powf(-beta) / max_weight) as f32);
        }
    }

    /// Sets the priorities of `rows` from their absolute TD errors.
    pub fn update_priorities(&mut self, rows: &[usize], td_abs: &[f32], eps: f64) {
        let Some(p) = &mut self.priorities else {
            return;
        };
        for (&row, &td) in rows.iter().zip(td_abs) {
            let priority = f64::from(td) + eps;
            p.max_priority = p.max_priority.max(priority);
            p.tree.set(row, priority.powf(p.alpha));
        }
    }

    /// Copies the observations of `rows` (values and bytes), the next
    /// observations, actions, returns and discounts into `batch`.
    pub fn gather(&self, rows: &[usize], batch: &mut Batch) {
        let (vd, np) = (self.obs_dim, self.planes_per_obs);
        batch.clear();
        for &k in rows {
            batch.obs.extend_from_slice(&self.obs[k * vd..(k + 1) * vd]);
            batch
                .next_obs
                .extend_from_slice(&self.next_obs[k * vd..(k + 1) * vd]);
            if let Some(frames) = &self.frames {
                for &slot in &self.obs_planes[k * np..(k + 1) * np] {
                    batch.bytes.extend_from_slice(frames.plane_at(slot));
                }
                for &slot in &self.next_planes[k * np..(k + 1) * np] {
                    batch.next_bytes.extend_from_slice(frames.plane_at(slot));
                }
            }
            batch.actions.push(self.actions[k] as usize);
            batch.returns.push(self.returns[k]);
            batch.discounts.push(self.discounts[k]);
        }
    }

    /// Writes the whole buffer (contents, ring position, priorities) in a
    /// little-endian binary layout that [`ReplayBuffer::read`] restores.
    pub fn write(&self, out: &mut dyn Write) -> std::io::Result<()> {
        out.write_all(self.magic())?;
        for v in [
            self.capacity,
            self.obs_dim,
            self.obs_bytes,
            self.len,
            self.pos,
        ] {
            out.write_all(&(v as u64).to_le_bytes())?;
        }
        let rows = self.len;
        write_f32(out, &self.obs[..rows * self.obs_dim])?;
        write_f32(out, &self.next_obs[..rows * self.obs_dim])?;
        for a in &self.actions[..rows] {
            out.write_all(&a.to_le_bytes())?;
        }
        write_f32(out, &self.returns[..rows])?;
        write_f32(out, &self.discounts[..rows])?;
        if let Some(p) = &self.priorities {
            out.write_all(&p.max_priority.to_le_bytes())?;
            for i in 0..rows {
                out.write_all(&p.tree.get(i).to_le_bytes())?;
            }
        }
        if let Some(frames) = &self.frames {
            let np = self.planes_per_obs;
            for slot in self.obs_planes[..rows * np]
                .iter()
                .chain(&self.next_planes[..rows * np])
            {
                out.write_all(&slot.to_le_bytes())?;
            }
            frames.write(out)?;
        }
        Ok(())
    }

    /// The file's magic: version 2 stores frames as planes; buffers without
    /// byte observations are written as in version 1.
    fn magic(&self) -> &'static [u8; 8] {
        if self.frames.is_some() {
            b"HLYRPL02"
        } else {
            b"HLYRPL01"
        }
    }

    /// Restores what [`ReplayBuffer::write`] wrote into a buffer built with
    /// the same capacity, widths and prioritisation. On error the buffer is
    /// left empty.
    pub fn read(&mut self, input: &mut dyn Read) -> std::io::Result<()> {
        let result = self.read_inner(input);
        if result.is_err() {
            self.len = 0;
            self.pos = 0;
        }
        result
    }

    fn read_inner(&mut self, input: &mut dyn Read) -> std::io::Result<()> {
        let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
        let mut magic = [0u8; 8];
        input.read_exact(&mut magic)?;
        if &magic != self.magic() {
            return Err(bad(if magic.starts_with(b"HLYRPL") {
                "a replay buffer file of another format version or observation kind".into()
            } else {
                "not a replay buffer file".into()
            }));
        }
        let mut header = [0u64; 5];
        for h in &mut header {
            let mut b = [0u8; 8];
            input.read_exact(&mut b)?;
            *h = u64::from_le_bytes(b);
        }
        let [capacity, obs_dim, obs_bytes, len, pos] = header.map(|v| v as usize);
        if (capacity, obs_dim, obs_bytes) != (self.capacity, self.obs_dim, self.obs_bytes)
            || len > capacity
            || pos >= capacity
        {
            return Err(bad(format!(
                "saved buffer of {capacity} transitions x ({obs_dim} values, {obs_bytes} bytes) holding {len} at {pos}; this run's holds {} x ({}, {})",
                self.capacity, self.obs_dim, self.obs_bytes
            )));
        }
        read_f32(input, &mut self.obs[..len * obs_dim])?;
        read_f32(input, &mut self.next_obs[..len * obs_dim])?;
        for a in &mut self.actions[..len] {
            let mut b = [0u8; 4];
            input.read_exact(&mut b)?;
            *a = u32::from_le_bytes(b);
        }
        read_f32(input, &mut self.returns[..len])?;
        read_f32(input, &mut self.discounts[..len])?;
        if let Some(p) = &mut self.priorities {
            let mut b = [0u8; 8];
            input.read_exact(&mut b)?;
            p.max_priority = f64::from_le_bytes(b);
            p.tree = PriorityTree::new(capacity);
            for i in 0..len {
                input.read_exact(&mut b)?;
                p.tree.set(i, f64::from_le_bytes(b));
            }
        }
        if let Some(frames) = &mut self.frames {
            let np = self.planes_per_obs;
            let mut b = [0u8; 4];
            for slot in self.obs_planes[..len * np]
                .iter_mut()
                .chain(&mut self.next_planes[..len * np])
            {
                input.read_exact(&mut b)?;
                *slot = u32::from_le_bytes(b);
            }
            let store = FrameStore::read(input, frames.plane_len())?;
            // Every reference must point at a stored plane, as many times as
            // the plane counts.
            let mut counts = std::collections::HashMap::<u32, u32>::new();
            for &slot in self.obs_planes[..len * np]
                .iter()
                .chain(&self.next_planes[..len * np])
            {
                *counts.entry(slot).or_default() += 1;
            }
            if counts.len() != store.live()
                || counts
                    .iter()
                    .any(|(&slot, &n)| store.references(slot) != Some(n))
            {
                return Err(bad(
                    "the frame references do not match the stored frames".into()
                ));
            }
            *frames = store;
        }
        let mut rest = [0u8; 1];
        if input.read(&mut rest)? != 0 {
            return Err(bad("trailing data after the replay buffer".into()));
        }
        self.len = len;
        self.pos = pos;
        Ok(())
    }
}

fn write_f32(out: &mut dyn Write, xs: &[f32]) -> std::io::Result<()> {
    for x in xs {
        out.write_all(&x.to_le_bytes())?;
    }
    Ok(())
}

fn read_f32(input: &mut dyn Read, xs: &mut [f32]) -> std::io::Result<()> {
    let mut b = [0u8; 4];
    for x in xs {
        input.read_exact(&mut b)?;
        *x = f32::from_le_bytes(b);
    }
    Ok(())
}

/// A gathered minibatch.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    /// `[B * obs_dim]`.
    pub obs: Vec<f32>,
    /// `[B * obs_bytes]`.
    pub bytes: Vec<u8>,
    /// `[B * obs_dim]`.
    pub next_obs: Vec<f32>,
    /// `[B * obs_bytes]`.
    pub next_bytes: Vec<u8>,
    /// `[B]` action indices.
    pub actions: Vec<usize>,
    /// `[B]` (n-step) returns.
    pub returns: Vec<f32>,
    /// `[B]` bootstrap discounts.
    pub discounts: Vec<f32>,
}

impl Batch {
    fn clear(&mut self) {
        self.obs.clear();
        self.bytes.clear();
        self.next_obs.clear();
        self.next_bytes.clear();
        self.actions.clear();
        self.returns.clear();
        self.discounts.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tree_keeps_sums_and_minima_and_finds_by_mass() {
        let mut t = PriorityTree::new(5);
        for (i, p) in [1.0, 3.0, 0.5, 2.0, 4.0].into_iter().enumerate() {
            t.set(i, p);
        }
        assert_eq!(t.total(), 10.5);
        assert_eq!(t.min(), 0.5);
        // Cumulative: [0,1) -> 0, [1,4) -> 1, [4,4.5) -> 2, [4.5,6.5) -> 3, [6.5,10.5) -> 4.
        for (mass, leaf) in [
            (0.0, 0),
            (0.99, 0),
            (1.0, 1),
            (3.9, 1),
            (4.2, 2),
            (6.0, 3),
            (10.4, 4),
        ] {
            assert_eq!(t.find(mass), leaf, "mass {mass}");
        }
        t.set(1, 0.0);
        assert_eq!(t.total(), 7.5);
        assert_eq!(t.min(), 0.0);
    }

    #[test]
    fn prioritised_sampling_follows_the_priorities() {
        let mut buf = ReplayBuffer::new(4, 1, 0, 1, Some(1.0));
        for i in 0..4 {
            buf.push(
                ObsRef::values(&[i as f32]),
                0,
                0.0,
                ObsRef::values(&[0.0]),
                1.0,
            );
        }
        buf.update_priorities(&[0, 1, 2, 3], &[1.0, 1.0, 1.0, 5.0], 0.0);
        let mut rng = Rng::seed_from_u64(3);
        let mut counts = [0usize; 4];
        let mut s = Sample::default();
        for _ in 0..2000 {
            buf.sample(8, 1.0, &mut rng, &mut s);
            for &r in &s.rows {
                counts[r] += 1;
            }
        }
        // Expected shares 1/8, 1/8, 1/8, 5/8 of 16000 draws.
        let share = counts[3] as f64 / 16000.0;
        assert!((share - 0.625).abs() < 0.01, "{counts:?}");
        // With beta = 1 the weights undo the bias: w proportional to 1/p.
        buf.sample(8, 1.0, &mut rng, &mut s);
        for (&r, &w) in s.rows.iter().zip(&s.weights) {
            let expected = if r == 3 { 0.2 } else { 1.0 };
            assert!((w - expected).abs() < 1e-6, "row {r} weight {w}");
        }
    }

    /// A stream of stacked frames (4 planes of 64 bytes, one new frame per
    /// step, episodes starting with the first frame repeated), through a
    /// buffer that wraps several times: every gathered observation is the
    /// one pushed, about one plane is stored per transition, and nothing
    /// is left behind.
    #[test]
    fn stacked_frames_are_stored_once_and_gathered_exactly() {
        const K: usize = 4;
        const PLANE: usize = 64;
        let capacity = 50;
        let mut buf = ReplayBuffer::new(capacity, 1, K * PLANE, PLANE, None);
        let mut rng = Rng::seed_from_u64(7);
        let frame =
            |rng: &mut Rng| -> Vec<u8> { (0..PLANE).map(|_| rng.below(256) as u8).collect() };
        let mut stack: Vec<Vec<u8>> = Vec::new();
        let mut pushed: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for t in 0..400 {
            if t % 37 == 0 {
                let f = frame(&mut rng);
                stack = vec![f; K];
            }
            let obs: Vec<u8> = stack.concat();
            stack.remove(0);
            stack.push(frame(&mut rng));
            let next: Vec<u8> = stack.concat();
            buf.push(
                ObsRef::new(&[t as f32], &obs),
                0,
                0.0,
                ObsRef::new(&[0.0], &next),
                1.0,
            );
            pushed.push((obs, next));
        }
        let rows: Vec<usize> = (0..capacity).collect();
        let mut batch = Batch::default();
        buf.gather(&rows, &mut batch);
        for (row, (obs, next)) in rows.iter().zip(
            batch
                .bytes
                .chunks(K * PLANE)
                .zip(batch.next_bytes.chunks(K * PLANE)),
        ) {
            let t = batch.obs[*row] as usize;
            assert_eq!(
                (obs, next),
                (&pushed[t].0[..], &pushed[t].1[..]),
                "row {row}"
            );
        }
        // One new plane per transition, plus the stacks that straddle the
        // oldest transition and episode starts.
        let frames = buf.stored_frames();
        assert!(
            (capacity..capacity + 2 * K + 4).contains(&frames),
            "{frames}"
        );
        let mut file = Vec::new();
        buf.write(&mut file).unwrap();
        let mut back = ReplayBuffer::new(capacity, 1, K * PLANE, PLANE, None);
        back.read(&mut file.as_slice()).unwrap();
        let mut again = Batch::default();
        back.gather(&rows, &mut again);
        assert_eq!(again.bytes, batch.bytes);
        assert_eq!(again.next_bytes, batch.next_bytes);
        // A reference to a plane that is not stored is refused.
        let mut corrupt = file.clone();
        let refs_at = 8 + 5 * 8 + 2 * capacity * 4 + 3 * capacity * 4;
        corrupt[refs_at..refs_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(back.read(&mut corrupt.as_slice()).is_err());
    }

    #[test]
    fn the_buffer_round_trips_through_its_file_and_refuses_misfits() {
        let mut buf = ReplayBuffer::new(3, 2, 3, 1, Some(0.6));
        for i in 0..5u8 {
            let v = [f32::from(i), -f32::from(i)];
            let b = [i, i + 1, i + 2];
            buf.push(
                ObsRef::new(&v, &b),
                usize::from(i % 2),
                0.5,
                ObsRef::new(&v, &b),
                0.9,
            );
        }
        buf.update_priorities(&[1], &[7.0], 1e-6);
        let mut file = Vec::new();
        buf.write(&mut file).unwrap();
        let mut back = ReplayBuffer::new(3, 2, 3, 1, Some(0.6));
        back.read(&mut file.as_slice()).unwrap();
        let mut again = Vec::new();
        back.write(&mut again).unwrap();
        assert_eq!(file, again);
        assert_eq!((back.len(), back.pos), (3, 2));
        let mut other = ReplayBuffer::new(4, 2, 3, 1, Some(0.6));
        let e = other.read(&mut file.as_slice()).unwrap_err().to_string();
        assert!(e.contains("3 transitions") && e.contains("4 x"), "{e}");
        file.truncate(file.len() - 3);
        assert!(back.read(&mut file.as_slice()).is_err());
        assert!(back.is_empty());
    }
}
