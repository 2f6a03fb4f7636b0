//! Parquet against Logbook's own block encoding, on the same records: bytes per
//! record, encode and decode rates (one core), and the cost of reading one record by
//! its position (a get by id). Prints a table for docs/storage.md.

use arrow_array::builder::{Int64Builder, StringBuilder, UInt8Builder};
use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray, UInt8Array};
use arrow_schema::{DataType, Field as ArrowField, Schema};
use logbook_core::record::TEXT_FIELD_NAMES;
use logbook_core::{Kind, Level, NewRecord, Record, Timestamp};
use logbook_store::blocks::format::{self, Layout, Options, COLUMNS};
use parquet::arrow::arrow_reader::{
    ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use std::sync::Arc;
use std::time::Instant;

const BLOCK_ROWS: usize = 65_536;
const PAGE_ROWS: usize = 4096;
const LOOKUPS: usize = 2000;

fn main() {
    let path = std::env::args().nth(1).expect("usage: format-spike FILE.ndjson");
    let text = std::fs::read_to_string(&path).expect("read the NDJSON file");
    let records: Vec<Record> = text
        .lines()
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(i, line)| {
            let value: serde_json::Value = serde_json::from_str(line).expect("JSON");
            NewRecord::from_json(value)
                .expect("a valid record")
                .into_record(i as i64 + 1, Timestamp(0))
        })
        .collect();
    let n = records.len();
    println!(
        "{n} records, {:.0} bytes each as NDJSON",
        text.len() as f64 / n as f64
    );
    println!("| format | bytes/record | encode records/s | decode records/s | get one record |");
    println!("|---|---|---|---|---|");
    for level in [1, 3, 6] {
        own(&records, level);
    }
    for level in [1, 3, 6] {
        parquet(&records, level);
    }
}

fn row_lookups(n: usize) -> Vec<usize> {
    (0..LOOKUPS)
        .map(|i| (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) as usize % n)
        .collect()
}

fn own(records: &[Record], level: i32) {
    let options = Options {
        page_rows: PAGE_ROWS,
        zstd_level: level,
    };
    let started = Instant::now();
    let blocks: Vec<format::Encoded> = records
        .chunks(BLOCK_ROWS)
        .map(|chunk| format::encode(chunk, &options))
        .collect();
    let encode = started.elapsed().as_secs_f64();
    let blob_bytes: usize = blocks.iter().map(|b| b.blob.len()).sum();
    let summary_bytes: usize = blocks.iter().map(|b| b.summary.size_bytes()).sum();

    let started = Instant::now();
    let mut decoded = 0;
    for block in &blocks {
        decoded += format::decode_all(&block.blob).expect("decode").len();
    }
    assert_eq!(decoded, records.len());
    let decode = started.elapsed().as_secs_f64();

    // A get: the block by id range, its header, one page of every column.
    let started = Instant::now();
    for row in row_lookups(records.len()) {
        let blob = &blocks[row / BLOCK_ROWS].blob;
        let layout = Layout::parse(blob).expect("layout");
        let offset = row % BLOCK_ROWS;
        let page = offset / layout.page_rows;
        let rows = layout.rows_of_page(page);
        let mut pages = Vec::with_capacity(COLUMNS);
        for (c, column) in layout.columns.iter().enumerate() {
            let dictionary = layout
                .dictionary_range(c)
                .map(|r| format::decode_dictionary(&blob[r]).expect("dictionary"));
            let part = layout.page_range(c, page).map_or(&[][..], |r| &blob[r]);
            pages.push(
                format::decode_page(column.encoding, part, rows.len(), dictionary.as_ref())
                    .expect("page"),
            );
        }
        let record =
            format::record_at(&layout, &pages.iter().collect::<Vec<_>>(), offset - rows.start, offset).expect("record");
        assert_eq!(record, records[row]);
    }
    let lookup = started.elapsed().as_secs_f64() / LOOKUPS as f64;
    let n = records.len() as f64;
    println!(
        "| own blocks, zstd {level} | {:.1} (+{:.2} summaries) | {:.0} | {:.0} | {:.3} ms |",
        blob_bytes as f64 / n,
        summary_bytes as f64 / n,
        n / encode,
        n / decode,
        lookup * 1000.0
    );
}

fn schema() -> Arc<Schema> {
    let mut fields = vec![
        ArrowField::new("id", DataType::Int64, false),
        ArrowField::new("ts", DataType::Int64, false),
        ArrowField::new("kind", DataType::UInt8, false),
        ArrowField::new("level", DataType::UInt8, true),
    ];
    for name in TEXT_FIELD_NAMES {
        fields.push(ArrowField::new(name, DataType::Utf8, true));
    }
    fields.push(ArrowField::new("data", DataType::Utf8, true));
    Arc::new(Schema::new(fields))
}

