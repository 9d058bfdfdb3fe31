//! Sizes written in `bot.toml` (`[storage] cache = "256MiB"`): read with
//! their unit, shown in the largest unit that divides them.

/// sled's cache when `[storage] cache` is not written: the store's own
/// default (`store::DEFAULT_CACHE`, which the config may not import; a test
/// in `architecture_test.rs` keeps the two equal).
pub(crate) const DEFAULT_CACHE: u64 = 256 * MIB;
/// The smallest cache accepted: below it sled reads its pages again and again.
const MIN_CACHE: u64 = 8 * MIB;
const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// A size written as a whole number and a unit, `KiB`, `MiB` or `GiB`
/// (`256MiB`, `1 GiB`), in bytes, from [`MIN_CACHE`] up to what a `u64` and
/// this machine's addresses hold; otherwise why not (the words after the
/// value).
pub(super) fn parse_size(written: &str) -> Result<u64, &'static str> {
    let s = written.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(digits);
    let unit = match unit.trim_start() {
        "KiB" => KIB,
        "MiB" => MIB,
        "GiB" => GIB,
        _ => return Err("is not a size"),
    };
    if number.is_empty() {
        return Err("is not a size");
    }
    let bytes = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .filter(|b| usize::try_from(*b).is_ok())
        .ok_or("is more than this machine can address")?;
    if bytes < MIN_CACHE {
        return Err("is below the smallest cache, 8MiB");
    }
    Ok(bytes)
}

/// A size in the largest unit that divides it (`256 MiB`, `1 GiB`).
pub(super) fn show_size(bytes: u64) -> String {
    match bytes {
        b if b % GIB == 0 => format!("{} GiB", b / GIB),
        b if b % MIB == 0 => format!("{} MiB", b / MIB),
        b if b % KIB == 0 => format!("{} KiB", b / KIB),
        b => format!("{b} B"),
    }
}
