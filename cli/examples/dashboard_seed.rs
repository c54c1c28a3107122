//! Writes the dashboard test ledger (`cli/tests/support/dashboard_seed.rs`) to the SQLite file named by
//! the first argument and prints its store URL: the browser test (`tests/browser/`) serves it.

#[path = "../tests/support/dashboard_seed.rs"]
mod dashboard_seed;

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: dashboard_seed LEDGER.db");
        std::process::exit(2);
    };
    println!("{}", dashboard_seed::seed(std::path::Path::new(&path)));
}
