//! The data directory: a corrupt or foreign one stops the bot with a clear
//! message, never an empty start; a newer schema is refused; one process at
//! a time.

use opsbot::store::{Store, SCHEMA_VERSION};

use crate::harness::Env;

#[test]
fn a_directory_of_other_files_is_refused() {
    let env = Env::shipped();
    std::fs::create_dir_all(env.data_dir()).unwrap();
    std::fs::write(env.data_dir().join("notes.txt"), "not a database").unwrap();
    let run = env.opsbot(&["console"], "/ticket list\n");
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("is not an opsbot database"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("refusing to start with empty state"));
    assert_eq!(run.stdout, "");
}

#[test]
fn a_corrupt_database_is_refused() {
    let env = Env::shipped();
    env.console(&["/ticket open title:precious"]);
    // Scribble over the database file.
    let db = env.data_dir().join("db");
    let len = std::fs::metadata(&db).unwrap().len() as usize;
    std::fs::write(&db, vec![0xA5u8; len.max(4096)]).unwrap();
    let run = env.opsbot(&["console"], "/ticket list\n");
    assert_eq!(
        run.code,
        Some(1),
        "started on a corrupt database: {}",
        run.stdout
    );
    assert!(
        run.stderr.contains("error: the data directory"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("refusing to start with empty state"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&env.data_dir().display().to_string()),
        "{}",
        run.stderr
    );
}

#[test]
fn a_newer_schema_is_refused() {
    let env = Env::shipped();
    env.console(&["/ticket open title:x"]);
    {
        let store = Store::open(&env.data_dir()).unwrap();
        store.set_schema_version(SCHEMA_VERSION + 1).unwrap();
    }
    let run = env.opsbot(&["export"], "");
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains(&format!(
            "was written by a newer opsbot (schema {}); this binary knows schema {SCHEMA_VERSION}",
            SCHEMA_VERSION + 1
        )),
        "{}",
        run.stderr
    );
}

#[test]
fn a_second_process_on_the_same_data_is_refused() {
    let env = Env::shipped();
    let _held = Store::open(&env.data_dir()).unwrap();
    let run = env.opsbot(&["export"], "");
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr
            .contains("is already in use by another opsbot process"),
        "{}",
        run.stderr
    );
}
