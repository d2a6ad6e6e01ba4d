//! A test function that dies during initialisation, before it ever polls for an invocation,
//! like a binary built for the wrong libc or missing a required variable.

fn main() {
    eprintln!("exit_on_start: failing initialisation on purpose");
    std::process::exit(1);
}
