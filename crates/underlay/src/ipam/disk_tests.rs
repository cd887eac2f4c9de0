use super::*;
use crate::ipam::boot::Boot;
use std::os::unix::fs::PermissionsExt;

fn boot(id: &str, btime: i64) -> Boot {
    Boot::new(id, btime)
}

fn owner(id: &str, ifname: &str) -> Attachment {
    Attachment { container_id: id.into(), ifname: ifname.into() }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn files_are_in_the_reference_format() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("seed");
    let mut st = DiskStore::open(&dir, &boot("a", 0), true).unwrap();
    assert!(st.reserve(ip("192.168.1.100"), &owner("abc", "eth0"), 0).unwrap());
    assert!(!st.reserve(ip("192.168.1.100"), &owner("other", "eth0"), 0).unwrap(), "O_EXCL semantics");
    drop(st);
    let rec = dir.join("192.168.1.100");
    assert_eq!(fs::read(&rec).unwrap(), b"abc\r\neth0");
    assert_eq!(fs::metadata(&rec).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(fs::read_to_string(dir.join("last_reserved_ip.0")).unwrap(), "192.168.1.100");
    assert!(dir.join("lock").is_file());
    // Nothing but the reference's names lives in the store directory.
    let mut names: Vec<String> =
        fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["192.168.1.100", "last_reserved_ip.0", "lock"]);
}

#[test]
fn index_finds_owners_and_notices_changes_made_by_others() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("n");
    let b = boot("a", 0);
    let mut st = DiskStore::open(&dir, &b, true).unwrap();
    st.reserve(ip("10.0.0.2"), &owner("c1", "eth0"), 0).unwrap();
    st.reserve(ip("2001:db8::2"), &owner("c1", "eth0"), 1).unwrap();
    st.reserve(ip("10.0.0.3"), &owner("c2", "eth0"), 0).unwrap();
    drop(st);
    // Another plugin (the reference) adds and removes reservations behind our back.
    fs::write(dir.join("10.0.0.9"), "c9\r\neth0").unwrap();
    fs::write(dir.join("10.0.0.10"), "c10").unwrap(); // pre-0.7 record: container only
    fs::remove_file(dir.join("10.0.0.3")).unwrap();
    let mut st = DiskStore::open(&dir, &b, true).unwrap();
    let mut c1 = st.owned(&owner("c1", "eth0")).unwrap();
    c1.sort();
    assert_eq!(c1, [ip("10.0.0.2"), ip("2001:db8::2")]);
    assert!(st.owned(&owner("c2", "eth0")).unwrap().is_empty());
    assert_eq!(st.owned(&owner("c9", "eth0")).unwrap(), [ip("10.0.0.9")]);
    assert_eq!(st.owned(&owner("c10", "net1")).unwrap(), [ip("10.0.0.10")], "old records match any interface");
    assert_eq!(st.release(&owner("c9", "eth0")).unwrap(), [ip("10.0.0.9")]);
    assert_eq!(st.release(&owner("c10", "eth0")).unwrap(), [ip("10.0.0.10")]);
    assert!(!dir.join("10.0.0.9").exists() && !dir.join("10.0.0.10").exists());
    st.remove(ip("10.0.0.2")).unwrap();
    assert_eq!(st.owned(&owner("c1", "eth0")).unwrap(), [ip("2001:db8::2")]);
}

#[test]
fn a_stale_index_entry_is_never_trusted() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("n");
    let b = boot("a", 0);
    let mut st = DiskStore::open(&dir, &b, true).unwrap();
    st.reserve(ip("10.0.0.2"), &owner("c1", "eth0"), 0).unwrap();
    // The file now names someone else (as if released and re-reserved elsewhere):
    // the owner lookup checks the file, not just the index.
    fs::write(dir.join("10.0.0.2"), "c2\r\neth0").unwrap();
    assert!(st.owned(&owner("c1", "eth0")).unwrap().is_empty());
    assert!(st.release(&owner("c1", "eth0")).unwrap().is_empty());
    assert!(dir.join("10.0.0.2").exists(), "someone else's reservation is left alone");
}

