//! Byte observations stored once: each observation's byte lane is cut into
//! planes (the frames of a stack), and a plane already in the store is
//! referenced instead of copied. Consecutive stacked observations share all
//! but their newest frame, and a transition's next observation is the next
//! transition's observation, so a replay buffer of stacked frames holds
//! about one new frame per transition instead of `2 k`.
//!
//! Planes are found by content (a 64-bit hash, confirmed byte for byte), so
//! the store needs no knowledge of episodes, envs or n-step windows, and a
//! plane is freed when the last transition referring to it is overwritten.
//! Everything, the index included, is saved for exact resume.

use std::collections::HashMap;
use std::io::{Read, Write};

/// Planes stored once, reference-counted.
#[derive(Clone, Debug)]
pub struct FrameStore {
    plane: usize,
    /// `slots * plane` bytes.
    pool: Vec<u8>,
    /// References per slot (0: free).
    refs: Vec<u32>,
    /// Content hash per slot.
    hashes: Vec<u64>,
    /// Free slots, reused last-freed first.
    free: Vec<u32>,
    /// Content hash to a live slot holding that content.
    index: HashMap<u64, u32>,
}

/// The plane length of observations whose byte lane has `shapes` (`[C, H,
/// W]` boxes): `H * W` when every box has the same, else the whole lane.
pub fn plane_len(shapes: &[Vec<usize>], byte_dim: usize) -> usize {
    let areas: Vec<usize> = shapes
        .iter()
        .map(|s| s.iter().skip(1).product::<usize>())
        .collect();
    match areas.first() {
        Some(&a) if a > 0 && areas.iter().all(|&x| x == a) && byte_dim.is_multiple_of(a) => a,
        _ => byte_dim.max(1),
    }
}

/// FNV-style 64-bit hash over 8-byte words (then the tail), mixed.
fn hash(bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let v = u64::from_le_bytes(w.try_into().expect("8 bytes"));
        h = (h ^ v).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(29);
    }
    for &b in words.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^ (h >> 31)
}

