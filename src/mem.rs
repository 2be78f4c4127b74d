//! Memory hints for the look-ups that miss the cache on full tables.

/// Asks the CPU to start loading the cache line holding `r`, so that a read a few
/// events later finds it there. A hint: no effect on results, none on other targets.
///
/// The crate's one `unsafe` block (the crate root denies `unsafe_code`): the intrinsic is
/// `unsafe` only because it takes a raw pointer; measured, prefetching ahead took ROV on
/// the update bench from 0.67 to 0.36 s (see `pipeline::validate_all`).
#[inline(always)]
#[allow(unsafe_code)]
pub fn prefetch<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and reads nothing into the program; `r` is a valid
    // reference besides.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((r as *const T).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}
