//! The file store's redo journal: what makes the hot writes durable without a redb durable commit each.
//!
//! A redb durable commit writes every B-tree page the transaction changed and then fsyncs the file; for a new
//! incident that is about 23 KB of pages (its row, its team and external-id index rows and its first event each
//! land on a random leaf, and the branch pages above them are rewritten), 9 writes per commit even with group
//! commit. The hot writes (a delivery key, a new incident, a stage transition) are instead committed to redb
//! non-durably — readers see them at once, nothing is fsynced — and their effects, the rows they put, are
//! appended here first, one record per group, with one `fdatasync`: about 1.6 KB per incident, written in
//! sequence into a file whose blocks are allocated once (so the sync writes data, not file metadata).
//!
//! Every durable redb commit (a checkpoint: when the journal fills, on a write the journal does not cover, on
//! close) stores the number of the last record it covers in the `journal` table, inside the same commit. On open,
//! the records after that number are put again in order and checkpointed. redb rolls back to its last durable
//! commit after a crash, so applying the journal's records after it gives exactly the state every acknowledged
//! write left; a record that reached the disk but whose writer was never answered is kept too (its sender
//! retries, and the retry dedupes).
//!
//! Records are `MAGIC, length, number, crc32(number ‖ payload), payload`. After a checkpoint writing starts again
//! at the file's start; what lies beyond the last record written since is older, numbered lower, so a scan stops
//! at the first record that is torn, fails its checksum, or does not follow its predecessor's number.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use domain::ports::StoreError;
use redb::TableDefinition;

/// The journal's capacity. A checkpoint comes due once a record would not fit.
pub const CAPACITY: u64 = 64 << 20;
/// The file grows by this much at a time, zero-filled, so a store that is rarely written keeps a small journal.
const CHUNK: u64 = 4 << 20;
const MAGIC: u32 = 0xD0E0_0A1C;
const HEADER: usize = 4 + 4 + 8 + 4;
/// Records this large are refused (a group of 512 new incidents is about 1 MB).
const MAX_RECORD: usize = 16 << 20;

/// "lsn" → the number of the last journal record a durable commit covers.
pub const CHECKPOINT: TableDefinition<&str, u64> = TableDefinition::new("journal");
pub const CHECKPOINT_KEY: &str = "lsn";

/// One row a logged write puts. Replaying a record puts the same rows again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Put<'a> {
    /// incidents: id → JSON.
    Incident { id: &'a str, json: &'a str },
    /// by_team: (team, created ms, id).
    ByTeam { team: &'a str, ms: u64, id: &'a str },
    /// external: (team, source id) → id.
    External { team: &'a str, external: &'a str, id: &'a str },
    /// events: (id, seq) → JSON.
    Event { id: &'a str, seq: u64, json: &'a str },
    /// deliveries: (team, key) → first seen (s).
    Delivery { team: &'a str, key: &'a str, seen: u64 },
    /// usage: (team, period) → count.
    Usage { team: &'a str, period: &'a str, count: u64 },
    /// acted: (team, ms, id).
    Acted { team: &'a str, ms: u64, id: &'a str },
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

impl Put<'_> {
    /// Appends the row's encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match *self {
            Put::Incident { id, json } => {
                out.push(1);
                put_str(out, id);
                put_str(out, json);
            }
            Put::ByTeam { team, ms, id } => {
                out.push(2);
                put_str(out, team);
                out.extend_from_slice(&ms.to_le_bytes());
                put_str(out, id);
            }
            Put::External { team, external, id } => {
                out.push(3);
                put_str(out, team);
                put_str(out, external);
                put_str(out, id);
            }
            Put::Event { id, seq, json } => {
                out.push(4);
                put_str(out, id);
                out.extend_from_slice(&seq.to_le_bytes());
                put_str(out, json);
            }
            Put::Delivery { team, key, seen } => {
                out.push(5);
                put_str(out, team);
                put_str(out, key);
                out.extend_from_slice(&seen.to_le_bytes());
            }
            Put::Usage { team, period, count } => {
                out.push(6);
                put_str(out, team);
                put_str(out, period);
                out.extend_from_slice(&count.to_le_bytes());
            }
            Put::Acted { team, ms, id } => {
                out.push(7);
                put_str(out, team);
                out.extend_from_slice(&ms.to_le_bytes());
                put_str(out, id);
            }
        }
    }
}

