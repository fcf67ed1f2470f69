//! Service hot paths: routing with the chat service's table, parsing a message send body
//! (simd-json, as the service does, against serde_json), serialising a `Message` (serde_json,
//! as the service does, against simd-json) and parsing one back (both), and the worker's
//! parameter arrays for the multi-row INSERT of a batch.

use bench::{message, send_body};
use chat::SendMessage;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use http::Method;
use platform_core::model::Message;
use platform_core::router::Match;
use std::hint::black_box;
use uuid::Uuid;
use worker::InsertParams;

fn routing(c: &mut Criterion) {
    let table = chat::routes::table();
    let mut g = c.benchmark_group("route");
    let cases = [
        ("send_message", Method::POST, "/conversations/0190a5b2-7c3e-7d4f-8a1b-2c3d4e5f6a7b/messages"),
        ("edit_message", Method::PATCH, "/conversations/0190a5b2-7c3e-7d4f-8a1b-2c3d4e5f6a7b/messages/0190a5b2-7c3e-7d4f-8a1b-2c3d4e5f6a7c"),
        ("user_conversations", Method::GET, "/conversations/user/user-17"),
        ("not_found", Method::GET, "/nope/nothing/here"),
    ];
    for (name, method, path) in cases {
        g.bench_function(name, |b| {
            b.iter(|| match table.at(black_box(&method), black_box(path)) {
                Match::Found(r, p) => (Some(*r), p.len()),
                _ => (None, 0),
            })
        });
    }
    g.finish();
}

fn json(c: &mut Criterion) {
    let body = send_body();
    let mut g = c.benchmark_group("json");
    g.throughput(Throughput::Bytes(body.len() as u64));
    // simd-json parses in place, so each iteration gets a fresh copy (as a request body is).
    g.bench_function("parse_send_body/simd_json", |b| {
        b.iter_batched_ref(
            || body.clone(),
            |buf| platform_core::json::parse::<SendMessage>(buf).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("parse_send_body/simd_json_fresh_buffers", |b| {
        b.iter_batched_ref(
            || body.clone(),
            |buf| simd_json::serde::from_slice::<SendMessage>(buf).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("parse_send_body/serde_json", |b| {
        b.iter(|| serde_json::from_slice::<SendMessage>(black_box(&body)).unwrap())
    });
    let m = message(1, Uuid::now_v7());
    let len = serde_json::to_vec(&m).unwrap().len();
    g.throughput(Throughput::Bytes(len as u64));
    g.bench_function("serialize_message/serde_json", |b| {
        b.iter(|| serde_json::to_vec(black_box(&m)).unwrap())
    });
    g.bench_function("serialize_message/simd_json", |b| {
        b.iter(|| simd_json::to_vec(black_box(&m)).unwrap())
    });
    // A stored message as the instances read it back (commit notices, stream entries).
    let json = serde_json::to_vec(&m).unwrap();
    g.bench_function("parse_message/simd_json", |b| {
        b.iter_batched_ref(
            || json.clone(),
            |buf| simd_json::serde::from_slice::<Message>(buf).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("parse_message/serde_json", |b| {
        b.iter(|| serde_json::from_slice::<Message>(black_box(&json)).unwrap())
    });
    g.finish();
}

fn batch(c: &mut Criterion) {
    let conv = Uuid::now_v7();
    let mut g = c.benchmark_group("batch_insert_params");
    for n in [1usize, 100, 1000] {
        let messages: Vec<Message> = (0..n).map(|i| message(i, conv)).collect();
        let refs: Vec<&Message> = messages.iter().collect();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("{n}_messages"), |b| {
            b.iter(|| {
                let p = InsertParams::new(black_box(&refs));
                black_box((p.ids.len(), p.sent.len()))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, routing, json, batch);
criterion_main!(benches);
