//! Server-side figures read from /proc: CPU seconds and peak RSS of the registry process, sampled
//! around the timed phase only, so setup (pushing fixtures) is not charged to the workload.

use std::fs;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::Error;

/// Clock ticks per second of `utime`/`stime` in /proc/<pid>/stat.
fn ticks_per_second() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        // `getconf` avoids an unsafe sysconf call; 100 is USER_HZ on every Linux target.
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

/// User plus system CPU seconds of process `pid` (`self` for this process), all threads.
pub(crate) fn cpu_seconds(pid: &str) -> Result<f64, Error> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces; fields after it are plain.
    let rest = stat.rsplit_once(')').map(|(_, rest)| rest).ok_or("unreadable /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ")" come state (field 3) ... utime (field 14) and stime (field 15).
    let field = |i: usize| -> Result<f64, Error> {
        Ok(fields.get(i).ok_or("short /proc stat")?.parse::<f64>().map_err(|e| format!("/proc stat: {e}"))?)
    };
    Ok((field(11)? + field(12)?) / ticks_per_second())
}

/// Busy CPU seconds of the whole machine, all cores (/proc/stat: everything but idle and iowait).
fn machine_busy_seconds() -> Option<f64> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let values: Vec<f64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest time is already inside user).
    let busy: f64 =
        values.iter().take(8).enumerate().filter(|(i, _)| *i != 3 && *i != 4).map(|(_, v)| v).sum();
    Some(busy / ticks_per_second())
}

/// A `Vm*` line of /proc/<pid>/status, in KiB.
pub(crate) fn status_kib(pid: &str, key: &str) -> Result<u64, Error> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|rest| rest.strip_prefix(':')))
        .ok_or_else(|| format!("no {key} in /proc/{pid}/status"))?;
    let value = line.trim().trim_end_matches("kB").trim();
    Ok(value.parse().map_err(|e| format!("{key}: {e}"))?)
}

/// Resets the process's peak RSS (VmHWM) to its current RSS, so the peak read after the
/// timed phase belongs to this workload. Needs Linux 4.0+ and permission to write clear_refs
/// (root, or the same user); returns whether it worked.
fn reset_peak(pid: &str) -> bool {
    fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// Baselines taken when the timed phase starts.
pub(crate) struct Timer {
    server: Option<String>,
    started: Instant,
    server_cpu: Option<f64>,
    client_cpu: f64,
    machine_busy: Option<f64>,
    peak_reset: bool,
}

/// What the probes saw over the timed phase.
pub(crate) struct Sample {
    pub(crate) elapsed: Duration,
    pub(crate) server_cpu_s: Option<f64>,
    pub(crate) client_cpu_s: f64,
    /// CPU seconds used by every other process on the machine meanwhile: how much the
    /// measurement shared the cores with unrelated work.
    pub(crate) other_cpu_s: Option<f64>,
    pub(crate) server_peak_rss_kib: Option<u64>,
    /// `"workload"` when the peak was reset at the start, `"process"` when it covers the
    /// server's whole life (clear_refs refused).
    pub(crate) peak_scope: &'static str,
}

impl Timer {
    pub(crate) fn start(server: Option<&str>) -> Self {
        let server = server.map(str::to_owned);
        let peak_reset = server.as_deref().is_some_and(reset_peak);
        let server_cpu = server.as_deref().and_then(|pid| cpu_seconds(pid).ok());
        let client_cpu = cpu_seconds("self").unwrap_or(0.0);
        let machine_busy = machine_busy_seconds();
        Self { server, started: Instant::now(), server_cpu, client_cpu, machine_busy, peak_reset }
    }

    pub(crate) fn stop(self) -> Sample {
        let elapsed = self.started.elapsed();
        let pid = self.server.as_deref();
        let server_cpu_s = match (pid.and_then(|p| cpu_seconds(p).ok()), self.server_cpu) {
            (Some(after), Some(before)) => Some(after - before),
            _ => None,
        };
        let client_cpu_s = cpu_seconds("self").unwrap_or(0.0) - self.client_cpu;
        let machine = machine_busy_seconds().zip(self.machine_busy).map(|(after, before)| after - before);
        let other_cpu_s = machine.map(|m| (m - client_cpu_s - server_cpu_s.unwrap_or(0.0)).max(0.0));
        Sample {
            elapsed,
            server_cpu_s,
            client_cpu_s,
            other_cpu_s,
            server_peak_rss_kib: pid.and_then(|p| status_kib(p, "VmHWM").ok()),
            peak_scope: if self.peak_reset { "workload" } else { "process" },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_process() {
        assert!(cpu_seconds("self").expect("cpu") >= 0.0);
        assert!(status_kib("self", "VmRSS").expect("rss") > 0);
    }
}
