//! What `/proc` says about a process the benchmarks run: CPU time spent and
//! memory held; and the machine's load average.

use std::process::Command;
use std::sync::OnceLock;

/// CPU seconds `pid` has spent so far, user and system (all its threads):
/// `utime + stime` of `/proc/PID/stat`, in clock ticks (10 ms on Linux).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ticks = cpu_ticks(&stat)?;
    Some(ticks as f64 / clock_ticks_per_second())
}

/// `utime + stime` of a `/proc/PID/stat` line. The command name (field 2)
/// may hold spaces and parentheses, so fields are counted after its last `)`:
/// there, field 3 (state) comes first, and utime and stime are 14 and 15.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn clock_ticks_per_second() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// A process's memory, in MiB.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Memory {
    /// Resident now (`VmRSS`).
    pub rss: f64,
    /// The most it has been resident (`VmHWM`).
    pub peak: f64,
}

/// `pid`'s resident memory now and at its peak, from `/proc/PID/status`.
pub fn memory(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    memory_of(&status)
}

fn memory_of(status: &str) -> Option<Memory> {
    let mib = |field: &str| -> Option<f64> {
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix(field))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib / 1024.0)
    };
    Some(Memory {
        rss: mib("VmRSS:")?,
        peak: mib("VmHWM:")?,
    })
}

/// The load averages over 1, 5 and 15 minutes, as `uptime` prints them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_counted_after_the_command_name() {
        let stat = "4242 (tokio (worker) 1) S 1 4242 4242 0 -1 4194560 1200 0 0 0 \
                    731 122 0 0 20 0 18 0 5000 1000000 3000";
        assert_eq!(cpu_ticks(stat), Some(853));
        assert_eq!(cpu_ticks("4242 (x) S 1"), None);
    }

    #[test]
    fn this_process_has_memory_and_cpu() {
        let me = std::process::id();
        let memory = memory(me).expect("own /proc/PID/status");
        assert!(memory.rss > 0.0 && memory.peak >= memory.rss, "{memory:?}");
        assert!(cpu_seconds(me).is_some());
        assert_eq!(load_average().split(' ').count(), 3);
    }

    #[test]
    fn memory_reads_kib_as_mib() {
        let status = "Name:\tx\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n";
        assert_eq!(
            memory_of(status),
            Some(Memory {
                rss: 100.0,
                peak: 200.0
            })
        );
    }
}
