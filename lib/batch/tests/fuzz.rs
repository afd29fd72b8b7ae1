//! Fuzzes the batch decoder with proptest: batches the writer made
//! (`BATCH_FUZZ_SEEDS`, a folder of `*.bin` files written by
//! test/batch-fuzz.test.ts) are mutated (bytes and words overwritten,
//! truncated, extended) and decoded into a sink that checks what it is
//! handed. A seed as written must decode; a mutation may fail, but only as
//! `Sink::invalid` or a sink error, never with a panic. `BATCH_FUZZ_CASES`
//! sets the number of mutations per run (default 2000).

use bumpalo::Bump;
use ddffi_batch::{decode, Attribute, LinkFields, Sink, SpanFields, Token};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Counts what it is handed, and refuses a span pushed outside a chunk.
#[derive(Default)]
struct Count {
    chunks: usize,
    spans: usize,
    bytes: usize,
}

#[derive(Debug, PartialEq)]
enum Refused {
    Invalid,
    NoChunk,
}

impl<'a> Sink<'a> for Count {
    type Span = usize;
    type Link = usize;
    type Event = ();
    type Error = Refused;
    fn invalid(&mut self) -> Refused {
        Refused::Invalid
    }
    fn begin_chunk(&mut self, _: usize) -> Result<(), Refused> {
        self.chunks += 1;
        Ok(())
    }
    fn span(&mut self, f: &SpanFields<'a>) -> Result<usize, Refused> {
        self.bytes += f.service.len() + f.name.len() + f.resource.len() + f.span_type.len();
        Ok(0)
    }
    fn meta(&mut self, s: &mut usize, k: &'a str, v: &'a str) -> Result<(), Refused> {
        *s += k.len() + v.len();
        Ok(())
    }
    fn metric(&mut self, s: &mut usize, k: &'a str, _: f64) -> Result<(), Refused> {
        *s += k.len();
        Ok(())
    }
    fn meta_struct_blob(&mut self, s: &mut usize, k: &'a str, b: &'a [u8]) -> Result<(), Refused> {
        *s += k.len() + b.len();
        Ok(())
    }
    fn meta_struct_tokens(
        &mut self,
        s: &mut usize,
        k: &'a str,
        t: &[Token<'a>],
    ) -> Result<(), Refused> {
        *s += k.len() + t.len();
        Ok(())
    }
    fn link(&mut self, l: &LinkFields<'a>, _: usize) -> Result<usize, Refused> {
        Ok(l.tracestate.len())
    }
    fn link_attribute(&mut self, l: &mut usize, k: &'a str, v: &'a str) -> Result<(), Refused> {
        *l += k.len() + v.len();
        Ok(())
    }
    fn add_link(&mut self, s: &mut usize, l: usize) -> Result<(), Refused> {
        *s += l;
        Ok(())
    }
    fn event(&mut self, name: &'a str, _: u64, _: usize) -> Result<(), Refused> {
        self.bytes += name.len();
        Ok(())
    }
    fn event_attribute(&mut self, _: &mut (), k: &'a str, v: Attribute<'a>) -> Result<(), Refused> {
        self.bytes += k.len() + matches!(v, Attribute::String(_)) as usize;
        Ok(())
    }
    fn add_event(&mut self, _: &mut usize, _: ()) -> Result<(), Refused> {
        Ok(())
    }
    fn push_span(&mut self, s: usize) -> Result<(), Refused> {
        if self.chunks == 0 {
            return Err(Refused::NoChunk);
        }
        self.spans += 1;
        self.bytes += s;
        Ok(())
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if let Ok(dir) = std::env::var("BATCH_FUZZ_SEEDS") {
        for entry in std::fs::read_dir(&dir).expect("BATCH_FUZZ_SEEDS is a folder") {
            let path = entry.expect("a folder entry").path();
            if path.extension().is_some_and(|e| e == "bin") {
                out.push(std::fs::read(&path).expect("a seed file"));
            }
        }
    }
    // An empty batch: the header alone (magic "DDB1", version 3, no chunks, text at 24).
    let mut empty = vec![0u8; 24];
    empty[0..4].copy_from_slice(&ddffi_batch::MAGIC.to_le_bytes());
    empty[4..6].copy_from_slice(&ddffi_batch::VERSION.to_le_bytes());
    empty[20..24].copy_from_slice(&24u32.to_le_bytes());
    out.push(empty);
    out
}

/// One change to a batch.
#[derive(Debug, Clone)]
enum Mutation {
    Byte(usize, u8),
    Word(usize, u32),
    Truncate(usize),
    Extend(Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Byte(i, b)),
        (
            any::<usize>(),
            prop_oneof![Just(0u32), Just(u32::MAX), 0u32..64, any::<u32>()]
        )
            .prop_map(|(i, w)| Mutation::Word(i, w)),
        any::<usize>().prop_map(Mutation::Truncate),
        proptest::collection::vec(any::<u8>(), 1..16).prop_map(Mutation::Extend),
    ]
}

fn apply(seed: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for m in mutations {
        match m {
            Mutation::Byte(i, v) if !b.is_empty() => {
                let n = b.len();
                b[i % n] = *v;
            }
            Mutation::Word(i, w) if b.len() >= 4 => {
                let at = (i % (b.len() / 4)) * 4;
                b[at..at + 4].copy_from_slice(&w.to_le_bytes());
            }
            Mutation::Truncate(i) if !b.is_empty() => {
                let n = b.len();
                b.truncate(i % n);
            }
            Mutation::Extend(v) => b.extend_from_slice(v),
            _ => {}
        }
    }
    b
}

#[test]
fn every_seed_decodes() {
    for seed in seeds() {
        let arena = Bump::new();
        let mut sink = Count::default();
        assert_eq!(decode(&seed, &arena, &mut sink), Ok(()));
    }
}

#[test]
fn mutated_batches_are_refused_never_a_panic() {
    let seeds = seeds();
    let cases = std::env::var("BATCH_FUZZ_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(2000);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (0..seeds.len(), proptest::collection::vec(mutation(), 1..6));
    runner
        .run(&strategy, |(i, mutations)| {
            let batch = apply(&seeds[i], &mutations);
            let arena = Bump::new();
            let mut sink = Count::default();
            match decode(&batch, &arena, &mut sink) {
                Ok(()) | Err(Refused::Invalid) => Ok(()),
                Err(e) => Err(TestCaseError::fail(format!("the sink refused: {e:?}"))),
            }
        })
        .unwrap();
}
