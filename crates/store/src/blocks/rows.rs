//! The row form of the hot tier: one group-committed batch of records as one blob
//! (so an append is one insert), cheap to write and read back at start. Per record:
//! the id as a delta to the one before, `ts` zigzag, kind and level one byte each,
//! the 16 text fields and `data` (compact JSON) each as `varint(len + 1)` and bytes,
//! 0 for none.

use super::format::{self, Columns};
use super::wire::{put_varint, zigzag, Corrupt, Reader};
use logbook_core::{Kind, Level, Record, Timestamp};

pub fn encode(records: &[Record]) -> Vec<u8> {
    let data = format::data_texts(records);
    encode_columns(&Columns::of_records(records, &data))
}

pub fn encode_columns(rows: &Columns<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.rows() * 256);
    put_varint(&mut out, rows.rows() as u64);
    let mut previous = 0i64;
    for row in 0..rows.rows() {
        let id = rows.ids[row];
        put_varint(&mut out, zigzag(id.wrapping_sub(previous)));
        previous = id;
        put_row_after_id(&mut out, rows, row);
    }
    out
}

/// The row form of a batch before its ids are known: everything but the count and
/// the first row's id (the only absolute one; the others are deltas), so the
/// writer, which assigns the ids, only puts the two in front, in room kept for
/// them (the form of a 15 MB batch is about 14 MB: not copied to be numbered).
/// Rows may be pushed a chunk at a time, so a large batch need not be whole in
/// another form meanwhile.
#[derive(Clone)]
pub struct Unnumbered {
    rows: usize,
    last_id: i64,
    /// [`HEADER_ROOM`] bytes for the count and the first id, then the rows.
    bytes: Vec<u8>,
}

/// Room for two varints of 64 bits.
const HEADER_ROOM: usize = 20;

impl Default for Unnumbered {
    fn default() -> Unnumbered {
        Unnumbered::with_capacity(0)
    }
}

impl Unnumbered {
    pub fn of(rows: &Columns<'_>) -> Unnumbered {
        let mut unnumbered = Unnumbered::with_capacity(rows.rows());
        unnumbered.push(rows);
        unnumbered
    }

    /// Room for about `rows` rows.
    pub fn with_capacity(rows: usize) -> Unnumbered {
        let mut bytes = Vec::with_capacity(HEADER_ROOM + rows * 256);
        bytes.resize(HEADER_ROOM, 0);
        Unnumbered {
            rows: 0,
            last_id: 0,
            bytes,
        }
    }

    /// Appends `rows`, whose ids continue those pushed before.
    pub fn push(&mut self, rows: &Columns<'_>) {
        for (row, &id) in rows.ids.iter().enumerate() {
            if self.rows > 0 {
                put_varint(&mut self.bytes, zigzag(id.wrapping_sub(self.last_id)));
            }
            self.rows += 1;
            self.last_id = id;
            put_row_after_id(&mut self.bytes, rows, row);
        }
    }

    /// The row form, as [`encode_columns`] gives it, of the rows shifted so the
    /// first one's id is `first_id`.
    pub fn numbered(&mut self, first_id: i64) -> &[u8] {
        let mut header = Vec::with_capacity(HEADER_ROOM);
        put_varint(&mut header, self.rows as u64);
        if self.rows > 0 {
            put_varint(&mut header, zigzag(first_id));
        }
        let start = HEADER_ROOM - header.len();
        self.bytes[start..HEADER_ROOM].copy_from_slice(&header);
        &self.bytes[start..]
    }

    /// The rows after the first one's id.
    fn after_first_id(&self) -> &[u8] {
        &self.bytes[HEADER_ROOM..]
    }

    /// The row form of several batches numbered one after the other from
    /// `first_id` (the appends of one transaction stored as one segment): each
    /// batch's first row is one past the last row of the batch before.
    pub fn numbered_together(parts: &[&Unnumbered], first_id: i64) -> Vec<u8> {
        let rows: usize = parts.iter().map(|p| p.rows).sum();
        let bytes: usize = parts.iter().map(|p| p.after_first_id().len() + 1).sum();
        let mut out = Vec::with_capacity(bytes + 20);
        put_varint(&mut out, rows as u64);
        let mut first = true;
        for part in parts.iter().filter(|p| p.rows > 0) {
            match first {
                true => put_varint(&mut out, zigzag(first_id)),
                false => put_varint(&mut out, zigzag(1)),
            }
            first = false;
            out.extend_from_slice(part.after_first_id());
        }
        out
    }
}

fn put_row_after_id(out: &mut Vec<u8>, rows: &Columns<'_>, row: usize) {
    put_varint(out, zigzag(rows.ts[row]));
    out.push(rows.kinds[row]);
    out.push(rows.levels[row]);
    // The 16 text fields, then `data`.
    for values in &rows.texts {
        put_text(out, values[row]);
    }
}

fn put_text(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        None => out.push(0),
        Some(v) => {
            put_varint(out, v.len() as u64 + 1);
            out.extend_from_slice(v.as_bytes());
        }
    }
}

pub fn decode(bytes: &[u8]) -> Result<Vec<Record>, Corrupt> {
    let mut r = Reader::new(bytes);
    let n = r.count("records", bytes.len())?;
    let mut out = Vec::with_capacity(n);
    let mut id = 0i64;
    for _ in 0..n {
        id = id.wrapping_add(r.signed("id")?);
        let ts = Timestamp(r.signed("ts")?);
        let kind_code = r.u8("kind")?;
        let kind = Kind::from_code(i64::from(kind_code))
            .ok_or_else(|| Corrupt(format!("record {id} has unknown kind {kind_code}")))?;
        let level = match r.u8("level")? {
            0 => None,
            n => Some(
                Level::from_number(i64::from(n))
                    .ok_or_else(|| Corrupt(format!("record {id} has unknown level {n}")))?,
            ),
        };
        let mut texts: [Option<String>; 16] = Default::default();
        for slot in &mut texts {
            *slot = text(&mut r)?;
        }
        let data = match text(&mut r)? {
            None => None,
            Some(json) => match serde_json::from_str::<serde_json::Value>(&json) {
                Ok(serde_json::Value::Object(map)) => Some(map),
                _ => return Err(Corrupt(format!("record {id} data is not a JSON object"))),
            },
        };
        let [category, source, instance, logger, user, user_id, domain_id, project_id, object_type, object_id, action, status, response_code, request_id, parent_request_id, message] =
            texts;
        out.push(Record {
            id,
            ts,
            kind,
            level,
            category,
            source,
            instance,
            logger,
            user,
            user_id,
            domain_id,
            project_id,
            object_type,
            object_id,
            action,
            status,
            response_code,
            request_id,
            parent_request_id,
            message,
            data,
        });
    }
    Ok(out)
}

fn text(r: &mut Reader<'_>) -> Result<Option<String>, Corrupt> {
    match r.varint("text length")? {
        0 => Ok(None),
        n => {
            let len = usize::try_from(n - 1).map_err(|_| Corrupt("text too long".into()))?;
            let bytes = r.take(len, "text")?;
            std::str::from_utf8(bytes)
                .map(|s| Some(s.to_string()))
                .map_err(|_| Corrupt("text is not UTF-8".into()))
        }
    }
}
