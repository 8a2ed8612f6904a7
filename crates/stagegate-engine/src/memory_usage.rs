//! How much memory a process really uses, read from `/proc`: what the agent's memory cap
//! (`agent_memory`) measures when the supervisor enforces it.
//!
//! "Really uses" is the process's proportional share (PSS) of anonymous memory (heap, stacks)
//! and of shared memory (`MAP_SHARED|MAP_ANONYMOUS`, `memfd`, tmpfs mappings): memory nobody
//! else would own if the tree were gone. Not counted: reserved but untouched address space
//! (Bun and V8 reserve gigabytes at start-up, which is why `RLIMIT_AS`/`RLIMIT_DATA` kill them),
//! and file-backed pages such as the program's own executable, which the kernel can drop and
//! re-read. PSS splits a page shared by several processes of the tree between them, so a
//! mapping shared by the whole tree is counted once.

use std::path::Path;

/// Bytes of anonymous and shared memory `pid` uses (see the module documentation), or `None`
/// when the process is gone or `/proc` cannot be read.
pub(crate) fn used_bytes(pid: i32) -> Option<u64> {
    let process = Path::new("/proc").join(pid.to_string());
    if let Ok(rollup) = std::fs::read_to_string(process.join("smaps_rollup"))
        && let Some(kib) = sum_fields(&rollup, &["Pss_Anon", "Pss_Shmem"])
    {
        return Some(kib * 1024);
    }
    // Kernels before 5.9 have no Pss_Anon/Pss_Shmem; resident pages are the nearest measure.
    let status = std::fs::read_to_string(process.join("status")).ok()?;
    sum_fields(&status, &["RssAnon", "RssShmem"]).map(|kib| kib * 1024)
}

/// The sum of the `Name:   N kB` lines named `names`, or `None` when none of them is there.
fn sum_fields(text: &str, names: &[&str]) -> Option<u64> {
    let mut total = None;
    for line in text.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if !names.contains(&name.trim()) {
            continue;
        }
        let kib = value.split_whitespace().next()?.parse::<u64>().ok()?;
        *total.get_or_insert(0) += kib;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollup_fields_are_summed_in_kib() {
        let rollup = "55770d4d6000-7ffc85a23000 ---p 00000000 00:00 0 [rollup]\n\
                      Rss:                1704 kB\n\
                      Pss:                 253 kB\n\
                      Pss_Anon:            116 kB\n\
                      Pss_File:            137 kB\n\
                      Pss_Shmem:          2048 kB\n";
        assert_eq!(sum_fields(rollup, &["Pss_Anon", "Pss_Shmem"]), Some(2164));
        assert_eq!(sum_fields("Rss: 1 kB\n", &["Pss_Anon"]), None);
    }

    #[test]
    fn this_process_uses_some_memory() {
        let used = used_bytes(std::process::id().cast_signed()).expect("/proc is readable");
        assert!(used > 0);
    }

    #[test]
    fn a_touched_shared_mapping_counts() {
        use std::num::NonZeroUsize;

        use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous, munmap};

        const SIZE: usize = 64 << 20;
        let own = std::process::id().cast_signed();
        let before = used_bytes(own).expect("/proc is readable");
        // SAFETY: a fresh anonymous mapping, written through its own pointer, then unmapped.
        #[expect(unsafe_code, reason = "mapping memory to measure it")]
        unsafe {
            let mapping = mmap_anonymous(
                None,
                NonZeroUsize::new(SIZE).expect("non-zero"),
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
            )
            .expect("mmap");
            std::ptr::write_bytes(mapping.as_ptr().cast::<u8>(), 1, SIZE);
            let after = used_bytes(own).expect("/proc is readable");
            munmap(mapping, SIZE).expect("munmap");
            assert!(
                after >= before + (SIZE as u64) * 9 / 10,
                "{before} → {after}"
            );
        }
    }
}
