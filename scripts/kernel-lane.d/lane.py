#!/usr/bin/env python3
"""The host side of scripts/kernel-lane that is easier in Python than in bash:
reading cargo's JSON messages, ordering modules by modules.dep, writing the guest's
run script, and counting the results the guest printed on its serial console."""

import json
import os
import re
import sys


def package_name(pkg_id):
    # "path+file:///x/crates/foo#foo@0.1.0", "path+file:///x/foo#0.1.0" or "foo 0.1.0 (...)"
    if "#" in pkg_id:
        url, frag = pkg_id.split("#", 1)
        return frag.split("@")[0] if "@" in frag else url.rstrip("/").rsplit("/", 1)[-1]
    return pkg_id.split(" ")[0]


def artifacts(paths):
    """Prints `bin NAME PATH` and `test PACKAGE TARGET PATH` for every executable."""
    for path in paths:
        with open(path) as f:
            for line in f:
                try:
                    m = json.loads(line)
                except ValueError:
                    continue
                if m.get("reason") != "compiler-artifact" or not m.get("executable"):
                    continue
                t = m["target"]
                if "bin" in t["kind"] and not m["profile"].get("test"):
                    print("bin", t["name"], m["executable"])
                elif m["profile"].get("test"):
                    print("test", package_name(m["package_id"]), t["name"], m["executable"])


def read_entries(path):
    out = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            if words[0] == "test" and len(words) == 4:
                out.append({"kind": "test", "package": words[1], "target": words[2], "name": words[3]})
            elif words[0] == "lab" and len(words) >= 2:
                out.append({"kind": "lab", "words": words[1:]})
            else:
                sys.exit(f"kernel-lane: {path}:{n}: bad entry {line.strip()!r}")
    return out


def module_order(moddir, wanted):
    """The .ko files to insmod, each after its dependencies (modules.dep lists them)."""
    deps = {}
    with open(os.path.join(moddir, "modules.dep")) as f:
        for line in f:
            ko, _, rest = line.partition(":")
            deps[ko] = rest.split()
    by_name = {os.path.basename(k).split(".ko")[0].replace("-", "_"): k for k in deps}
    builtin = set()
    try:
        with open(os.path.join(moddir, "modules.builtin")) as f:
            builtin = {os.path.basename(x.strip()).split(".ko")[0].replace("-", "_") for x in f}
    except OSError:
        pass
    order, seen = [], set()

    def visit(ko):
        if ko in seen:
            return
        seen.add(ko)
        for d in deps[ko]:
            visit(d)
        order.append(ko)

    for w in wanted:
        key = w.replace("-", "_")
        if key in by_name:
            visit(by_name[key])
        elif key not in builtin:
            sys.exit(f"kernel-lane: the guest kernel has no module {w}")
    return order


def run_script(entries, tests, lab_cmd):
    """The guest's /lane/run.sh: each entry between @@lane begin/end markers."""
    # A second boot after a hung one starts at the entry it hung in (lane_from=N on the
    # kernel's command line); the memory left before each entry shows what the tests hold.
    sh = ["# written by scripts/kernel-lane",
          "from=$(/bin/busybox sed -n 's/.*lane_from=\\([0-9]*\\).*/\\1/p' /proc/cmdline)",
          "from=${from:-0}"]
    for i, e in enumerate(entries):
        sh.append(f"if [ {i} -ge \"$from\" ]; then")
        sh.append(f"echo '@@lane begin {i}'")
        sh.append("echo \"@@lane mem available $(/bin/busybox awk '/MemAvailable/ {print $2}' /proc/meminfo) kB\"")
        if e["kind"] == "test":
            exe = tests[(e["package"], e["target"])]
            sh.append("rm -f /tmp/lane-skip")
            sh.append(f"(cd /tmp && UNDERLAY_SKIP_LOG=/tmp/lane-skip {exe} --exact {e['name']} --test-threads=1) >/tmp/lane-out 2>&1; rc=$?")
            sh.append("/bin/busybox cat /tmp/lane-out")
            sh.append("[ -f /tmp/lane-skip ] && /bin/busybox sed 's/^/@@lane skip /' /tmp/lane-skip")
        else:
            sh.append(f"(cd /tmp && {lab_cmd} --format json --name lane{i} --out /tmp/lab{i}) >/tmp/lane-out 2>/tmp/lane-err; rc=$?")
            sh.append("echo '@@lane json-begin'; /bin/busybox cat /tmp/lane-out; echo; echo '@@lane json-end'")
            sh.append("/bin/busybox cat /tmp/lane-err")
        sh.append(f"echo \"@@lane end {i} rc=$rc\"")
        sh.append("fi")
    return "\n".join(sh) + "\n"


