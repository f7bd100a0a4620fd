//! The one place that knows how the journal's records are written as bytes.
//!
//! Every record is framed the same way: a CRC-32 of the rest (4 bytes, little-endian), a
//! format version byte ([`FORMAT_VERSION`]), then the record's fields: integers little-endian,
//! byte strings and text with a 4-byte length before them. The checksum makes a damaged
//! record a typed [`JournalError::Corrupt`] naming it, never a panic and never a silently
//! wrong value; lengths are checked against what is left before anything is allocated.
//!
//! The payloads inside (a task, a step's result) are the caller's bytes: the agents crate
//! encodes them in its own codec module.

use crate::error::JournalError;
use crate::record::{PendingQuestion, StepId, StepKind, StepRecord, StepState, TaskEntry, TaskId, TaskOutcome};

/// The version byte after every record's checksum.
pub const FORMAT_VERSION: u8 = 1;

/// The largest record the journal writes or reads (64 MiB).
pub const MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;

struct Writer(Vec<u8>);

impl Writer {
    fn new() -> Self {
        let mut bytes = Vec::with_capacity(64);
        bytes.extend_from_slice(&[0, 0, 0, 0, FORMAT_VERSION]);
        Self(bytes)
    }

    fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }

    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    fn bytes(&mut self, v: &[u8]) -> &mut Self {
        // Callers check sizes against MAX_RECORD_BYTES first, so the length fits.
        self.u32(u32::try_from(v.len()).unwrap_or(u32::MAX));
        self.0.extend_from_slice(v);
        self
    }

    fn finish(mut self) -> Vec<u8> {
        let crc = crc32fast::hash(&self.0[4..]);
        self.0[..4].copy_from_slice(&crc.to_le_bytes());
        self.0
    }
}

struct Reader<'a> {
    rest: &'a [u8],
    what: &'a dyn Fn() -> String,
}

impl<'a> Reader<'a> {
    fn open(bytes: &'a [u8], what: &'a dyn Fn() -> String) -> Result<Self, JournalError> {
        let corrupt = |detail: &str| JournalError::Corrupt {
            what: what(),
            detail: detail.to_owned(),
        };
        if bytes.len() < 5 {
            return Err(corrupt("shorter than its header"));
        }
        let (crc, rest) = bytes.split_at(4);
        let crc = u32::from_le_bytes(crc.try_into().map_err(|_| corrupt("no checksum"))?);
        if crc32fast::hash(rest) != crc {
            return Err(corrupt("checksum mismatch"));
        }
        if rest[0] != FORMAT_VERSION {
            return Err(corrupt(&format!("unknown format version {}", rest[0])));
        }
        Ok(Self { rest: &rest[1..], what })
    }