#[test]
fn reservations_from_before_a_reboot_are_reclaimed_once() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("n");
    let mut st = DiskStore::open(&dir, &boot("before", 0), true).unwrap();
    st.reserve(ip("10.0.0.2"), &owner("c1", "eth0"), 0).unwrap();
    st.reserve(ip("10.0.0.3"), &owner("c2", "eth0"), 0).unwrap();
    drop(st);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    // Same boot: nothing happens.
    let st = DiskStore::open(&dir, &boot("before", now + 100), true).unwrap();
    assert!(st.reclaimed.is_empty());
    drop(st);
    // A new boot that started before the files were written (the reference plugin
    // reserved them during this boot): they stay.
    let st = DiskStore::open(&dir, &boot("after-1", now - 100), true).unwrap();
    assert!(st.reclaimed.is_empty());
    drop(st);
    // Opted out: they stay.
    let st = DiskStore::open(&dir, &boot("after-2", now + 100), false).unwrap();
    assert!(st.reclaimed.is_empty());
    drop(st);
    // A new boot that started after they were written: they go, once.
    let mut st = DiskStore::open(&dir, &boot("after-3", now + 100), true).unwrap();
    let mut gone = st.reclaimed.clone();
    gone.sort();
    assert_eq!(gone, [ip("10.0.0.2"), ip("10.0.0.3")]);
    assert!(st.owned(&owner("c1", "eth0")).unwrap().is_empty(), "the index forgot them too");
    st.reserve(ip("10.0.0.4"), &owner("c3", "eth0"), 0).unwrap();
    drop(st);
    let st = DiskStore::open(&dir, &boot("after-3", now + 100), true).unwrap();
    assert!(st.reclaimed.is_empty());
    assert!(dir.join("10.0.0.4").exists());
}

#[test]
fn works_without_a_side_directory() {
    let data = tempfile::tempdir().unwrap();
    fs::write(data.path().join(".underlay"), "not a directory").unwrap();
    let dir = data.path().join("n");
    let mut st = DiskStore::open(&dir, &boot("a", 0), true).unwrap();
    st.reserve(ip("10.0.0.2"), &owner("c1", "eth0"), 0).unwrap();
    drop(st);
    let mut st = DiskStore::open(&dir, &boot("a", 0), true).unwrap();
    assert_eq!(st.owned(&owner("c1", "eth0")).unwrap(), [ip("10.0.0.2")]);
    assert_eq!(st.release(&owner("c1", "eth0")).unwrap(), [ip("10.0.0.2")]);
}

#[test]
fn a_torn_last_reserved_file_only_resets_round_robin() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("n");
    let mut st = DiskStore::open(&dir, &boot("a", 0), true).unwrap();
    fs::write(dir.join("last_reserved_ip.0"), "10.0.").unwrap();
    assert_eq!(st.last_reserved(0).unwrap(), None);
    assert_eq!(st.last_reserved(7).unwrap(), None);
}

#[test]
fn released_files_are_reused_and_a_spare_still_in_the_store_is_never_written() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("n");
    let mut st = DiskStore::open(&dir, &boot("a", 0), true).unwrap();
    st.reserve(ip("10.0.0.2"), &owner("c1", "eth0"), 0).unwrap();
    let ino = fs::metadata(dir.join("10.0.0.2")).unwrap().ino();
    st.release(&owner("c1", "eth0")).unwrap();
    assert!(!dir.join("10.0.0.2").exists());
    st.reserve(ip("10.0.0.3"), &owner("c2", "eth0"), 0).unwrap();
    assert_eq!(fs::metadata(dir.join("10.0.0.3")).unwrap().ino(), ino, "the released inode was reused");
    assert_eq!(fs::read(dir.join("10.0.0.3")).unwrap(), b"c2\r\neth0");
    // A crash between linking a spare into the store and dropping its spare name
    // leaves one inode with two names; it must not be reused.
    let spare = data.path().join(".underlay/n/spare.0");
    fs::hard_link(dir.join("10.0.0.3"), &spare).unwrap();
    st.reserve(ip("10.0.0.4"), &owner("c3", "eth0"), 0).unwrap();
    assert_eq!(fs::read(dir.join("10.0.0.3")).unwrap(), b"c2\r\neth0", "c2's record untouched");
    assert_eq!(fs::read(dir.join("10.0.0.4")).unwrap(), b"c3\r\neth0");
    assert!(!spare.exists());
}

