//! Memory hints for the look-ups that miss the cache on full tables.

/// Asks the CPU to start loading the cache line holding `r`, so that a read a few
/// events later finds it there. A hint: no effect on results, none on other targets.
#[inline(always)]
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