/// Reads rows back from a record's payload.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.buf.len() < n {
            return Err(StoreError::Corrupt("a journal record ends inside a row".into()));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64, StoreError> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().unwrap_or_default()))
    }

    fn str(&mut self) -> Result<&'a str, StoreError> {
        let b = self.take(4)?;
        let n = u32::from_le_bytes(b.try_into().unwrap_or_default()) as usize;
        std::str::from_utf8(self.take(n)?).map_err(|e| StoreError::Corrupt(format!("a journal row is not UTF-8: {e}")))
    }

    fn put(&mut self) -> Result<Put<'a>, StoreError> {
        let tag = self.take(1)?[0];
        Ok(match tag {
            1 => Put::Incident { id: self.str()?, json: self.str()? },
            2 => Put::ByTeam { team: self.str()?, ms: self.u64()?, id: self.str()? },
            3 => Put::External { team: self.str()?, external: self.str()?, id: self.str()? },
            4 => Put::Event { id: self.str()?, seq: self.u64()?, json: self.str()? },
            5 => Put::Delivery { team: self.str()?, key: self.str()?, seen: self.u64()? },
            6 => Put::Usage { team: self.str()?, period: self.str()?, count: self.u64()? },
            7 => Put::Acted { team: self.str()?, ms: self.u64()?, id: self.str()? },
            t => return Err(StoreError::Corrupt(format!("unknown journal row kind {t}"))),
        })
    }
}

/// The rows of a record's payload, in the order they were put.
pub fn decode(payload: &[u8]) -> Result<Vec<Put<'_>>, StoreError> {
    let mut r = Reader { buf: payload };
    let mut puts = Vec::new();
    while !r.buf.is_empty() {
        puts.push(r.put()?);
    }
    Ok(puts)
}

fn io(path: &Path, what: &str, e: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("{what} {}: {e}", path.display()))
}

/// The journal file, open for appending.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
    /// Where the next record goes.
    offset: u64,
    /// Bytes of the file allocated (zero-filled or written).
    allocated: u64,
    /// The next record's number.
    next: u64,
    /// A record's bytes, reused.
    buf: Vec<u8>,
}

/// A record found on open: its number and payload.
#[derive(Debug)]
pub struct Record {
    pub lsn: u64,
    pub payload: Vec<u8>,
}

