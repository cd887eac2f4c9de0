//! The terminal `underlay` writes to, if any: its width, for tables that fit and error
//! messages wrapped to it.

use std::os::fd::AsRawFd;

/// The width in columns of the terminal `fd` is (stdout, stderr), or $COLUMNS; None
/// when it is no terminal.
pub fn width(fd: &impl AsRawFd) -> Option<usize> {
    let mut ws = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ only writes a winsize into the struct it is given, which
    // lives for the whole call; a descriptor that is no terminal makes it fail (ENOTTY).
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    if r == 0 && ws.ws_col > 0 {
        return Some(ws.ws_col.into());
    }
    std::env::var("COLUMNS").ok()?.parse().ok()
}

/// `text` with each line longer than `width` broken at blanks; continued lines are
/// indented by four spaces. A word longer than the width stays whole.
pub fn wrap(text: &str, width: usize) -> String {
    let mut out = Vec::new();
    for line in text.lines() {
        let indent: String = line.chars().take_while(|c| *c == ' ').collect();
        let mut current = String::new();
        for word in line.split(' ').filter(|w| !w.is_empty()) {
            if current.is_empty() {
                current = format!("{indent}{word}");
            } else if current.chars().count() + 1 + word.chars().count() <= width {
                current.push(' ');
                current.push_str(word);
            } else {
                out.push(std::mem::take(&mut current));
                current = format!("{indent}    {word}");
            }
        }
        out.push(current);
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_wrap_at_blanks() {
        let text = "underlay: network \"lan\" has endpoints: a, b, c\n  hint: stop them first";
        let wrapped = wrap(text, 24);
        assert!(wrapped.lines().all(|l| l.chars().count() <= 24), "{wrapped}");
        assert_eq!(wrapped.split_whitespace().collect::<Vec<_>>(), text.split_whitespace().collect::<Vec<_>>());
        assert_eq!(wrap("short", 80), "short");
        assert_eq!(wrap("averyveryverylongword x", 5), "averyveryverylongword\n    x");
    }
}