impl FrameStore {
    /// An empty store of planes of `plane` bytes.
    pub fn new(plane: usize) -> Self {
        Self {
            plane,
            pool: Vec::new(),
            refs: Vec::new(),
            hashes: Vec::new(),
            free: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// Bytes per plane.
    pub fn plane_len(&self) -> usize {
        self.plane
    }

    /// Planes stored (referenced at least once).
    pub fn live(&self) -> usize {
        self.refs.len() - self.free.len()
    }

    /// Bytes on the heap: the pool, the per-slot counts and hashes, the free
    /// list and the index (24 bytes an entry).
    pub fn heap_bytes(&self) -> usize {
        self.pool.capacity()
            + self.refs.capacity() * 4
            + self.hashes.capacity() * 8
            + self.free.capacity() * 4
            + self.index.capacity() * 24
    }

    /// A reference to a plane with `content`: an existing one when stored.
    pub fn insert(&mut self, content: &[u8]) -> u32 {
        let h = hash(content);
        if let Some(&slot) = self.index.get(&h)
            && self.plane_at(slot) == content
        {
            self.refs[slot as usize] += 1;
            return slot;
        }
        let slot = match self.free.pop() {
            Some(s) => {
                let at = s as usize * self.plane;
                self.pool[at..at + self.plane].copy_from_slice(content);
                s
            }
            None => {
                // Grow by an eighth, not double: the pool is most of a large
                // buffer's memory.
                if self.pool.capacity() - self.pool.len() < self.plane {
                    let more = (self.pool.len() / 8).max(256 * self.plane);
                    self.pool.reserve_exact(more);
                }
                self.pool.extend_from_slice(content);
                self.refs.push(0);
                self.hashes.push(0);
                (self.refs.len() - 1) as u32
            }
        };
        self.refs[slot as usize] = 1;
        self.hashes[slot as usize] = h;
        self.index.insert(h, slot);
        slot
    }

    /// Drops one reference to `slot`, freeing it after the last.
    pub fn release(&mut self, slot: u32) {
        let r = &mut self.refs[slot as usize];
        *r -= 1;
        if *r == 0 {
            self.free.push(slot);
            let h = self.hashes[slot as usize];
            if self.index.get(&h) == Some(&slot) {
                self.index.remove(&h);
            }
        }
    }

    /// References to `slot`, if it is stored.
    pub fn references(&self, slot: u32) -> Option<u32> {
        self.refs.get(slot as usize).copied().filter(|&r| r > 0)
    }

    /// The plane in `slot`.
    pub fn plane_at(&self, slot: u32) -> &[u8] {
        let at = slot as usize * self.plane;
        &self.pool[at..at + self.plane]
    }

    /// Writes the store (pool, references, free list and index).
    pub fn write(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let slots = self.refs.len();
        for v in [self.plane, slots, self.free.len(), self.index.len()] {
            out.write_all(&(v as u64).to_le_bytes())?;
        }
        out.write_all(&self.pool)?;
        for (&r, &h) in self.refs.iter().zip(&self.hashes) {
            out.write_all(&r.to_le_bytes())?;
            out.write_all(&h.to_le_bytes())?;
        }
        for &f in &self.free {
            out.write_all(&f.to_le_bytes())?;
        }
        let mut entries: Vec<(u64, u32)> = self.index.iter().map(|(&h, &s)| (h, s)).collect();
        entries.sort_unstable();
        for (h, s) in entries {
            out.write_all(&h.to_le_bytes())?;
            out.write_all(&s.to_le_bytes())?;
        }
        Ok(())
    }

    /// Reads what [`FrameStore::write`] wrote, checking its consistency.
    pub fn read(input: &mut dyn Read, plane: usize) -> std::io::Result<Self> {
        let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
        let mut header = [0u64; 4];
        for h in &mut header {
            *h = read_u64(input)?;
        }
        let [saved_plane, slots, free, entries] = header.map(|v| v as usize);
        if saved_plane != plane {
            return Err(bad(format!(
                "saved frames of {saved_plane} bytes; this run's are {plane}"
            )));
        }
        let limit = 1usize << 32;
        if slots >= limit || free > slots || entries > slots {
            return Err(bad(format!(
                "frame store header out of range ({slots} slots, {free} free, {entries} indexed)"
            )));
        }
        let mut pool = vec![0u8; slots * plane];
        input.read_exact(&mut pool)?;
        let (mut refs, mut hashes) = (Vec::with_capacity(slots), Vec::with_capacity(slots));
        for _ in 0..slots {
            refs.push(read_u32(input)?);
            hashes.push(read_u64(input)?);
        }
        let mut free_slots = Vec::with_capacity(free);
        for _ in 0..free {
            let s = read_u32(input)?;
            if s as usize >= slots || refs[s as usize] != 0 {
                return Err(bad(format!("free frame slot {s} is invalid or in use")));
            }
            free_slots.push(s);
        }
        let mut index = HashMap::with_capacity(entries);
        for _ in 0..entries {
            let (h, s) = (read_u64(input)?, read_u32(input)?);
            if s as usize >= slots || refs[s as usize] == 0 || hashes[s as usize] != h {
                return Err(bad(format!("frame index entry for slot {s} is invalid")));
            }
            index.insert(h, s);
        }
        Ok(Self {
            plane,
            pool,
            refs,
            hashes,
            free: free_slots,
            index,
        })
    }
}

fn read_u64(input: &mut dyn Read) -> std::io::Result<u64> {
    let mut b = [0u8; 8];
    input.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

fn read_u32(input: &mut dyn Read) -> std::io::Result<u32> {
    let mut b = [0u8; 4];
    input.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_planes_are_stored_once_and_freed_after_the_last_reference() {
        let mut s = FrameStore::new(4);
        let a = s.insert(&[1, 2, 3, 4]);
        let b = s.insert(&[5, 6, 7, 8]);
        assert_eq!(s.insert(&[1, 2, 3, 4]), a);
        assert_eq!(s.live(), 2);
        s.release(a);
        assert_eq!(s.live(), 2);
        s.release(a);
        assert_eq!(s.live(), 1);
        // The freed slot is reused for new content, not found for the old.
        let c = s.insert(&[9, 9, 9, 9]);
        assert_eq!(c, a);
        assert_eq!(s.plane_at(c), &[9, 9, 9, 9]);
        assert_ne!(s.insert(&[1, 2, 3, 4]), c);
        assert_eq!(s.plane_at(b), &[5, 6, 7, 8]);
    }

    #[test]
    fn planes_follow_equal_box_areas() {
        assert_eq!(plane_len(&[vec![4, 64, 64]], 4 * 4096), 4096);
        assert_eq!(plane_len(&[vec![1, 8, 8], vec![2, 8, 8]], 192), 64);
        assert_eq!(plane_len(&[vec![1, 8, 8], vec![1, 4, 4]], 80), 80);
        assert_eq!(plane_len(&[], 0), 1);
    }

    #[test]
    fn the_store_round_trips_and_refuses_corruption() {
        let mut s = FrameStore::new(3);
        let slots: Vec<u32> = (0..6u8).map(|i| s.insert(&[i, i, i % 2])).collect();
        s.release(slots[2]);
        s.release(slots[4]);
        let mut file = Vec::new();
        s.write(&mut file).unwrap();
        let mut back = FrameStore::read(&mut file.as_slice(), 3).unwrap();
        let mut again = Vec::new();
        back.write(&mut again).unwrap();
        assert_eq!(file, again);
        assert_eq!(back.insert(&[5, 5, 1]), slots[5]);
        assert!(FrameStore::read(&mut file.as_slice(), 4).is_err());
        // A free-list entry pointing at a slot in use.
        let mut corrupt = file.clone();
        let free_at = 32 + 6 * 3 + 6 * 12;
        corrupt[free_at..free_at + 4].copy_from_slice(&0u32.to_le_bytes());
        assert!(FrameStore::read(&mut corrupt.as_slice(), 3).is_err());
    }
}
