//! Undo next to do: each step that creates something registers how to remove it right
//! away; unless the whole operation succeeds (`keep`), the removals run, newest first
//! (guards drop in reverse order of creation).

pub struct Undo<F: FnOnce()> {
    undo: Option<F>,
}

impl<F: FnOnce()> Undo<F> {
    pub fn new(undo: F) -> Undo<F> {
        Undo { undo: Some(undo) }
    }

    /// The operation succeeded: keep what was made.
    pub fn keep(mut self) {
        self.undo = None;
    }
}

impl<F: FnOnce()> Drop for Undo<F> {
    fn drop(&mut self) {
        if let Some(undo) = self.undo.take() {
            undo();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Undo;
    use std::cell::RefCell;

    #[test]
    fn undoes_in_reverse_unless_kept() {
        let log = RefCell::new(Vec::new());
        {
            let _a = Undo::new(|| log.borrow_mut().push("a"));
            let b = Undo::new(|| log.borrow_mut().push("b"));
            let _c = Undo::new(|| log.borrow_mut().push("c"));
            b.keep();
        }
        assert_eq!(*log.borrow(), ["c", "a"]);
    }
}
