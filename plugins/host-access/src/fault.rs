//! Fault injection for the crash tests: `UNDERLAY_HOST_ACCESS_FAULT=<step>:kill` makes
//! the plugin SIGKILL itself at that step, `<step>:fail` makes the step fail. Compiled
//! into debug builds only (the tests' binaries); a release build ignores the variable.

use underlay::cni::CniError;

pub const VAR: &str = "UNDERLAY_HOST_ACCESS_FAULT";

/// Called after each step that changed something.
pub fn at(step: &str) -> Result<(), CniError> {
    #[cfg(debug_assertions)]
    if let Some((at, how)) = std::env::var(VAR).ok().as_deref().and_then(|v| v.split_once(':'))
        && at == step
    {
        match how {
            "kill" => {
                let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
            }
            _ => return Err(CniError::io(format!("injected failure after {step}"))),
        }
    }
    let _ = step;
    Ok(())
}
