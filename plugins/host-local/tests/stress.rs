//! Many processes at once, and processes killed at random moments.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::json;
use support::*;

#[test]
fn sixty_four_at_once_twenty_rounds_mixed_with_the_reference() {
    let data = tempfile::tempdir().unwrap();
    let conf = conf("0.4.0", "burst", data.path(), json!({"subnet": "10.20.0.0/22"}));
    let store = data.path().join("burst");
    let (ours, reference) = (ours(), reference());
    for round in 0..20 {
        let bin = |i: usize| {
            if (i + round).is_multiple_of(2) { &ours } else { &reference }
        };
        let adds: Vec<_> = (0..64).map(|i| spawn(bin(i), "ADD", &format!("r{round}c{i}"), "eth0", "", &conf)).collect();
        let ips: Vec<String> = adds.into_iter().map(|c| ip_of(&finish(c))).collect();
        let unique: HashSet<&String> = ips.iter().collect();
        assert_eq!(unique.len(), 64, "round {round}: {ips:?}");
        assert_eq!(reservations(&store).len(), 64);
        let dels: Vec<_> =
            (0..64).map(|i| spawn(bin(i + 1), "DEL", &format!("r{round}c{i}"), "eth0", "", &conf)).collect();
        for d in dels {
            let out = finish(d);
            assert!(out.ok, "{}", out.json);
        }
        assert!(reservations(&store).is_empty(), "round {round}: {:?}", reservations(&store));
    }
}

/// A small deterministic PRNG; the seed is printed so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Known {
    Holds(String),
    Free,
    /// The last operation on it was killed: it may or may not hold an address.
    Unknown,
}

#[test]
fn killed_processes_never_corrupt_the_store_or_double_allocate() {
    let seed = std::env::var("CHAOS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
    });
    println!("CHAOS_SEED={seed}");
    let mut rng = Rng(seed);
    let data = tempfile::tempdir().unwrap();
    let conf = conf("1.1.0", "chaos", data.path(), json!({"subnet": "10.30.0.0/24"}));
    let store = data.path().join("chaos");
    let ours = ours();
    let owners = 40;
    let mut known: HashMap<usize, Known> = (0..owners).map(|i| (i, Known::Free)).collect();
    let (mut processes, mut killed) = (0, 0);
    while processes < 520 {
        // One batch: distinct containers at once (a runtime never overlaps calls for
        // one container), a random share killed after a random delay.
        let batch: Vec<usize> = (0..owners).filter(|_| rng.below(3) == 0).collect();
        let mut running = Vec::new();
        for &i in &batch {
            let cmd = if rng.below(2) == 0 { "ADD" } else { "DEL" };
            running.push((i, cmd, spawn(&ours, cmd, &format!("c{i}"), "eth0", "", &conf)));
        }
        processes += running.len();
        std::thread::sleep(Duration::from_micros(rng.below(1500)));
        for (i, cmd, mut child) in running {
            if rng.below(3) == 0 && child.try_wait().unwrap().is_none() {
                let _ = child.kill();
                let _ = child.wait();
                killed += 1;
                known.insert(i, Known::Unknown);
                continue;
            }
            let out = finish(child);
            assert!(out.ok, "{cmd} c{i}: {}", out.json);
            known.insert(i, if cmd == "ADD" { Known::Holds(ip_of(&out)) } else { Known::Free });
        }
        check_store(&store, &known);
    }
    println!("{processes} processes, {killed} killed");
    assert!(killed > 0, "the run killed nobody; nothing was tested");
    // GC with the survivors' attachments leaves exactly their reservations.
    let survivors: Vec<usize> = known.iter().filter(|(_, k)| matches!(k, Known::Holds(_))).map(|(i, _)| *i).collect();
    let mut gc: serde_json::Value = serde_json::from_slice(&conf).unwrap();
    gc["cni.dev/valid-attachments"] =
        json!(survivors.iter().map(|i| json!({"containerID": format!("c{i}"), "ifname": "eth0"})).collect::<Vec<_>>());
    let out = finish(spawn(&ours, "GC", "", "", "", &serde_json::to_vec(&gc).unwrap()));
    assert!(out.ok, "{}", out.json);
    let mut left: Vec<(String, String)> = reservations(&store);
    let mut expected: Vec<(String, String)> = survivors
        .iter()
        .map(|i| match &known[i] {
            Known::Holds(ip) => (ip.clone(), format!("c{i}\r\neth0")),
            _ => unreachable!(),
        })
        .collect();
    left.sort();
    expected.sort();
    assert_eq!(left, expected);
}

/// Every record readable and naming one container; no container holds two addresses;
/// every container known to hold an address holds exactly that one, and none known
/// to be free holds anything.
fn check_store(store: &std::path::Path, known: &HashMap<usize, Known>) {
    let mut by_owner: HashMap<String, Vec<String>> = HashMap::new();
    for (ip, content) in reservations(store) {
        let (id, ifname) = content.split_once("\r\n").unwrap_or_else(|| panic!("unreadable record {ip}: {content:?}"));
        assert_eq!(ifname, "eth0");
        by_owner.entry(id.to_string()).or_default().push(ip);
    }
    for (owner, ips) in &by_owner {
        assert_eq!(ips.len(), 1, "{owner} holds {ips:?}");
    }
    for (i, k) in known {
        let held = by_owner.get(&format!("c{i}"));
        match k {
            Known::Holds(ip) => assert_eq!(held, Some(&vec![ip.clone()]), "c{i}"),
            Known::Free => assert_eq!(held, None, "c{i}"),
            Known::Unknown => {}
        }
    }
}