def describe(e):
    if e["kind"] == "test":
        return f"{e['package']} --test {e['target']} {e['name']}"
    return "lab claims mentioning " + " / ".join(e["words"])


def judge(e, rc, body):
    """Why entry `e` failed, or None if it passed."""
    if rc is None:
        return "did not finish in the guest"
    skips = [l for l in body if l.startswith("@@lane skip ")]
    if e["kind"] == "test":
        if rc != 0:
            return f"exit code {rc}"
        if skips:
            return "skipped in the guest: " + skips[0][len("@@lane skip "):]
        if not any(re.search(r"test result: ok\. 1 passed", l) for l in body):
            return "the test did not run (no such test?)"
        return None
    # The lab exits 1 when any claim fails; only the claims named here are this entry's
    # (the others run, and are judged, on the host).
    text = "\n".join(body)
    m = re.search(r"@@lane json-begin\n(.*?)\n@@lane json-end", text, re.S)
    try:
        rows = json.loads(m.group(1)) if m else None
    except ValueError:
        rows = None
    if not isinstance(rows, list):
        return f"the lab printed no JSON rows (exit code {rc})"
    for r in rows:
        if r.get("verdict") != "pass" and not any(w in r.get("claim", "") for w in e["words"]):
            print(f"  lab (not this entry's): {r.get('claim')}: {r.get('verdict')} ({r.get('observed')})")
    mine = [r for r in rows if any(w in r.get("claim", "") for w in e["words"])]
    if not mine:
        return "no lab claim mentions " + " / ".join(e["words"])
    bad = [f"{r.get('claim')}: {r.get('verdict')} ({r.get('observed')})" for r in mine if r.get("verdict") != "pass"]
    if bad:
        return "claims not passing:\n  " + "\n  ".join(bad)
    print(f"  lab: {len(mine)} claims pass: " + "; ".join(r["claim"] for r in mine))
    return None


def parse_log(path):
    """One boot's console: {entry: (rc or None if unfinished, body)}, whether the guest
    finished, and every line."""
    try:
        with open(path, errors="replace") as f:
            lines = [l.rstrip("\r\n") for l in f]
    except OSError:
        lines = []
    results, cur, body, done = {}, None, [], False
    for l in lines:
        m = re.match(r"@@lane (begin|end) (\d+)(?: rc=(\d+))?", l)
        if m and m.group(1) == "begin":
            cur, body = int(m.group(2)), []
        elif m and cur is not None:
            results[cur] = (int(m.group(3)), body)
            cur = None
        elif l.startswith("@@lane done"):
            done = True
        elif l.startswith("@@lane module-failed"):
            print(l)
        elif cur is not None:
            body.append(l)
    if cur is not None:
        results[cur] = (None, body)
    return results, done, lines


def unfinished(log_path):
    """The entry a boot that did not finish was in (or would have begun next)."""
    results, _, _ = parse_log(log_path)
    open_ = [i for i, (rc, _) in results.items() if rc is None]
    return open_[0] if open_ else (max(results) + 1 if results else 0)