fn batch(schema: &Arc<Schema>, records: &[Record]) -> RecordBatch {
    let mut id = Int64Builder::new();
    let mut ts = Int64Builder::new();
    let mut kind = UInt8Builder::new();
    let mut level = UInt8Builder::new();
    let mut texts: Vec<StringBuilder> = (0..16).map(|_| StringBuilder::new()).collect();
    let mut data = StringBuilder::new();
    for r in records {
        id.append_value(r.id);
        ts.append_value(r.ts.micros());
        kind.append_value(r.kind.code() as u8);
        level.append_option(r.level.map(|l| l.number() as u8));
        for (builder, (_, value)) in texts.iter_mut().zip(r.text_fields()) {
            builder.append_option(value.as_deref());
        }
        data.append_option(r.data.as_ref().map(|d| serde_json::to_string(d).expect("json")));
    }
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(ts.finish()),
        Arc::new(kind.finish()),
        Arc::new(level.finish()),
    ];
    for mut b in texts {
        columns.push(Arc::new(b.finish()));
    }
    columns.push(Arc::new(data.finish()));
    RecordBatch::try_new(Arc::clone(schema), columns).expect("batch")
}

fn to_records(batch: &RecordBatch) -> Vec<Record> {
    let int = |i: usize| {
        batch
            .column(i)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("int64")
    };
    let byte = |i: usize| {
        batch
            .column(i)
            .as_any()
            .downcast_ref::<UInt8Array>()
            .expect("uint8")
    };
    let text = |i: usize| {
        batch
            .column(i)
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("utf8")
    };
    let (ids, ts, kinds, levels) = (int(0), int(1), byte(2), byte(3));
    let texts: Vec<&StringArray> = (4..20).map(text).collect();
    let data = text(20);
    (0..batch.num_rows())
        .map(|row| {
            let t = |c: usize| {
                let a = texts[c];
                (!a.is_null(row)).then(|| a.value(row).to_string())
            };
            Record {
                id: ids.value(row),
                ts: Timestamp(ts.value(row)),
                kind: Kind::from_code(i64::from(kinds.value(row))).expect("kind"),
                level: (!levels.is_null(row))
                    .then(|| Level::from_number(i64::from(levels.value(row))))
                    .flatten(),
                category: t(0),
                source: t(1),
                instance: t(2),
                logger: t(3),
                user: t(4),
                user_id: t(5),
                domain_id: t(6),
                project_id: t(7),
                object_type: t(8),
                object_id: t(9),
                action: t(10),
                status: t(11),
                response_code: t(12),
                request_id: t(13),
                parent_request_id: t(14),
                message: t(15),
                data: (!data.is_null(row)).then(|| {
                    serde_json::from_str::<serde_json::Value>(data.value(row))
                        .expect("json")
                        .as_object()
                        .cloned()
                        .expect("object")
                }),
            }
        })
        .collect()
}

fn parquet(records: &[Record], level: i32) {
    let schema = schema();
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(level).expect("level")))
        .set_dictionary_enabled(true)
        .set_max_row_group_size(BLOCK_ROWS)
        .set_data_page_row_count_limit(PAGE_ROWS)
        .set_write_batch_size(PAGE_ROWS)
        .set_statistics_enabled(EnabledStatistics::Page)
        .build();
    let started = Instant::now();
    let mut file = Vec::new();
    {
        let mut writer =
            ArrowWriter::try_new(&mut file, Arc::clone(&schema), Some(properties)).expect("writer");
        for chunk in records.chunks(BLOCK_ROWS) {
            writer.write(&batch(&schema, chunk)).expect("write");
            writer.flush().expect("row group");
        }
        writer.close().expect("close");
    }
    let encode = started.elapsed().as_secs_f64();
    let file = bytes::Bytes::from(file);

    let started = Instant::now();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file.clone())
        .expect("reader")
        .with_batch_size(PAGE_ROWS)
        .build()
        .expect("reader");
    let mut decoded = 0;
    for b in reader {
        decoded += to_records(&b.expect("batch")).len();
    }
    assert_eq!(decoded, records.len());
    let decode = started.elapsed().as_secs_f64();

    // A get: the row group by position, then one row through the page index. The
    // footer is parsed once (a store would keep it), as our header is per block.
    let options = ArrowReaderOptions::new().with_page_index(true);
    let metadata = parquet::arrow::arrow_reader::ArrowReaderMetadata::load(&file, options)
        .expect("metadata");
    let started = Instant::now();
    for row in row_lookups(records.len()) {
        let group = row / BLOCK_ROWS;
        let offset = row % BLOCK_ROWS;
        let rows_in_group = metadata.metadata().row_group(group).num_rows() as usize;
        let selection = RowSelection::from(vec![
            RowSelector::skip(offset),
            RowSelector::select(1),
            RowSelector::skip(rows_in_group - offset - 1),
        ]);
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file.clone(), metadata.clone())
            .with_row_groups(vec![group])
            .with_row_selection(selection)
            .build()
            .expect("reader");
        let mut found = Vec::new();
        for b in reader {
            found.extend(to_records(&b.expect("batch")));
        }
        assert_eq!(found.len(), 1);
        assert_eq!(found[0], records[row]);
    }
    let lookup = started.elapsed().as_secs_f64() / LOOKUPS as f64;
    let n = records.len() as f64;
    println!(
        "| Parquet (parquet 55), zstd {level}, dictionaries, page index | {:.1} | {:.0} | {:.0} | {:.3} ms |",
        file.len() as f64 / n,
        n / encode,
        n / decode,
        lookup * 1000.0
    );
}
