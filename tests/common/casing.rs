//! Mixed-case spellings of field names, shared by tests/properties.rs and
//! tests/fast_path.rs (included with `#[path]`).

/// `name` with the letters whose bit is set in `mask` upper-cased and the
/// others lower-cased.
pub fn casing(name: &str, mask: u32) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 32) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}
