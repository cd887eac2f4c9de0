fn main() {
    // Started again by ourselves to send the later announcements of an ADD.
    if let Some(job) = underlay_linux::announce::Job::from_env() {
        std::process::exit(i32::from(job.run().is_err()));
    }
    underlay::cni::plugin::main(&macvlan::Macvlan)
}
