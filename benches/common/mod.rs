//! Shared by every criterion bench: registers one family's `bench_cases` for every usable device
//! under the ids `<op>/<backend>/<version>/<dtype>/<case>`, with bytes or FLOPs as throughput.
use criterion::{Criterion, Throughput};

use aural::runtime::bench::{default_devices, BenchCase, Work};
use aural::runtime::{Device, Result};

pub fn criterion_family(c: &mut Criterion, family: &str, cases: fn(Device) -> Result<Vec<BenchCase>>) {
    for dev in default_devices() {
        for mut case in cases(dev).unwrap() {
            if let Some(check) = case.check.as_mut() {
                check().unwrap_or_else(|e| panic!("{}: validation failed: {e}", case.id()));
            }
            let mut g = c.benchmark_group(family);
            match case.work {
                Work::Bytes(b) => g.throughput(Throughput::Bytes(b as u64)),
                Work::Flops(f) => g.throughput(Throughput::Elements(f as u64)),
            };
            let id = case.id();
            g.bench_function(id.trim_start_matches(&format!("{family}/")), |b| b.iter(|| (case.run)().unwrap()));
            g.finish();
        }
    }
}
