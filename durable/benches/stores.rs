//! The embedded store's choice, measured: fsync'd commits of one 256-byte record, and of 100
//! records at once, in redb (the journal's store) and in SQLite (rusqlite, bundled; WAL and
//! rollback journal, `synchronous=FULL`). `cargo bench -p warden-durable --bench stores`;
//! figures in BENCHMARKS.md section 10.

use redb::{Database, TableDefinition};
use std::time::Instant;
const T: TableDefinition<'_, (u64, u32), &[u8]> = TableDefinition::new("steps");
fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p) as usize]
}
fn main() {
    let dir = std::env::temp_dir().join("storebench");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let rec = vec![7u8; 256];
    let n = 500;
    // redb single
    let db = Database::create(dir.join("a.redb")).unwrap();
    let mut lat = vec![];
    for i in 0..n {
        let t = Instant::now();
        let tx = db.begin_write().unwrap();
        {
            let mut tb = tx.open_table(T).unwrap();
            tb.insert((i as u64, 0), rec.as_slice()).unwrap();
        }
        tx.commit().unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "redb  1 record/commit: p50 {:.3} ms p99 {:.3} ms",
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99)
    );
    let t = Instant::now();
    for b in 0..50 {
        let tx = db.begin_write().unwrap();
        {
            let mut tb = tx.open_table(T).unwrap();
            for j in 0..100 {
                tb.insert((1_000_000 + b as u64, j), rec.as_slice()).unwrap();
            }
        }
        tx.commit().unwrap();
    }
    println!(
        "redb  100 records/commit: {:.0} records/s",
        5000.0 / t.elapsed().as_secs_f64()
    );
    // sqlite
    let c = rusqlite::Connection::open(dir.join("a.sqlite")).unwrap();
    c.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE steps(task INTEGER, step INTEGER, body BLOB, PRIMARY KEY(task,step));").unwrap();
    let mut lat = vec![];
    for i in 0..n {
        let t = Instant::now();
        c.execute("INSERT INTO steps VALUES (?1, 0, ?2)", rusqlite::params![i as i64, rec])
            .unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "sqlite WAL FULL 1/commit: p50 {:.3} ms p99 {:.3} ms",
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99)
    );
    let c2 = rusqlite::Connection::open(dir.join("b.sqlite")).unwrap();
    c2.execute_batch("PRAGMA journal_mode=DELETE; PRAGMA synchronous=FULL; CREATE TABLE steps(task INTEGER, step INTEGER, body BLOB, PRIMARY KEY(task,step));").unwrap();
    let mut lat = vec![];
    for i in 0..n {
        let t = Instant::now();
        c2.execute("INSERT INTO steps VALUES (?1, 0, ?2)", rusqlite::params![i as i64, rec])
            .unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "sqlite rollback FULL 1/commit: p50 {:.3} ms p99 {:.3} ms",
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99)
    );
    let mut c = c;
    let t = Instant::now();
    for b in 0..50 {
        let tx = c.transaction().unwrap();
        for j in 0..100 {
            tx.execute(
                "INSERT INTO steps VALUES (?1, ?2, ?3)",
                rusqlite::params![1_000_000 + b as i64, j, rec],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    println!(
        "sqlite WAL 100/commit: {:.0} records/s",
        5000.0 / t.elapsed().as_secs_f64()
    );
}