impl Journal {
    /// Opens (creating and allocating if needed) the journal beside the store file and returns the records that
    /// follow `covered`, the number the store's last durable commit covers. The journal is not written until
    /// [`Journal::checkpointed`] says those records are covered.
    pub fn open(path: &Path, covered: u64) -> Result<(Self, Vec<Record>), StoreError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| io(path, "cannot open the journal", e))?;
        let len = file.metadata().map_err(|e| io(path, "cannot read the journal's size", e))?.len();
        let mut records = Vec::new();
        if len > 0 {
            // Read record by record (a full journal is 64 MiB; no need to hold it all).
            let mut reader = std::io::BufReader::with_capacity(1 << 20, (&file).take(len.min(CAPACITY)));
            let mut prev: Option<u64> = None;
            while let Some((lsn, payload)) =
                next_record(&mut reader).map_err(|e| io(path, "cannot read the journal", e))?
            {
                if prev.is_some_and(|p| lsn != p + 1) {
                    break;
                }
                prev = Some(lsn);
                if lsn > covered {
                    records.push(Record { lsn, payload });
                }
            }
        }
        let allocated = len.min(CAPACITY);
        let last = records.last().map_or(covered, |r| r.lsn);
        let mut journal = Self { file, path: path.to_owned(), offset: 0, allocated, next: last + 1, buf: Vec::new() };
        if allocated < CHUNK {
            journal.grow(CHUNK)?;
        }
        Ok((journal, records))
    }

    /// Allocates the file up to `to` bytes with zeros and syncs it, so that appending below `to` changes no file
    /// metadata (an fdatasync then writes the record alone). A crash part way leaves a shorter file, extended later.
    fn grow(&mut self, to: u64) -> Result<(), StoreError> {
        let zeros = vec![0u8; 1 << 20];
        while self.allocated < to {
            let n = (to - self.allocated).min(zeros.len() as u64) as usize;
            use std::os::unix::fs::FileExt;
            self.file
                .write_all_at(&zeros[..n], self.allocated)
                .map_err(|e| io(&self.path, "cannot extend the journal", e))?;
            self.allocated += n as u64;
        }
        self.file.sync_all().map_err(|e| io(&self.path, "cannot sync the journal", e))?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // The file's entry in its directory must survive a crash too.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
    /// The number the next record will get; a durable commit stores the one before it.
    pub fn last(&self) -> u64 {
        self.next - 1
    }

    /// Whether a record with this payload fits before the end of the file.
    pub fn fits(&self, payload: usize) -> bool {
        payload <= MAX_RECORD && self.offset + (HEADER + payload) as u64 <= CAPACITY
    }

    /// Bytes written since the last checkpoint.
    pub fn used(&self) -> u64 {
        self.offset
    }

    /// Writes one record and waits for it to reach the disk. Call only when [`Journal::fits`].
    pub fn append(&mut self, payload: &[u8]) -> Result<u64, StoreError> {
        let lsn = self.next;
        self.buf.clear();
        self.buf.extend_from_slice(&MAGIC.to_le_bytes());
        self.buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(&lsn.to_le_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(&lsn.to_le_bytes());
        crc.update(payload);
        self.buf.extend_from_slice(&crc.finalize().to_le_bytes());
        self.buf.extend_from_slice(payload);
        let end = self.offset + self.buf.len() as u64;
        if end > self.allocated {
            self.grow(end.div_ceil(CHUNK).saturating_mul(CHUNK).min(CAPACITY))?;
        }
        use std::os::unix::fs::FileExt;
        self.file.write_all_at(&self.buf, self.offset).map_err(|e| io(&self.path, "cannot write the journal", e))?;
        self.file.sync_data().map_err(|e| io(&self.path, "cannot sync the journal", e))?;
        self.offset += self.buf.len() as u64;
        self.next += 1;
        Ok(lsn)
    }

    /// A durable commit now covers every record written: the next one starts again at the file's start.
    pub fn checkpointed(&mut self) {
        self.offset = 0;
        // Blank the first header so the next open stops at once instead of reading the covered records. Not synced:
        // if it is lost, the open reads them and skips them all, as covered.
        use std::os::unix::fs::FileExt;
        let _ = self.file.write_all_at(&[0u8; HEADER], 0);
    }
}

/// The next record: (number, payload), or `None` where no whole, intact record begins.
fn next_record(r: &mut impl Read) -> std::io::Result<Option<(u64, Vec<u8>)>> {
    let mut head = [0u8; HEADER];
    if !read_all(r, &mut head)? {
        return Ok(None);
    }
    let word = |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
    let len = word(4) as usize;
    if word(0) != MAGIC || len > MAX_RECORD {
        return Ok(None);
    }
    let lsn = u64::from_le_bytes([head[8], head[9], head[10], head[11], head[12], head[13], head[14], head[15]]);
    let mut payload = vec![0u8; len];
    if !read_all(r, &mut payload)? {
        return Ok(None);
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(&lsn.to_le_bytes());
    crc.update(&payload);
    Ok((crc.finalize() == word(16)).then_some((lsn, payload)))
}

/// Fills `buf`; `false` when the input ends first.
fn read_all(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<bool> {
    match r.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Put<'static>> {
        vec![
            Put::Incident { id: "inc-1", json: "{\"a\":\"é\"}" },
            Put::ByTeam { team: "default", ms: 1_700_000_000_000, id: "inc-1" },
            Put::External { team: "default", external: "PD1", id: "inc-1" },
            Put::Event { id: "inc-1", seq: 3, json: "{}" },
            Put::Delivery { team: "default", key: "w-1", seen: 17 },
            Put::Usage { team: "default", period: "2026-12", count: 4 },
            Put::Acted { team: "default", ms: 9, id: "inc-1" },
        ]
    }

    fn payload(puts: &[Put<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in puts {
            p.encode(&mut out);
        }
        out
    }

    #[test]
    fn rows_round_trip() {
        let bytes = payload(&rows());
        assert_eq!(decode(&bytes).unwrap(), rows());
        assert!(decode(&bytes[..bytes.len() - 1]).is_err(), "a cut row is corrupt, not a shorter list");
        assert!(decode(&[9]).is_err());
    }

    #[test]
    fn records_after_the_checkpoint_come_back_in_order_and_a_torn_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.journal");
        let (mut j, found) = Journal::open(&path, 0).unwrap();
        assert!(found.is_empty());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), CHUNK, "allocated a chunk up front");
        let p = payload(&rows());
        for _ in 0..3 {
            assert!(j.fits(p.len()));
            j.append(&p).unwrap();
        }
        let torn_at = j.used();
        j.append(&p).unwrap();
        drop(j);
        // The fourth record is torn: its last byte never reached the disk.
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        use std::os::unix::fs::FileExt;
        f.write_all_at(&[0xFF], torn_at + (HEADER + p.len()) as u64 - 1).unwrap();
        let (j, found) = Journal::open(&path, 1).unwrap();
        assert_eq!(
            found.iter().map(|r| r.lsn).collect::<Vec<_>>(),
            vec![2, 3],
            "after the covered one, before the torn one"
        );
        assert_eq!(decode(&found[0].payload).unwrap(), rows());
        assert_eq!(j.last(), 3);
    }

    #[test]
    fn after_a_checkpoint_older_records_past_the_new_ones_are_not_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.journal");
        let (mut j, _) = Journal::open(&path, 0).unwrap();
        let long = payload(&rows());
        for _ in 0..4 {
            j.append(&long).unwrap();
        }
        j.checkpointed();
        // One short record overwrites the start; records 2..4 of the old run still lie beyond it.
        let short = payload(&[Put::Delivery { team: "t", key: "k", seen: 1 }]);
        assert_eq!(j.append(&short).unwrap(), 5);
        drop(j);
        let (j, found) = Journal::open(&path, 4).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].lsn, 5);
        assert_eq!(j.last(), 5);
        // Nothing after the checkpoint: nothing to replay, numbering goes on.
        let (j, found) = Journal::open(&path, 5).unwrap();
        assert!(found.is_empty());
        assert_eq!(j.last(), 5);
    }

    #[test]
    fn a_short_file_from_a_crash_while_allocating_is_extended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.journal");
        std::fs::write(&path, [0u8; 100]).unwrap();
        let (j, found) = Journal::open(&path, 7).unwrap();
        assert!(found.is_empty());
        assert_eq!(j.last(), 7);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), CHUNK);
    }

    #[test]
    fn the_file_grows_by_chunks_up_to_its_capacity() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.journal");
        let (mut j, _) = Journal::open(&path, 0).unwrap();
        let big = vec![b'x'; (3 << 20) as usize];
        let record = (HEADER + big.len()) as u64;
        let mut n = 0;
        while j.fits(big.len()) {
            j.append(&big).unwrap();
            n += 1;
        }
        assert_eq!(n, CAPACITY / record);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), CAPACITY);
        j.checkpointed();
        assert!(j.fits(big.len()));
        drop(j);
        // A checkpoint blanks the first record: the next open reads nothing, even knowing no checkpoint number.
        let (_, found) = Journal::open(&path, 0).unwrap();
        assert!(found.is_empty());
    }
}