#[test]
fn planted_fifos_devices_and_links_neither_block_nor_flood() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("n");
    let b = boot("a", 0);
    drop(DiskStore::open(&dir, &b, true).unwrap());
    // A FIFO with a writer would block a read forever; /dev/zero would never end.
    for n in ["10.0.0.5", "last_reserved_ip.0"] {
        nix::unistd::mkfifo(&dir.join(n), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    }
    std::os::unix::fs::symlink("/dev/zero", dir.join("10.0.0.6")).unwrap();
    let writers: Vec<_> = ["10.0.0.5", "last_reserved_ip.0"]
        .iter()
        .map(|n| {
            let path = dir.join(n);
            // Holds the FIFO open for writing, so a blocking read would never see EOF.
            std::thread::spawn(move || fs::OpenOptions::new().write(true).open(path).map(|f| (f, ())))
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(50));
    let (tx, rx) = std::sync::mpsc::channel();
    let d = dir.clone();
    std::thread::spawn(move || {
        let mut st = DiskStore::open(&d, &boot("a", 0), true).unwrap();
        let all = st.reservations().unwrap();
        let last = st.last_reserved(0).unwrap();
        tx.send((all, last)).unwrap();
    });
    let (mut all, last) = rx.recv_timeout(std::time::Duration::from_secs(10)).expect("the store read blocked");
    all.sort();
    // Unreadable records keep their addresses reserved, owner unknown.
    assert_eq!(all, [(ip("10.0.0.5"), None), (ip("10.0.0.6"), None)]);
    assert_eq!(last, None);
    // Open the FIFOs for reading so the writer threads finish.
    for n in ["10.0.0.5", "last_reserved_ip.0"] {
        use std::os::unix::fs::OpenOptionsExt;
        let _ = fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(dir.join(n));
    }
    for w in writers {
        let _ = w.join();
    }
}

/// The index trusts the directory's timestamps, so a change another plugin makes right
/// after our commit (the next lock holder, microseconds later) must still show: here
/// on the test's own file system (multigrain from Linux 6.13: no wait after commit),
/// and on ramfs (coarse: the commit waits out the clock tick), where root can mount one.
#[test]
fn a_change_right_after_a_commit_is_always_seen() {
    let data = tempfile::tempdir().unwrap();
    changes_right_after_commits_are_seen(&data.path().join("n"));
    let ramfs = tempfile::tempdir().unwrap();
    let path = ramfs.path().to_path_buf();
    let mounted = std::thread::spawn(move || {
        // A mount namespace of this thread's own: the mount is seen nowhere else.
        use nix::mount::{MsFlags, mount};
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS | nix::sched::CloneFlags::CLONE_NEWNS).ok()?;
        mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>).ok()?;
        mount(Some("ramfs"), &path, Some("ramfs"), MsFlags::empty(), None::<&str>).ok()?;
        changes_right_after_commits_are_seen(&path.join("n"));
        Some(())
    })
    .join()
    .unwrap();
    if mounted.is_none() {
        eprintln!("ramfs part skipped: cannot mount one here (not root?)");
    }
}

fn changes_right_after_commits_are_seen(dir: &std::path::Path) {
    let b = boot("a", 0);
    for i in 0..100u32 {
        let mut st = DiskStore::open(dir, &b, true).unwrap();
        st.reserve(ip(&format!("10.1.{}.{}", i / 200, i % 200 + 2)), &owner(&format!("c{i}"), "eth0"), 0).unwrap();
        st.commit().unwrap();
        drop(st);
        let foreign = ip(&format!("10.2.{}.{}", i / 200, i % 200 + 2));
        fs::write(dir.join(foreign.to_string()), format!("f{i}\r\neth0")).unwrap();
        let mut st = DiskStore::open(dir, &b, true).unwrap();
        assert_eq!(
            st.owned(&owner(&format!("f{i}"), "eth0")).unwrap(),
            [foreign],
            "round {i}: the foreign record went unseen"
        );
    }
}