def report(log_paths, entries_path, must_cover, moddir):
    entries = read_entries(entries_path)
    results, done, lines, lockups = {}, False, [], {}
    # A later boot (after a kernel lockup) reruns the entry the earlier one hung in.
    for path in log_paths.split(","):
        got, done, lines = parse_log(path)
        for i, (rc, body) in got.items():
            if i in results and results[i][0] is None:
                lockups[i] = [l for l in results[i][1] if "soft lockup" in l][:2]
            results[i] = (rc, body)
    passed, failed = 0, []
    for i, e in enumerate(entries):
        rc, out = results.get(i, (None, []))
        why = judge(e, rc, out)
        if why is None:
            passed += 1
            print(f"ok   {describe(e)}")
            if i in lockups:
                print("     (in a second boot: the first one's kernel locked up in it: " + " / ".join(lockups[i]) + ")")
        else:
            print(f"FAIL {describe(e)}: {why}")
            failed.append((e, why, out))
    if not done:
        failed.append(({"kind": "guest"}, "the guest did not finish (timeout or crash)", lines[-40:]))
    uncovered = []
    if must_cover:
        uncovered = coverage(entries, must_cover, moddir)
    for e, why, out in failed:
        title = describe(e) if e["kind"] != "guest" else "guest"
        print(f"\n---- {title}: {why}")
        print("\n".join(out[-200:]))
    for u in uncovered:
        print(f"not covered: {u}")
    print(f"\nkernel lane: {passed} passed, {len(failed) + len(uncovered)} failed")
    return 1 if failed or uncovered else 0


def coverage(entries, skip_log, moddir):
    """Skip-log lines whose missing module the guest kernel has but no entry runs."""
    names = {e["name"] for e in entries if e["kind"] == "test"}
    have = set()
    for fname in ("modules.dep", "modules.builtin"):
        try:
            with open(os.path.join(moddir, fname)) as f:
                have |= {os.path.basename(l.split(":")[0].strip()).split(".ko")[0].replace("-", "_") for l in f}
        except OSError:
            pass
    out = []
    try:
        with open(skip_log) as f:
            text = f.read()
    except OSError:
        return out
    # Every record, even two that a writer ran together on one line.
    for m in re.finditer(r"skipped (\S+?)[:\s].*?module (\S+) not available", text):
        test, module = m.group(1), m.group(2).replace("-", "_")
        if module in have and test not in names:
            out.append(f"{test} (the guest kernel has {module}; add it to scripts/kernel-lane.d/entries)")
    return out


def skips(skip_log, entries, lane_ran):
    """The host's skip records, split into what the lane ran instead and what ran nowhere."""
    try:
        with open(skip_log) as f:
            text = f.read()
    except OSError:
        return
    # Every record, even two that a writer ran together on one line.
    records = [r.strip() for r in re.split(r"(?=skipped )", text) if r.strip()]
    names = {e["name"] for e in entries if e["kind"] == "test"}
    in_lane, nowhere = [], []
    for r in records:
        m = re.match(r"skipped (\S+?)[:\s]", r)
        (in_lane if lane_ran and m and m.group(1) in names else nowhere).append(r)
    if in_lane:
        print(f"skipped here for kernel features, passed in the full-kernel lane instead: {len(in_lane)}")
    if nowhere:
        print("skipped (kernel features missing):")
        for r in nowhere:
            print("  " + r)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "skips":
        skips(args[0], read_entries(args[1]), args[2] == "1")
        sys.exit(0)
    if cmd == "artifacts":
        artifacts(args)
    elif cmd == "modules":
        wanted = open(args[1]).read().split("\n")
        wanted = [w for line in wanted for w in line.split("#", 1)[0].split()]
        print("\n".join(module_order(args[0], wanted)))
    elif cmd == "packages":
        print(" ".join(sorted({e["package"] for e in read_entries(args[0]) if e["kind"] == "test"})))
    elif cmd == "targets":
        print(" ".join(sorted({e["target"] for e in read_entries(args[0]) if e["kind"] == "test"})))
    elif cmd == "run-script":
        entries = read_entries(args[0])
        tests = {}
        for line in open(args[1]):
            w = line.split()
            if w and w[0] == "test":
                tests[(w[1], w[2])] = w[3]
        missing = [describe(e) for e in entries if e["kind"] == "test" and (e["package"], e["target"]) not in tests]
        if missing:
            sys.exit("kernel-lane: no test executable for: " + "; ".join(missing))
        sys.stdout.write(run_script(entries, tests, args[2]))
    elif cmd == "unfinished":
        print(unfinished(args[0]))
    elif cmd == "report":
        must = args[3] if len(args) > 3 and args[3] else None
        sys.exit(report(args[0], args[1], must, args[2]))
    else:
        sys.exit(f"lane.py: unknown command {cmd}")
