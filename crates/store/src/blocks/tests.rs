use super::format::{self, decode_all, Layout, Options, MESSAGE, TS};
use super::summary::Summary;
use logbook_core::query::{Comparison, Condition, Field, Scalar};
use logbook_core::{Kind, Level, NewRecord, Query, Record, Timestamp};

fn records(n: usize, first_id: i64) -> Vec<Record> {
    (0..n)
        .map(|i| {
            let mut r = NewRecord::new(if i % 10 == 0 { Kind::Event } else { Kind::Log });
            r.ts = Some(Timestamp(
                1_700_000_000_000_000 + (i as i64) * 10_000 - (i as i64 % 7) * 3,
            ));
            r.level = [None, Some(Level::Info), Some(Level::Error)][i % 3];
            r.category = (i % 5 != 0).then(|| ["image", "network", "système"][i % 3].to_string());
            r.user = Some(format!("user{}", i % 200));
            r.request_id = Some(format!(
                "{:016x}",
                (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ));
            r.message = (i % 11 != 3)
                .then(|| format!("Pull image {i:x} from dockerhub: TIMEOUT after {i} ms, Größe"));
            if i % 4 == 0 {
                r.data = serde_json::json!({"z": i, "a": "x", "nested": {"k": [1, null]}})
                    .as_object()
                    .cloned();
            }
            r.into_record(first_id + i as i64, Timestamp(0))
        })
        .collect()
}

#[test]
fn a_block_decodes_to_the_records_it_was_made_of() {
    for (n, page_rows) in [(1, 4096), (1000, 64), (5000, 4096), (300, 7)] {
        let input = records(n, 42);
        let encoded = format::encode(
            &input,
            &Options {
                page_rows,
                zstd_level: 3,
            },
        );
        assert_eq!(
            decode_all(&encoded.blob).expect("decode"),
            input,
            "{n} rows, pages of {page_rows}"
        );
        let layout = Layout::parse(&encoded.blob).expect("layout");
        assert_eq!(
            (layout.first_id, layout.last_id, layout.rows),
            (42, 41 + n as i64, n)
        );
        let end =
            Layout::header_end(&encoded.blob[..16.min(encoded.blob.len())]).expect("header end");
        assert_eq!(
            Layout::parse(&encoded.blob[..end]).expect("header alone"),
            layout
        );
    }
}

#[test]
fn ids_with_gaps_are_kept() {
    let mut input = records(100, 1);
    input.retain(|r| r.id % 3 != 0);
    let encoded = format::encode(&input, &Options::default());
    assert_eq!(decode_all(&encoded.blob).expect("decode"), input);
}

#[test]
fn damaged_blocks_are_errors_not_panics() {
    let encoded = format::encode(
        &records(500, 1),
        &Options {
            page_rows: 100,
            zstd_level: 3,
        },
    );
    let blob = &encoded.blob;
    for cut in [0, 3, 10, blob.len() / 2, blob.len() - 1] {
        assert!(decode_all(&blob[..cut]).is_err(), "cut at {cut}");
    }
    let mut flipped = blob.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x5a;
    let _ = decode_all(&flipped); // an error or different records, never a panic
    assert!(Summary::read(&[9, 1, 2]).is_err());
}

#[test]
fn a_page_is_decoded_on_its_own() {
    let input = records(1000, 1);
    let encoded = format::encode(
        &input,
        &Options {
            page_rows: 128,
            zstd_level: 3,
        },
    );
    let layout = Layout::parse(&encoded.blob).expect("layout");
    let page = 5;
    let column = &layout.columns[MESSAGE];
    let part = &encoded.blob[layout.page_range(MESSAGE, page).expect("range")];
    let rows = layout.rows_of_page(page);
    let decoded = format::decode_page(column.encoding, part, rows.len(), None).expect("page");
    for (i, row) in rows.clone().enumerate() {
        assert_eq!(decoded.text(i), input[row].message.as_deref());
    }
    let part = &encoded.blob[layout.page_range(TS, page).expect("range")];
    let ts =
        format::decode_page(layout.columns[TS].encoding, part, rows.len(), None).expect("page");
    assert_eq!(ts.int(3), Some(input[rows.start + 3].ts.micros()));
}

#[test]
fn the_summary_skips_only_blocks_without_a_match() {
    let input = records(3000, 1);
    let summary = format::encode(&input, &Options::default()).summary;
    let mut stored = Vec::new();
    summary.write(&mut stored);
    let summary = Summary::read(&stored).expect("summary round trip");
    let text = |s: &str| Scalar::Text(s.into());
    let conditions = [
        Condition::Contains(Field::Message, "timeout".into()),
        Condition::Contains(Field::Message, "zebrafish".into()),
        Condition::Contains(Field::Message, "GRÖßE".into()),
        Condition::Contains(Field::Message, "ab".into()),
        Condition::In(Field::Category, vec![text("image")]),
        Condition::In(Field::Category, vec![text("volume")]),
        Condition::NotIn(
            Field::Category,
            vec![text("image"), text("network"), text("système")],
        ),
        Condition::In(Field::User, vec![text("user7")]),
        Condition::In(Field::User, vec![text("user700")]),
        Condition::In(
            Field::RequestId,
            vec![text(&format!(
                "{:016x}",
                5u64.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ))],
        ),
        Condition::In(Field::RequestId, vec![text("nope")]),
        Condition::StartsWith(Field::User, "user1".into()),
        Condition::StartsWith(Field::User, "admin".into()),
        Condition::Compare(Field::Id, Comparison::Gt, Scalar::Int(2999)),
        Condition::Compare(Field::Id, Comparison::Gt, Scalar::Int(3000)),
        Condition::Compare(
            Field::Ts,
            Comparison::Lt,
            Scalar::Int(1_700_000_000_000_000),
        ),
        Condition::Compare(
            Field::Ts,
            Comparison::Lt,
            Scalar::Int(1_600_000_000_000_000),
        ),
        Condition::In(Field::Level, vec![Scalar::Int(Level::Warn.number())]),
        Condition::Compare(
            Field::Level,
            Comparison::Ge,
            Scalar::Int(Level::Error.number()),
        ),
        Condition::In(Field::Kind, vec![Scalar::Int(Kind::Journal.code())]),
        Condition::Any(vec![
            Condition::In(Field::Category, vec![text("volume")]),
            Condition::Contains(Field::Message, "dockerhub".into()),
        ]),
        Condition::All(vec![
            Condition::In(Field::Category, vec![text("image")]),
            Condition::Contains(Field::Message, "zebrafish".into()),
        ]),
    ];
    for condition in conditions {
        let any = input.iter().any(|r| condition.matches(r));
        let may = summary.may_match(&condition);
        assert!(may || !any, "skipped a block with a match: {condition:?}");
        assert!(any || !may, "read a block without a match: {condition:?}");
    }
    // Counts from the summary alone, where the conditions allow.
    for query in [
        Query::newest_first(),
        Query::newest_first().min_level(Level::Error),
        Query::newest_first()
            .values(Field::Category, &["image", "système"])
            .expect("valid"),
        Query::newest_first()
            .kinds(&[Kind::Event])
            .min_level(Level::Info),
    ] {
        let expected = input.iter().filter(|r| query.matches(r)).count() as u64;
        assert_eq!(
            summary.count(&query.conditions),
            Some(expected),
            "{query:?}"
        );
    }
    assert_eq!(
        summary.count(&Query::newest_first().text_contains("x").conditions),
        None
    );
}

#[test]
fn a_summary_keeps_time_buckets_and_reads_version_one() {
    // 3000 records 10 ms apart: 30 s, so 1-second buckets (at most 64).
    let input = records(3000, 1);
    let summary = format::encode(
        &input,
        &Options {
            page_rows: 1000,
            zstd_level: 1,
        },
    )
    .summary;
    assert_eq!(summary.bucket_width, 1_000_000);
    assert_eq!(
        summary
            .buckets
            .iter()
            .flat_map(|b| &b.counts)
            .map(|c| c.3)
            .sum::<u64>(),
        3000
    );
    assert_eq!(summary.page_ts.len(), 3);
    for (page, &(lo, hi)) in summary.page_ts.iter().enumerate() {
        let ts = input[page * 1000..(page + 1) * 1000]
            .iter()
            .map(|r| r.ts.micros());
        assert_eq!(
            (lo, hi),
            (ts.clone().min().unwrap_or(0), ts.max().unwrap_or(0))
        );
    }
    let mut stored = Vec::new();
    summary.write(&mut stored);
    assert_eq!(stored[0], 2);
    assert_eq!(Summary::read(&stored).expect("version 2"), summary);
    // A summary written before buckets existed (version 1) reads without them.
    let old = Summary {
        bucket_width: 0,
        buckets: Vec::new(),
        page_ts: Vec::new(),
        ..summary
    };
    let mut stored = Vec::new();
    old.write(&mut stored);
    assert_eq!(stored[0], 1);
    assert_eq!(Summary::read(&stored).expect("version 1"), old);
    for cut in 0..stored.len() {
        let _ = Summary::read(&stored[..cut]); // an error, never a panic
    }
}

/// A seal encodes hot segments from their pages: the block is byte for byte the
/// one its records make, and the rows beyond it stay hot, intact.
#[test]
fn a_seal_from_hot_pages_is_the_block_of_their_records() {
    use super::engine;
    use super::segment::Segment;
    use super::tiers::{plan_seal, Catalog, Entry, TierOptions};
    let all = records(3400, 1);
    // Three batches, the second with gaps in its ids (as after a delete).
    let mut second: Vec<Record> = all[700..2200].to_vec();
    second.retain(|r| r.id % 5 != 0);
    let batches = [all[..700].to_vec(), second, all[2200..].to_vec()];
    let kept: Vec<Record> = batches.concat();
    let now = std::time::Instant::now();
    let catalog = Catalog {
        entries: batches
            .iter()
            .map(|b| Entry {
                segment: Segment::hot(b),
                hot: true,
                seen: now,
            })
            .collect(),
        high_water: 3400,
        version: 0,
    };
    let options = TierOptions {
        block_rows: 2000,
        page_rows: 256,
        hot_records: 1000,
        ..TierOptions::default()
    };
    let seal = plan_seal(&catalog, &options, now)
        .expect("plan")
        .expect("over the bound");
    let expected = format::encode(
        &kept[..2000],
        &Options {
            page_rows: 256,
            zstd_level: options.zstd_level,
        },
    );
    assert_eq!(seal.block.blob, expected.blob, "the same block");
    let (mut made, mut wanted) = (Vec::new(), Vec::new());
    seal.block.summary.write(&mut made);
    expected.summary.write(&mut wanted);
    assert_eq!(made, wanted, "the same summary");
    assert_eq!((seal.block_first, seal.block_last), (1, kept[1999].id));
    assert_eq!(seal.consumed.len(), 3, "the third batch is cut");
    let remainder = seal.remainder.expect("the rest of the third batch");
    let rest = engine::export_batch(
        std::slice::from_ref(&remainder.segment),
        &Query::oldest_first(),
        i64::MAX,
        None,
        usize::MAX,
    )
    .expect("read");
    assert_eq!(rest, kept[2000..], "the rows after the block stay hot");
    assert_eq!(
        super::rows::decode(&remainder.rows).expect("row form"),
        kept[2000..]
    );
}

/// An append's row form and hot segment are made before the writer numbers the
/// rows: numbered afterwards, they are what the numbered records make.
#[test]
fn rows_prepared_unnumbered_are_the_numbered_ones_once_numbered() {
    use super::rows;
    use super::segment::{Segment, UnnumberedHot};
    for n in [1, 2, 300] {
        let unnumbered = records(n, 0);
        let data = format::data_texts(&unnumbered);
        let columns = format::Columns::of_records(&unnumbered, &data);
        // Numbered again (a writer job run twice), with a longer id and a shorter.
        let mut row_form = rows::Unnumbered::of(&columns);
        for first_id in [1, 42, 1 << 40, 7] {
            let numbered = records(n, first_id);
            assert_eq!(row_form.numbered(first_id), rows::encode(&numbered));
            let made = UnnumberedHot::of(&columns).numbered(first_id);
            let wanted = Segment::hot(&numbered);
            assert_eq!(made.summary, wanted.summary);
            assert_eq!(made.first_id(), first_id);
            let all = |segment: Segment| {
                super::engine::export_batch(&[segment], &Query::oldest_first(), i64::MAX, None, n)
                    .expect("read")
            };
            assert_eq!(all(made), numbered);
        }
    }
}

/// A large append is turned into its row form and hot pages a chunk of records at
/// a time: what the chunks make is what the whole batch at once makes.
#[test]
fn rows_and_hot_pages_made_a_chunk_at_a_time_are_those_of_the_whole() {
    use super::rows;
    use super::segment::{HotPages, Segment, UnnumberedHot};
    let n = 5000;
    let unnumbered = records(n, 0);
    let mut row_form = rows::Unnumbered::default();
    let mut pages = HotPages::with_capacity(1);
    for chunk in unnumbered.chunks(2048) {
        let data = format::data_texts(chunk);
        let columns = format::Columns::of_records(chunk, &data);
        row_form.push(&columns);
        pages.push(&columns);
    }
    assert_eq!(pages.rows(), n);
    let first_id = 42;
    let numbered = records(n, first_id);
    assert_eq!(row_form.numbered(first_id), rows::encode(&numbered));
    let made = UnnumberedHot::of_pages(pages).numbered(first_id);
    let wanted = Segment::hot(&numbered);
    assert_eq!(made.summary, wanted.summary);
    let all = |segment: Segment| {
        super::engine::export_batch(&[segment], &Query::oldest_first(), i64::MAX, None, n)
            .expect("read")
    };
    assert_eq!(all(made), numbered);
}
