//! The items `/json/{count}` serves: HttpArena's `dataset.json`, read once
//! at start from `--dataset` and kept as parsed values, so that every
//! answer is serialized afresh from them (no stored bodies).

use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

/// The dataset's items, in file order.
#[derive(Debug)]
pub struct Dataset {
    items: Vec<Item>,
}

/// One item. The fields HttpArena's validator compares are typed; any
/// other field is kept as it was read and answered with the rest, so an
/// item keeps all its fields unchanged. `id` and the rating's numbers are
/// kept as JSON numbers (answered as written, integer or not); `price` and
/// `quantity` must be integers, since every answer multiplies them.
#[derive(Debug, Deserialize, Serialize)]
pub struct Item {
    pub id: Number,
    pub name: String,
    pub category: String,
    pub price: i64,
    pub quantity: i64,
    pub active: bool,
    pub tags: Vec<String>,
    pub rating: Rating,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct Rating {
    pub score: Number,
    pub count: Number,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl Item {
    /// `price * quantity * m`; `None` when it does not fit in an `i64`.
    pub fn total(&self, m: i64) -> Option<i64> {
        self.price.checked_mul(self.quantity)?.checked_mul(m)
    }
}

impl Dataset {
    /// Reads the dataset at `path`: `Ok(None)` when there is no file there
    /// (the route it feeds then answers 404); an error naming the file and
    /// what is wrong (for JSON, where: line and column) when it cannot be
    /// read or is not a list of items.
    pub fn load(path: &Path) -> Result<Option<Dataset>, String> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read the dataset {}: {e}", path.display())),
        };
        let items: Vec<Item> = serde_json::from_slice(&bytes).map_err(|e| {
            format!(
                "the dataset {} is not a JSON list of items ({}): {e}",
                path.display(),
                Self::FIELDS
            )
        })?;
        if let Some(at) = items
            .iter()
            .position(|item| item.other.contains_key("total"))
        {
            return Err(format!(
                "the dataset {}: item {} has a field \"total\", which /json/{{count}} computes \
                 (price * quantity * m); remove it",
                path.display(),
                at + 1
            ));
        }
        Ok(Some(Dataset::from_items(items)))
    }

    /// What an item must have, for error messages.
    const FIELDS: &'static str = "each an object with id, name, category, integer price and \
                                  quantity, active, tags and rating {score, count}";

    pub fn from_items(items: Vec<Item>) -> Dataset {
        Dataset { items }
    }

    pub fn items(&self) -> &[Item] {
        &self.items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> std::path::PathBuf {
        let path =
            std::env::temp_dir().join(format!("chopin-dataset-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    const ITEM: &str = r#"{"id":1,"name":"Alpha Widget","category":"electronics","price":328,"quantity":15,"active":true,"tags":["sale"],"rating":{"score":48,"count":53}}"#;

    #[test]
    fn loads_items_and_keeps_every_field() {
        let extra = ITEM.replace(r#""active""#, r#""sku":"x-1","active""#);
        let path = write("ok", &format!("[{ITEM},\n{extra}]"));
        let dataset = Dataset::load(&path).unwrap().unwrap();
        assert_eq!(dataset.items().len(), 2);
        assert_eq!(dataset.items()[0].total(3), Some(14760));
        assert_eq!(dataset.items()[1].other["sku"], "x-1");
        let round: Value = serde_json::to_value(&dataset.items()[1]).unwrap();
        let read: Value = serde_json::from_str(&extra).unwrap();
        assert_eq!(round, read);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_missing_file_is_no_dataset() {
        let path = std::env::temp_dir().join("chopin-no-such-dataset.json");
        assert!(Dataset::load(&path).unwrap().is_none());
    }

    #[test]
    fn a_malformed_file_says_where_and_what() {
        for (name, text, says) in [
            (
                "syntax",
                format!("[{ITEM},\n  {{\"id\": }}]"),
                "line 2 column 10",
            ),
            ("float", ITEM.replace("328", "3.5"), "expected i64"),
            (
                "missing",
                ITEM.replace(r#""price":328,"#, ""),
                "missing field `price`",
            ),
            ("object", ITEM.to_owned(), "expected a sequence"),
            (
                "total",
                format!("[{}]", ITEM.replace(r#""active""#, r#""total":1,"active""#)),
                "item 1 has a field \"total\"",
            ),
        ] {
            let text = if name == "float" || name == "missing" {
                format!("[{text}]")
            } else {
                text
            };
            let path = write(name, &text);
            let error = Dataset::load(&path).unwrap_err();
            assert!(error.contains(&path.display().to_string()), "{error}");
            assert!(error.contains(says), "{name}: {error}");
            std::fs::remove_file(path).unwrap();
        }
    }
}
