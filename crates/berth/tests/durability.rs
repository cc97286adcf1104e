//! The order in which a push reaches stable storage, read from the system calls the server
//! makes (strace attached to the running binary): the staged file is fsynced, then renamed into
//! place, then its folder is fsynced, and only then is the metadata that makes the blob visible
//! written and fsynced (which also shows SQLite syncing every commit: `synchronous = FULL`).
//! A `kill -9` cannot tell these apart, since the page cache survives it; the order can.

mod common;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use reqwest::Method;

/// One completed system call of the trace.
#[derive(Debug, Clone)]
struct Call {
    name: String,
    args: String,
    result: String,
}

/// Splits `args)   = result` (strace pads before the `=`) into the arguments and the result.
fn split_result(text: &str) -> (String, String) {
    match text.rsplit_once(" = ") {
        Some((args, result)) => {
            let args = args.trim_end();
            (args.strip_suffix(')').unwrap_or(args).to_owned(), result.trim().to_owned())
        }
        None => (text.to_owned(), String::new()),
    }
}

/// Reads strace's `-f` output into completed calls, in the order they completed, joining
/// calls that another thread interrupted (`<unfinished ...>` / `<... resumed>`).
fn completed_calls(trace: &str) -> Vec<Call> {
    let mut pending: HashMap<String, (String, String)> = HashMap::new();
    let mut calls = Vec::new();
    for line in trace.lines() {
        let Some((tid, rest)) = line.trim_start().split_once(char::is_whitespace) else { continue };
        let rest = rest.trim_start();
        if let Some(start) = rest.strip_suffix(" <unfinished ...>") {
            if let Some((name, args)) = start.split_once('(') {
                pending.insert(tid.to_owned(), (name.to_owned(), args.to_owned()));
            }
        } else if let Some(resumed) = rest.strip_prefix("<... ") {
            let Some((name, tail)) = resumed.split_once(" resumed>") else { continue };
            let Some((started, args)) = pending.remove(tid) else { continue };
            if started != name {
                continue;
            }
            let (more, result) = split_result(tail);
            calls.push(Call { name: started, args: format!("{args}{more}"), result });
        } else if let Some((name, args)) = rest.split_once('(') {
            let (args, result) = split_result(args);
            calls.push(Call { name: name.to_owned(), args, result });
        }
    }
    calls
}

/// The path each fsync'd file descriptor stood for when it was synced: from the `openat` that
/// returned it in the trace, or, for descriptors opened before the trace began (SQLite's), from
/// the running process.
fn synced_paths(calls: &[Call], pid: u32) -> Vec<(usize, String, String)> {
    let mut open: HashMap<String, String> = HashMap::new();
    let mut out = Vec::new();
    for (i, call) in calls.iter().enumerate() {
        match call.name.as_str() {
            "openat" => {
                let path = call.args.split('"').nth(1).unwrap_or_default().to_owned();
                open.insert(call.result.split_whitespace().next().unwrap_or_default().to_owned(), path);
            }
            "fsync" | "fdatasync" | "pwrite64" | "write" => {
                let fd = call.args.split(',').next().unwrap_or_default().trim().to_owned();
                let path = open.get(&fd).cloned().unwrap_or_else(|| {
                    std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                });
                out.push((i, call.name.clone(), path));
            }
            _ => {}
        }
    }
    out
}

#[tokio::test]
async fn a_blob_is_synced_renamed_its_folder_synced_and_only_then_recorded() {
    let Ok(version) = Command::new("strace").arg("-V").output() else {
        skip(
            "a_blob_is_synced_renamed_its_folder_synced_and_only_then_recorded",
            "strace is not installed (scripts/interop/install.sh installs it)",
        );
        return;
    };
    assert!(version.status.success(), "strace -V failed");
    let berth = Berth::start().await;
    let pid = berth.pid().expect("running");
    let trace = berth.data_dir().with_extension("strace");
    let attach_log = berth.data_dir().with_extension("strace.err");
    let mut tracer = Command::new("strace")
        .args(["-f", "-e", "trace=openat,write,pwrite64,fsync,fdatasync,rename,renameat,renameat2", "-o"])
        .arg(&trace)
        .args(["-p", &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&attach_log).expect("log"))
        .spawn()
        .expect("strace starts");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&attach_log).unwrap_or_default().contains("attached") {
        assert!(
            Instant::now() < deadline,
            "strace did not attach: {:?}",
            std::fs::read_to_string(&attach_log)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let bytes = b"a blob that must survive power loss";
    let digest = berth.push_blob(&repo("durable/app"), bytes).await;
    let detached = Command::new("kill").args(["-INT", &tracer.id().to_string()]).status();
    assert!(detached.is_ok_and(|s| s.success()), "strace could not be stopped");
    tracer.wait().expect("strace ends");
    let text = std::fs::read_to_string(&trace).expect("trace");
    let calls = completed_calls(&text);
    let synced = synced_paths(&calls, pid);

    // The rename that committed this blob: uploads/<id> to blobs/<shard>/<id>.
    let (rename_at, upload_path, blob_path) = calls
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            c.name.starts_with("rename") && c.args.contains("/uploads/") && c.args.contains("/blobs/")
        })
        .map(|(i, c)| {
            let paths: Vec<&str> = c.args.split('"').skip(1).step_by(2).collect();
            (
                i,
                paths.first().copied().unwrap_or_default().to_owned(),
                paths.last().copied().unwrap_or_default().to_owned(),
            )
        })
        .next_back()
        .unwrap_or_else(|| {
            panic!("no rename of an upload into blobs/ in the trace of the push of {digest}:\n{text}")
        });
    let blob_dir = blob_path.rsplit_once('/').map(|(dir, _)| dir.to_owned()).expect("a folder");
    let fsync_of = |path: &str, after: usize| {
        synced
            .iter()
            .find(|(i, call, p)| *i > after && call.contains("sync") && p == path)
            .map(|(i, _, _)| *i)
    };
    let file_synced = synced
        .iter()
        .filter(|(i, call, p)| *i < rename_at && call.contains("sync") && *p == upload_path)
        .map(|(i, _, _)| *i)
        .next_back();
    let dir_synced = fsync_of(&blob_dir, rename_at);
    let wal = |p: &String| p.ends_with("meta.db-wal");
    let recorded = dir_synced.and_then(|d| {
        synced.iter().find(|(i, call, p)| *i > d && call.contains("write") && wal(p)).map(|(i, _, _)| *i)
    });
    let committed = recorded.and_then(|w| {
        synced.iter().find(|(i, call, p)| *i > w && call.contains("sync") && wal(p)).map(|(i, _, _)| *i)
    });
    println!(
        "durability order of one push (system call numbers in the trace): staged file fsync {file_synced:?}, rename \
         {rename_at}, folder fsync {dir_synced:?}, metadata write {recorded:?}, metadata fsync {committed:?}"
    );
    assert!(
        file_synced.is_some(),
        "the staged file {upload_path} was not fsynced before its rename:\n{text}"
    );
    assert!(dir_synced.is_some(), "the folder {blob_dir} was not fsynced after the rename:\n{text}");
    assert!(recorded.is_some(), "the metadata was not written after the folder was synced:\n{text}");
    assert!(
        committed.is_some(),
        "the metadata write was not fsynced (SQLite must run with synchronous = FULL):\n{text}"
    );
    let got = berth
        .req(Method::GET, &format!("/v2/{}/blobs/{digest}", repo("durable/app")))
        .send()
        .await
        .expect("send");
    assert_eq!(got.status(), 200);
}
