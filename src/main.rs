//! The `rampart` binary: everything lives in the library; see `cli`. The
//! global allocator is chosen here (mimalloc by default; see the features
//! in `Cargo.toml` and the comparison in `docs/benchmarks.md`).
#![forbid(unsafe_code)]

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(all(feature = "jemalloc", not(feature = "mimalloc")))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    rampart::cli::main()
}