    fn corrupt(&self, detail: &str) -> JournalError {
        JournalError::Corrupt {
            what: (self.what)(),
            detail: detail.to_owned(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], JournalError> {
        if self.rest.len() < n {
            return Err(self.corrupt("truncated"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, JournalError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, JournalError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, JournalError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn bytes(&mut self) -> Result<Vec<u8>, JournalError> {
        let len = self.u32()? as usize;
        Ok(self.take(len)?.to_vec())
    }

    fn text(&mut self) -> Result<String, JournalError> {
        String::from_utf8(self.bytes()?).map_err(|_| self.corrupt("text is not UTF-8"))
    }

    fn end(&self) -> Result<(), JournalError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(self.corrupt("trailing bytes"))
        }
    }
}

/// Refuses a payload too large to be a record.
pub(crate) fn check_size(what: &str, len: usize) -> Result<(), JournalError> {
    if len > MAX_RECORD_BYTES - 1024 {
        return Err(JournalError::Invalid(format!(
            "{what} is {len} bytes; the journal takes at most {MAX_RECORD_BYTES}"
        )));
    }
    Ok(())
}

pub(crate) fn encode_task(entry: &TaskEntry) -> Vec<u8> {
    let mut w = Writer::new();
    w.bytes(entry.agent.as_bytes())
        .bytes(&entry.task)
        .u64(entry.accepted_ms);
    match &entry.finished {
        None => w.u8(0),
        Some((at, outcome)) => w.u8(if outcome.ok { 1 } else { 2 }).u64(*at).bytes(&outcome.result),
    };
    w.finish()
}

pub(crate) fn decode_task(id: TaskId, bytes: &[u8]) -> Result<TaskEntry, JournalError> {
    let what = || format!("task {id}");
    let mut r = Reader::open(bytes, &what)?;
    let agent = r.text()?;
    let task = r.bytes()?;
    let accepted_ms = r.u64()?;
    let finished = match r.u8()? {
        0 => None,
        tag @ (1 | 2) => {
            let at = r.u64()?;
            let result = r.bytes()?;
            Some((at, TaskOutcome { ok: tag == 1, result }))
        }
        _ => return Err(r.corrupt("unknown task state")),
    };
    r.end()?;
    Ok(TaskEntry {
        id,
        agent,
        task,
        accepted_ms,
        finished,
    })
}

pub(crate) fn encode_step(step: &StepRecord) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(step.kind.to_byte()).bytes(step.name.as_bytes());
    match &step.state {
        StepState::Started => w.u8(0),
        StepState::Done(result) => w.u8(1).bytes(result),
    };
    w.finish()
}

pub(crate) fn decode_step(id: StepId, bytes: &[u8]) -> Result<StepRecord, JournalError> {
    let what = || format!("task {} step {}", id.task, id.index);
    let mut r = Reader::open(bytes, &what)?;
    let kind = StepKind::from_byte(r.u8()?).ok_or_else(|| r.corrupt("unknown step kind"))?;
    let name = r.text()?;
    let state = match r.u8()? {
        0 => StepState::Started,
        1 => StepState::Done(r.bytes()?),
        _ => return Err(r.corrupt("unknown step state")),
    };
    r.end()?;
    Ok(StepRecord { kind, name, state })
}

pub(crate) fn encode_question(q: &PendingQuestion) -> Vec<u8> {
    let mut w = Writer::new();
    w.bytes(q.agent.as_bytes())
        .bytes(q.question.as_bytes())
        .u64(q.asked_ms)
        .u64(q.deadline_ms);
    match &q.answer {
        None => w.u8(0),
        Some(answer) => w.u8(1).bytes(answer.as_bytes()),
    };
    w.finish()
}

pub(crate) fn decode_question(step: StepId, bytes: &[u8]) -> Result<PendingQuestion, JournalError> {
    let what = || format!("question {step}");
    let mut r = Reader::open(bytes, &what)?;
    let agent = r.text()?;
    let question = r.text()?;
    let asked_ms = r.u64()?;
    let deadline_ms = r.u64()?;
    let answer = match r.u8()? {
        0 => None,
        1 => Some(r.text()?),
        _ => return Err(r.corrupt("unknown question state")),
    };
    r.end()?;
    Ok(PendingQuestion {
        step,
        agent,
        question,
        asked_ms,
        deadline_ms,
        answer,
    })
}

pub(crate) fn encode_snapshot(snapshot: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.bytes(snapshot);
    w.finish()
}

pub(crate) fn decode_snapshot(agent: &str, bytes: &[u8]) -> Result<Vec<u8>, JournalError> {
    let what = || format!("snapshot of agent {agent:?}");
    let mut r = Reader::open(bytes, &what)?;
    let snapshot = r.bytes()?;
    r.end()?;
    Ok(snapshot)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> TaskEntry {
        TaskEntry {
            id: TaskId(7),
            agent: "a".into(),
            task: b"task".to_vec(),
            accepted_ms: 42,
            finished: Some((43, TaskOutcome::ok(b"done".to_vec()))),
        }
    }

    #[test]
    fn records_round_trip() {
        let e = entry();
        assert_eq!(decode_task(TaskId(7), &encode_task(&e)).unwrap(), e);
        let s = StepRecord {
            kind: StepKind::Tool,
            name: "send".into(),
            state: StepState::Done(vec![1, 2, 3]),
        };
        assert_eq!(decode_step(StepId::new(TaskId(7), 2), &encode_step(&s)).unwrap(), s);
    }

    #[test]
    fn every_damaged_byte_and_every_truncation_is_a_typed_error() {
        let bytes = encode_task(&entry());
        for cut in 0..bytes.len() {
            assert!(matches!(
                decode_task(TaskId(7), &bytes[..cut]),
                Err(JournalError::Corrupt { .. })
            ));
        }
        for i in 0..bytes.len() {
            for flip in [1u8, 0x80, 0xff] {
                let mut damaged = bytes.clone();
                damaged[i] ^= flip;
                let error = decode_task(TaskId(7), &damaged).unwrap_err();
                assert!(error.to_string().contains("task 7"), "{error}");
            }
        }
    }

    #[test]
    fn a_huge_length_prefix_is_refused_without_allocating() {
        let mut w = Writer::new();
        w.u32(u32::MAX);
        let bytes = w.finish();
        assert!(matches!(
            decode_snapshot("a", &bytes),
            Err(JournalError::Corrupt { .. })
        ));
    }
}
