//! What the integration tests and the benchmarks share (the benches include
//! this file with `#[path]`): the shipped config and its edits, a bot's
//! folder, and the `opsbot console` command they start. Nothing here names
//! the crate's API, so a bench can use it as the tests do.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The line of the shipped `bot.toml` that a Discord config replaces.
const GUILD_LINE: &str = "# guild_id = \"123456789012345678\"        # commands register here, or in each of a list (else globally)";

/// The repository's root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The shipped config, as text.
pub fn shipped_config() -> String {
    std::fs::read_to_string(root().join("bot.toml")).expect("the shipped bot.toml is readable")
}

/// The shipped `commands/` folder (the jobs the shipped services name).
pub fn shipped_commands() -> PathBuf {
    root().join("commands")
}

/// `text` (the shipped config or a variant) with `discord.guild_id` set to
/// `guild` and `discord.api_base` to `api_base` (a fake Discord).
pub fn on_discord(text: &str, guild: &str, api_base: &str) -> String {
    assert!(
        text.contains(GUILD_LINE),
        "the config has no commented-out guild_id line to replace"
    );
    text.replace(
        GUILD_LINE,
        &format!("guild_id = \"{guild}\"\napi_base = \"{api_base}\""),
    )
}

/// `text` with `lines` added at the start of section `header` (such as
/// `"[discord.channels]"`), which it must have.
pub fn in_section(text: &str, header: &str, lines: &str) -> String {
    let at = format!("{header}\n");
    assert!(text.contains(&at), "the config has no {header} section");
    text.replace(&at, &format!("{at}{lines}"))
}

/// Writes `text` as `bot.toml` in `dir`; returns its path.
pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    let config = dir.join("bot.toml");
    std::fs::write(&config, text).expect("write bot.toml");
    config
}

/// Copies a folder tree (file modes kept).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir").flatten() {
        let p = e.path();
        let dest = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).expect("copy");
        }
    }
}

/// `opsbot console --config CONFIG --listen 127.0.0.1:0` in `dir`, as the
/// tests and benches start it: `OPSBOT_CONFIG` unset, `RUST_LOG=warn`, stdin,
/// stdout and stderr piped. The caller adds its arguments and variables, and
/// spawns it.
pub fn console(dir: &Path, config: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_opsbot"));
    cmd.arg("console")
        .arg("--config")
        .arg(config)
        .args(["--listen", "127.0.0.1:0"])
        .current_dir(dir)
        .env_remove("OPSBOT_CONFIG")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// `opsbot run --listen 127.0.0.1:0 --config CONFIG` with Discord's `token`:
/// `OPSBOT_CONFIG` unset, `RUST_LOG=warn`, stdin and stdout closed. The
/// caller says where its stderr goes, adds its variables, and spawns it.
pub fn run(config: &Path, token: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_opsbot"));
    cmd.args(["run", "--listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .env_remove("OPSBOT_CONFIG")
        .env("DISCORD_TOKEN", token)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    cmd
}
